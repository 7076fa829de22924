"""The layout of a Triton model repository with Gantry's versions and cards.

::

    <root>/<name>/config.pbtxt            written from the card (trainer.export)
    <root>/<name>/release.json            {"default": <version>}: the promoted version
    <root>/<name>/<version>/model.onnx    (or model.plan)
    <root>/<name>/<version>/card.json     that version's card and build record

Triton reads the first and third; Gantry reads the cards and the release file. Every write is
a write-then-rename, so a reader (the gateway, a worker, Triton) never sees half a file.
A model that was never promoted defaults to its first version: publishing a new version
makes it callable, promoting it makes it the default (and a rollback is a promote).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gantry.core.cards import BuiltCard
from gantry.core.files import atomic_write

CARD_FILE = "card.json"
CONFIG_FILE = "config.pbtxt"
RELEASE_FILE = "release.json"


@dataclass(frozen=True)
class ModelRepository:
    """A model repository on disk."""

    root: Path

    def model_dir(self, name: str) -> Path:
        return self.root / name

    def version_dir(self, name: str, version: int) -> Path:
        return self.root / name / str(version)

    def names(self) -> list[str]:
        """Models with at least one built version, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, name: str) -> list[int]:
        """Built versions of ``name`` (numeric directories holding a card), ascending."""
        folder = self.model_dir(name)
        if not folder.is_dir():
            return []
        return sorted(
            int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / CARD_FILE).is_file()
        )

    def next_version(self, name: str) -> int:
        """The version a new build of ``name`` gets: one above every existing directory."""
        folder = self.model_dir(name)
        taken = (
            [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
        )
        return max(taken, default=0) + 1

    def read(self, name: str, version: int) -> BuiltCard:
        """The card of one version."""
        return BuiltCard.read(self.version_dir(name, version) / CARD_FILE)

    def write_card(self, built: BuiltCard) -> Path:
        """Store a version's card (its model file must already be in place)."""
        path = self.version_dir(built.name, built.version) / CARD_FILE
        return atomic_write(path, built.model_dump_json(indent=2) + "\n")

    def default_cards(self) -> dict[str, BuiltCard]:
        """The card of every model's default version, by name."""
        cards = {}
        for name in self.names():
            version = self.default_version(name)
            if version is not None:
                cards[name] = self.read(name, version)
        return cards

    def promoted(self, name: str) -> int | None:
        """The version set by :meth:`promote`, if any."""
        path = self.model_dir(name) / RELEASE_FILE
        try:
            value = json.loads(path.read_text())["default"]
        except (FileNotFoundError, KeyError, ValueError, TypeError):
            return None
        return int(value) if isinstance(value, int) else None

    def default_version(self, name: str) -> int | None:
        """The promoted version while it exists, else the first; None without versions."""
        versions = self.versions(name)
        promoted = self.promoted(name)
        if promoted in versions:
            return promoted
        return versions[0] if versions else None

    def promote(self, name: str, version: int) -> None:
        """Make ``version`` the default of ``name``.

        Raises:
            FileNotFoundError: no such built version.
        """
        if version not in self.versions(name):
            raise FileNotFoundError(f"{name} has no built version {version}")
        atomic_write(self.model_dir(name) / RELEASE_FILE, json.dumps({"default": version}) + "\n")

    def signature(self) -> tuple[tuple[str, int], ...]:
        """A cheap fingerprint that changes whenever a version, card or release changes.

        Directory mtimes move when an entry is added, removed or renamed into them, which
        is how every write here lands (atomic renames).
        """
        if not self.root.is_dir():
            return ()
        stamps = [("", self.root.stat().st_mtime_ns)]
        for model in self.root.iterdir():
            if not model.is_dir():
                continue
            stamps.append((model.name, model.stat().st_mtime_ns))
            for version in model.iterdir():
                if version.name.isdigit():
                    stamps.append((f"{model.name}/{version.name}", version.stat().st_mtime_ns))
        return tuple(sorted(stamps))
