"""Translation (``POST /v1/translate``): an image to an image of the same size.

The work is the generic image-to-image pipeline's (pad to what the network takes, Triton,
crop, encode); what translation adds is the request's conditioning. A multi-domain model
(StarGAN v2) takes a target ``domain`` and a style, from a ``reference`` image or a random
``seed``. Every translation model served today (pix2pix, CycleGAN: an
:class:`~gantry.core.cards.ImageToImageSpec` card) maps one domain to one other, so such a
request is refused with ``not_multi_domain`` rather than silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from gantry.core.cards import BuiltCard
from gantry.core.errors import InvalidInput
from gantry.core.imaging import OutputFormat
from gantry.serving.image_to_image import ImageResult, ImageToImagePipeline


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
            any conditioning for a single-domain model (every image_to_image card).
    """
    if conditioning.reference is not None and conditioning.seed is not None:
        raise InvalidInput(
            "invalid_style", "send a reference image or a seed for the style, not both"
        )
    named = conditioning.named()
    if named:
        raise InvalidInput(
            "not_multi_domain",
            f"{built.name} translates into a single domain and takes no "
            f"{', '.join(named)}; only multi-domain models (StarGAN v2) do",
        )


class TranslatePipeline:
    """Translation requests, run by the image-to-image pipeline on its models."""

    def __init__(self, *, image_to_image: ImageToImagePipeline) -> None:
        self.image_to_image = image_to_image

    def model(self, name: str | None, version: int | None = None) -> BuiltCard:
        """The card to run (the configured default when ``name`` is None)."""
        return self.image_to_image.model(name, version)

    async def run(
        self,
        *,
        data: bytes,
        model: str | None,
        version: int | None = None,
        conditioning: Conditioning | None = None,
        fmt: OutputFormat = "png",
    ) -> ImageResult:
        """Translate one encoded image, at the card's tile (the whole image when it has none).

        Args:
            data: the uploaded file.
            model: an image_to_image model; the configured default when None.
            version: the model version; its default (promoted) version when None.
            conditioning: target domain and style, for multi-domain models.
            fmt: output format.

        Raises:
            InvalidInput: ``missing_model`` (no model and no default), ``unknown_model``
                (no image_to_image model of that name: other tasks' models included), the
                codes of :func:`check_conditioning`, and those of the image pipeline.
            NotFound: ``unknown_version``.
            TooLarge: over a pixel limit or the synchronous compute budget.
        """
        built = self.model(model, version)
        check_conditioning(built, conditioning or Conditioning())
        # The resolved version, so a promotion between the two look-ups changes nothing.
        return await self.image_to_image.run(
            data=data, model=built.name, version=built.version, fmt=fmt
        )
