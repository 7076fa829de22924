"""Whether a face translation keeps the person: cosine of dlib ResNet descriptors, in and out.

The embedder is dlib's face-recognition ResNet (:mod:`trainer.archs.dlib_resnet`, weights
from :func:`trainer.weights.dlib.load_dlib_resnet`). It wants the 150x150 chip dlib cuts
from its 5-point landmarks (``get_face_chip(img, shape, 150, 0.25)``), normalised as
``(rgb - mean) / 256`` with dlib's channel means. Aligned CelebA faces all share one
alignment, so instead of landmarks on every (translated) face, :func:`celeba_dlib_chips`
cuts one fixed box of the 89x89 CelebA square and resizes it to 150x150: an approximation
of dlib's chip whose descriptors agree with those of dlib's own chips at cosine 0.987 on
average (279 faces; resizing the whole square instead agrees at 0.86, no better than two
different people's faces at 0.84). The box is measured by :func:`measure_celeba_chip_box`.

Descriptors are compared by the cosine of their directions (they are not unit length). For
scale: dlib's own chips of different CelebA people average 0.84, and the ``dlib-resnet-v1``
card's verification threshold is 0.9265 (same person at or above).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trainer.catalog.faces import DLIB_CHIP_SIZE, DLIB_MEAN_RGB, DLIB_PIXEL_SCALE
from trainer.data.unpaired import CELEBA_SQUARE
from trainer.weights.dlib import DlibFace, dlib_faces

# Where dlib's 150x150 chip lies in the centre 89x89 square of an aligned 89x109 CelebA
# image, as fractions of the square's side (left, top, right, bottom; pixel edges): the mean
# of dlib's chip transforms (HOG detector upsampled twice, 5-point shape, padding 0.25) over
# the 279 faces it found in celeba_attr_subset 000001-000300. The mean rotation (0.3 degrees)
# is left out. Measured by measure_celeba_chip_box.
CELEBA_DLIB_CHIP_BOX: tuple[float, float, float, float] = (0.2002, 0.3331, 0.8055, 0.9449)


def celeba_dlib_chips(
    faces: torch.Tensor, box: tuple[float, float, float, float] = CELEBA_DLIB_CHIP_BOX
) -> torch.Tensor:
    """dlib ResNet inputs from aligned CelebA squares at any size.

    Args:
        faces: (N, 3, S, S) RGB in [-1, 1], the centre square of aligned CelebA images (the
            training faces of :mod:`trainer.data.unpaired`, or a generator's outputs).
        box: the chip's box in the square, fractions of its side.

    Returns:
        (N, 3, 150, 150) chips, bilinearly resampled, normalised ``(rgb - mean) / 256``.
    """
    left, top, right, bottom = box
    theta = torch.tensor(
        [[right - left, 0.0, left + right - 1], [0.0, bottom - top, top + bottom - 1]],
        dtype=faces.dtype,
        device=faces.device,
    ).expand(len(faces), 2, 3)
    size = (len(faces), 3, DLIB_CHIP_SIZE, DLIB_CHIP_SIZE)
    grid = F.affine_grid(theta, list(size), align_corners=False)
    chips = F.grid_sample(faces, grid, mode="bilinear", padding_mode="border", align_corners=False)
    mean = torch.tensor(DLIB_MEAN_RGB, dtype=faces.dtype, device=faces.device).view(1, 3, 1, 1)
    return ((chips + 1) * 127.5 - mean) / DLIB_PIXEL_SCALE


@torch.no_grad()
def face_directions(embedder: nn.Module, faces: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Unit-length dlib descriptors of CelebA squares (see :func:`celeba_dlib_chips`).

    Args:
        embedder: ``dlib_resnet_v1`` with dlib's weights, in eval mode.
        faces: (N, 3, S, S) in [-1, 1].
        batch_size: chips per forward pass.

    Returns:
        (N, 128) float32 on the CPU.
    """
    device = next(embedder.parameters()).device
    out = [
        F.normalize(embedder(celeba_dlib_chips(chunk.float().to(device))).float(), dim=1)
        for chunk in faces.split(batch_size)
    ]
    return torch.cat(out).cpu()


def identity_cosine(embedder: nn.Module, faces: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """Per-pair cosine of the dlib descriptors of ``faces[i]`` and ``others[i]`` (N,)."""
    return (face_directions(embedder, faces) * face_directions(embedder, others)).sum(1)


def chip_box_from_faces(
    faces: Sequence[DlibFace], square_top: float, square: int = CELEBA_SQUARE
) -> tuple[float, float, float, float]:
    """The box of :data:`CELEBA_DLIB_CHIP_BOX` from dlib's chips of aligned CelebA images.

    Averages the faces' image → chip transforms and maps the chip's outer edges back into
    the square that starts ``square_top`` rows down the image.

    Args:
        faces: :func:`trainer.weights.dlib.dlib_faces` of aligned images of one size.
        square_top: the first image row of the centre square.
        square: the square's side in image pixels.

    Returns:
        (left, top, right, bottom) as fractions of the square's side.
    """
    if not faces:
        raise ValueError("no dlib face to measure the chip box from")
    to_chip = np.mean([face.to_chip for face in faces], axis=0)
    inverse = np.linalg.inv(to_chip[:, :2])
    # dlib puts pixel centres on integers, so the chip's outer edges are at -0.5 and 149.5
    # and an image edge coordinate is dlib's plus 0.5.
    edges = (-0.5, DLIB_CHIP_SIZE - 0.5)
    (left, top), (right, bottom) = (
        inverse @ (np.array([edge, edge]) - to_chip[:, 2]) + 0.5 for edge in edges
    )
    top, bottom = top - square_top, bottom - square_top
    return (left / square, top / square, right / square, bottom / square)


def measure_celeba_chip_box(images: Iterable[Path]) -> tuple[float, float, float, float]:
    """Run dlib (``dlib-bin``: HOG detector upsampled twice, 5-point shape predictor) on
    aligned CelebA images and return :func:`chip_box_from_faces` of the faces it finds."""
    from PIL import Image

    paths = list(images)
    with Image.open(paths[0]) as first:
        square_top = (first.height - min(first.width, first.height, CELEBA_SQUARE)) // 2
    return chip_box_from_faces(dlib_faces(paths, upsample=2), square_top)


class IdentityProbe:
    """The dlib descriptor, loaded on first use, and the held-aside faces' descriptor
    directions, computed once per named set: what both translation evaluators measure
    identity with.

    Args:
        load_embedder: returns the dlib ResNet with its weights, in eval mode.
        device: where it runs.
    """

    def __init__(self, load_embedder: Callable[[], nn.Module], device: torch.device) -> None:
        self.load_embedder = load_embedder
        self.device = device
        self._embedder: nn.Module | None = None
        self._sources: dict[str, torch.Tensor] = {}

    @property
    def embedder(self) -> nn.Module:
        """The dlib ResNet (loaded on first use)."""
        if self._embedder is None:
            self._embedder = self.load_embedder().to(self.device).eval()
        return self._embedder

    def sources(self, name: str, faces: torch.Tensor) -> torch.Tensor:
        """Unit descriptors of the held-aside ``faces`` called ``name`` (computed once)."""
        if name not in self._sources:
            self._sources[name] = face_directions(self.embedder, faces)
        return self._sources[name]

    def kept(self, sources: torch.Tensor, translated: torch.Tensor) -> torch.Tensor:
        """Per face, the cosine between a source's descriptor and its translation's."""
        return (sources * face_directions(self.embedder, translated)).sum(1)


def other_people_cosine(directions: torch.Tensor) -> torch.Tensor:
    """Per face, the cosine to its neighbour in the list (another person): the scale."""
    return (directions * directions.roll(1, 0)).sum(1)
