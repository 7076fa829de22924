import io

import cv2
import numpy as np
import pytest
from PIL import Image

from gantry.core.errors import ErrorKind, GantryError
from gantry.core.imaging import decode_image, encode_image, resize_alpha, sniff_format
from tests.paths import REAL_INPUTS, SET5

LIMIT = 4096 * 4096


def test_sniffs_formats_from_magic_bytes() -> None:
    assert sniff_format((SET5 / "HR" / "baby.png").read_bytes()) == "png"
    assert sniff_format((REAL_INPUTS / "0014.jpg").read_bytes()) == "jpeg"
    assert sniff_format(b"hello world") is None


def test_rgb_png_matches_pillow() -> None:
    path = SET5 / "LR_bicubic" / "X4" / "babyx4.png"
    image = decode_image(path.read_bytes(), max_pixels=LIMIT)
    expected = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255
    np.testing.assert_allclose(image.rgb, expected, atol=1e-6)
    assert (image.grayscale, image.bit_depth, image.alpha) == (False, 8, None)


def test_grayscale_is_expanded_and_restored() -> None:
    image = decode_image((REAL_INPUTS / "00017_gray.png").read_bytes(), max_pixels=LIMIT)
    assert image.grayscale and image.rgb.shape[2] == 3
    out = encode_image(image.rgb, alpha=None, grayscale=True, bit_depth=8, fmt="png")
    assert cv2.imdecode(np.frombuffer(out, np.uint8), cv2.IMREAD_UNCHANGED).ndim == 2


def test_16_bit_alpha_is_kept_in_png() -> None:
    data = (REAL_INPUTS / "tree_alpha_16bit.png").read_bytes()
    image = decode_image(data, max_pixels=LIMIT)
    assert image.bit_depth == 16 and image.alpha is not None
    out = encode_image(image.rgb, alpha=image.alpha, grayscale=False, bit_depth=16, fmt="png")
    decoded = cv2.imdecode(np.frombuffer(out, np.uint8), cv2.IMREAD_UNCHANGED)
    original = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.dtype == np.uint16 and decoded.shape == original.shape
    np.testing.assert_array_equal(decoded, original)  # a lossless round trip


def test_jpeg_drops_alpha_and_webp_keeps_it() -> None:
    image = decode_image((REAL_INPUTS / "children-alpha.png").read_bytes(), max_pixels=LIMIT)
    assert image.alpha is not None
    jpeg = encode_image(image.rgb, alpha=image.alpha, grayscale=False, bit_depth=8, fmt="jpeg")
    webp = encode_image(image.rgb, alpha=image.alpha, grayscale=False, bit_depth=8, fmt="webp")
    assert Image.open(io.BytesIO(jpeg)).mode == "RGB"
    assert Image.open(io.BytesIO(webp)).mode == "RGBA"


def test_alpha_resize_keeps_range() -> None:
    alpha = np.random.default_rng(0).random((10, 12), np.float32)
    out = resize_alpha(alpha, 4)
    assert out.shape == (40, 48) and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize(
    ("data", "kind", "code"),
    [
        (b"definitely not an image", ErrorKind.UNSUPPORTED_MEDIA, "unsupported_media_type"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, ErrorKind.INVALID_INPUT, "invalid_image"),
    ],
)
def test_bad_uploads_get_clear_errors(data: bytes, kind: ErrorKind, code: str) -> None:
    with pytest.raises(GantryError) as err:
        decode_image(data, max_pixels=LIMIT)
    assert (err.value.kind, err.value.code) == (kind, code)


def test_truncated_jpeg_is_refused() -> None:
    data = (REAL_INPUTS / "0014.jpg").read_bytes()
    with pytest.raises(GantryError) as err:
        decode_image(data[: len(data) // 8], max_pixels=LIMIT)
    assert err.value.kind is ErrorKind.INVALID_INPUT


def test_pixel_limit_is_checked_from_the_header() -> None:
    data = (SET5 / "HR" / "baby.png").read_bytes()  # 512 x 512
    with pytest.raises(GantryError) as err:
        decode_image(data, max_pixels=512 * 511)
    assert (err.value.kind, err.value.code) == (ErrorKind.TOO_LARGE, "image_too_large")
