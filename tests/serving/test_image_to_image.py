"""The image-to-image pipeline and translation, without HTTP and without Triton.

A stand-in Triton runs numpy "networks" that refuse any input a card's network would refuse
(a side that is not a multiple of ``size_multiple``, or under ``min_input_size``), so these
tests show every image size reaches the network in a shape it takes and comes back cropped
to exactly its own pixels.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from gantry.core.cards import ModelCard, SuperresSpec
from gantry.core.errors import InvalidInput, NotFound, TooLarge
from gantry.core.repository import ModelRepository
from gantry.core.settings import Settings
from gantry.serving.catalog import ModelCatalog
from gantry.serving.image_to_image import ImageToImagePipeline, ThroughputEstimator, resolve_tile
from gantry.serving.tiling import Padding, crop_output, fit_padding, pad_image
from gantry.serving.translate import Conditioning, TranslatePipeline
from gantry.serving.triton import TritonClient
from tests.serving.builds import built
from trainer.catalog import card

Network = Callable[[NDArray[Any]], NDArray[Any]]
RNG = np.random.default_rng(7)


class FakeTriton:
    """Runs a numpy function per model on the batch, as Triton would run the ONNX file."""

    def __init__(self, networks: Mapping[str, tuple[ModelCard, Network]]) -> None:
        self.networks = networks
        self.shapes: list[tuple[int, ...]] = []

    async def infer(
        self,
        model: str,
        inputs: Mapping[str, NDArray[Any]],
        outputs: list[str],
        *,
        version: int | None = None,
    ) -> dict[str, NDArray[Any]]:
        model_card, network = self.networks[model]
        (x,) = inputs.values()
        self.shapes.append(tuple(x.shape))
        height, width = x.shape[2:]
        multiple, minimum = model_card.size_multiple, model_card.min_input_size
        assert height % multiple == 0 and width % multiple == 0, (x.shape, multiple)
        assert min(height, width) >= minimum, (x.shape, minimum)
        return {outputs[0]: network(x)}

    async def close(self) -> None:
        return None


def _invert(x: NDArray[Any]) -> NDArray[Any]:
    return -x  # in [-1, 1]: a negative, pixel by pixel


def _nearest_x2(x: NDArray[Any]) -> NDArray[Any]:
    return x.repeat(2, axis=2).repeat(2, axis=3)


UPSCALER = card("realesr-animevideov3-x2").model_copy(
    update={"name": "test-x2-multiple-8", "size_multiple": 8, "min_input_size": 16}
)
UPSCALER = UPSCALER.model_copy(update={"spec": SuperresSpec(scale=2, pre_pad=3)})
NETWORKS: dict[str, tuple[ModelCard, Network]] = {
    "cyclegan-vintagify": (card("cyclegan-vintagify"), _invert),
    "pix2pix-facades": (card("pix2pix-facades"), _invert),
    UPSCALER.name: (UPSCALER, _nearest_x2),
}


@pytest.fixture()
def catalog(tmp_path: Path) -> ModelCatalog:
    repository = ModelRepository(tmp_path)
    for model_card, _ in NETWORKS.values():
        repository.write_card(built(model_card))
    return ModelCatalog(tmp_path)


def _pipeline(
    catalog: ModelCatalog,
    triton: FakeTriton,
    *,
    tasks: tuple[str, ...] = ("image_to_image",),
    default: str | None = "cyclegan-vintagify",
    **settings: Any,
) -> ImageToImagePipeline:
    return ImageToImagePipeline(
        triton=cast(TritonClient, triton),
        catalog=catalog,
        settings=Settings(model_repository=catalog.repository.root, **settings),
        estimator=ThroughputEstimator(40.0),
        tasks=tasks,
        default_model=default,
        batch_kind="superres_batch",
    )


def _png(rgb: NDArray[np.uint8]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def _decode(data: bytes) -> NDArray[np.uint8]:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _photo(height: int, width: int) -> NDArray[np.uint8]:
    return RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)


# --- padding arithmetic ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "border", "multiple", "minimum", "padded"),
    [
        ((183, 250), 0, 4, 8, (184, 252)),  # CycleGAN: the next multiple of 4
        ((150, 200), 0, 64, 64, (192, 256)),  # pix2pix U-Net: of 64
        ((256, 256), 0, 64, 64, (256, 256)),  # already fine: nothing added
        ((30, 5), 0, 64, 64, (64, 64)),  # under the minimum
        ((5, 7), 0, 4, 8, (8, 8)),
        ((37, 53), 10, 1, 1, (57, 73)),  # super-resolution: the pre_pad border only
        ((37, 53), 3, 8, 16, (48, 64)),  # both: border first, then the multiple
    ],
)
def test_fit_padding_reaches_a_size_the_network_takes(
    size: tuple[int, int], border: int, multiple: int, minimum: int, padded: tuple[int, int]
) -> None:
    padding = fit_padding(*size, border=border, multiple=multiple, minimum=minimum)
    assert (padding.padded_height, padding.padded_width) == padded
    assert padding.border == border and padding.bottom >= 0 and padding.right >= 0


def test_pad_image_reflects_at_the_bottom_and_right_and_crops_back() -> None:
    image = RNG.random((3, 5, 7)).astype(np.float32)
    padding = Padding(5, 7, border=0, bottom=3, right=1)
    padded = pad_image(image, padding)
    assert padded.shape == (3, 8, 8) and padded.dtype == np.float32
    np.testing.assert_array_equal(padded[:, :5, :7], image)  # the image stays at the origin
    np.testing.assert_array_equal(padded[:, 5, :7], image[:, 3])  # a mirror, edge not repeated
    np.testing.assert_array_equal(padded[:, 7, :7], image[:, 1])
    np.testing.assert_array_equal(padded[:, :5, 7], image[:, :, 5])
    np.testing.assert_array_equal(crop_output(padded, padding, 1), image)


def test_pad_image_reaches_a_minimum_far_above_the_image() -> None:
    image = RNG.random((3, 5, 3)).astype(np.float32)
    padding = fit_padding(5, 3, border=0, multiple=64, minimum=64)
    padded = pad_image(image, padding)
    assert padded.shape == (3, 64, 64)
    np.testing.assert_array_equal(crop_output(padded, padding, 1), image)
    one_pixel = pad_image(image[:, :1, :1], fit_padding(1, 1, border=0, multiple=4, minimum=8))
    assert one_pixel.shape == (3, 8, 8) and (one_pixel == image[0, 0, 0]).any()


def test_crop_output_scales_the_border_and_the_image() -> None:
    padding = Padding(4, 6, border=2, bottom=1, right=3)
    output = np.arange(2 * padding.padded_height * 2 * padding.padded_width, dtype=np.float32)
    output = output.reshape(1, 2 * padding.padded_height, 2 * padding.padded_width)
    cropped = crop_output(output, padding, 2)
    assert cropped.shape == (1, 8, 12)
    assert cropped[0, 0, 0] == output[0, 4, 4]


# --- the pipeline, end to end ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "height", "width", "network_input"),
    [
        ("cyclegan-vintagify", 183, 250, (1, 3, 184, 252)),
        ("cyclegan-vintagify", 5, 3, (1, 3, 8, 8)),
        ("pix2pix-facades", 150, 200, (1, 3, 192, 256)),
        ("pix2pix-facades", 256, 256, (1, 3, 256, 256)),
    ],
)
def test_any_size_translates_to_exactly_its_own_pixels(
    catalog: ModelCatalog,
    model: str,
    height: int,
    width: int,
    network_input: tuple[int, ...],
) -> None:
    triton = FakeTriton(NETWORKS)
    pipeline = _pipeline(catalog, triton)
    photo = _photo(height, width)
    result = asyncio.run(pipeline.run(data=_png(photo), model=model))
    assert triton.shapes == [network_input]  # the whole image, in one window
    assert (result.width, result.height, result.tiles, result.scale) == (width, height, 1, 1)
    # The negative of every pixel where it was: the crop is aligned with the image.
    np.testing.assert_array_equal(_decode(result.data), 255 - photo)


def test_a_scaled_model_with_a_border_and_a_multiple_crops_at_scale(
    catalog: ModelCatalog,
) -> None:
    triton = FakeTriton(NETWORKS)
    pipeline = _pipeline(catalog, triton, tasks=("superres",), default=None)
    photo = _photo(37, 53)
    result = asyncio.run(pipeline.run(data=_png(photo), model=UPSCALER.name))
    assert triton.shapes == [(1, 3, 48, 64)]  # 37+6 → 48, 53+6 → 64
    expected = photo.repeat(2, axis=0).repeat(2, axis=1)
    np.testing.assert_array_equal(_decode(result.data), expected)


def test_tiles_of_a_sized_model_are_inputs_it_takes(catalog: ModelCatalog) -> None:
    triton = FakeTriton(NETWORKS)
    pipeline = _pipeline(catalog, triton)
    photo = _photo(150, 200)
    result = asyncio.run(pipeline.run(data=_png(photo), model="pix2pix-facades", tile=128))
    assert result.tiles == 4 and all(shape[2:] == (128, 128) for shape in triton.shapes)
    np.testing.assert_array_equal(_decode(result.data), 255 - photo)


def test_a_tile_must_be_a_multiple_the_network_takes(catalog: ModelCatalog) -> None:
    pix2pix = catalog.resolve("pix2pix-facades", task="image_to_image")
    assert resolve_tile(pix2pix, 128) == 128 and resolve_tile(pix2pix, None) == 0
    for tile in (100, 32):
        with pytest.raises(InvalidInput, match="a multiple of 64 between 64 and") as caught:
            resolve_tile(pix2pix, tile)
        assert caught.value.code == "invalid_tile"


def test_over_the_budget_points_at_the_batch_job(catalog: ModelCatalog) -> None:
    pipeline = _pipeline(catalog, FakeTriton(NETWORKS), sync_budget_s=1e-9)
    with pytest.raises(TooLarge, match='"kind": "superres_batch"') as caught:
        asyncio.run(pipeline.run(data=_png(_photo(64, 64)), model="cyclegan-vintagify"))
    assert caught.value.code == "compute_budget_exceeded"
    assert "cyclegan-vintagify" in caught.value.message


# --- translation -------------------------------------------------------------------------


def test_translate_uses_the_default_model_and_refuses_what_it_cannot_take(
    catalog: ModelCatalog,
) -> None:
    translate = TranslatePipeline(image_to_image=_pipeline(catalog, FakeTriton(NETWORKS)))
    data = _png(_photo(20, 30))
    result = asyncio.run(translate.run(data=data, model=None))
    assert (result.model, result.version, result.width, result.height) == (
        "cyclegan-vintagify",
        1,
        30,
        20,
    )

    def code(**kwargs: Any) -> str:
        with pytest.raises((InvalidInput, NotFound)) as caught:
            asyncio.run(translate.run(data=data, **kwargs))
        return str(caught.value.code)

    assert code(model="pix2pix-facades", conditioning=Conditioning(domain="winter")) == (
        "not_multi_domain"
    )
    assert code(model=None, conditioning=Conditioning(seed=3)) == "not_multi_domain"
    assert code(model=None, conditioning=Conditioning(reference=data, seed=3)) == "invalid_style"
    assert code(model=UPSCALER.name) == "unknown_model"  # a model of another task
    assert code(model="cyclegan-vintagify", version=9) == "unknown_version"


def test_translate_without_a_default_needs_a_model(catalog: ModelCatalog) -> None:
    pipeline = _pipeline(catalog, FakeTriton(NETWORKS), default=None)
    with pytest.raises(InvalidInput) as caught:
        asyncio.run(TranslatePipeline(image_to_image=pipeline).run(data=b"", model=None))
    assert caught.value.code == "missing_model"


def test_conditioning_names_the_fields_a_request_set() -> None:
    assert Conditioning().named() == []
    assert Conditioning(domain="a", seed=0).named() == ["domain", "seed"]
