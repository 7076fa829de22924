"""The models the gateway can serve: the built cards in the model repository."""

from __future__ import annotations

from pathlib import Path

from gantry.cards import BuiltCard, read_built_cards
from gateway.errors import GantryError


class ModelCatalog:
    """Built cards by name, read from ``model_repository/*/card.json``."""

    def __init__(self, repository: Path) -> None:
        self.repository = repository
        self._cards: dict[str, BuiltCard] = {}
        self.refresh()

    def refresh(self) -> None:
        """Re-read the repository (after `gantry models build`)."""
        self._cards = read_built_cards(self.repository)

    def all(self) -> list[BuiltCard]:
        return list(self._cards.values())

    def defaults(self) -> list[BuiltCard]:
        """Models that must be ready for the gateway to be ready."""
        return [c for c in self._cards.values() if c.card.default]

    def require(self, name: str, *, task: str) -> BuiltCard:
        """The card of ``name``; 422 ``unknown_model`` naming the models of that task."""
        built = self._cards.get(name)
        if built is None or built.card.task != task:
            known = sorted(n for n, c in self._cards.items() if c.card.task == task)
            raise GantryError(
                422,
                "unknown_model",
                f"no {task} model named {name!r}; available: {', '.join(known) or 'none'}"
                " (run `gantry models build`)",
            )
        return built
