"""The catalog: resolution by task and version, and a published version seen at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from gantry.core.errors import InvalidInput, NotFound
from gantry.core.repository import ModelRepository
from gantry.serving.catalog import ModelCatalog
from tests.core.test_repository import NAME, _built


def test_resolve_by_task_and_version(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    repo.write_card(_built(1))
    catalog = ModelCatalog(tmp_path)
    assert catalog.resolve(NAME, task="superres").version == 1
    assert catalog.names("superres") == [NAME] and catalog.names("face_embedding") == []
    with pytest.raises(InvalidInput, match="available: realesr-animevideov3-x2") as wrong:
        catalog.resolve("nope", task="superres")
    assert wrong.value.code == "unknown_model"
    with pytest.raises(InvalidInput, match="no face_embedding model"):
        catalog.resolve(NAME, task="face_embedding")  # exists, but not for this task
    with pytest.raises(NotFound, match="versions: 1") as missing:
        catalog.resolve(NAME, task="superres", version=2)
    assert missing.value.code == "unknown_version"


def test_a_published_version_and_a_promotion_are_seen_without_a_restart(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    repo.write_card(_built(1))
    catalog = ModelCatalog(tmp_path)
    assert [m.versions.keys() for m in catalog.models()] == [{1}]
    repo.write_card(_built(2))
    assert catalog.resolve(NAME, task="superres", version=2).version == 2
    assert catalog.resolve(NAME, task="superres").version == 1
    repo.promote(NAME, 2)
    assert catalog.resolve(NAME, task="superres").version == 2
    assert catalog.defaults() == []  # the animevideov3-x2 card is not a default model
