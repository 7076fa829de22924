"""The GAN loss zoo: adversarial losses by name, penalties, pixel and perceptual losses,
PFLD's pose- and condition-weighted landmark loss, and the face frontalization losses (TP-GAN's
symmetry and identity terms, CAPG-GAN's multi-scale L1).

Adversarial losses are registered in ``GAN_LOSSES`` and built with ``build_gan_loss(name)``;
each has ``discriminator(real_logits, fake_logits)`` and ``generator(fake_logits,
real_logits=None)`` and accepts a multi-scale D's list of outputs (summed over scales). The
rest are plain functions and modules, combined by the training recipes.
"""

from __future__ import annotations

from trainer.losses.adversarial import (
    GAN_LOSSES,
    GANLoss,
    HingeGANLoss,
    Logits,
    LSGANLoss,
    MinimaxGANLoss,
    NonSaturatingGANLoss,
    RelativisticAverageGANLoss,
    WassersteinGANLoss,
    build_gan_loss,
    per_scale,
)
from trainer.losses.frontalization import (
    identity_feature_loss,
    laplacian,
    multiscale_l1,
    symmetry_loss,
)
from trainer.losses.landmarks import pfld_loss, pose_weights
from trainer.losses.penalties import clip_weights, gradient_penalty, r1_penalty, wgan_optimizer
from trainer.losses.perceptual import (
    PERCEPTUAL_OFF_REASON,
    VGG19_CONV_LAYERS,
    PerceptualWeightsMissing,
    VGGPerceptualLoss,
    perceptual_loss_or_none,
    vgg19_features,
)
from trainer.losses.pixel import (
    L1Loss,
    MSELoss,
    cycle_consistency,
    feature_matching,
    identity,
    total_variation,
)

__all__ = [
    "GAN_LOSSES",
    "PERCEPTUAL_OFF_REASON",
    "VGG19_CONV_LAYERS",
    "GANLoss",
    "HingeGANLoss",
    "L1Loss",
    "LSGANLoss",
    "Logits",
    "MSELoss",
    "MinimaxGANLoss",
    "NonSaturatingGANLoss",
    "PerceptualWeightsMissing",
    "RelativisticAverageGANLoss",
    "VGGPerceptualLoss",
    "WassersteinGANLoss",
    "build_gan_loss",
    "clip_weights",
    "cycle_consistency",
    "feature_matching",
    "gradient_penalty",
    "identity",
    "identity_feature_loss",
    "laplacian",
    "multiscale_l1",
    "per_scale",
    "perceptual_loss_or_none",
    "pfld_loss",
    "pose_weights",
    "r1_penalty",
    "symmetry_loss",
    "total_variation",
    "vgg19_features",
    "wgan_optimizer",
]
