"""StarGAN v2 (Choi et al., CVPR 2020): diverse image synthesis for multiple domains,
parameter-compatible with clovaai/stargan-v2 (``core/model.py``) without the high-pass
(FAN heatmap) path, i.e. clovaai's ``w_hpf=0`` as used for AFHQ.

Four networks, each keeping clovaai's state_dict names:

* :class:`Generator` ``G(x, s)``: ``from_rgb`` (3x3 conv), ``encode.N`` (:class:`ResBlk`
  with instance norm; ``repeat_num`` that halve the size, then 2 bottleneck blocks),
  ``decode.N`` (:class:`AdainResBlk`, the mirror image: 2 bottleneck blocks, then
  ``repeat_num`` that double the size; their ``norm1.fc`` / ``norm2.fc`` map the style code
  to per-channel scale and shift), ``to_rgb`` (instance norm ``to_rgb.0``, LeakyReLU, 1x1
  conv ``to_rgb.2``). A ResBlk holds ``conv1``, ``conv2`` (3x3, with biases), ``norm1``,
  ``norm2`` (affine InstanceNorm, no running statistics) and, when its width changes,
  ``conv1x1`` (no bias) on the shortcut.
* :class:`MappingNetwork` ``F(z, y)``: ``shared`` (4 Linear + ReLU: ``shared.0, .2, .4,
  .6``) and one ``unshared.K`` head per domain (4 Linear: ``.0, .2, .4, .6``).
* :class:`StyleEncoder` ``E(x, y)``: ``shared`` (3x3 conv ``shared.0``, ``repeat_num``
  downsampling ResBlks without norm at ``shared.1`` .. ``shared.{repeat_num}``, LeakyReLU,
  4x4 valid conv at ``shared.{repeat_num + 2}``, LeakyReLU) and a Linear ``unshared.K``
  per domain.
* :class:`Discriminator` ``D(x, y)``: ``main``, the style encoder's trunk plus a 1x1 conv
  ``main.{repeat_num + 4}`` with one real/fake logit per domain.

**Domains are one-hot.** Where clovaai indexes the stacked per-domain outputs with a
``LongTensor`` of labels (``out[idx, y]``), these networks take ``y`` as an (N, K) one-hot
float tensor and contract it with the stacked heads (``einsum``): the same numbers, and a
graph without data-dependent indexing, so :class:`StarGANv2` exports to ONNX as it is.

**Exported container.** :class:`StarGANv2` holds ``generator``, ``mapping_network`` and
``style_encoder``: its state_dict is clovaai's ``*_nets_ema.ckpt`` (a dict of the three
state_dicts) flattened with those prefixes. Its forward is the serving contract: a
latent-guided or reference-guided translation chosen per image by a 0/1 tensor.

Sizes: clovaai derives every width from ``img_size`` (first width ``2**14 // img_size``,
capped at ``max_conv_dim``; ``log2(img_size) - 4`` down/up stages in G, ``log2(img_size) -
2`` in E and D). The tiny variants set the first width and the cap by hand so a 64 px run
trains on a CPU; the ``afhq`` variants are clovaai's released 256 px AFHQ shapes.
Initialisation is clovaai's ``he_init`` (Kaiming normal, fan-in, ReLU gain; zero biases) on
every conv and linear layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from trainer.archs import ARCHS
from trainer.archs.sizes import check_input_size

RGB = 3
SLOPE = 0.2  # LeakyReLU slope everywhere in clovaai's networks
BOTTLENECK_BLOCKS = 2  # fixed in clovaai's Generator
MAPPING_SHARED_LAYERS = 4  # Linear layers of F's shared trunk (latent → hidden, then 3 more)
MAPPING_HEAD_LAYERS = 4  # Linear layers of each domain head (3 hidden, then → style)
# clovaai's defaults (main.py).
LATENT_DIM = 16
STYLE_DIM = 64
HIDDEN_DIM = 512
MAX_CONV_DIM = 512
AFHQ_IMG_SIZE = 256
AFHQ_DOMAINS = 3  # cat, dog, wild


def he_init(module: nn.Module) -> None:
    """clovaai's ``he_init``: Kaiming-normal weights (fan-in, ReLU), zero biases, for every
    Conv2d and Linear in ``module`` (norms keep their ones and zeros)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def select_domain(per_domain: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
    """The rows of ``per_domain`` (N, K, ...) picked by the one-hot ``domain`` (N, K).

    A contraction, not an index: exact for a one-hot ``domain`` (every other head is
    multiplied by zero) and traceable to ONNX without gathers on tensor values.
    """
    if per_domain.dim() == 2:
        return (per_domain * domain.to(per_domain.dtype)).sum(1)
    return torch.einsum("nk,nk...->n...", domain.to(per_domain.dtype), per_domain)


def _check_domain(domain: torch.Tensor, n: int, k: int, what: str) -> None:
    if torch.onnx.is_in_onnx_export():
        return
    if domain.shape != (n, k):
        raise ValueError(f"{what}: domain must be one-hot ({n}, {k}), got {tuple(domain.shape)}")


class ResBlk(nn.Module):
    """clovaai's pre-activation residual block: ``(shortcut(x) + residual(x)) / sqrt(2)``.

    Residual: [norm1], LeakyReLU, 3x3 conv1 (width kept), [2x2 average pool], [norm2],
    LeakyReLU, 3x3 conv2 (to ``dim_out``). Shortcut: [1x1 conv1x1 when the width changes],
    [2x2 average pool]. Dividing by sqrt(2) keeps unit variance through the sum.

    Args:
        dim_in: input channels.
        dim_out: output channels.
        normalize: affine instance norms before each activation (G's encoder only).
        downsample: halve H and W.
    """

    def __init__(
        self, dim_in: int, dim_out: int, normalize: bool = False, downsample: bool = False
    ) -> None:
        super().__init__()
        self.normalize = normalize
        self.downsample = downsample
        self.learned_sc = dim_in != dim_out
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        if normalize:
            self.norm1 = nn.InstanceNorm2d(dim_in, affine=True)
            self.norm2 = nn.InstanceNorm2d(dim_in, affine=True)
        if self.learned_sc:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.learned_sc:
            x = self.conv1x1(x)
        return F.avg_pool2d(x, 2) if self.downsample else x

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = self.norm1(x)
        x = self.conv1(F.leaky_relu(x, SLOPE))
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        if self.normalize:
            x = self.norm2(x)
        return self.conv2(F.leaky_relu(x, SLOPE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, dim_in, H, W) → (N, dim_out, H', W'), H' = H/2 when downsampling."""
        return (self._shortcut(x) + self._residual(x)) / math.sqrt(2)


class AdaIN(nn.Module):
    """Adaptive instance norm: ``(1 + gamma) * IN(x) + beta``, (gamma, beta) = ``fc(s)``.

    Args:
        style_dim: length of the style code.
        num_features: channels of ``x``.
    """

    def __init__(self, style_dim: int, num_features: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(num_features, affine=False)
        self.fc = nn.Linear(style_dim, num_features * 2)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) and (N, style_dim) → (N, C, H, W)."""
        h = self.fc(s).unsqueeze(-1).unsqueeze(-1)
        gamma, beta = torch.chunk(h, chunks=2, dim=1)
        return (1 + gamma) * self.norm(x) + beta


class AdainResBlk(nn.Module):
    """clovaai's decoder block with ``w_hpf=0``: ``(residual(x, s) + shortcut(x)) / sqrt(2)``.

    Residual: AdaIN norm1, LeakyReLU, [2x nearest upsample], 3x3 conv1 (to ``dim_out``),
    AdaIN norm2, LeakyReLU, 3x3 conv2. Shortcut: [upsample], [1x1 conv1x1 when the width
    changes]. (clovaai drops the shortcut when ``w_hpf > 0``, where the FAN-masked encoder
    features are added instead; that path is not implemented here.)

    Args:
        dim_in: input channels.
        dim_out: output channels.
        style_dim: length of the style code.
        upsample: double H and W.
    """

    def __init__(
        self, dim_in: int, dim_out: int, style_dim: int = STYLE_DIM, upsample: bool = False
    ) -> None:
        super().__init__()
        self.upsample = upsample
        self.learned_sc = dim_in != dim_out
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = AdaIN(style_dim, dim_in)
        self.norm2 = AdaIN(style_dim, dim_out)
        if self.learned_sc:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="nearest") if self.upsample else x

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """(N, dim_in, H, W), (N, style_dim) → (N, dim_out, H', W'), H' = 2H if upsampling."""
        residual = F.leaky_relu(self.norm1(x, s), SLOPE)
        residual = self.conv1(self._up(residual))
        residual = self.conv2(F.leaky_relu(self.norm2(residual, s), SLOPE))
        shortcut = self._up(x)
        if self.learned_sc:
            shortcut = self.conv1x1(shortcut)
        return (residual + shortcut) / math.sqrt(2)


def _widths(dim_in: int, stages: int, max_conv_dim: int) -> list[tuple[int, int]]:
    """(in, out) channels of ``stages`` blocks, each doubling the width up to the cap."""
    pairs = []
    for _ in range(stages):
        dim_out = min(dim_in * 2, max_conv_dim)
        pairs.append((dim_in, dim_out))
        dim_in = dim_out
    return pairs


def _default_dim_in(img_size: int) -> int:
    return 2**14 // img_size


def _stages(img_size: int, offset: int) -> int:
    if img_size < 2**offset or img_size & (img_size - 1):
        raise ValueError(f"img_size must be a power of 2 of at least {2**offset}, got {img_size}")
    return int(math.log2(img_size)) - offset


class Generator(nn.Module):
    """clovaai's ``Generator`` with ``w_hpf=0``: image + style code → translated image.

    Args:
        img_size: the training size; sets the defaults of ``dim_in`` and ``repeat_num``.
        style_dim: length of the style code.
        max_conv_dim: width cap.
        dim_in: width of ``from_rgb`` (clovaai: ``2**14 // img_size``).
        repeat_num: down (and up) stages (clovaai with ``w_hpf=0``: ``log2(img_size) - 4``).
    """

    def __init__(
        self,
        img_size: int = AFHQ_IMG_SIZE,
        style_dim: int = STYLE_DIM,
        max_conv_dim: int = MAX_CONV_DIM,
        dim_in: int | None = None,
        repeat_num: int | None = None,
    ) -> None:
        super().__init__()
        dim_in = dim_in or _default_dim_in(img_size)
        repeat_num = _stages(img_size, 4) if repeat_num is None else repeat_num
        self.img_size = img_size
        self.style_dim = style_dim
        self.repeat_num = repeat_num
        self.from_rgb = nn.Conv2d(RGB, dim_in, 3, 1, 1)
        self.encode = nn.ModuleList()
        self.decode = nn.ModuleList()
        self.to_rgb = nn.Sequential(
            nn.InstanceNorm2d(dim_in, affine=True),
            nn.LeakyReLU(SLOPE),
            nn.Conv2d(dim_in, RGB, 1, 1, 0),
        )
        pairs = _widths(dim_in, repeat_num, max_conv_dim)
        for a, b in pairs:
            self.encode.append(ResBlk(a, b, normalize=True, downsample=True))
            # Inserted in front: decode mirrors encode, like a stack.
            self.decode.insert(0, AdainResBlk(b, a, style_dim, upsample=True))
        bottom = pairs[-1][1] if pairs else dim_in
        for _ in range(BOTTLENECK_BLOCKS):
            self.encode.append(ResBlk(bottom, bottom, normalize=True))
            self.decode.insert(0, AdainResBlk(bottom, bottom, style_dim))
        he_init(self)

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of ``2**repeat_num`` (exact halvings and doublings)."""
        return int(2**self.repeat_num)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] and (N, style_dim) style codes → (N, 3, H, W).

        The output has no tanh (clovaai's has none either); it is trained towards [-1, 1].

        Raises:
            ValueError: H, W are not multiples of :attr:`size_multiple`.
        """
        check_input_size(x, self.size_multiple, self.size_multiple, "StarGAN v2 Generator")
        h = self.from_rgb(x)
        for block in self.encode:
            h = block(h)
        for up in self.decode:
            h = up(h, s)
        return self.to_rgb(h)


class MappingNetwork(nn.Module):
    """clovaai's ``MappingNetwork``: latent code + domain → style code.

    Args:
        latent_dim: length of z.
        style_dim: length of the style code.
        num_domains: heads (K).
        hidden_dim: width of every hidden layer (clovaai: 512).
    """

    def __init__(
        self,
        latent_dim: int = LATENT_DIM,
        style_dim: int = STYLE_DIM,
        num_domains: int = AFHQ_DOMAINS,
        hidden_dim: int = HIDDEN_DIM,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.style_dim = style_dim
        self.num_domains = num_domains
        layers: list[nn.Module] = [nn.Linear(latent_dim, hidden_dim), nn.ReLU()]
        for _ in range(MAPPING_SHARED_LAYERS - 1):
            layers += [nn.Linear(hidden_dim, hidden_dim), nn.ReLU()]
        self.shared = nn.Sequential(*layers)
        self.unshared = nn.ModuleList()
        for _ in range(num_domains):
            head: list[nn.Module] = []
            for _ in range(MAPPING_HEAD_LAYERS - 1):
                head += [nn.Linear(hidden_dim, hidden_dim), nn.ReLU()]
            self.unshared.append(nn.Sequential(*head, nn.Linear(hidden_dim, style_dim)))
        he_init(self)

    def forward(self, z: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        """(N, latent_dim) and one-hot (N, K) → (N, style_dim): the head of each z's domain.

        Raises:
            ValueError: ``domain`` is not (N, K).
        """
        _check_domain(domain, z.shape[0], self.num_domains, "MappingNetwork")
        h = self.shared(z)
        heads = torch.stack([head(h) for head in self.unshared], dim=1)  # (N, K, style_dim)
        return select_domain(heads, domain)


def _trunk(img_size: int, max_conv_dim: int, dim_in: int | None) -> tuple[list[nn.Module], int]:
    """The conv trunk E and D share: 3x3 conv, downsampling ResBlks to 4x4, LeakyReLU, 4x4
    valid conv (to 1x1), LeakyReLU. Returns the layers and the output width."""
    dim_in = dim_in or _default_dim_in(img_size)
    blocks: list[nn.Module] = [nn.Conv2d(RGB, dim_in, 3, 1, 1)]
    pairs = _widths(dim_in, _stages(img_size, 2), max_conv_dim)
    blocks += [ResBlk(a, b, downsample=True) for a, b in pairs]
    dim_out = pairs[-1][1]
    blocks += [nn.LeakyReLU(SLOPE), nn.Conv2d(dim_out, dim_out, 4, 1, 0), nn.LeakyReLU(SLOPE)]
    return blocks, dim_out


def _check_square(x: torch.Tensor, size: int, what: str) -> None:
    if not torch.onnx.is_in_onnx_export() and x.shape[-2:] != (size, size):
        raise ValueError(f"{what}: built for {size}x{size}, got {x.shape[-2]}x{x.shape[-1]}")


class StyleEncoder(nn.Module):
    """clovaai's ``StyleEncoder``: image + domain → that domain's style code of the image.

    Args:
        img_size: the square input size (the trunk ends in a 4x4 valid conv on a 4x4 map).
        style_dim: length of the style code.
        num_domains: heads (K).
        max_conv_dim: width cap.
        dim_in: width of the first conv (clovaai: ``2**14 // img_size``).
    """

    def __init__(
        self,
        img_size: int = AFHQ_IMG_SIZE,
        style_dim: int = STYLE_DIM,
        num_domains: int = AFHQ_DOMAINS,
        max_conv_dim: int = MAX_CONV_DIM,
        dim_in: int | None = None,
    ) -> None:
        super().__init__()
        self.img_size = img_size
        self.style_dim = style_dim
        self.num_domains = num_domains
        blocks, dim_out = _trunk(img_size, max_conv_dim, dim_in)
        self.shared = nn.Sequential(*blocks)
        self.unshared = nn.ModuleList(nn.Linear(dim_out, style_dim) for _ in range(num_domains))
        he_init(self)

    def forward(self, x: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        """(N, 3, img_size, img_size) and one-hot (N, K) → (N, style_dim).

        Raises:
            ValueError: the image is not ``img_size`` square, or ``domain`` is not (N, K).
        """
        _check_square(x, self.img_size, "StyleEncoder")
        _check_domain(domain, x.shape[0], self.num_domains, "StyleEncoder")
        h = self.shared(x).flatten(1)
        heads = torch.stack([head(h) for head in self.unshared], dim=1)  # (N, K, style_dim)
        return select_domain(heads, domain)


class Discriminator(nn.Module):
    """clovaai's multi-task ``Discriminator``: one real/fake logit per domain, of which each
    image's own domain is read.

    Args:
        img_size: the square input size.
        num_domains: output logits (K).
        max_conv_dim: width cap.
        dim_in: width of the first conv (clovaai: ``2**14 // img_size``).
    """

    def __init__(
        self,
        img_size: int = AFHQ_IMG_SIZE,
        num_domains: int = AFHQ_DOMAINS,
        max_conv_dim: int = MAX_CONV_DIM,
        dim_in: int | None = None,
    ) -> None:
        super().__init__()
        self.img_size = img_size
        self.num_domains = num_domains
        blocks, dim_out = _trunk(img_size, max_conv_dim, dim_in)
        self.main = nn.Sequential(*blocks, nn.Conv2d(dim_out, num_domains, 1, 1, 0))
        he_init(self)

    def forward(self, x: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        """(N, 3, img_size, img_size) and one-hot (N, K) → (N,) raw logits (no sigmoid) of
        "real image of that domain".

        Raises:
            ValueError: the image is not ``img_size`` square, or ``domain`` is not (N, K).
        """
        _check_square(x, self.img_size, "Discriminator")
        _check_domain(domain, x.shape[0], self.num_domains, "Discriminator")
        return select_domain(self.main(x).flatten(1), domain)


class StarGANv2(nn.Module):
    """G, F and E in one module: what a run exports (the EMA of all three, as clovaai's
    ``nets_ema``) and what is served.

    Args:
        generator: G.
        mapping_network: F.
        style_encoder: E.

    Raises:
        ValueError: the parts disagree on the style length, the domains or the size.
    """

    def __init__(
        self, generator: Generator, mapping_network: MappingNetwork, style_encoder: StyleEncoder
    ) -> None:
        super().__init__()
        styles = {generator.style_dim, mapping_network.style_dim, style_encoder.style_dim}
        if len(styles) != 1 or mapping_network.num_domains != style_encoder.num_domains:
            raise ValueError(f"parts disagree: style lengths {styles}, domains differ")
        if generator.img_size != style_encoder.img_size:
            raise ValueError("generator and style encoder are built for different sizes")
        self.generator = generator
        self.mapping_network = mapping_network
        self.style_encoder = style_encoder

    @property
    def num_domains(self) -> int:
        return self.mapping_network.num_domains

    @property
    def latent_dim(self) -> int:
        return self.mapping_network.latent_dim

    @property
    def img_size(self) -> int:
        return self.style_encoder.img_size

    def forward(
        self,
        image: torch.Tensor,
        reference: torch.Tensor,
        z: torch.Tensor,
        domain: torch.Tensor,
        use_reference: torch.Tensor,
    ) -> torch.Tensor:
        """Translate ``image`` to ``domain`` with a style from a reference or from a latent.

        ``style = use_reference * E(reference, domain) + (1 - use_reference) * F(z, domain)``,
        then ``G(image, style)``. Both style paths always run (no branch on values), so
        images of one batch may mix the two.

        Args:
            image: (N, 3, S, S) in [-1, 1], S = :attr:`img_size`.
            reference: (N, 3, S, S) in [-1, 1], a face of the target domain (ignored where
                ``use_reference`` is 0; any tensor of the shape will do).
            z: (N, latent_dim) latent codes, standard normal (ignored where
                ``use_reference`` is 1).
            domain: (N, K) one-hot float target domains.
            use_reference: (N, 1) float, 1 for reference-guided, 0 for latent-guided.

        Returns:
            (N, 3, S, S), about [-1, 1].
        """
        from_reference = self.style_encoder(reference, domain)
        from_latent = self.mapping_network(z, domain)
        weight = use_reference.to(from_latent.dtype)
        style = weight * from_reference + (1 - weight) * from_latent
        return self.generator(image, style)


# --- registered variants -------------------------------------------------------------------
# Typed factories registered by call (the decorator would erase the return type). Each takes
# num_domains so a recipe can size them from its domains.

TINY_IMG_SIZE = 64
_TINY = {"dim_in": 16, "max_conv_dim": 64}
TINY_HIDDEN_DIM = 128


def stargan_v2_afhq(num_domains: int = AFHQ_DOMAINS) -> StarGANv2:
    """clovaai's released AFHQ G, F, E (256 px, ``w_hpf=0``, style 64, latent 16)."""
    return StarGANv2(
        Generator(AFHQ_IMG_SIZE),
        MappingNetwork(LATENT_DIM, STYLE_DIM, num_domains, HIDDEN_DIM),
        StyleEncoder(AFHQ_IMG_SIZE, STYLE_DIM, num_domains),
    )


def stargan_v2_afhq_discriminator(num_domains: int = AFHQ_DOMAINS) -> Discriminator:
    """clovaai's AFHQ discriminator (256 px)."""
    return Discriminator(AFHQ_IMG_SIZE, num_domains)


def stargan_v2_tiny(num_domains: int = AFHQ_DOMAINS) -> StarGANv2:
    """A CPU-sized G, F, E for 64 px: widths 16 → 64 (clovaai at 64 px: 256 → 512), two
    down/up stages as clovaai's formula gives at 64 px, F 128 wide (clovaai: 512)."""
    return StarGANv2(
        Generator(TINY_IMG_SIZE, STYLE_DIM, **_TINY),
        MappingNetwork(LATENT_DIM, STYLE_DIM, num_domains, TINY_HIDDEN_DIM),
        StyleEncoder(TINY_IMG_SIZE, STYLE_DIM, num_domains, **_TINY),
    )


def stargan_v2_tiny_discriminator(num_domains: int = AFHQ_DOMAINS) -> Discriminator:
    """A CPU-sized discriminator for 64 px (the tiny style encoder's trunk)."""
    return Discriminator(TINY_IMG_SIZE, num_domains, **_TINY)


ARCHS.register("stargan_v2_afhq")(stargan_v2_afhq)
ARCHS.register("stargan_v2_afhq_discriminator")(stargan_v2_afhq_discriminator)
ARCHS.register("stargan_v2_tiny")(stargan_v2_tiny)
ARCHS.register("stargan_v2_tiny_discriminator")(stargan_v2_tiny_discriminator)
