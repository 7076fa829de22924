"""The versioned repository layout: versions, the default version, promote, the fingerprint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gantry.core.cards import BuiltCard
from gantry.core.repository import CARD_FILE, ModelRepository
from tests.serving.builds import built
from trainer.catalog import card

NAME = "realesr-animevideov3-x2"


def _built(version: int) -> BuiltCard:
    return built(card(NAME), version)


def test_versions_default_and_promote(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    assert repo.names() == [] and repo.default_version(NAME) is None
    assert repo.next_version(NAME) == 1
    repo.write_card(_built(1))
    (tmp_path / NAME / "3").mkdir()  # a half-built version (no card yet) is not a version
    assert repo.versions(NAME) == [1] and repo.next_version(NAME) == 4
    repo.write_card(_built(2))
    assert repo.versions(NAME) == [1, 2]
    assert repo.default_version(NAME) == 1  # never promoted: the first version
    repo.promote(NAME, 2)
    assert repo.default_version(NAME) == 2 and repo.read(NAME, 2).version == 2
    assert repo.default_cards()[NAME].version == 2
    with pytest.raises(FileNotFoundError, match="no built version 5"):
        repo.promote(NAME, 5)
    # A promoted version that disappears falls back to the first, not to an error.
    (tmp_path / NAME / "2" / CARD_FILE).unlink()
    assert repo.default_version(NAME) == 1


def test_signature_moves_with_every_write(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    repo.write_card(_built(1))
    before = repo.signature()
    assert repo.signature() == before
    repo.write_card(_built(2))
    after_publish = repo.signature()
    assert after_publish != before
    # mtimes can tie within the filesystem's resolution: age the directory first.
    os.utime(tmp_path / NAME, ns=(1, 1))
    aged = repo.signature()
    repo.promote(NAME, 2)
    assert repo.signature() != aged
