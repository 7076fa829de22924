"""Unconditional generation (``POST /v1/generate``): seeds to images.

A :class:`~gantry.core.cards.GenerationSpec` model (Progressive GAN) takes a latent and
gives an image. The request's ``seed`` fixes the latents
(:func:`gantry.core.latents.seeded_latents`: numpy PCG64 standard normals, row ``i`` for the
``i``-th image), so the same seed, count and model version answer the same bytes, and the
first image of a batch is the seed's image alone. Without a seed the pipeline draws one and
says which (``X-Gantry-Seed``), so any answer can be reproduced. One image is answered as an
image; several as a zip of images named ``seed-<seed>-<i>.<ext>``, written with fixed
timestamps so the zip is reproducible too.
"""

from __future__ import annotations

import asyncio
import io
import secrets
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gantry.core.cards import BuiltCard, GenerationSpec
from gantry.core.errors import Internal, InvalidInput
from gantry.core.imaging import CONTENT_TYPES, OutputFormat, encode_image
from gantry.core.latents import seeded_latents
from gantry.core.preprocess import to_unit_range
from gantry.core.settings import Settings
from gantry.serving.catalog import ModelCatalog
from gantry.serving.metrics import PIXELS_OUT
from gantry.serving.triton import TritonClient

GENERATE_TASK = "generation"
ZIP_CONTENT_TYPE = "application/zip"
# Seeds are integers from 0 to 2**53 - 1: any client's numbers hold one exactly (a
# JavaScript number included), and a form integer (at most 18 digits) can carry it.
MAX_SEED = 2**53 - 1
# Zip members carry this timestamp (zip's epoch), so the archive depends on its images only.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class GenerateResult:
    """The encoded image (or zip of images) and how it was made."""

    data: bytes
    content_type: str
    model: str
    version: int
    seed: int
    count: int
    resolution: int


def check_request(seed: int | None, count: int, max_count: int) -> None:
    """Refuse seeds and counts outside their bounds.

    Raises:
        InvalidInput: ``invalid_seed`` outside 0 .. 2**53 - 1; ``invalid_count`` outside
            1 .. ``max_count`` (``GANTRY_MAX_GENERATE_COUNT``).
    """
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise InvalidInput("invalid_seed", f"seed must be an integer from 0 to {MAX_SEED}")
    if not 1 <= count <= max_count:
        raise InvalidInput(
            "invalid_count", f"count must be from 1 to {max_count} images; got {count}"
        )


def generation_spec(built: BuiltCard) -> GenerationSpec:
    """The card's generation spec; a card of another task here is a wiring bug."""
    spec = built.card.spec
    if not isinstance(spec, GenerationSpec):
        raise Internal("bad_card", f"{built.name} is a {spec.task} model, not a generator")
    return spec


def zip_images(names: Sequence[str], images: Sequence[bytes]) -> bytes:
    """A zip of encoded images (stored: they are compressed already), with fixed timestamps."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in zip(names, images, strict=True):
            archive.writestr(zipfile.ZipInfo(name, date_time=_ZIP_TIME), data)
    return buffer.getvalue()


def _encode(chw: NDArray[Any], spec: GenerationSpec, fmt: OutputFormat) -> bytes:
    rgb = to_unit_range(chw, spec.output_range).transpose(1, 2, 0)
    return encode_image(rgb, alpha=None, grayscale=False, bit_depth=8, fmt=fmt)


class GeneratePipeline:
    """Images from seeds with the generation models of the catalog."""

    def __init__(
        self,
        *,
        triton: TritonClient,
        catalog: ModelCatalog,
        settings: Settings,
        default_model: str | None = None,
    ) -> None:
        self.triton = triton
        self.catalog = catalog
        self.settings = settings
        self.default_model = default_model

    def model(self, name: str | None, version: int | None = None) -> BuiltCard:
        """The card to run (the configured default when ``name`` is None)."""
        return self.catalog.resolve_or_default(
            name, self.default_model, task=GENERATE_TASK, version=version
        )

    async def run(
        self,
        *,
        model: str | None,
        version: int | None = None,
        seed: int | None = None,
        count: int = 1,
        fmt: OutputFormat = "png",
    ) -> GenerateResult:
        """Generate ``count`` images from ``seed``.

        Args:
            model: a generation model; the configured default when None.
            version: the model version; its default (promoted) version when None.
            seed: fixes the latents; drawn at random (and reported) when None.
            count: how many images (a zip when more than one).
            fmt: the images' format.

        Raises:
            InvalidInput: the codes of :func:`check_request`, ``missing_model``,
                ``unknown_model`` (no generation model of that name).
            NotFound: ``unknown_version``.
            Unavailable, UpstreamFailed: from Triton.
        """
        check_request(seed, count, self.settings.max_generate_count)
        built = self.model(model, version)
        spec = generation_spec(built)
        seed = secrets.randbelow(MAX_SEED + 1) if seed is None else seed
        images = await self._images(built, seeded_latents(spec.latent_dim, seed, count))
        encoded = await asyncio.to_thread(lambda: [_encode(x, spec, fmt) for x in images])
        PIXELS_OUT.labels(model=built.name).inc(count * spec.resolution**2)
        if count == 1:
            data, content_type = encoded[0], CONTENT_TYPES[fmt]
        else:
            names = [f"seed-{seed}-{i}.{fmt}" for i in range(count)]
            data, content_type = zip_images(names, encoded), ZIP_CONTENT_TYPE
        return GenerateResult(
            data=data,
            content_type=content_type,
            model=built.name,
            version=built.version,
            seed=seed,
            count=count,
            resolution=spec.resolution,
        )

    async def _images(self, built: BuiltCard, latents: NDArray[np.float32]) -> NDArray[Any]:
        """The model's images of ``latents``, in Triton calls of at most its batch size."""
        card = built.card
        (latent_input,), (out,) = card.inputs, card.outputs
        batch = max(card.max_batch_size, 1)
        parts = []
        for start in range(0, latents.shape[0], batch):
            result = await self.triton.infer(
                card.name,
                {latent_input.name: latents[start : start + batch]},
                [out.name],
                version=built.version,
            )
            parts.append(result[out.name])
        return np.concatenate(parts)
