"""The cards of every model Gantry builds and serves, by name, one module per family.

Adding a served model is adding a card (and, for new families, an architecture and an
importer); the exporter, ``config.pbtxt``, the pipelines and ``GET /v1/models`` follow from it.
Every constant of a model (anchors, normalisation, landmark template, chip size, threshold)
is written in its card here, once.
"""

from __future__ import annotations

from collections.abc import Callable

from gantry.core.cards import ModelCard
from gantry.core.registry import Registry

CARDS: Registry[Callable[[], ModelCard]] = Registry("model card")


def card(name: str) -> ModelCard:
    """The card registered as ``name``; the error lists the known names."""
    return CARDS.build(name)


def all_cards() -> list[ModelCard]:
    """Every registered card, in name order."""
    return [card(name) for name in CARDS.names()]


# Imported for their side effect: each module registers its family's cards in CARDS.
from trainer.catalog import (  # noqa: E402
    editing,
    faces,
    generation,
    restoration,
    superres,
    synthesis,
    translation,
)

__all__ = [
    "CARDS",
    "all_cards",
    "card",
    "editing",
    "faces",
    "generation",
    "restoration",
    "superres",
    "synthesis",
    "translation",
]
