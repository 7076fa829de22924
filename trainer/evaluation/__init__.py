"""Held-aside measures that need networks of their own: a domain classifier trained on real
images, face-identity cosines from dlib's ResNet, and the evaluator of unpaired translators
that combines them (used by the CycleGAN recipe)."""

from trainer.evaluation.domain_classifier import (
    DomainClassifier,
    cached_domain_classifier,
    predicts_b,
    train_domain_classifier,
)
from trainer.evaluation.identity import (
    CELEBA_DLIB_CHIP_BOX,
    celeba_dlib_chips,
    face_directions,
    identity_cosine,
)
from trainer.evaluation.translation import UnpairedTranslationEvaluator, translate

__all__ = [
    "CELEBA_DLIB_CHIP_BOX",
    "DomainClassifier",
    "UnpairedTranslationEvaluator",
    "cached_domain_classifier",
    "celeba_dlib_chips",
    "face_directions",
    "identity_cosine",
    "predicts_b",
    "train_domain_classifier",
    "translate",
]
