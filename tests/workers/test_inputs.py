"""Stored inputs against hostile zips: refused from the directory, before anything is read."""

from __future__ import annotations

import io
import os
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from gantry.core.errors import InvalidInput, TooLarge
from gantry.core.settings import Settings
from tests.paths import SET5
from workers.inputs import inspect_input, save_input
from workers.jobs.superres_batch import output_names
from workers.store import JobStore
from workers.tasks import purge_unreferenced_inputs, referenced_inputs

PNG = (SET5 / "LR_bicubic" / "X4" / "birdx4.png").read_bytes()


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(
        state_dir=tmp_path / "state",
        zip_max_member_bytes=4 * 1024 * 1024,
        zip_max_total_bytes=6 * 1024 * 1024,
        max_batch_images=3,
    )


def _zip(tmp_path: Path, members: dict[str, bytes], name: str = "in.zip") -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return path


def _bomb(tmp_path: Path, size: int) -> Path:
    """A zip whose one member unpacks to ``size`` zero bytes, written without holding them."""
    path = tmp_path / "bomb.zip"
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("b.png", "w", force_zip64=True) as member,
    ):
        block = b"\0" * (1 << 20)
        for _ in range(size >> 20):
            member.write(block)
    return path


def test_a_zip_bomb_is_refused_from_its_directory_without_reading(
    tmp_path: Path, settings: Settings
) -> None:
    bomb = _bomb(tmp_path, 64 << 20)  # 64 MiB of zeros: tens of KiB on disk
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    with pytest.raises(TooLarge, match=r"b\.png unpacks to 67108864 bytes") as refused:
        inspect_input(bomb, settings)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert refused.value.code == "input_too_large"
    assert peak < 1 << 20  # nothing was decompressed
    # Members within the per-image limit whose total is over it are refused too.
    several = _zip(tmp_path, {f"{i}.png": b"\0" * (2 << 20) for i in range(4)}, "total.zip")
    with pytest.raises(TooLarge, match="unpacks to 8388608 bytes; the limit is 6291456"):
        inspect_input(several, settings)


def test_the_upload_itself_refuses_the_bomb(tmp_path: Path, settings: Settings) -> None:
    bomb = _bomb(tmp_path, 8 << 20)
    with bomb.open("rb") as source, pytest.raises(TooLarge, match="unpacks"):
        save_input(settings, "bomb.zip", source, limit=1 << 30)
    assert not any(settings.inputs_dir.iterdir())  # nothing kept


def _patched(path: Path, local_offset: int, central_offset: int, value: bytes) -> None:
    """Overwrite a field of the first local header and of the first central entry."""
    data = bytearray(path.read_bytes())
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    data[local + local_offset : local + local_offset + len(value)] = value
    data[central + central_offset : central + central_offset + len(value)] = value
    path.write_bytes(bytes(data))


def test_encrypted_unknown_method_and_truncated_zips_name_the_problem(
    tmp_path: Path, settings: Settings
) -> None:
    encrypted = _zip(tmp_path, {"set/a.png": PNG}, "enc.zip")
    _patched(encrypted, 6, 8, b"\x01\x00")  # general purpose flag bit 0: encrypted
    with pytest.raises(InvalidInput, match=r"set/a\.png is encrypted") as error:
        inspect_input(encrypted, settings)
    assert error.value.code == "invalid_zip"
    method = _zip(tmp_path, {"b.png": PNG}, "m99.zip")
    _patched(method, 8, 10, b"\x63\x00")  # compression method 99 (AES)
    with pytest.raises(InvalidInput, match=r"b\.png uses compression method 99"):
        inspect_input(method, settings)
    whole = _zip(tmp_path, {"c.png": PNG}, "whole.zip").read_bytes()
    truncated = tmp_path / "cut.zip"
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InvalidInput, match="truncated zip"):
        inspect_input(truncated, settings)


def test_too_many_images_are_refused_from_the_directory(tmp_path: Path, settings: Settings) -> None:
    many = _zip(tmp_path, {f"{i}.png": PNG for i in range(5)}, "many.zip")
    with pytest.raises(InvalidInput, match="holds 5 images; the limit is 3"):
        inspect_input(many, settings)


def test_members_keep_their_paths_and_output_names_stay_unique(
    tmp_path: Path, settings: Settings
) -> None:
    path = _zip(tmp_path, {"a/same.png": PNG, "b/same.png": PNG, "../up.png": PNG}, "dup.zip")
    images = inspect_input(path, settings)
    assert [i.name for i in images] == ["a/same.png", "b/same.png", "up.png"]
    assert images[0].read() == PNG  # members are read when asked for, one at a time
    names = ["a/same.png", "b/same.png", "same.png", "same.jpg", "same.png"]
    assert output_names(names, 4, "png") == [
        "a/same_x4.png",
        "b/same_x4.png",
        "same_x4.png",
        "same-2_x4.png",
        "same-3_x4.png",
    ]


def test_unreferenced_uploads_expire(tmp_path: Path, settings: Settings) -> None:
    settings = settings.model_copy(update={"input_retention_hours": 1.0})
    store = JobStore(settings.effective_jobs_db_url)
    ids = [save_input(settings, "a.png", io.BytesIO(PNG), 1 << 20)[0] for _ in range(3)]
    old = time.time() - 2 * 3600
    for input_id in ids[:2]:
        os.utime(settings.inputs_dir / input_id, (old, old))
    store.create("superres_batch", {"inputs": [ids[0]]})  # queued: its input stays
    assert referenced_inputs({"inputs": [ids[0]], "label_map": ids[1], "n": 3}) == set(ids[:2])
    assert purge_unreferenced_inputs(store, settings) == 1
    assert sorted(p.name for p in settings.inputs_dir.iterdir()) == sorted([ids[0], ids[2]])
