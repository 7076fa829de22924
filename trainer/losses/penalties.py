"""Discriminator regularisers: WGAN-GP's gradient penalty, R1, and WGAN's weight clipping.

The penalties take the same discriminator outputs as ``trainer.losses.adversarial`` (a tensor,
or one entry per scale) and, like the GAN losses, sum over scales: each scale is penalised as
its own discriminator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from trainer.losses.adversarial import Logits, per_scale


def gradient_penalty(
    critic: Callable[[torch.Tensor], Logits],
    real: torch.Tensor,
    fake: torch.Tensor,
    lambda_gp: float = 10.0,
    *,
    rng: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP's penalty (Gulrajani et al. 2017): λ · E[(||∇_x̂ C(x̂)||_2 - 1)^2].

    x̂ = ε·real + (1 - ε)·fake with one ε ~ U[0, 1] per sample, so the critic is pushed towards
    unit gradient norm along lines between the two distributions. The graph is kept
    (``create_graph``), so the penalty's own gradient reaches the critic's weights.

    Args:
        critic: the critic (or discriminator); it may return a tensor or one per scale.
        real: a batch of real samples, (N, ...).
        fake: generated samples of the same shape; detached here, the penalty is D's alone.
        lambda_gp: the penalty weight (10 in the paper).
        rng: the generator ε is drawn from, for reproducible runs; the global one if None.

    Returns:
        A scalar tensor, summed over the critic's scales.

    Raises:
        ValueError: ``real`` and ``fake`` differ in shape.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} differ")
    eps_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(eps_shape, generator=rng, dtype=real.dtype).to(real.device)
    interpolates = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    terms = []
    for scores in per_scale(critic(interpolates)):
        # Summing the scores gives each sample's gradient of its own (patch) scores, since
        # samples do not interact in the critic.
        (grad,) = torch.autograd.grad(
            scores.sum(), interpolates, create_graph=True, retain_graph=True
        )
        norms = grad.flatten(1).norm(2, dim=1)
        terms.append(((norms - 1) ** 2).mean())
    return torch.stack(terms).sum() * lambda_gp


def r1_penalty(real_logits: Logits, real_images: torch.Tensor, gamma: float) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): γ/2 · E_x[||∇_x D(x)||_2^2] on real data only.

    It penalises D's gradient where the data are, which makes GAN training converge locally;
    StyleGAN uses it with γ = 10 (and applies it lazily, every few steps).

    Args:
        real_logits: D's raw output on ``real_images`` (a tensor or one per scale).
        real_images: the batch D saw; it must have had ``requires_grad`` set before D ran.
        gamma: the penalty weight γ.

    Returns:
        A scalar tensor, summed over D's scales, with its graph (``create_graph``).

    Raises:
        ValueError: ``real_images`` does not require grad, so no gradient w.r.t. it exists.
    """
    if not real_images.requires_grad:
        raise ValueError(
            "r1_penalty needs the gradient w.r.t. the real images: call "
            "real_images.requires_grad_(True) before running D on them"
        )
    terms = []
    for scores in per_scale(real_logits):
        (grad,) = torch.autograd.grad(
            scores.sum(), real_images, create_graph=True, retain_graph=True
        )
        terms.append(grad.pow(2).flatten(1).sum(1).mean())
    return torch.stack(terms).sum() * (gamma / 2)


@torch.no_grad()
def clip_weights(module: nn.Module, clip: float = 0.01) -> None:
    """Clamp every parameter of ``module`` to [-clip, clip] in place (WGAN, after each D step).

    Arjovsky et al.'s crude way to keep the critic Lipschitz; 0.01 is their value.

    Raises:
        ValueError: ``clip`` is not positive.
    """
    if clip <= 0:
        raise ValueError(f"clip must be positive, got {clip}")
    for param in module.parameters():
        param.clamp_(-clip, clip)


def wgan_optimizer(params: Iterable[nn.Parameter], lr: float = 5e-5) -> torch.optim.RMSprop:
    """RMSprop at the WGAN paper's learning rate.

    The paper avoids momentum-based optimisers (Adam) for a weight-clipped critic, which it
    found unstable; WGAN-GP's critic trains with Adam instead.
    """
    return torch.optim.RMSprop(params, lr=lr)
