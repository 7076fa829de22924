"""Face editing (``POST /v1/edit``): change a face's attributes, or give it another's.

A face-editing model (a :class:`~gantry.core.cards.FaceEditSpec` card: StarGAN, IcGAN,
GeneGAN) works on an aligned face at a fixed size. The pipeline cuts the face as the model's
training data were cut (the centre square of an aligned face photo, resized), builds the
edit input, makes one Triton call and encodes the edited face at the model's size.

An edit is one of:

* ``attributes`` (attributes models): ``{"Blond_Hair": true, "Male": false}``: the named
  attributes set or cleared, every other one kept as the model reads it from the face. In an
  exclusive group (hair colours), setting one clears the others the edit does not name.
* a ``donor`` face (donor models, GeneGAN): the face takes the donor's attribute (a donor
  without it removes it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gantry.core.cards import BuiltCard, FaceEditSpec
from gantry.core.errors import Internal, InvalidInput
from gantry.core.imaging import CONTENT_TYPES, OutputFormat, decode_rgb8, encode_image
from gantry.core.preprocess import face_square, normalise, to_unit_range
from gantry.core.settings import Settings
from gantry.serving.catalog import ModelCatalog
from gantry.serving.image_to_image import ImageResult
from gantry.serving.metrics import PIXELS_OUT
from gantry.serving.triton import TritonClient

KEEP, CLEAR, SET = -1.0, 0.0, 1.0


@dataclass(frozen=True)
class Edit:
    """What a request asks to change: attributes, or a donor face (an encoded image)."""

    attributes: Mapping[str, bool] | None = None
    donor: bytes | None = None


def edit_spec(built: BuiltCard) -> FaceEditSpec:
    """The card's editing spec; a card of another task here is a wiring bug."""
    spec = built.card.spec
    if not isinstance(spec, FaceEditSpec):
        raise Internal("bad_card", f"{built.name} is a {spec.task} model, not face_edit")
    return spec


def check_edit(built: BuiltCard, edit: Edit) -> None:
    """Refuse an edit the model cannot make.

    Raises:
        InvalidInput: ``invalid_edit``: no edit, both kinds, or the kind the model does not
            take (attributes for a donor model, a donor for an attributes model).
    """
    spec = edit_spec(built)
    if edit.attributes is None and edit.donor is None:
        wanted = "attributes" if spec.conditioning == "attributes" else "a donor image"
        raise InvalidInput("invalid_edit", f"say what to change: {built.name} takes {wanted}")
    if edit.attributes is not None and edit.donor is not None:
        raise InvalidInput("invalid_edit", "send attributes or a donor image, not both")
    if spec.conditioning == "attributes" and edit.donor is not None:
        raise InvalidInput(
            "invalid_edit",
            f"{built.name} edits attributes ({', '.join(spec.attributes)}); it takes no donor",
        )
    if spec.conditioning == "donor" and edit.attributes is not None:
        raise InvalidInput(
            "invalid_edit",
            f"{built.name} passes {spec.attribute} from a donor image; it takes no attributes",
        )


def attribute_vector(spec: FaceEditSpec, requested: Mapping[str, bool]) -> NDArray[np.float32]:
    """The model's edit input: 1 set, 0 clear, -1 keep, over ``spec.attributes``.

    Raises:
        InvalidInput: ``invalid_edit`` for no attribute or two set in one exclusive group;
            ``unknown_attribute`` for a name the model does not edit.
    """
    if not requested:
        raise InvalidInput("invalid_edit", f"name an attribute: {', '.join(spec.attributes)}")
    if unknown := sorted(set(requested) - set(spec.attributes)):
        raise InvalidInput(
            "unknown_attribute",
            f"this model does not edit {', '.join(unknown)}; it edits {', '.join(spec.attributes)}",
        )
    values = {name: KEEP for name in spec.attributes}
    for group in spec.exclusive_groups:
        chosen = [name for name in group if requested.get(name)]
        if len(chosen) > 1:
            raise InvalidInput(
                "invalid_edit", f"a face has one of {', '.join(group)}; set {chosen} at once"
            )
        if chosen:
            values.update({name: CLEAR for name in group})
    values.update({name: SET if on else CLEAR for name, on in requested.items()})
    return np.asarray([values[name] for name in spec.attributes], np.float32)


def aligned_face_input(built: BuiltCard, data: bytes, *, max_pixels: int) -> NDArray[np.float32]:
    """An uploaded aligned face as a fixed-size model's (3, S, S) input: its centre square
    at S x S, normalised as the card says (what face_edit and style_translation models take).

    Raises:
        UnsupportedMedia, TooLarge, InvalidInput: from decoding.
    """
    fixed = built.card.input_hw
    if fixed is None:
        raise Internal("bad_card", f"{built.name}: a face model of fixed size has no input size")
    rgb = decode_rgb8(data, max_pixels=max_pixels)
    return normalise(face_square(rgb, fixed[0]), built.card)


async def face_result(
    built: BuiltCard, chw: NDArray[Any], output_range: tuple[float, float], fmt: OutputFormat
) -> ImageResult:
    """A fixed-size model's (3, S, S) output face, encoded as the request asked."""
    rgb = to_unit_range(chw, output_range).transpose(1, 2, 0)
    encoded = await asyncio.to_thread(
        encode_image, rgb, alpha=None, grayscale=False, bit_depth=8, fmt=fmt
    )
    PIXELS_OUT.labels(model=built.name).inc(rgb.shape[0] * rgb.shape[1])
    return ImageResult(
        data=encoded,
        content_type=CONTENT_TYPES[fmt],
        model=built.name,
        version=built.version,
        scale=1,
        tiles=1,
        width=int(rgb.shape[1]),
        height=int(rgb.shape[0]),
    )


class EditPipeline:
    """Face edits with the face_edit models of the catalog."""

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
        """The card to run (the default model when ``name`` is None)."""
        return self.catalog.resolve_or_default(
            name, self.default_model, task="face_edit", version=version
        )

    def _face(self, built: BuiltCard, data: bytes) -> NDArray[np.float32]:
        return aligned_face_input(built, data, max_pixels=self.settings.max_input_pixels)

    async def run(
        self,
        *,
        data: bytes,
        model: str | None,
        edit: Edit,
        version: int | None = None,
        fmt: OutputFormat = "png",
    ) -> ImageResult:
        """Edit one encoded face.

        Args:
            data: the uploaded face (an aligned face photo, as CelebA's).
            model: a face_edit model; the configured default when None.
            edit: the attributes to change, or the donor face.
            version: the model version; its default (promoted) version when None.
            fmt: output format.

        Returns:
            The edited face at the model's size.

        Raises:
            InvalidInput: ``missing_model``, ``unknown_model``, the codes of
                :func:`check_edit` and :func:`attribute_vector`, and the image decoder's.
            NotFound: ``unknown_version``.
            UnsupportedMedia, TooLarge: from decoding either image.
        """
        built = self.model(model, version)
        spec = edit_spec(built)
        check_edit(built, edit)
        card = built.card
        face = await asyncio.to_thread(self._face, built, data)
        second: NDArray[Any]
        if edit.donor is not None:
            second = await asyncio.to_thread(self._face, built, edit.donor)
        else:
            assert edit.attributes is not None  # check_edit: one of the two
            second = attribute_vector(spec, edit.attributes)
        (image_in, edit_in), (out,) = card.inputs, card.outputs
        result = await self.triton.infer(
            card.name,
            {image_in.name: face[None], edit_in.name: np.ascontiguousarray(second[None])},
            [out.name],
            version=built.version,
        )
        return await face_result(built, result[out.name][0], spec.output_range, fmt)
