"""Stored inputs of jobs (uploaded with POST /v1/inputs): saving, finding, and reading images.

A stored input is one image or a zip of images. Zips are checked from their central
directory before anything is decompressed: encrypted members, compression methods we cannot
read, members or totals that would unpack past the limits (a zip bomb) and too many images
are refused by name, at upload, at submission and in the worker, so a hostile zip never
reaches memory. Members are read one at a time, when the job gets to them.
"""

from __future__ import annotations

import re
import shutil
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from gantry.core.errors import InvalidInput, TooLarge
from gantry.core.settings import Settings

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
_READABLE_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
_ZIP_MAGIC = b"PK\x03\x04"
INPUT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def safe_name(name: str) -> str:
    """A file name with no directories and only safe characters."""
    base = _SAFE.sub("_", Path(name).name).strip("._") or "input"
    return base[:120]


def safe_path(name: str) -> str:
    """A member path made safe: each part cleaned, no absolute or parent parts, ``/``-joined."""
    parts = [
        safe_name(p)
        for p in PurePosixPath(name.replace("\\", "/")).parts
        if p not in ("/", "..", ".")
    ]
    return "/".join(parts) or "input"


@dataclass(frozen=True)
class InputImage:
    """One image of a stored input; ``read()`` loads its bytes when the job needs them."""

    name: str  # the path inside the zip (cleaned), or the uploaded file name
    size: int  # bytes once read (a zip member's uncompressed size)
    read: Callable[[], bytes]


def save_input(
    settings: Settings, filename: str, source: BinaryIO, limit: int
) -> tuple[str, str, int]:
    """Store an upload, streamed to disk; returns (input id, stored file name, size).

    Raises:
        TooLarge: more than ``limit`` bytes (the partial file is removed).
        InvalidInput: an empty file, or a zip whose directory fails :func:`inspect_input`.
    """
    input_id = str(uuid.uuid4())
    folder = settings.inputs_dir / input_id
    folder.mkdir(parents=True, exist_ok=True)
    name = safe_name(filename)
    target = folder / name
    size = 0
    try:
        with target.open("wb") as out:
            while block := source.read(1 << 20):
                size += len(block)
                if size > limit:
                    raise TooLarge("upload_too_large", f"inputs are limited to {limit} bytes")
                out.write(block)
        if size == 0:
            raise InvalidInput("empty_upload", "the file is empty")
        inspect_input(target, settings)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return input_id, name, size


def input_file(settings: Settings, input_id: str) -> Path:
    """The stored file of an input id; 422 ``unknown_input`` if there is none."""
    if not INPUT_ID.fullmatch(input_id):
        raise InvalidInput("unknown_input", f"{input_id!r} is not an input id")
    folder = settings.inputs_dir / input_id
    files = sorted(folder.iterdir()) if folder.is_dir() else []
    if not files:
        raise InvalidInput(
            "unknown_input", f"no stored input {input_id} (upload it with POST /v1/inputs)"
        )
    return files[0]


def _is_image_member(info: zipfile.ZipInfo) -> bool:
    name = PurePosixPath(info.filename)
    # Hidden files and macOS resource forks are not images; `..` parts are cleaned by safe_path.
    hidden = any(
        (p.startswith(".") and p not in (".", "..")) or p == "__MACOSX" for p in name.parts
    )
    return not info.is_dir() and not hidden and name.suffix.lower() in IMAGE_SUFFIXES


def _member_reader(path: Path, info: zipfile.ZipInfo) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            with zipfile.ZipFile(path) as archive, archive.open(info) as member:
                # Never more than the directory promised: a lying header cannot inflate memory.
                data = member.read(info.file_size + 1)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
            raise InvalidInput("invalid_zip", f"{path.name}: {info.filename}: {exc}") from exc
        if len(data) != info.file_size:
            raise InvalidInput(
                "invalid_zip", f"{path.name}: {info.filename} is not the size its header says"
            )
        return data

    return read


def inspect_input(path: Path, settings: Settings) -> list[InputImage]:
    """The images of a stored input, from the zip directory alone (nothing decompressed).

    Raises:
        InvalidInput: ``invalid_zip`` (damaged or truncated, an encrypted member, a
            compression method we cannot read), ``too_many_images``.
        TooLarge: ``input_too_large``: a member or the whole zip unpacks past the limits
            (``GANTRY_ZIP_MAX_MEMBER_BYTES``, ``GANTRY_ZIP_MAX_TOTAL_BYTES``).
    """
    with path.open("rb") as fh:
        head = fh.read(4)
    if not zipfile.is_zipfile(path):
        if head == _ZIP_MAGIC:
            raise InvalidInput(
                "invalid_zip", f"{path.name}: a damaged or truncated zip (no central directory)"
            )
        size = path.stat().st_size
        return [InputImage(path.name, size, path.read_bytes)]
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if _is_image_member(m)]
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInput("invalid_zip", f"{path.name}: {exc}") from exc
    total = 0
    for info in members:
        if info.flag_bits & 0x1:
            raise InvalidInput("invalid_zip", f"{path.name}: {info.filename} is encrypted")
        if info.compress_type not in _READABLE_METHODS:
            raise InvalidInput(
                "invalid_zip",
                f"{path.name}: {info.filename} uses compression method {info.compress_type}, "
                "which is not supported (use stored or deflate)",
            )
        if info.file_size > settings.zip_max_member_bytes:
            raise TooLarge(
                "input_too_large",
                f"{path.name}: {info.filename} unpacks to {info.file_size} bytes; the limit per "
                f"image is {settings.zip_max_member_bytes}",
            )
        total += info.file_size
    if total > settings.zip_max_total_bytes:
        raise TooLarge(
            "input_too_large",
            f"{path.name} unpacks to {total} bytes; the limit is {settings.zip_max_total_bytes}",
        )
    if len(members) > settings.max_batch_images:
        raise InvalidInput(
            "too_many_images",
            f"{path.name} holds {len(members)} images; the limit is {settings.max_batch_images}",
        )
    return [
        InputImage(safe_path(m.filename), m.file_size, _member_reader(path, m)) for m in members
    ]


def input_images(settings: Settings, input_ids: list[str]) -> list[InputImage]:
    """Every image of these stored inputs, checked together against the batch limit."""
    images: list[InputImage] = []
    for input_id in input_ids:
        images += inspect_input(input_file(settings, input_id), settings)
    if len(images) > settings.max_batch_images:
        raise InvalidInput(
            "too_many_images", f"{len(images)} images; the limit is {settings.max_batch_images}"
        )
    return images
