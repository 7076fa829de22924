"""StarGAN (Choi et al., CVPR 2018): one generator for many domains, parameter-compatible
with yunjey/stargan (``model.py``).

yunjey's ``{step}-G.ckpt`` / ``{step}-D.ckpt`` (the released ``200000-G.ckpt`` of the
128x128 CelebA model included) are bare state_dicts addressed by these names:

* ``Generator(conv_dim, c_dim, repeat_num)``: one ``main`` Sequential. ``main.0`` the 7x7
  stem conv on ``3 + c_dim`` channels (the image and the target-domain vector tiled over
  H x W), ``main.1`` its norm, ReLU; two stride-2 4x4 convs at ``main.3`` and ``main.6``
  (norms ``main.4``, ``main.7``); ``repeat_num`` residual blocks at ``main.9`` ..
  ``main.{8 + repeat_num}``, each ``main`` = 3x3 conv, norm, ReLU, 3x3 conv, norm (convs at
  ``.main.0`` / ``.main.3``, norms ``.main.1`` / ``.main.4``); two stride-2 4x4 transposed
  convs with norms and ReLUs; the 7x7 output conv and Tanh. With 6 blocks: transposed convs
  at ``main.15`` and ``main.18``, output conv ``main.21``. No conv has a bias; every norm is
  ``InstanceNorm2d(affine=True, track_running_stats=True)``, so it holds ``weight``,
  ``bias``, ``running_mean``, ``running_var`` and ``num_batches_tracked``.
* ``Discriminator(image_size, conv_dim, c_dim, repeat_num)``: ``main`` = ``repeat_num``
  stride-2 4x4 convs (with biases) each followed by LeakyReLU(0.01), so convs at ``main.0``,
  ``main.2``, ..., width doubling from ``conv_dim``; ``conv1`` the PatchGAN real/fake output
  (3x3, one channel, no bias, no sigmoid: a WGAN critic); ``conv2`` the auxiliary domain
  classifier (``c_dim`` outputs, no bias), whose kernel, ``image_size / 2**repeat_num``,
  covers the whole last feature map.

The released 128 px CelebA networks (``stargan_celeba`` and
``stargan_celeba_discriminator``) have 8,430,528 and 44,762,048 parameters.

One behaviour differs from a plain ``InstanceNorm2d(track_running_stats=True)`` on
purpose: yunjey never switches his networks to eval mode (``test()`` translates in train
mode), so the released generator was trained and is used with each image's own
statistics; PyTorch's eval mode would normalise with the running averages instead, a
different function. :class:`InstanceNorm2dTracked` keeps the buffers (and updates them in
training, as upstream does, so checkpoints round-trip) but normalises with the instance's
statistics in both modes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainer.archs import ARCHS
from trainer.archs.sizes import check_input_size

RGB = 3
# Fixed by the published architecture.
N_SAMPLING = 2  # stride-2 stages down, and as many up, in G
D_SLOPE = 0.01  # LeakyReLU slope of D (yunjey's; pix2pix uses 0.2)

# The yunjey defaults for CelebA (main.py): 5 selected attributes, 128 px, 6 and 6.
CELEBA_C_DIM = 5
CELEBA_IMAGE_SIZE = 128


class InstanceNorm2dTracked(nn.InstanceNorm2d):
    """Affine instance norm that keeps running statistics but never normalises with them.

    The state_dict is ``InstanceNorm2d(affine=True, track_running_stats=True)``'s; in
    training the running mean and variance are updated as PyTorch does; in eval mode the
    input is still normalised by its own per-instance mean and variance (see the module
    docstring for why).

    Args:
        channels: feature channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__(channels, affine=True, track_running_stats=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) → the same, instance-normalised, scaled and shifted per channel."""
        tracking = self.training
        return F.instance_norm(
            x,
            self.running_mean if tracking else None,
            self.running_var if tracking else None,
            self.weight,
            self.bias,
            use_input_stats=True,
            momentum=self.momentum if self.momentum is not None else 0.0,
            eps=self.eps,
        )


class ResidualBlock(nn.Module):
    """``x + main(x)``: 3x3 conv, norm, ReLU, 3x3 conv, norm (no biases).

    Args:
        dim_in: input channels.
        dim_out: output channels (equal to ``dim_in`` in every StarGAN).
    """

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(dim_in, dim_out, kernel_size=3, stride=1, padding=1, bias=False),
            InstanceNorm2dTracked(dim_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim_out, dim_out, kernel_size=3, stride=1, padding=1, bias=False),
            InstanceNorm2dTracked(dim_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual add around the two convs."""
        return x + self.main(x)


class StarGANGenerator(nn.Module):
    """yunjey's ``Generator``: image + tiled domain vector → translated image.

    Args:
        conv_dim: width of the stem; the bottleneck runs at ``conv_dim * 4``.
        c_dim: length of the domain vector (the number of selected attributes, or with
            StarGAN's mask vector ``c_dim + c2_dim + 2``).
        repeat_num: residual blocks in the bottleneck.
    """

    def __init__(self, conv_dim: int = 64, c_dim: int = CELEBA_C_DIM, repeat_num: int = 6) -> None:
        super().__init__()
        if c_dim < 1 or repeat_num < 0:
            raise ValueError(f"need c_dim >= 1 and repeat_num >= 0, got {c_dim}, {repeat_num}")
        self.c_dim = c_dim
        layers: list[nn.Module] = [
            nn.Conv2d(RGB + c_dim, conv_dim, kernel_size=7, stride=1, padding=3, bias=False),
            InstanceNorm2dTracked(conv_dim),
            nn.ReLU(inplace=True),
        ]
        width = conv_dim
        for _ in range(N_SAMPLING):
            layers += [
                nn.Conv2d(width, width * 2, kernel_size=4, stride=2, padding=1, bias=False),
                InstanceNorm2dTracked(width * 2),
                nn.ReLU(inplace=True),
            ]
            width *= 2
        layers += [ResidualBlock(width, width) for _ in range(repeat_num)]
        for _ in range(N_SAMPLING):
            layers += [
                nn.ConvTranspose2d(
                    width, width // 2, kernel_size=4, stride=2, padding=1, bias=False
                ),
                InstanceNorm2dTracked(width // 2),
                nn.ReLU(inplace=True),
            ]
            width //= 2
        layers += [
            nn.Conv2d(width, RGB, kernel_size=7, stride=1, padding=3, bias=False),
            nn.Tanh(),
        ]
        self.main = nn.Sequential(*layers)

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of 4: two exact halvings, then two exact doublings."""
        return 2**N_SAMPLING

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] and (N, c_dim) target labels → (N, 3, H, W) in [-1, 1].

        The labels are tiled over H x W and concatenated after the image's channels.

        Raises:
            ValueError: ``c`` is not (N, c_dim), or H, W are not multiples of 4.
        """
        check_input_size(x, self.size_multiple, self.size_multiple, "StarGANGenerator")
        if c.shape != (x.shape[0], self.c_dim):
            raise ValueError(
                f"StarGANGenerator: labels must be ({x.shape[0]}, {self.c_dim}), "
                f"got {tuple(c.shape)}"
            )
        tiled = c.to(x.dtype).view(*c.shape, 1, 1).expand(-1, -1, *x.shape[-2:])
        return self.main(torch.cat([x, tiled], dim=1))


class StarGANDiscriminator(nn.Module):
    """yunjey's ``Discriminator``: a PatchGAN critic and an auxiliary domain classifier.

    Args:
        image_size: the square input size it is built for (the classifier's kernel is the
            last feature map, ``image_size / 2**repeat_num``).
        conv_dim: width of the first conv; doubled by each of the others.
        c_dim: domain classifier outputs (with the mask vector ``c_dim + c2_dim``).
        repeat_num: stride-2 convs.

    Raises:
        ValueError: ``image_size`` is not a multiple of ``2**repeat_num``.
    """

    def __init__(
        self,
        image_size: int = CELEBA_IMAGE_SIZE,
        conv_dim: int = 64,
        c_dim: int = CELEBA_C_DIM,
        repeat_num: int = 6,
    ) -> None:
        super().__init__()
        if repeat_num < 1 or image_size % 2**repeat_num:
            raise ValueError(
                f"image_size {image_size} must be a multiple of 2**repeat_num = {2**repeat_num}"
            )
        self.image_size = image_size
        layers: list[nn.Module] = []
        width, channels = conv_dim, RGB
        for _ in range(repeat_num):
            layers += [
                nn.Conv2d(channels, width, kernel_size=4, stride=2, padding=1),
                nn.LeakyReLU(D_SLOPE),
            ]
            channels, width = width, width * 2
        kernel = image_size // 2**repeat_num
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(channels, 1, kernel_size=3, stride=1, padding=1, bias=False)
        self.conv2 = nn.Conv2d(channels, c_dim, kernel_size=kernel, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, image_size, image_size) → (real/fake scores (N, 1, h, w), domain logits
        (N, c_dim)); neither has a sigmoid.

        Raises:
            ValueError: the input is not ``image_size`` square.
        """
        if not torch.onnx.is_in_onnx_export() and x.shape[-2:] != (
            self.image_size,
            self.image_size,
        ):
            raise ValueError(
                f"StarGANDiscriminator: built for {self.image_size}x{self.image_size}, "
                f"got {x.shape[-2]}x{x.shape[-1]}"
            )
        h = self.main(x)
        return self.conv1(h), self.conv2(h).flatten(1)


class StarGANEditor(nn.Module):
    """StarGAN served as a face editor: G, with D's attribute classifier reading the face.

    An edit names only what should change; the rest of the target labels is what D's
    auxiliary classifier (trained on real faces' labels) says the face has. Both networks
    are the trained ones, so the state_dict is ``generator.*`` (yunjey's G keys) and
    ``discriminator.*`` (yunjey's D keys).

    Args:
        generator: G, with ``c_dim`` labels (plus ``second_label_dim + 2`` with the mask vector).
        discriminator: D, whose first ``c_dim`` classifier outputs are the edited attributes.
        c_dim: the attributes an edit addresses.
        second_label_dim: classes of the second dataset of a mask-vector G (0: no mask vector);
            the edit then fills G's label input as CelebA's rows: those classes zero, mask
            ``[1, 0]``.
    """

    def __init__(
        self,
        generator: StarGANGenerator,
        discriminator: StarGANDiscriminator,
        *,
        c_dim: int,
        second_label_dim: int = 0,
    ) -> None:
        super().__init__()
        expected = c_dim + second_label_dim + 2 if second_label_dim else c_dim
        if generator.c_dim != expected:
            raise ValueError(f"StarGANEditor: G takes {generator.c_dim} labels, not {expected}")
        self.generator = generator
        self.discriminator = discriminator
        self.c_dim = c_dim
        self.second_label_dim = second_label_dim

    def forward(self, image: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) faces in [-1, 1] and (N, c_dim) edits → (N, 3, S, S) in [-1, 1].

        An edit is 1 (set the attribute), 0 (clear it) or negative (keep what D's classifier
        reads from the face: a logit above 0).
        """
        _, logits = self.discriminator(image)
        own = (logits[:, : self.c_dim] > 0).to(image.dtype)
        target = torch.where(attributes < 0, own, attributes.to(image.dtype))
        if self.second_label_dim:
            n = image.shape[0]
            second = image.new_zeros(n, self.second_label_dim)
            mask = torch.cat([image.new_ones(n, 1), image.new_zeros(n, 1)], dim=1)
            target = torch.cat([target, second, mask], dim=1)
        result: torch.Tensor = self.generator(image, target)
        return result


# --- registered variants -------------------------------------------------------------------
# Typed factories registered by call (the decorator would erase the return type). Each takes
# c_dim (and D image_size) so a recipe can size them from its attributes and layout.


def stargan_celeba(c_dim: int = CELEBA_C_DIM) -> StarGANGenerator:
    """The released CelebA generator (conv_dim 64, 6 blocks; 8.43M parameters at c_dim 5)."""
    return StarGANGenerator(conv_dim=64, c_dim=c_dim, repeat_num=6)


def stargan_celeba_discriminator(
    c_dim: int = CELEBA_C_DIM, image_size: int = CELEBA_IMAGE_SIZE
) -> StarGANDiscriminator:
    """The released CelebA discriminator (conv_dim 64, 6 convs; 44.76M parameters at 128)."""
    return StarGANDiscriminator(image_size, conv_dim=64, c_dim=c_dim, repeat_num=6)


def stargan_tiny(c_dim: int = CELEBA_C_DIM) -> StarGANGenerator:
    """A CPU-sized generator (conv_dim 16, 3 blocks, 0.31M parameters at c_dim 5)."""
    return StarGANGenerator(conv_dim=16, c_dim=c_dim, repeat_num=3)


def stargan_tiny_discriminator(
    c_dim: int = CELEBA_C_DIM, image_size: int = 64
) -> StarGANDiscriminator:
    """A CPU-sized discriminator for 64 px (conv_dim 16, 5 convs: a 2x2 last map, as the
    released one has at 128 px; 0.71M parameters)."""
    return StarGANDiscriminator(image_size, conv_dim=16, c_dim=c_dim, repeat_num=5)


def stargan_tiny_editor(
    c_dim: int = CELEBA_C_DIM, image_size: int = 64, second_label_dim: int = 0
) -> StarGANEditor:
    """The tiny G and D of a ``stargan-celeba`` run, served as an editor."""
    labels = c_dim + second_label_dim + 2 if second_label_dim else c_dim
    return StarGANEditor(
        stargan_tiny(labels),
        stargan_tiny_discriminator(c_dim + second_label_dim, image_size),
        c_dim=c_dim,
        second_label_dim=second_label_dim,
    )


def stargan_celeba_editor(
    c_dim: int = CELEBA_C_DIM,
    image_size: int = CELEBA_IMAGE_SIZE,
    second_label_dim: int = 0,
) -> StarGANEditor:
    """The released-size G and D (yunjey's CelebA 128 px models), served as an editor."""
    labels = c_dim + second_label_dim + 2 if second_label_dim else c_dim
    return StarGANEditor(
        stargan_celeba(labels),
        stargan_celeba_discriminator(c_dim + second_label_dim, image_size),
        c_dim=c_dim,
        second_label_dim=second_label_dim,
    )


ARCHS.register("stargan_celeba")(stargan_celeba)
ARCHS.register("stargan_celeba_discriminator")(stargan_celeba_discriminator)
ARCHS.register("stargan_tiny")(stargan_tiny)
ARCHS.register("stargan_tiny_discriminator")(stargan_tiny_discriminator)
ARCHS.register("stargan_tiny_editor")(stargan_tiny_editor)
ARCHS.register("stargan_celeba_editor")(stargan_celeba_editor)
