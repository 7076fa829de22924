"""A small face embedder for comparing recognition losses on CPU (``face_embedder_small``).

Four stride-2 stages of two 3x3 conv-BN-PReLU layers (32, 64, 128, 128 channels) on a 64x64
crop, a dense layer to the embedding and a BatchNorm1d on it (insightface's "E" output: the
embedding is the BN output, not L2-normalised; losses and verification normalise it). About
0.8M parameters; the losses of trainer/losses/recognition.py train it the same way.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from trainer.archs import ARCHS

STAGES = (32, 64, 128, 128)


def _stage(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, 2, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.PReLU(out_channels),
        nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.PReLU(out_channels),
    )


class FaceEmbedder(nn.Module):
    """(N, 3, size, size) crops in [-1, 1] → (N, embedding_dim) embeddings."""

    def __init__(self, size: int = 64, embedding_dim: int = 128) -> None:
        super().__init__()
        widths = (3, *STAGES)
        self.features = nn.Sequential(*(_stage(a, b) for a, b in itertools.pairwise(widths)))
        side = size // 2 ** len(STAGES)
        self.embedding = nn.Linear(STAGES[-1] * side * side, embedding_dim)
        self.bn = nn.BatchNorm1d(embedding_dim)
        self.embedding_dim = embedding_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.embedding(self.features(x).flatten(1)))


@ARCHS.register()
def face_embedder_small(size: int = 64, embedding_dim: int = 128) -> FaceEmbedder:
    """The small CPU embedder the recognition-loss comparison trains."""
    return FaceEmbedder(size, embedding_dim)
