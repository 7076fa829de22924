"""GeneGAN (Zhou et al., BMVC 2017): a face split into a background part and an attribute part,
laid out as Prinsphield/GeneGAN's ``model.py`` builds its TensorFlow graph.

Upstream has three builders, each a TensorFlow variable scope; here each is a module and each
of its sub-scopes a child of the same name:

* ``splitter`` (``G_splitter``, :class:`GeneGANSplitter`): ``conv1`` 4x4 stride-2 conv, no
  batch norm; ``conv2`` and ``conv3`` 4x4 stride-2 convs each with batch norm; LeakyReLU(0.2)
  after each. Widths ``w, 2w, 4w`` (upstream: w = 128), so a 64 px face becomes a
  (4w, 8, 8) feature map. Its channels are split: the first ``(1 - second_ratio) * 4w`` are
  the background ``A``, the last ``second_ratio * 4w`` (upstream 0.25: 128 of 512) the
  attribute part ``x`` (``u`` for a face with the attribute, ``ε`` for one without).
* ``joiner`` (``G_joiner``, :class:`GeneGANJoiner`): ``[A, x]`` concatenated back to 4w
  channels; ``deconv1`` (4w → 4w) and ``deconv2`` (4w → 2w), 4x4 stride-2 transposed convs
  with batch norm and ReLU; ``deconv3`` (2w → 3), no batch norm; a per-channel bias ``b``;
  tanh.
* the discriminators ``D_Ax`` and ``D_Be`` (:class:`GeneGANDiscriminator`): ``conv1`` (no
  batch norm), ``conv2``-``conv4`` (with), widths ``w, 2w, 4w, 4w``, LeakyReLU(0.2), then
  ``fct``, a fully connected layer to one score (no sigmoid: a WGAN critic).

No conv has a bias (upstream's ``make_conv`` has none); ``fct`` and the joiner's ``b`` have.
The state_dict keys are upstream's variable names with PyTorch's parameter names:
``<scope>/W`` is ``<scope>.weight``, ``<scope>/batch_normalization/{gamma, beta,
moving_mean, moving_variance}`` is ``<scope>.batch_normalization.{weight, bias, running_mean,
running_var}`` (plus PyTorch's ``num_batches_tracked``), ``G_joiner/b`` is ``joiner.b``,
``fct/{W, b}`` is ``fct.{weight, bias}``. Upstream's tensors are NHWC (conv kernels HWIO,
transposed-conv kernels H, W, out, in; ``fct``'s rows in H, W, C order); ours are NCHW, so
its checkpoints would need those axes permuted (no importer ships: no weights are released
for 64 px at these widths).

Batch norm is TensorFlow's default (``tf.layers.batch_normalization``: momentum 0.99, ε =
1e-3), i.e. PyTorch's ``BatchNorm2d(eps=1e-3, momentum=0.01)``; in eval mode it normalises
with the running statistics, as upstream's ``is_train=False`` does. Weights are drawn from
N(0, 0.02) as upstream's initialiser draws them; biases start at zero.

Pixel conventions: our images are in [-1, 1]; upstream's are in [0, 255] and the splitter
and discriminators read ``image / 255``, the joiner writes ``(tanh + 1) * 255 / 2``. The
splitter and discriminators here read ``(image + 1) / 2`` (the same [0, 1] input) and the
joiner writes ``tanh`` (the same output, in [-1, 1]), so every layer computes what upstream's
does.

:class:`GeneGAN` (the served module) holds ``splitter`` and ``joiner`` and swaps the
attribute part: ``GeneGAN(image, donor) = joiner(A of image, attribute part of donor)``.
:class:`GeneGANCrossover` holds the same two parts under the same names (so its state_dict
is :class:`GeneGAN`'s) and computes what one training step needs in one forward pass.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from trainer.archs import ARCHS
from trainer.archs.sizes import check_input_size

RGB = 3
SLOPE = 0.2  # LeakyReLU slope of the splitter and the discriminators (upstream's leakyRelu)
INIT_STD = 0.02  # upstream's random_normal_initializer(stddev=0.02)
# TensorFlow's batch_normalization defaults (momentum 0.99 → PyTorch's 0.01).
BN_EPS, BN_MOMENTUM = 1e-3, 0.01
SECOND_RATIO = 0.25  # upstream's config.second_ratio: the attribute part's share of channels
SPLITTER_LEVELS = 3  # stride-2 convs of the splitter (and transposed convs of the joiner)
DISCRIMINATOR_LEVELS = 4
# Upstream's sizes (dataset.py: nhwc [64, 64, 64, 3]; model.py: 128, 256, 512).
CELEBA_WIDTH, CELEBA_IMAGE_SIZE = 128, 64


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def _to_unit(image: torch.Tensor) -> torch.Tensor:
    """[-1, 1] → [0, 1]: what upstream's ``image / 255`` gives on its [0, 255] images."""
    return (image + 1) / 2


class Conv2dBN(nn.Conv2d):
    """Upstream's ``make_conv_bn``: a 4x4 stride-2 'SAME' conv without bias, then batch norm.

    The conv's kernel is this module's ``weight``; the norm is its ``batch_normalization``
    child (upstream's sub-scope of that name).

    Args:
        in_channels: input channels.
        out_channels: output channels.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 4, stride=2, padding=1, bias=False)
        self.batch_normalization = _batch_norm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in, H, W) → (N, out, H/2, W/2), normalised."""
        return self.batch_normalization(super().forward(x))


class ConvTranspose2dBN(nn.ConvTranspose2d):
    """Upstream's ``make_deconv_bn``: a 4x4 stride-2 'SAME' transposed conv without bias, then
    batch norm (its ``batch_normalization`` child).

    Args:
        in_channels: input channels.
        out_channels: output channels.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 4, stride=2, padding=1, bias=False)
        self.batch_normalization = _batch_norm(out_channels)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        """(N, in, H, W) → (N, out, 2H, 2W), normalised."""
        return self.batch_normalization(super().forward(x, output_size))


def _conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    """Upstream's ``make_conv``: a 4x4 stride-2 'SAME' conv without bias."""
    return nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False)


def _init_weights(module: nn.Module) -> None:
    """N(0, 0.02) for every conv, transposed conv and linear weight; batch norm at (1, 0)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, INIT_STD)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def attribute_channels(width: int, second_ratio: float = SECOND_RATIO) -> int:
    """Channels of the attribute part of a splitter of ``width``: upstream's
    ``int(4w * second_ratio)``.

    Raises:
        ValueError: neither part would have a channel.
    """
    channels = int(4 * width * second_ratio)
    if not 0 < channels < 4 * width:
        raise ValueError(f"second_ratio {second_ratio} leaves a part of {4 * width} empty")
    return channels


class GeneGANSplitter(nn.Module):
    """``G_splitter``: a face → (background ``A``, attribute part ``x``).

    Args:
        width: channels of ``conv1`` (``conv2``: 2x, ``conv3``: 4x).
        second_ratio: share of ``conv3``'s channels that are the attribute part (the last).
    """

    def __init__(self, width: int = CELEBA_WIDTH, second_ratio: float = SECOND_RATIO) -> None:
        super().__init__()
        self.attribute_channels = attribute_channels(width, second_ratio)
        self.conv1 = _conv(RGB, width)
        self.conv2 = Conv2dBN(width, 2 * width)
        self.conv3 = Conv2dBN(2 * width, 4 * width)
        _init_weights(self)

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of 8: three exact halvings."""
        return 2**SPLITTER_LEVELS

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) in [-1, 1] → ``A`` (N, 4w - k, H/8, W/8) and ``x`` (N, k, H/8, W/8),
        k = :attr:`attribute_channels` (the last channels of the feature map).

        Raises:
            ValueError: H or W is not a multiple of 8.
        """
        check_input_size(image, self.size_multiple, self.size_multiple, "GeneGANSplitter")
        h = F.leaky_relu(self.conv1(_to_unit(image)), SLOPE)
        h = F.leaky_relu(self.conv2(h), SLOPE)
        h = F.leaky_relu(self.conv3(h), SLOPE)
        k = self.attribute_channels
        return h[:, :-k], h[:, -k:]


class GeneGANJoiner(nn.Module):
    """``G_joiner``: (background ``A``, attribute part ``x``) → a face.

    Args:
        width: the splitter's width (the input has 4w channels in all, ``deconv2`` 2w).
    """

    def __init__(self, width: int = CELEBA_WIDTH) -> None:
        super().__init__()
        self.deconv1 = ConvTranspose2dBN(4 * width, 4 * width)
        self.deconv2 = ConvTranspose2dBN(4 * width, 2 * width)
        self.deconv3 = nn.ConvTranspose2d(2 * width, RGB, 4, stride=2, padding=1, bias=False)
        # Upstream's G_joiner/b ([1, 1, 1, 3] in NHWC): one bias per output channel.
        self.b = nn.Parameter(torch.zeros(1, RGB, 1, 1))
        _init_weights(self)

    def forward(self, background: torch.Tensor, attribute: torch.Tensor) -> torch.Tensor:
        """``A`` (N, 4w - k, h, w) and ``x`` (N, k, h, w) → (N, 3, 8h, 8w) in [-1, 1]."""
        h = torch.cat([background, attribute], dim=1)
        h = F.relu(self.deconv1(h))
        h = F.relu(self.deconv2(h))
        return torch.tanh(self.deconv3(h) + self.b)


class GeneGANDiscriminator(nn.Module):
    """``D_Ax`` / ``D_Be``: a face → one WGAN score (no sigmoid).

    Args:
        width: channels of ``conv1`` (then 2x, 4x, 4x).
        image_size: the square input size it is built for (``fct`` reads the whole last
            feature map, (4w, S/16, S/16)).

    Raises:
        ValueError: ``image_size`` is not a multiple of 16.
    """

    def __init__(self, width: int = CELEBA_WIDTH, image_size: int = CELEBA_IMAGE_SIZE) -> None:
        super().__init__()
        side = 2**DISCRIMINATOR_LEVELS
        if image_size < side or image_size % side:
            raise ValueError(f"image_size {image_size} must be a multiple of {side}")
        self.image_size = image_size
        self.conv1 = _conv(RGB, width)
        self.conv2 = Conv2dBN(width, 2 * width)
        self.conv3 = Conv2dBN(2 * width, 4 * width)
        self.conv4 = Conv2dBN(4 * width, 4 * width)
        self.fct = nn.Linear(4 * width * (image_size // side) ** 2, 1)
        _init_weights(self)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(N, 3, image_size, image_size) in [-1, 1] → (N, 1) scores.

        Raises:
            ValueError: the input is not ``image_size`` square.
        """
        if image.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"GeneGANDiscriminator: built for {self.image_size}x{self.image_size}, "
                f"got {image.shape[-2]}x{image.shape[-1]}"
            )
        h = F.leaky_relu(self.conv1(_to_unit(image)), SLOPE)
        for conv in (self.conv2, self.conv3, self.conv4):
            h = F.leaky_relu(conv(h), SLOPE)
        return self.fct(h.flatten(1))


class GeneGAN(nn.Module):
    """The served model: one face takes another's attribute part.

    ``forward(image, donor) = joiner(A of image, attribute part of donor)``: a donor with the
    attribute gives it to ``image``; a donor without it (whose attribute part training drives
    to zero) takes it away; ``forward(x, x)`` reconstructs ``x``.

    Args:
        splitter: the trained :class:`GeneGANSplitter`.
        joiner: the trained :class:`GeneGANJoiner`.
    """

    def __init__(self, splitter: GeneGANSplitter, joiner: GeneGANJoiner) -> None:
        super().__init__()
        self.splitter = splitter
        self.joiner = joiner

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of 8 (the splitter's rule)."""
        return self.splitter.size_multiple

    def forward(self, image: torch.Tensor, donor: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) faces and (N, 3, H, W) donors in [-1, 1] → (N, 3, H, W) in [-1, 1].

        Raises:
            ValueError: H or W is not a multiple of 8.
        """
        background, _ = self.splitter(image)
        _, attribute = self.splitter(donor)
        return self.joiner(background, attribute)


class Crossover(NamedTuple):
    """What one GeneGAN training step computes from faces ``Au`` (with the attribute) and
    ``B0`` (without), in the paper's names (upstream's in brackets)."""

    au_rec: torch.Tensor  # joiner(A, u): Au reconstructed [Ax2]
    b0_rec: torch.Tensor  # joiner(B, 0): B0 reconstructed with its attribute part zeroed [Be2]
    a0: torch.Tensor  # joiner(A, 0): Au with the attribute removed [Ae]
    bu: torch.Tensor  # joiner(B, u): B0 given Au's attribute [Bx]
    epsilon: torch.Tensor  # B0's attribute part, which the nulling loss drives to zero [e]


class GeneGANCrossover(nn.Module):
    """The training view of :class:`GeneGAN`: the same ``splitter`` and ``joiner`` (so the same
    state_dict), and a forward pass computing a whole :class:`Crossover`, so a run wrapped in
    DistributedDataParallel trains through ``forward``.

    Args:
        splitter: the :class:`GeneGANSplitter` being trained.
        joiner: the :class:`GeneGANJoiner` being trained.
    """

    def __init__(self, splitter: GeneGANSplitter, joiner: GeneGANJoiner) -> None:
        super().__init__()
        self.splitter = splitter
        self.joiner = joiner

    @classmethod
    def of(cls, generator: GeneGAN) -> GeneGANCrossover:
        """The crossover of ``generator``'s parts (shared, not copied)."""
        return cls(generator.splitter, generator.joiner)

    def generator(self) -> GeneGAN:
        """The served module over these parts (shared, not copied)."""
        return GeneGAN(self.splitter, self.joiner)

    def forward(self, au: torch.Tensor, b0: torch.Tensor) -> Crossover:
        """Faces with (``au``) and without (``b0``) the attribute, (N, 3, H, W) in [-1, 1] →
        the reconstructions, the two swaps and ``ε``, as upstream's ``build_model``: the
        splitter runs on each batch and the joiner on each pair separately (in training each
        call normalises with its own batch's statistics, as upstream's graph does)."""
        a, u = self.splitter(au)
        b, epsilon = self.splitter(b0)
        zero = torch.zeros_like(epsilon)
        return Crossover(
            au_rec=self.joiner(a, u),
            b0_rec=self.joiner(b, zero),
            a0=self.joiner(a, zero),
            bu=self.joiner(b, u),
            epsilon=epsilon,
        )


# --- registered variants -------------------------------------------------------------------
# Typed factories registered by call (the decorator would erase the return type).


def genegan_celeba(second_ratio: float = SECOND_RATIO) -> GeneGAN:
    """Upstream's generator for 64 px CelebA (width 128; at second_ratio 0.25 the attribute
    part is 128 of 512 channels; 8.93M parameters)."""
    return GeneGAN(GeneGANSplitter(CELEBA_WIDTH, second_ratio), GeneGANJoiner(CELEBA_WIDTH))


def genegan_celeba_discriminator(image_size: int = CELEBA_IMAGE_SIZE) -> GeneGANDiscriminator:
    """Upstream's discriminator for 64 px (width 128, 6.8M parameters)."""
    return GeneGANDiscriminator(CELEBA_WIDTH, image_size)


def genegan_tiny(second_ratio: float = SECOND_RATIO) -> GeneGAN:
    """A CPU-sized generator for 64 px (width 32; at second_ratio 0.25 the attribute part is
    32 of 128 channels; 0.56M parameters)."""
    return GeneGAN(GeneGANSplitter(32, second_ratio), GeneGANJoiner(32))


def genegan_tiny_discriminator(image_size: int = CELEBA_IMAGE_SIZE) -> GeneGANDiscriminator:
    """A CPU-sized discriminator for 64 px (width 32, 0.43M parameters)."""
    return GeneGANDiscriminator(32, image_size)


ARCHS.register("genegan_celeba")(genegan_celeba)
ARCHS.register("genegan_celeba_discriminator")(genegan_celeba_discriminator)
ARCHS.register("genegan_tiny")(genegan_tiny)
ARCHS.register("genegan_tiny_discriminator")(genegan_tiny_discriminator)
