"""Translation (``POST /v1/translate``): an image to an image of another domain.

Two kinds of model translate:

* single-domain generators (pix2pix, CycleGAN: an
  :class:`~gantry.core.cards.ImageToImageSpec` card) map any image to an image of the same
  size through the generic image-to-image pipeline (pad to what the network takes, Triton,
  crop, encode). They take no conditioning: a request with a ``domain``, ``reference`` or
  ``seed`` is refused with ``not_multi_domain`` rather than silently ignored.
* multi-domain style translators (StarGAN v2: a
  :class:`~gantry.core.cards.StyleTranslationSpec` card) translate an aligned face into a
  target ``domain`` with a style taken from a ``reference`` face or drawn from a ``seed``
  (seed 0 when the request gives neither, so an answer is reproducible). The face is cut
  as for editing (its centre square at the model's size) and answered at that size.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gantry.core.cards import BuiltCard, StyleTranslationSpec
from gantry.core.errors import InvalidInput
from gantry.core.imaging import OutputFormat
from gantry.core.latents import seeded_latents
from gantry.serving.edit import aligned_face_input, face_result
from gantry.serving.image_to_image import ImageResult, ImageToImagePipeline

TRANSLATE_TASKS = ("image_to_image", "style_translation")
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Conditioning:
    """What a request asks of a multi-domain model, each part optional."""

    domain: str | None = None
    reference: bytes | None = None  # an encoded image whose style to take
    seed: int | None = None  # draws a random style instead

    def named(self) -> list[str]:
        """The form fields the request set, in the form's order."""
        given = {"domain": self.domain, "reference": self.reference, "seed": self.seed}
        return [name for name, value in given.items() if value is not None]


def check_conditioning(built: BuiltCard, conditioning: Conditioning) -> None:
    """Refuse conditioning the model cannot take.

    Raises:
        InvalidInput: ``invalid_style``: both a reference and a seed; ``not_multi_domain``:
            any conditioning for a single-domain model; ``invalid_domain``: a multi-domain
            model without a ``domain``, or with one it does not know (the message lists them).
    """
    if conditioning.reference is not None and conditioning.seed is not None:
        raise InvalidInput(
            "invalid_style", "send a reference image or a seed for the style, not both"
        )
    spec = built.card.spec
    if isinstance(spec, StyleTranslationSpec):
        if conditioning.domain not in spec.domains:
            said = "no domain" if conditioning.domain is None else repr(conditioning.domain)
            raise InvalidInput(
                "invalid_domain",
                f"{built.name} translates into the domains {', '.join(spec.domains)}; "
                f"the request names {said}",
            )
        return
    named = conditioning.named()
    if named:
        raise InvalidInput(
            "not_multi_domain",
            f"{built.name} translates into a single domain and takes no "
            f"{', '.join(named)}; only multi-domain models (StarGAN v2) do",
        )


def style_code(latent_dim: int, seed: int) -> NDArray[np.float32]:
    """The latent code a seed draws: ``latent_dim`` standard normals from numpy's PCG64."""
    return seeded_latents(latent_dim, seed)[0]


class TranslatePipeline:
    """Translation requests: single-domain models through the image-to-image pipeline,
    style translators in one Triton call."""

    def __init__(self, *, image_to_image: ImageToImagePipeline) -> None:
        self.image_to_image = image_to_image

    def model(self, name: str | None, version: int | None = None) -> BuiltCard:
        """The card to run (the configured default when ``name`` is None)."""
        if name is None:
            return self.image_to_image.model(None, version)
        return self.image_to_image.catalog.resolve(name, task=TRANSLATE_TASKS, version=version)

    async def run(
        self,
        *,
        data: bytes,
        model: str | None,
        version: int | None = None,
        conditioning: Conditioning | None = None,
        fmt: OutputFormat = "png",
    ) -> ImageResult:
        """Translate one encoded image.

        Args:
            data: the uploaded file.
            model: a translation model; the configured default when None.
            version: the model version; its default (promoted) version when None.
            conditioning: target domain and style, for multi-domain models.
            fmt: output format.

        Raises:
            InvalidInput: ``missing_model`` (no model and no default), ``unknown_model``
                (no translation model of that name: other tasks' models included), the
                codes of :func:`check_conditioning`, and those of the image pipeline.
            NotFound: ``unknown_version``.
            TooLarge: over a pixel limit or the synchronous compute budget.
        """
        built = self.model(model, version)
        conditioning = conditioning or Conditioning()
        check_conditioning(built, conditioning)
        if isinstance(built.card.spec, StyleTranslationSpec):
            return await self._styled(built, built.card.spec, data, conditioning, fmt)
        # The resolved version, so a promotion between the two look-ups changes nothing.
        return await self.image_to_image.run(
            data=data, model=built.name, version=built.version, fmt=fmt
        )

    async def _styled(
        self,
        built: BuiltCard,
        spec: StyleTranslationSpec,
        data: bytes,
        conditioning: Conditioning,
        fmt: OutputFormat,
    ) -> ImageResult:
        limit = self.image_to_image.settings.max_input_pixels
        face = await asyncio.to_thread(aligned_face_input, built, data, max_pixels=limit)
        if conditioning.reference is not None:
            reference = await asyncio.to_thread(
                aligned_face_input, built, conditioning.reference, max_pixels=limit
            )
            use_reference = np.ones(1, np.float32)
        else:
            reference, use_reference = np.zeros_like(face), np.zeros(1, np.float32)
        seed = DEFAULT_SEED if conditioning.seed is None else conditioning.seed
        domain = np.zeros(len(spec.domains), np.float32)
        domain[spec.domains.index(str(conditioning.domain))] = 1.0
        arrays = (face, reference, style_code(spec.latent_dim, seed), domain, use_reference)
        card = built.card
        (out,) = card.outputs
        result = await self.image_to_image.triton.infer(
            card.name,
            {t.name: a[None] for t, a in zip(card.inputs, arrays, strict=True)},
            [out.name],
            version=built.version,
        )
        return await face_result(built, result[out.name][0], spec.output_range, fmt)
