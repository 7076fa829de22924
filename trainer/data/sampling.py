"""Which samples each step of each process sees: a pure function of (seed, step, rank); and
the seed each sample's own randomness (crops, jitter, blur, holes) is drawn from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from numpy.typing import NDArray


def sample_seed(index: int, held_aside_seed: int | None) -> int:
    """The seed of the next sample of ``index``: fixed by ``(held_aside_seed, index)`` for a
    held-aside sample (the same evaluation sample every time), else drawn from torch's global
    generator, which the training loop seeds per step (so a resumed run draws the same)."""
    if held_aside_seed is not None:
        return int(np.random.SeedSequence([held_aside_seed, index]).generate_state(1)[0])
    return int(torch.randint(0, 2**62, ()))


@dataclass
class StepSampler:
    """Epoch-wise shuffles without replacement, sharded across processes.

    Global sample ``g = (step * world + rank) * batch_size + k`` is position ``g % n`` of
    epoch ``g // n``'s permutation (seeded by ``(seed, epoch)``), so the processes of a
    distributed run see disjoint samples and a resumed run repeats nothing.
    """

    n: int
    batch_size: int
    seed: int
    rank: int = 0
    world: int = 1
    flip: bool = False
    _perms: dict[int, NDArray[np.int64]] = field(default_factory=dict, repr=False)

    def _perm(self, epoch: int) -> NDArray[np.int64]:
        if epoch not in self._perms:
            self._perms = {epoch: np.random.default_rng([self.seed, epoch]).permutation(self.n)}
        return self._perms[epoch]

    def batch(self, step: int) -> list[tuple[int, bool]]:
        """(sample index, flip) for each of the batch's samples at ``step``."""
        first = (step * self.world + self.rank) * self.batch_size
        picks = []
        for g in range(first, first + self.batch_size):
            index = int(self._perm(g // self.n)[g % self.n])
            # The flip of a global sample is fixed by the seed, whatever the batching.
            flip = self.flip and bool(np.random.default_rng([self.seed, g, 1]).integers(2))
            picks.append((index, flip))
        return picks
