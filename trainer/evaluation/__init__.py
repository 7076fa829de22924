"""Held-aside measures that need networks of their own: a domain (or attribute) classifier
trained on real images, face-identity cosines from dlib's ResNet, and the evaluators that
combine them: of unpaired two-domain translators (the CycleGAN recipe), of multi-domain
attribute translators (the StarGAN recipe), of attribute swappers (the GeneGAN recipe) and of
style-guided multi-domain translators (the StarGAN v2 recipe); PSNR / SSIM of restored
images (the DeblurGAN recipe) and of upscaled ones beside a sharpness ratio (SRGAN, ESRGAN);
PSNR inside filled holes, with the mean-fill and Telea baselines (the GLCIC recipe); landmark
NME (PFLD) and verification figures of embedders (the recognition recipe)."""

from trainer.evaluation.attribute_swap import AttributeSwapEvaluator
from trainer.evaluation.attribute_translation import (
    AttributeTranslationEvaluator,
    balanced_accuracy,
    translate_to,
)
from trainer.evaluation.domain_classifier import (
    DomainClassifier,
    cached_attribute_classifier,
    cached_domain_classifier,
    cached_multi_domain_classifier,
    predicts,
    predicts_b,
    train_attribute_classifier,
    train_domain_classifier,
    train_multi_domain_classifier,
)
from trainer.evaluation.identity import (
    CELEBA_DLIB_CHIP_BOX,
    celeba_dlib_chips,
    face_directions,
    identity_cosine,
)
from trainer.evaluation.inpainting import (
    hole_psnr,
    inpainting_figures,
    mean_fill,
    telea_fill,
)
from trainer.evaluation.restoration import psnr_y, restoration_figures, ssim_y
from trainer.evaluation.style_translation import (
    StyleTranslationEvaluator,
    classify,
    translate_styled,
)
from trainer.evaluation.superres import (
    bicubic_upscale,
    gradient_energy,
    superres_figures,
)
from trainer.evaluation.translation import UnpairedTranslationEvaluator, translate

__all__ = [
    "CELEBA_DLIB_CHIP_BOX",
    "AttributeSwapEvaluator",
    "AttributeTranslationEvaluator",
    "DomainClassifier",
    "StyleTranslationEvaluator",
    "UnpairedTranslationEvaluator",
    "balanced_accuracy",
    "bicubic_upscale",
    "cached_attribute_classifier",
    "cached_domain_classifier",
    "cached_multi_domain_classifier",
    "celeba_dlib_chips",
    "classify",
    "face_directions",
    "gradient_energy",
    "hole_psnr",
    "identity_cosine",
    "inpainting_figures",
    "mean_fill",
    "predicts",
    "predicts_b",
    "psnr_y",
    "restoration_figures",
    "ssim_y",
    "superres_figures",
    "telea_fill",
    "train_attribute_classifier",
    "train_domain_classifier",
    "train_multi_domain_classifier",
    "translate",
    "translate_styled",
    "translate_to",
]
