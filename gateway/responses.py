"""What the routes answer besides JSON: binary content descriptions and model headers."""

from __future__ import annotations

from typing import Any

BINARY = {"schema": {"type": "string", "format": "binary"}}
MODEL_HEADERS = {
    "X-Gantry-Model": {"schema": {"type": "string"}, "description": "the model that answered"},
    "X-Gantry-Model-Version": {"schema": {"type": "string"}, "description": "its version"},
}


def binary_content(*media_types: str) -> dict[str, dict[str, Any]]:
    """Binary response content of these media types, plus ``application/octet-stream`` for
    clients and generators that take any file as bytes (Content-Type names the actual one)."""
    return {**{t: BINARY for t in media_types}, "application/octet-stream": BINARY}


def model_headers(model: str, version: int | str) -> dict[str, str]:
    """The headers naming the model (or models, comma-separated) and version that answered."""
    return {"X-Gantry-Model": model, "X-Gantry-Model-Version": str(version)}


# An endpoint whose answer is an image (superres, translate).
IMAGE_RESPONSES = {
    "content": binary_content("image/png", "image/jpeg", "image/webp"),
    "description": "the image, in the requested format (its Content-Type says which)",
    "headers": MODEL_HEADERS,
}
