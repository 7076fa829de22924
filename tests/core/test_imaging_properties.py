"""A property of the decoder over generated images, headers and truncations: it returns a
well-formed image within the pixel limit, or refuses with an error kind. Nothing else."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from gantry.core.errors import GantryError
from gantry.core.imaging import decode_image, decode_rgb8

LIMIT = 64 * 64


def _encode(mode: str, size: tuple[int, int], fmt: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    if mode == "F":
        image = Image.fromarray(rng.random(size[::-1]).astype(np.float32))
    elif mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65535, size[::-1], dtype=np.uint16))
    else:
        channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]
        pixels = rng.integers(0, 255, (*size[::-1], channels), dtype=np.uint8)
        image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


FORMATS = {
    "PNG": ["L", "LA", "RGB", "RGBA", "I;16"],
    "JPEG": ["L", "RGB"],
    "WEBP": ["RGB", "RGBA"],
    "BMP": ["L", "RGB"],
    "TIFF": ["L", "RGB", "RGBA", "F"],
}


@st.composite
def encoded(draw: st.DrawFn) -> bytes:
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    mode = draw(st.sampled_from(FORMATS[fmt]))
    size = (draw(st.integers(1, 80)), draw(st.integers(1, 80)))
    return _encode(mode, size, fmt, draw(st.integers(0, 2**16)))


def _png_with_header(width: int, height: int) -> bytes:
    """A PNG whose header claims any size (what a decompression bomb does)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@st.composite
def hostile(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(encoded()))
    how = draw(st.sampled_from(["truncate", "flip", "header", "intact"]))
    if how == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] = draw(st.integers(0, 255))
    elif how == "header":
        return _png_with_header(draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2**31 - 1)))
    return bytes(data)


@settings(max_examples=300, deadline=None)
@given(hostile())
def test_the_decoder_returns_an_image_or_an_error_kind(data: bytes) -> None:
    try:
        image = decode_image(data, max_pixels=LIMIT)
    except GantryError:
        pass
    else:
        h, w = image.rgb.shape[:2]
        assert image.rgb.shape == (h, w, 3) and image.rgb.dtype == np.float32
        assert h * w <= LIMIT
        assert float(image.rgb.min()) >= 0.0 and float(image.rgb.max()) <= 1.0
        assert image.alpha is None or image.alpha.shape == (h, w)
    try:
        rgb = decode_rgb8(data, max_pixels=LIMIT)
    except GantryError:
        pass
    else:
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        assert rgb.shape[0] * rgb.shape[1] <= LIMIT
