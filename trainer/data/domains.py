"""Domains of CelebA faces by attribute (StarGAN v2's hair colours): each face that has
exactly one of the chosen attributes is in that attribute's domain."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from trainer.data import Sample
from trainer.data.attributes import CelebAAttributes
from trainer.data.paired import to_tensor


class AttributeDomains:
    """The faces of a :class:`CelebAAttributes` split with exactly one of ``names``, each
    in the domain of that attribute (StarGAN v2's hair colours: black, blond, brown).

    A face with none of the attributes, or with two (a few are labelled both black- and
    brown-haired), is in no domain. Indexing is class-balanced, as clovaai's training
    loaders are (a ``WeightedRandomSampler`` with weights ``1 / class size``): the length
    is ``K * (largest domain)``, and index ``i`` is face ``(i // K) mod n_k`` of domain
    ``k = i mod K``, so an epoch of the step sampler sees each domain equally often (the
    smaller ones' faces repeated).

    A sample is ``{"image": (3, S, S) in [-1, 1], "domain": () int64}``.

    Args:
        faces: the split.
        names: the K attributes, one domain each.

    Attributes:
        members: (M,) positions in ``faces`` of the faces in a domain, in the split's order
            (the held-aside split's interleaving of hair colours is kept).
        domains: (M,) their domain indices.
        by_domain: per domain, the positions in ``faces`` of its faces, in the split's order.

    Raises:
        ValueError: a domain without faces.
    """

    def __init__(self, faces: CelebAAttributes, names: Sequence[str]) -> None:
        self.faces = faces
        self.names = list(names)
        labels = faces.selected(names).numpy() > 0.5
        single = labels.sum(1) == 1
        self.members = np.flatnonzero(single)
        self.domains = labels[self.members].argmax(1)
        self.by_domain = [self.members[self.domains == k] for k in range(len(self.names))]
        empty = [n for n, ids in zip(self.names, self.by_domain, strict=True) if not len(ids)]
        if empty:
            raise ValueError(f"no face has exactly one of {self.names} and is {empty[0]}")

    def __len__(self) -> int:
        return len(self.names) * max(len(ids) for ids in self.by_domain)

    def sample(self, index: int, flip: bool = False) -> Sample:
        """The balanced index's face (see the class docstring) and its domain."""
        k = index % len(self.names)
        ids = self.by_domain[k]
        face = int(ids[(index // len(self.names)) % len(ids)])
        return {
            "image": to_tensor(self.faces.faces_uint8[face], flip),
            "domain": torch.tensor(k, dtype=torch.int64),
        }

    def domain_faces(self, k: int) -> torch.Tensor:
        """Domain ``k``'s faces, (n_k, 3, S, S) uint8."""
        return self.faces.faces()[torch.from_numpy(self.by_domain[k])]

    def images(self, count: int | None = None) -> torch.Tensor:
        """The first ``count`` (default all) faces in a domain, (n, 3, S, S) in [-1, 1]."""
        picks = torch.from_numpy(self.members[:count])
        return self.faces.faces()[picks].float() / 127.5 - 1

    def labels(self, count: int | None = None) -> torch.Tensor:
        """Their domain indices, (n,) int64."""
        return torch.from_numpy(self.domains[:count]).long()
