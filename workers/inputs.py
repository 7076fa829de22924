"""Stored inputs of jobs (uploaded with POST /v1/inputs) and job result files."""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from pathlib import Path

from gantry.core.errors import InvalidInput
from gantry.core.files import atomic_write
from gantry.core.settings import Settings

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def safe_name(name: str) -> str:
    """A file name with no directories and only safe characters."""
    base = _SAFE.sub("_", Path(name).name).strip("._") or "input"
    return base[:120]


def save_input(settings: Settings, filename: str, data: bytes) -> tuple[str, str]:
    """Store an upload; returns (input id, stored file name)."""
    input_id = str(uuid.uuid4())
    folder = settings.inputs_dir / input_id
    folder.mkdir(parents=True, exist_ok=True)
    name = safe_name(filename)
    atomic_write(folder / name, data)
    return input_id, name


def input_file(settings: Settings, input_id: str) -> Path:
    """The stored file of an input id; 422 ``unknown_input`` if there is none."""
    if not re.fullmatch(r"[0-9a-f-]{36}", input_id):
        raise InvalidInput("unknown_input", f"{input_id!r} is not an input id")
    folder = settings.inputs_dir / input_id
    files = sorted(folder.iterdir()) if folder.is_dir() else []
    if not files:
        raise InvalidInput(
            "unknown_input", f"no stored input {input_id} (upload it with POST /v1/inputs)"
        )
    return files[0]


def expand_images(path: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of the images in a stored input: the file itself, or a zip's images."""
    data = path.read_bytes()
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return [(path.name, data)]
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [
                m
                for m in archive.infolist()
                if not m.is_dir()
                and m.filename.lower().endswith(IMAGE_SUFFIXES)
                and not Path(m.filename).name.startswith(".")
            ]
            return [(safe_name(m.filename), archive.read(m)) for m in members]
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInput("invalid_zip", f"{path.name}: {exc}") from exc
