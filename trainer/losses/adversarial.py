"""Adversarial losses: one ``GANLoss`` per formulation, registered by name in ``GAN_LOSSES``.

Every loss has the same two methods, so a training loop can switch formulation by config:

* ``discriminator(real_logits, fake_logits)``: the loss D (or the critic) minimises. It is the
  sum of the real and the fake term, as the papers write it; pix2pixHD and BasicSR halve it
  before ``backward``, which the caller does if it wants to.
* ``generator(fake_logits, real_logits=None)``: the loss G minimises. Only the relativistic
  loss reads ``real_logits`` (``generator_needs_real`` says so); the others ignore them.

Logits are raw discriminator outputs, never passed through a sigmoid: the BCE losses apply it
inside ``binary_cross_entropy_with_logits``, which is stable where ``log(sigmoid(x))`` is not.

Multi-scale discriminators: ``real_logits`` and ``fake_logits`` may be one tensor or a list
with one entry per scale. An entry may itself be a list of maps (pix2pixHD's
``MultiscaleDiscriminator`` returns every layer's output for feature matching); its last map is
the patch scores, and only that one is scored. The loss is computed per scale and **summed**
over scales, as pix2pixHD does, so a 3-scale D's loss is about three times a 1-scale one's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from gantry.core.registry import Registry

# One tensor, one tensor per scale, or per scale the list of a D's intermediate maps.
Logits = torch.Tensor | Sequence[torch.Tensor | Sequence[torch.Tensor]]

GAN_LOSSES: Registry[type[GANLoss]] = Registry("GAN loss")


def per_scale(logits: Logits) -> list[torch.Tensor]:
    """The patch scores of each scale: ``[logits]`` for a tensor, the last map of nested lists.

    Raises:
        ValueError: an empty list (no scale at all), or a scale with no maps.
    """
    if isinstance(logits, torch.Tensor):
        return [logits]
    if not logits:
        raise ValueError("discriminator output is an empty list: expected one entry per scale")
    scales = []
    for i, scale in enumerate(logits):
        if isinstance(scale, torch.Tensor):
            scales.append(scale)
        elif scale:
            scales.append(scale[-1])
        else:
            raise ValueError(f"discriminator output for scale {i} is an empty list")
    return scales


def _paired(real: Logits, fake: Logits) -> list[tuple[torch.Tensor, torch.Tensor]]:
    real_scales, fake_scales = per_scale(real), per_scale(fake)
    if len(real_scales) != len(fake_scales):
        raise ValueError(
            f"real logits have {len(real_scales)} scales, fake logits {len(fake_scales)}"
        )
    return list(zip(real_scales, fake_scales, strict=True))


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


class GANLoss(nn.Module):
    """Base class: subclasses define the loss on one scale; this class sums over scales.

    Subclasses take hyperparameters only (most take none) and override
    ``_discriminator_scale`` and ``_generator_scale``.
    """

    # True when the generator term compares against D's output on real data.
    generator_needs_real: ClassVar[bool] = False

    def discriminator(self, real_logits: Logits, fake_logits: Logits) -> torch.Tensor:
        """The loss D minimises, summed over scales.

        Args:
            real_logits: D's raw output on real data (a tensor or one per scale).
            fake_logits: D's raw output on generated data; detach the fakes before D so this
                loss does not reach G.

        Returns:
            A scalar tensor.
        """
        terms = [self._discriminator_scale(r, f) for r, f in _paired(real_logits, fake_logits)]
        return torch.stack(terms).sum()

    def generator(self, fake_logits: Logits, real_logits: Logits | None = None) -> torch.Tensor:
        """The loss G minimises, summed over scales.

        Args:
            fake_logits: D's raw output on generated data (a tensor or one per scale).
            real_logits: D's raw output on real data; required when ``generator_needs_real``
                (the relativistic loss), ignored otherwise. They are detached here: for G they
                are a reference point, and no gradient should reach D from G's step.

        Returns:
            A scalar tensor.

        Raises:
            ValueError: ``real_logits`` is missing for a loss that needs them.
        """
        if real_logits is None:
            if self.generator_needs_real:
                raise ValueError(
                    f"{type(self).__name__}.generator needs real_logits: its generator term "
                    "compares D's output on fakes with its output on real data"
                )
            terms = [self._generator_scale(f, None) for f in per_scale(fake_logits)]
        else:
            terms = [
                self._generator_scale(f, r.detach()) for r, f in _paired(real_logits, fake_logits)
            ]
        return torch.stack(terms).sum()

    def _discriminator_scale(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _generator_scale(self, fake: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError


@GAN_LOSSES.register("minimax")
class MinimaxGANLoss(GANLoss):
    """The original, saturating GAN (Goodfellow et al. 2014).

    D: max E[log D(x)] + E[log(1 - D(G(z)))], i.e. minimise BCE(real, 1) + BCE(fake, 0).
    G: min E[log(1 - D(G(z)))]. Its gradient vanishes when D confidently rejects the fakes
    (D(G(z)) ≈ 0, early in training); kept for reference and comparison.
    """

    def _discriminator_scale(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return _bce(real, 1.0) + _bce(fake, 0.0)

    def _generator_scale(self, fake: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
        # log(1 - sigmoid(x)) = -softplus(x), exactly and without overflow.
        return -F.softplus(fake).mean()


@GAN_LOSSES.register("nonsaturating")
class NonSaturatingGANLoss(GANLoss):
    """The non-saturating GAN (Goodfellow et al. 2014, the variant used in practice).

    D: as minimax, BCE(real, 1) + BCE(fake, 0).
    G: max E[log D(G(z))], i.e. minimise BCE(fake, 1): a strong gradient where the minimax
    term's is flat (D(G(z)) ≈ 0).
    """

    def _discriminator_scale(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return _bce(real, 1.0) + _bce(fake, 0.0)

    def _generator_scale(self, fake: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
        return _bce(fake, 1.0)


@GAN_LOSSES.register("lsgan")
class LSGANLoss(GANLoss):
    """Least-squares GAN (Mao et al. 2017) with the 0/1 coding; pix2pixHD's default.

    D: E[(D(x) - 1)^2] + E[D(G(z))^2].  G: E[(D(G(z)) - 1)^2].
    """

    def _discriminator_scale(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, torch.zeros_like(fake))

    def _generator_scale(self, fake: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
        return F.mse_loss(fake, torch.ones_like(fake))


@GAN_LOSSES.register("wgan")
class WassersteinGANLoss(GANLoss):
    """Wasserstein GAN (Arjovsky et al. 2017): the critic's outputs are scores, no sigmoid.

    Critic: E[C(G(z))] - E[C(x)] (minimising it maximises the Wasserstein estimate).
    G: -E[C(G(z))]. The estimate only means something for a Lipschitz critic: pair this with
    ``clip_weights`` (WGAN) or ``gradient_penalty`` (WGAN-GP) from ``trainer.losses.penalties``.
    """

    def _discriminator_scale(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return fake.mean() - real.mean()

    def _generator_scale(self, fake: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
        return -fake.mean()


@GAN_LOSSES.register("hinge")
class HingeGANLoss(GANLoss):
    """Hinge GAN (Lim & Ye 2017; SAGAN, BigGAN).

    D: E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]: zero once real scores ≥ 1 and fake ≤ -1.
    G: -E[D(G(z))].
    """

    def _discriminator_scale(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()

    def _generator_scale(self, fake: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
        return -fake.mean()


@GAN_LOSSES.register("relativistic_average")
class RelativisticAverageGANLoss(GANLoss):
    """Relativistic average GAN (Jolicoeur-Martineau 2018), as ESRGAN uses it (RaGAN).

    With C the raw critic and D_Ra(a, b) = sigmoid(C(a) - E[C(b)]):

    D: -E_xr[log D_Ra(x_r, x_f)] - E_xf[log(1 - D_Ra(x_f, x_r))]
    G: -E_xr[log(1 - D_Ra(x_r, x_f))] - E_xf[log D_Ra(x_f, x_r)]

    G's term reads D's output on real data, so ``generator`` needs ``real_logits``. The two
    terms are summed and differentiated through both means, as the formulas read. ESRGAN's
    code (BasicSR) averages them, so its ``gan_weight`` of 5e-3 is 2.5e-3 here; for D it also
    detaches the subtracted mean, to backpropagate one half at a time.
    """

    generator_needs_real: ClassVar[bool] = True

    def _discriminator_scale(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return _bce(real - fake.mean(), 1.0) + _bce(fake - real.mean(), 0.0)

    def _generator_scale(self, fake: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
        if real is None:  # generator() checked already; this narrows the type
            raise ValueError("relativistic generator loss needs real logits")
        return _bce(real - fake.mean(), 0.0) + _bce(fake - real.mean(), 1.0)


def build_gan_loss(name: str, **kwargs: Any) -> GANLoss:
    """Build the GAN loss registered as ``name``.

    Args:
        name: one of ``GAN_LOSSES.names()``: ``hinge``, ``lsgan``, ``minimax``,
            ``nonsaturating``, ``relativistic_average``, ``wgan``.
        **kwargs: forwarded to the loss's constructor (the built-in losses take none).

    Returns:
        The loss module.

    Raises:
        UnknownNameError: ``name`` is not registered; the message lists the known names.
    """
    return GAN_LOSSES.get(name)(**kwargs)
