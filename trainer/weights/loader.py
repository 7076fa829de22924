"""One entry point from a model card to a state_dict, whatever the weights' origin."""

from __future__ import annotations

from pathlib import Path

import torch

from gantry.cards import ModelCard

StateDict = dict[str, torch.Tensor]


def load_weights(card: ModelCard, checkpoint: Path | None = None) -> StateDict:
    """The card's weights: a user's official checkpoint if given, else the packaged ones.

    Args:
        card: the model card; ``card.weights.importer`` names the packaged source.
        checkpoint: an official upstream checkpoint (same state_dict keys), e.g. a
            Real-ESRGAN ``.pth`` with ``params_ema``.
    """
    from trainer.weights.realesrgan import load_official_checkpoint, state_dict_from_ncnn

    if checkpoint is not None:
        return load_official_checkpoint(checkpoint, card.architecture)
    if card.weights.importer == "ncnn":
        return state_dict_from_ncnn(card.architecture)
    raise KeyError(f"{card.name}: unknown weights importer {card.weights.importer!r}")
