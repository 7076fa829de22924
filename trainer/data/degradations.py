"""Real-ESRGAN's high-order degradation model (Wang et al., ICCVW 2021): LR from an HR photo.

The settings are those of xinntao/Real-ESRGAN ``options/train_realesrgan_x4plus.yml`` and
``realesrgan/data/realesrgan_dataset.py`` / ``realesrgan/models/realesrgan_model.py``
(:data:`FIRST_ORDER`, :data:`SECOND_ORDER`, :data:`REALESRGAN_X4PLUS`). One degradation
(:func:`degrade`) of an HR image in [0, 1]:

1. **First order**: blur by a random kernel (:func:`random_blur_kernel`: isotropic or
   anisotropic Gaussian, generalized Gaussian, plateau, with probabilities 0.45, 0.25, 0.12,
   0.03, 0.12, 0.03, or with probability 0.1 a 2-D sinc; odd sides 7 to 21, sigma in
   [0.2, 3]); a random resize (up / down / keep with probabilities 0.2 / 0.7 / 0.1, factor in
   [0.15, 1.5], by area, bilinear or bicubic interpolation); Gaussian noise (probability 0.5,
   sigma in [1, 30] grey levels) or else Poisson noise (scale in [0.05, 3]), grey (the same
   on every channel) with probability 0.4; JPEG at a quality in [30, 95].
2. **Second order** (when on): the blur again with probability 0.8 (sigma in [0.2, 1.5]); a
   resize to ``factor / scale`` of the HR size (up / down / keep 0.3 / 0.4 / 0.3, factor in
   [0.3, 1.2]); noise (sigma in [1, 25], Poisson scale in [0.05, 2.5]).
3. **Final**: in a random order (each half the time), [resize to HR / scale, then a sinc
   filter with probability 0.8 (cut-off in [pi/3, pi]), else none] and JPEG (quality in
   [30, 95]); rounded to 8 bits.

Differences from upstream, all in how, not what: JPEG is PIL's codec (4:2:0 chroma, like
DiffJPEG's) where upstream uses its differentiable DiffJPEG; kernels are not zero-padded to
21 px (a convolution with reflect padding gives the same pixels); the generated LR of a
batch is not shuffled through upstream's 180-image training queue, and the HR target is
not unsharp-masked (upstream's ``l1_gt_usm``: an option of its recipe, not of the data).

**Randomness.** Every draw comes from the ``numpy.random.Generator`` passed in, so an LR
image is a pure function of the HR image, the settings and the generator's seed.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from PIL import Image

KernelKind = Literal[
    "iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"
]
ResizeMode = Literal["area", "bilinear", "bicubic"]

KERNEL_KINDS: tuple[KernelKind, ...] = (
    "iso",
    "aniso",
    "generalized_iso",
    "generalized_aniso",
    "plateau_iso",
    "plateau_aniso",
)
KERNEL_SIZES = tuple(2 * v + 1 for v in range(3, 11))  # upstream's kernel_range: 7 .. 21
RESIZE_MODES: tuple[ResizeMode, ...] = ("area", "bilinear", "bicubic")
# Sinc kernels smaller than this get a higher lowest cut-off (upstream: pi/3, else pi/5).
SMALL_SINC = 13

Kernel = NDArray[Any]  # a (k, k) float64 kernel summing to 1


@dataclass(frozen=True)
class BlurSettings:
    """How one order draws its blur kernel (upstream's ``kernel_list`` ... ``betap_range``)."""

    kinds: tuple[KernelKind, ...] = KERNEL_KINDS
    probabilities: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sinc_prob: float = 0.1
    sigma: tuple[float, float] = (0.2, 3.0)
    beta_generalized: tuple[float, float] = (0.5, 4.0)
    beta_plateau: tuple[float, float] = (1.0, 2.0)


@dataclass(frozen=True)
class OrderSettings:
    """One order of degradation: blur, resize, noise, (JPEG)."""

    blur: BlurSettings
    blur_prob: float
    resize_prob: tuple[float, float, float]  # up, down, keep
    resize_range: tuple[float, float]
    gaussian_noise_prob: float
    noise_range: tuple[float, float]  # sigma, in grey levels of 255
    poisson_scale_range: tuple[float, float]
    gray_noise_prob: float
    jpeg_range: tuple[float, float]


@dataclass(frozen=True)
class DegradationSettings:
    """The whole pipeline: the first order, the optional second, the final sinc, the scale."""

    first: OrderSettings
    second: OrderSettings | None
    final_sinc_prob: float = 0.8
    scale: int = 4


FIRST_ORDER = OrderSettings(
    blur=BlurSettings(),
    blur_prob=1.0,
    resize_prob=(0.2, 0.7, 0.1),
    resize_range=(0.15, 1.5),
    gaussian_noise_prob=0.5,
    noise_range=(1.0, 30.0),
    poisson_scale_range=(0.05, 3.0),
    gray_noise_prob=0.4,
    jpeg_range=(30.0, 95.0),
)
SECOND_ORDER = OrderSettings(
    blur=BlurSettings(sigma=(0.2, 1.5)),
    blur_prob=0.8,
    resize_prob=(0.3, 0.4, 0.3),
    resize_range=(0.3, 1.2),
    gaussian_noise_prob=0.5,
    noise_range=(1.0, 25.0),
    poisson_scale_range=(0.05, 2.5),
    gray_noise_prob=0.4,
    jpeg_range=(30.0, 95.0),
)
REALESRGAN_X4PLUS = DegradationSettings(first=FIRST_ORDER, second=SECOND_ORDER)
FIRST_ORDER_ONLY = replace(REALESRGAN_X4PLUS, second=None)


# --- kernels ---------------------------------------------------------------------------------


def _grid(size: int) -> NDArray[np.float64]:
    """(size, size, 2) pixel offsets (x, y) from the kernel's centre."""
    ax = np.arange(-(size // 2), size // 2 + 1, dtype=np.float64)
    xx, yy = np.meshgrid(ax, ax)
    return np.stack([xx, yy], axis=-1)


def _inverse_covariance(sigma_x: float, sigma_y: float, rotation: float) -> NDArray[np.float64]:
    """Σ⁻¹ of a Gaussian with principal sigmas ``sigma_x``, ``sigma_y`` turned by ``rotation``."""
    u = np.array(
        [[math.cos(rotation), -math.sin(rotation)], [math.sin(rotation), math.cos(rotation)]]
    )
    covariance = u @ np.diag([sigma_x**2, sigma_y**2]) @ u.T
    return np.linalg.inv(covariance)


def bivariate_kernel(
    size: int,
    sigma_x: float,
    sigma_y: float,
    rotation: float,
    *,
    shape: Literal["gaussian", "generalized", "plateau"] = "gaussian",
    beta: float = 1.0,
) -> Kernel:
    """A (size, size) kernel summing to 1, with d = xᵀΣ⁻¹x (BasicSR's ``degradations.py``):

    * gaussian: exp(-d / 2);
    * generalized: exp(-0.5 · d^β) (β = 1: the Gaussian; β < 1 heavier tails);
    * plateau: 1 / (d^β + 1), flat-topped with heavy tails.
    """
    grid = _grid(size)
    d = np.einsum("hwi,ij,hwj->hw", grid, _inverse_covariance(sigma_x, sigma_y, rotation), grid)
    if shape == "gaussian":
        kernel = np.exp(-0.5 * d)
    elif shape == "generalized":
        kernel = np.exp(-0.5 * np.power(d, beta))
    else:
        kernel = np.reciprocal(np.power(d, beta) + 1)
    return kernel / kernel.sum()


def sinc_kernel(size: int, cutoff: float) -> Kernel:
    """The 2-D sinc (circular low-pass) kernel of cut-off ``cutoff`` rad/px, summing to 1.

    It mimics the ringing and overshoot of sharpened and resampled photos:
    ``cutoff · J1(cutoff · r) / (2π r)``, ``cutoff² / 4π`` at the centre.
    """
    grid = _grid(size)
    r = np.sqrt((grid**2).sum(-1))
    centre = size // 2
    r[centre, centre] = 1.0  # any non-zero value: the centre is set below
    j1 = torch.special.bessel_j1(torch.from_numpy(cutoff * r)).numpy()
    kernel = cutoff * j1 / (2 * math.pi * r)
    kernel[centre, centre] = cutoff**2 / (4 * math.pi)
    return kernel / kernel.sum()


def _beta(rng: np.random.Generator, low_high: tuple[float, float]) -> float:
    # Upstream draws beta below or above 1 with equal odds, so both tails are as likely.
    low, high = low_high
    if rng.uniform() < 0.5:
        return float(rng.uniform(low, 1.0))
    return float(rng.uniform(1.0, high))


def random_blur_kernel(rng: np.random.Generator, settings: BlurSettings) -> Kernel:
    """One kernel as Real-ESRGAN's dataset draws ``kernel`` / ``kernel2``: a sinc with
    probability ``sinc_prob``, else a Gaussian-family kernel of a randomly chosen kind."""
    size = int(rng.choice(KERNEL_SIZES))
    if rng.uniform() < settings.sinc_prob:
        low = math.pi / 3 if size < SMALL_SINC else math.pi / 5
        return sinc_kernel(size, float(rng.uniform(low, math.pi)))
    kind = settings.kinds[int(rng.choice(len(settings.kinds), p=settings.probabilities))]
    sigma_x = float(rng.uniform(*settings.sigma))
    if kind.endswith("iso") and not kind.endswith("aniso"):
        sigma_y, rotation = sigma_x, 0.0
    else:
        sigma_y = float(rng.uniform(*settings.sigma))
        rotation = float(rng.uniform(-math.pi, math.pi))
    if kind.startswith("generalized"):
        beta = _beta(rng, settings.beta_generalized)
        return bivariate_kernel(size, sigma_x, sigma_y, rotation, shape="generalized", beta=beta)
    if kind.startswith("plateau"):
        beta = _beta(rng, settings.beta_plateau)
        return bivariate_kernel(size, sigma_x, sigma_y, rotation, shape="plateau", beta=beta)
    return bivariate_kernel(size, sigma_x, sigma_y, rotation)


def final_sinc_kernel(rng: np.random.Generator, prob: float) -> Kernel | None:
    """The last stage's sinc (cut-off in [pi/3, pi]) with probability ``prob``, else None."""
    if rng.uniform() >= prob:
        return None
    size = int(rng.choice(KERNEL_SIZES))
    return sinc_kernel(size, float(rng.uniform(math.pi / 3, math.pi)))


# --- the operations, on (1, 3, H, W) float tensors in [0, 1] -----------------------------------


def filter2d(image: torch.Tensor, kernel: Kernel) -> torch.Tensor:
    """``image`` (1, C, H, W) filtered by ``kernel`` (k, k), reflect-padded (BasicSR's
    ``filter2D``: a correlation, as upstream; every kernel here is symmetric about its centre
    but the rotated anisotropic ones, which are drawn uniformly over angles anyway)."""
    k = kernel.shape[0]
    pad = k // 2
    # Reflect padding needs a side longer than the pad: tiny images fall back to replicate.
    mode = "reflect" if min(image.shape[-2:]) > pad else "replicate"
    padded = F.pad(image, (pad, pad, pad, pad), mode=mode)
    weight = torch.from_numpy(kernel).to(image.dtype).view(1, 1, k, k)
    channels = image.shape[1]
    return F.conv2d(padded, weight.expand(channels, 1, k, k), groups=channels)


def resize(image: torch.Tensor, size: tuple[int, int], mode: ResizeMode) -> torch.Tensor:
    """``image`` resized to ``size`` (h, w) by ``mode`` (bicubic can overshoot [0, 1])."""
    size = (max(1, size[0]), max(1, size[1]))
    if mode == "area":
        return F.interpolate(image, size=size, mode="area")
    return F.interpolate(image, size=size, mode=mode, align_corners=False)


def add_gaussian_noise(
    rng: np.random.Generator, image: torch.Tensor, sigma: float, gray: bool
) -> torch.Tensor:
    """``image`` plus N(0, sigma²) noise (sigma in [0, 1] units), clipped to [0, 1]."""
    _, c, h, w = image.shape
    noise = rng.standard_normal((1, 1 if gray else c, h, w)) * sigma
    return torch.clamp(image + torch.from_numpy(noise).to(image.dtype), 0, 1)


def add_poisson_noise(
    rng: np.random.Generator, image: torch.Tensor, scale: float, gray: bool
) -> torch.Tensor:
    """``image`` plus ``scale`` times shot noise, clipped to [0, 1] (BasicSR's
    ``add_poisson_noise_pt``: the photon count per level is the next power of two above the
    number of distinct 8-bit levels, so an image with fewer levels is noisier)."""
    base = image
    if gray:
        luma = torch.tensor([0.299, 0.587, 0.114], dtype=image.dtype).view(1, 3, 1, 1)
        base = (image * luma).sum(1, keepdim=True)
    levels = torch.clamp(torch.round(base * 255), 0, 255) / 255
    vals = 2 ** math.ceil(math.log2(max(len(torch.unique(levels)), 2)))
    counts = rng.poisson(levels.double().numpy() * vals)
    noise = torch.from_numpy(counts / vals).to(image.dtype) - levels
    return torch.clamp(image + noise * scale, 0, 1)


def jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    """``image`` through a JPEG encode and decode at ``quality`` (8-bit, 4:2:0 chroma)."""
    array = torch.clamp(torch.round(image[0] * 255), 0, 255).to(torch.uint8).permute(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(array.numpy()).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        out = np.asarray(decoded.convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))[None].to(image.dtype)


# --- the pipeline ----------------------------------------------------------------------------


def _resize_factor(rng: np.random.Generator, order: OrderSettings) -> float:
    direction = int(rng.choice(3, p=order.resize_prob))
    if direction == 0:
        return float(rng.uniform(1.0, order.resize_range[1]))
    if direction == 1:
        return float(rng.uniform(order.resize_range[0], 1.0))
    return 1.0


def _mode(rng: np.random.Generator) -> ResizeMode:
    return RESIZE_MODES[int(rng.integers(len(RESIZE_MODES)))]


def _noise(rng: np.random.Generator, image: torch.Tensor, order: OrderSettings) -> torch.Tensor:
    if rng.uniform() < order.gaussian_noise_prob:
        sigma = float(rng.uniform(*order.noise_range)) / 255
        return add_gaussian_noise(rng, image, sigma, gray=rng.uniform() < order.gray_noise_prob)
    scale = float(rng.uniform(*order.poisson_scale_range))
    return add_poisson_noise(rng, image, scale, gray=rng.uniform() < order.gray_noise_prob)


def _quality(rng: np.random.Generator, order: OrderSettings) -> int:
    return round(float(rng.uniform(*order.jpeg_range)))


def degrade(
    hr: torch.Tensor, rng: np.random.Generator, settings: DegradationSettings = REALESRGAN_X4PLUS
) -> torch.Tensor:
    """The LR image Real-ESRGAN's pipeline makes of ``hr``.

    Args:
        hr: (3, H, W) float32 in [0, 1]; H and W multiples of ``settings.scale``.
        rng: the source of every random draw.
        settings: the pipeline (Real-ESRGAN x4plus's by default).

    Returns:
        (3, H / scale, W / scale) float32 in [0, 1], rounded to 8-bit levels.
    """
    _, h, w = hr.shape
    scale = settings.scale
    if h % scale or w % scale:
        raise ValueError(f"HR size {h}x{w} is not a multiple of the scale {scale}")
    # The kernels are drawn first, as upstream's dataset draws them before the model runs.
    first = settings.first
    kernel1 = random_blur_kernel(rng, first.blur)
    kernel2 = random_blur_kernel(rng, settings.second.blur) if settings.second else None
    sinc = final_sinc_kernel(rng, settings.final_sinc_prob)

    out = filter2d(hr[None].double(), kernel1)
    factor = _resize_factor(rng, first)
    out = resize(out, (int(h * factor), int(w * factor)), _mode(rng))
    out = _noise(rng, out, first)
    out = jpeg(torch.clamp(out, 0, 1), _quality(rng, first)).double()

    second = settings.second
    if second is not None and kernel2 is not None:
        if rng.uniform() < second.blur_prob:
            out = filter2d(out, kernel2)
        factor = _resize_factor(rng, second)
        out = resize(out, (int(h / scale * factor), int(w / scale * factor)), _mode(rng))
        out = _noise(rng, out, second)
        final_quality = _quality(rng, second)
    else:
        final_quality = _quality(rng, first)

    lr_size = (h // scale, w // scale)
    if rng.uniform() < 0.5:
        # Resize back and sinc-filter, then JPEG.
        out = resize(out, lr_size, _mode(rng))
        if sinc is not None:
            out = filter2d(out, sinc)
        out = jpeg(torch.clamp(out, 0, 1), final_quality).double()
    else:
        # JPEG, then resize back and sinc-filter.
        out = jpeg(torch.clamp(out, 0, 1), final_quality).double()
        out = resize(out, lr_size, _mode(rng))
        if sinc is not None:
            out = filter2d(out, sinc)
    return (torch.clamp(torch.round(out * 255), 0, 255) / 255)[0].float()
