"""IcGAN (Perarnau et al., "Invertible Conditional GANs for image editing", NIPS 2016 workshop):
a conditional DCGAN and the two encoders that invert it, laid out as Guim3/IcGAN builds them.

Guim3/IcGAN is Lua Torch (``trainGAN.lua``, ``trainEncoder.lua``): its modules have no names,
so the PyTorch names below follow the order of its ``nn.Sequential`` containers.

* :class:`IcGANGenerator` ``G(z, y)`` (``netG``): ``z`` and ``y`` are joined as channels of a
  1x1 map (``nn.JoinTable``), so y enters at the first layer. ``main.0`` a 4x4 transposed conv
  (stride 1) from ``nz + ny`` channels to ``ngf * size / 8`` at 4x4, ``main.1`` its batch norm,
  ReLU; then ``log2(size) - 3`` stride-2 4x4 transposed convs halving the width (``main.3``,
  ``main.6``, ``main.9`` at 64 px, norms one index later); the last stride-2 transposed conv to
  3 channels (``main.12`` at 64 px) and Tanh. Every conv has a bias (Torch's default).
* :class:`IcGANDiscriminator` ``D(x, y)`` (``netD``): ``x_conv`` is the convolution applied to
  the image only (``Xconv``: 4x4 stride-2 conv, LeakyReLU 0.2); y is replicated over its
  ``size / 2`` square map (``Yrepl``) and concatenated after its channels; ``main`` holds the
  stride-2 4x4 convs on both (``ndf + ny`` → ``2 ndf`` at ``main.0``, then doubling, each with
  a batch norm and LeakyReLU 0.2) down to 4x4, and the 4x4 conv to one logit. Upstream ends in
  a Sigmoid for its ``BCECriterion``; here D returns the logit and the loss applies the sigmoid
  (the same function, stable).
* :class:`IcGANEncoder` (``getEncoder`` of ``trainEncoder.lua``, after the VAE/GAN encoder):
  ``n_conv`` 5x5 stride-2 convs (pad 2) with batch norm and ReLU, width doubling from ``nf``;
  flatten; a fully connected layer (``fc_size``, or as wide as its input when None), batch norm,
  ReLU; the output layer. E_z outputs ``nz`` values (upstream: ``nf`` 32, four convs, ``FCsz``
  nil), E_y ``ny`` logits (``FCsz`` 512).
* :class:`IcGAN` the container a run exports: ``generator``, ``encoder_z``, ``encoder_y``; its
  forward is the served attribute editor.

Labels: the networks take 0/1 attribute vectors and read them as ``2y - 1``, the -1/1 coding of
CelebA's ``list_attr_celeba.txt`` that Guim3/IcGAN feeds them unchanged.

Initialisation is upstream's ``weights_init`` for G and D (conv weights N(0, 0.02), biases 0,
norm scales N(1, 0.02)); the encoders keep PyTorch's default, as upstream keeps Torch's.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainer.archs import ARCHS

RGB = 3
SLOPE = 0.2  # LeakyReLU slope of D (DCGAN's)
BASE = 8  # G starts at 4x4 and D ends at 4x4: upstream's fltMult = size / 8
# Guim3/IcGAN's defaults (cfg/mainConfig.lua) and its CelebA selection at the size it trains.
NZ = 100
IMAGE_SIZE = 64
CELEBA_NY = 5  # Gantry's selection (StarGAN's five); upstream conditions on 18 attributes


def _levels(image_size: int) -> int:
    """Stride-2 levels between 4x4 and ``image_size / 2``: upstream's ``log2(size) - 3``."""
    levels = math.log2(image_size) - 3 if image_size > 0 else -1.0
    if levels < 0 or levels != int(levels):
        raise ValueError(f"image_size must be a power of two of at least 8, got {image_size}")
    return int(levels)


def _signed(y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """0/1 labels as IcGAN's -1/1 coding."""
    return y.to(dtype) * 2 - 1


def dcgan_init(module: nn.Module) -> None:
    """Upstream's ``weights_init`` (applied to every submodule)."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class IcGANGenerator(nn.Module):
    """The conditional DCGAN generator ``G(z, y)``.

    Args:
        nz: length of the latent vector z.
        ny: attributes conditioned on.
        ngf: width of the last hidden transposed conv; the first has ``ngf * size / 8``.
        image_size: output side (a power of two, at least 8).
    """

    def __init__(
        self, nz: int = NZ, ny: int = CELEBA_NY, ngf: int = 64, image_size: int = IMAGE_SIZE
    ) -> None:
        super().__init__()
        if nz < 1 or ny < 1:
            raise ValueError(f"need nz >= 1 and ny >= 1, got {nz}, {ny}")
        self.nz, self.ny, self.image_size = nz, ny, image_size
        width = ngf * image_size // BASE
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(nz + ny, width, kernel_size=4),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        for _ in range(_levels(image_size)):
            layers += [
                nn.ConvTranspose2d(width, width // 2, kernel_size=4, stride=2, padding=1),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(inplace=True),
            ]
            width //= 2
        layers += [
            nn.ConvTranspose2d(width, RGB, kernel_size=4, stride=2, padding=1),
            nn.Tanh(),
        ]
        self.main = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N, nz) latents and (N, ny) 0/1 attributes → (N, 3, size, size) in [-1, 1].

        Raises:
            ValueError: ``z`` is not (N, nz) or ``y`` not (N, ny).
        """
        n = z.shape[0]
        if not torch.onnx.is_in_onnx_export() and (
            z.shape != (n, self.nz) or y.shape != (n, self.ny)
        ):
            raise ValueError(
                f"IcGANGenerator: z must be (N, {self.nz}) and y (N, {self.ny}), "
                f"got {tuple(z.shape)} and {tuple(y.shape)}"
            )
        joined = torch.cat([z, _signed(y, z.dtype)], dim=1)
        return self.main(joined[:, :, None, None])


class IcGANDiscriminator(nn.Module):
    """The conditional discriminator ``D(x, y)``, y joined after the first conv.

    Args:
        ny: attributes conditioned on.
        ndf: width of the first conv; doubled by each of the others.
        image_size: the square input side (a power of two, at least 8).
    """

    def __init__(self, ny: int = CELEBA_NY, ndf: int = 64, image_size: int = IMAGE_SIZE) -> None:
        super().__init__()
        self.ny, self.image_size = ny, image_size
        self.x_conv = nn.Sequential(
            nn.Conv2d(RGB, ndf, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(SLOPE, inplace=True),
        )
        layers: list[nn.Module] = []
        channels, width = ndf + ny, ndf
        for _ in range(_levels(image_size)):
            layers += [
                nn.Conv2d(channels, width * 2, kernel_size=4, stride=2, padding=1),
                nn.BatchNorm2d(width * 2),
                nn.LeakyReLU(SLOPE, inplace=True),
            ]
            width *= 2
            channels = width
        layers.append(nn.Conv2d(channels, 1, kernel_size=4))
        self.main = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N, 3, size, size) images and (N, ny) 0/1 attributes → (N,) logits (no sigmoid).

        Raises:
            ValueError: the image is not ``image_size`` square or ``y`` not (N, ny).
        """
        n = x.shape[0]
        if x.shape[-2:] != (self.image_size, self.image_size) or y.shape != (n, self.ny):
            raise ValueError(
                f"IcGANDiscriminator: built for (N, 3, {self.image_size}, {self.image_size}) "
                f"and (N, {self.ny}), got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        h = self.x_conv(x)
        tiled = _signed(y, h.dtype)[:, :, None, None].expand(-1, -1, *h.shape[-2:])
        return self.main(torch.cat([h, tiled], dim=1)).flatten()


class IcGANEncoder(nn.Module):
    """An IcGAN encoder: image → a vector (E_z: the latent z; E_y: attribute logits).

    Args:
        out_dim: output length (``nz`` for E_z, ``ny`` for E_y).
        nf: width of the first conv; doubled by each of the others.
        n_conv: 5x5 stride-2 convs.
        fc_size: width of the hidden fully connected layer (None: its input's size).
        image_size: the square input side (a multiple of ``2**n_conv``).
    """

    def __init__(
        self,
        out_dim: int,
        nf: int = 32,
        n_conv: int = 4,
        fc_size: int | None = None,
        image_size: int = IMAGE_SIZE,
    ) -> None:
        super().__init__()
        if n_conv < 1 or image_size % 2**n_conv:
            raise ValueError(f"image_size {image_size} must be a multiple of 2**{n_conv}")
        self.image_size = image_size
        layers: list[nn.Module] = []
        channels, width = RGB, nf
        for _ in range(n_conv):
            layers += [
                nn.Conv2d(channels, width, kernel_size=5, stride=2, padding=2),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            channels, width = width, width * 2
        flat = channels * (image_size // 2**n_conv) ** 2
        hidden = fc_size if fc_size is not None else flat
        layers += [
            nn.Flatten(),
            nn.Linear(flat, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, out_dim),
        ]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, size, size) in [-1, 1] → (N, out_dim).

        Raises:
            ValueError: the image is not ``image_size`` square.
        """
        if not torch.onnx.is_in_onnx_export() and x.shape[-2:] != (
            self.image_size,
            self.image_size,
        ):
            raise ValueError(
                f"IcGANEncoder: built for {self.image_size}x{self.image_size}, "
                f"got {x.shape[-2]}x{x.shape[-1]}"
            )
        return self.main(x)


class IcGAN(nn.Module):
    """G, E_z and E_y together: what a run trains (but D) and exports; forward edits faces.

    Its state_dict is ``generator.*``, ``encoder_z.*`` and ``encoder_y.*`` (the three modules'
    own keys under those prefixes).

    Args:
        generator: ``G(z, y)``.
        encoder_z: image → z (``generator.nz`` outputs).
        encoder_y: image → attribute logits (``generator.ny`` outputs).
    """

    def __init__(
        self, generator: IcGANGenerator, encoder_z: IcGANEncoder, encoder_y: IcGANEncoder
    ) -> None:
        super().__init__()
        self.generator = generator
        self.encoder_z = encoder_z
        self.encoder_y = encoder_y

    @property
    def ny(self) -> int:
        """Attributes the editor reads."""
        return self.generator.ny

    def own_attributes(self, image: torch.Tensor) -> torch.Tensor:
        """E_y's 0/1 reading of (N, 3, H, W) faces: sigmoid(logit) > 0.5, i.e. logit > 0."""
        return (self.encoder_y(image) > 0).to(image.dtype)

    def forward(self, image: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        """Edit faces: ``G(E_z(image), y)`` with y the asked-for attributes, or the face's own.

        Args:
            image: (N, 3, size, size) aligned faces in [-1, 1].
            attributes: (N, ny) floats per attribute: 1 set it, 0 clear it, -1 (any negative
                value) keep the face's own, as E_y reads it.

        Returns:
            (N, 3, size, size) in [-1, 1].
        """
        z = self.encoder_z(image)
        own = self.own_attributes(image)
        y = torch.where(attributes < 0, own, attributes.to(image.dtype))
        return self.generator(z, y)


# --- registered variants -------------------------------------------------------------------
# Typed factories registered by call (the decorator would erase the return type). Each takes
# ny (and D image_size) so a recipe can size them from its attributes.


def icgan_celeba_generator(ny: int = CELEBA_NY) -> IcGANGenerator:
    """Guim3/IcGAN's CelebA G at 64 px (nz 100, ngf 64)."""
    return IcGANGenerator(nz=NZ, ny=ny, ngf=64, image_size=IMAGE_SIZE)


def icgan_celeba_discriminator(
    ny: int = CELEBA_NY, image_size: int = IMAGE_SIZE
) -> IcGANDiscriminator:
    """Guim3/IcGAN's CelebA D (ndf 64)."""
    return IcGANDiscriminator(ny=ny, ndf=64, image_size=image_size)


def icgan_celeba(ny: int = CELEBA_NY) -> IcGAN:
    """Guim3/IcGAN's CelebA G with its encoders: E_z (nf 32, four convs, a 4096-wide FC) and
    E_y (nf 32, four convs, a 512-wide FC)."""
    return IcGAN(
        icgan_celeba_generator(ny),
        IcGANEncoder(NZ, nf=32, n_conv=4, fc_size=None),
        IcGANEncoder(ny, nf=32, n_conv=4, fc_size=512),
    )


def icgan_tiny_generator(ny: int = CELEBA_NY) -> IcGANGenerator:
    """A CPU-sized G at 64 px (nz 100, ngf 16)."""
    return IcGANGenerator(nz=NZ, ny=ny, ngf=16, image_size=IMAGE_SIZE)


def icgan_tiny_discriminator(
    ny: int = CELEBA_NY, image_size: int = IMAGE_SIZE
) -> IcGANDiscriminator:
    """A CPU-sized D (ndf 16)."""
    return IcGANDiscriminator(ny=ny, ndf=16, image_size=image_size)


def icgan_tiny(ny: int = CELEBA_NY) -> IcGAN:
    """A CPU-sized editor: the tiny G, and encoders of upstream's layout at nf 16 with
    256-wide FC layers."""
    return IcGAN(
        icgan_tiny_generator(ny),
        IcGANEncoder(NZ, nf=16, n_conv=4, fc_size=256),
        IcGANEncoder(ny, nf=16, n_conv=4, fc_size=256),
    )


def icgan_small_generator(ny: int = CELEBA_NY) -> IcGANGenerator:
    """A CPU-trainable G at 64 px (nz 100, ngf 32)."""
    return IcGANGenerator(nz=NZ, ny=ny, ngf=32, image_size=IMAGE_SIZE)


def icgan_small_discriminator(
    ny: int = CELEBA_NY, image_size: int = IMAGE_SIZE
) -> IcGANDiscriminator:
    """A CPU-trainable D (ndf 32)."""
    return IcGANDiscriminator(ny=ny, ndf=32, image_size=image_size)


def icgan_small(ny: int = CELEBA_NY) -> IcGAN:
    """A CPU-trainable editor: the small G, and encoders of upstream's width (nf 32, four
    convs) with 512-wide FC layers (E_y's upstream size; E_z's is 4096 there)."""
    return IcGAN(
        icgan_small_generator(ny),
        IcGANEncoder(NZ, nf=32, n_conv=4, fc_size=512),
        IcGANEncoder(ny, nf=32, n_conv=4, fc_size=512),
    )


ARCHS.register("icgan_celeba")(icgan_celeba)
ARCHS.register("icgan_celeba_generator")(icgan_celeba_generator)
ARCHS.register("icgan_celeba_discriminator")(icgan_celeba_discriminator)
ARCHS.register("icgan_small")(icgan_small)
ARCHS.register("icgan_small_generator")(icgan_small_generator)
ARCHS.register("icgan_small_discriminator")(icgan_small_discriminator)
ARCHS.register("icgan_tiny")(icgan_tiny)
ARCHS.register("icgan_tiny_generator")(icgan_tiny_generator)
ARCHS.register("icgan_tiny_discriminator")(icgan_tiny_discriminator)
