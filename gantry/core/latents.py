"""The latents a seed draws, for every model that takes a random code (style translators'
styles, unconditional generators' images): one definition, so serving, the export's probes
and the tests draw the same numbers."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def seeded_latents(latent_dim: int, seed: int, count: int = 1) -> NDArray[np.float32]:
    """``count`` latents of ``latent_dim`` standard normals from numpy's PCG64 seeded with
    ``seed``, (count, latent_dim) float32.

    Row ``i`` does not depend on ``count``: the first image of a batch of four is the image
    of the same seed alone.
    """
    draws = np.random.default_rng(seed).standard_normal((count, latent_dim))
    return draws.astype(np.float32)
