"""Measures of a multi-domain, style-guided face translator (StarGAN v2) on held-aside faces,
without paired truth: is the output of the target domain, and is it still the same person,
whether the style came from a random latent code or from a reference face?

The translator is a module ``translator(image, reference, z, domain, use_reference)``
(:class:`~trainer.archs.stargan_v2.StarGANv2`'s serving forward). Each of the first
``count`` held-aside faces is translated to each domain other than its own, twice:

* **latent-guided**: with a latent code ``z`` drawn once from a seeded generator (the same
  codes at every evaluation of a run, and in every run with that seed);
* **reference-guided**: with a held-aside face of the target domain as the reference (for
  source ``j`` and target ``k``, the ``j mod n_k``-th held-aside face of domain ``k``:
  another person, since it has another hair colour).

Figures:

* ``val_domain_acc_latent`` / ``val_domain_acc_reference``: the share of translations a
  domain classifier (one logit per domain, trained on the real training faces,
  :func:`~trainer.evaluation.domain_classifier.train_multi_domain_classifier`; its largest
  logit is its answer) puts in the target domain; ``..._<domain>`` per target domain.
  ``classifier_real_acc`` is its balanced accuracy (mean per-domain recall) on all
  held-aside real faces, the ceiling; ``classifier_real_acc_<domain>`` its recall per
  domain. A translator that copies its input scores about the share of faces the classifier
  misjudges as the target.
* ``val_identity_cos_latent`` / ``val_identity_cos_reference``: the mean dlib-descriptor
  cosine between each source face and its translation; ``val_identity_cos`` their mean.
  ``identity_cos_other_people`` is the same cosine between neighbouring held-aside faces:
  the floor an identity-destroying translator sits near.
* ``val_latent_diversity_l1``: the mean absolute difference, in [-1, 1] units, between
  two latent-guided translations of a face with two different codes: what the diversity
  sensitive loss asks to be large (0 for a translator that ignores z).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from trainer.evaluation.domain_classifier import cached_multi_domain_classifier
from trainer.evaluation.identity import other_people_cosine
from trainer.evaluation.judged import JudgedEvaluator

BATCH = 32


@torch.no_grad()
def classify(classifier: nn.Module, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """The class of each of ``images`` (N, 3, H, W) by a one-logit-per-class ``classifier``
    (eval mode): the largest logit's index, (N,) int64 on the CPU."""
    device = next(classifier.parameters()).device
    logits = [classifier(chunk.to(device)).float().cpu() for chunk in images.split(batch_size)]
    return torch.cat(logits).argmax(1)


@torch.no_grad()
def translate_styled(
    translator: nn.Module,
    images: torch.Tensor,
    references: torch.Tensor,
    z: torch.Tensor,
    domains: torch.Tensor,
    use_reference: float,
    device: torch.device,
    batch_size: int = BATCH,
) -> torch.Tensor:
    """``translator(image, reference, z, one_hot(domain), use_reference)`` (eval mode, on
    ``device``) over N images in batches; float32 on the CPU.

    Args:
        translator: the serving module.
        images: (N, 3, S, S) sources in [-1, 1].
        references: (N, 3, S, S) references in [-1, 1].
        z: (N, latent_dim) latent codes.
        domains: (N,) target domain indices.
        use_reference: 1.0 for reference-guided, 0.0 for latent-guided, for every image.
        device: where the translator runs.
        batch_size: images per forward pass.
    """
    k = int(getattr(translator, "num_domains", int(domains.max()) + 1))
    out = []
    for start in range(0, len(images), batch_size):
        part = slice(start, start + batch_size)
        n = len(images[part])
        out.append(
            translator(
                images[part].to(device),
                references[part].to(device),
                z[part].to(device),
                F.one_hot(domains[part], k).float().to(device),
                torch.full((n, 1), use_reference, device=device),
            )
            .float()
            .cpu()
        )
    return torch.cat(out)


class StyleTranslationEvaluator(JudgedEvaluator):
    """Domain accuracy, identity kept and latent diversity, for a StarGAN v2 translator.

    The classifier (trained, or read from ``cache_dir``) and the embedder are made on the
    first call, so a process that never evaluates never pays for them; the descriptors of
    the held-aside faces are computed once.

    Args:
        train_faces: real training faces (N, 3, H, W), uint8 or float in [-1, 1].
        train_domains: their (N,) domain indices.
        val_faces: held-aside faces (M, 3, H, W) in [-1, 1].
        val_domains: their (M,) domain indices (every domain present).
        names: the K domain names (the figures' suffixes, lower-cased).
        count: held-aside faces translated (the first ``count``; the classifier's accuracy
            uses all M).
        latent_dim: length of the translator's latent codes.
        load_embedder: returns the dlib ResNet with its weights, in eval mode.
        cache_dir: where the classifier's weights are cached (None: not cached).
        device: where the networks run.
        seed: seeds the latent codes.

    Raises:
        ValueError: a domain without held-aside faces (it could not be a reference).
    """

    def __init__(
        self,
        train_faces: torch.Tensor,
        train_domains: torch.Tensor,
        val_faces: torch.Tensor,
        val_domains: torch.Tensor,
        *,
        names: Sequence[str],
        count: int,
        latent_dim: int,
        load_embedder: Callable[[], nn.Module],
        cache_dir: Path | None = None,
        device: torch.device | None = None,
        seed: int = 0,
    ) -> None:
        self.names = [n.lower() for n in names]
        k = len(self.names)
        by_domain = [torch.nonzero(val_domains == d).flatten() for d in range(k)]
        if any(len(ids) == 0 for ids in by_domain):
            raise ValueError(f"every domain needs held-aside faces: {self.names}")
        self.train_faces, self.train_domains = train_faces, train_domains.long()
        self.val_faces, self.val_domains = val_faces, val_domains.long()
        self.count = min(count, len(val_faces))
        super().__init__(load_embedder=load_embedder, cache_dir=cache_dir, device=device)
        # Every (source, other domain) pair, its reference and its two latent codes.
        sources, targets, references = [], [], []
        for j in range(self.count):
            for d in range(k):
                if d != int(self.val_domains[j]):
                    sources.append(j)
                    targets.append(d)
                    references.append(int(by_domain[d][j % len(by_domain[d])]))
        self.sources = torch.tensor(sources, dtype=torch.int64)
        self.targets = torch.tensor(targets, dtype=torch.int64)
        self.references = torch.tensor(references, dtype=torch.int64)
        generator = torch.Generator().manual_seed(seed)
        self.z = torch.randn(len(sources), latent_dim, generator=generator)
        self.z2 = torch.randn(len(sources), latent_dim, generator=generator)

    def train_classifier(self) -> nn.Module:
        """The domain classifier."""
        return cached_multi_domain_classifier(
            self.train_faces, self.train_domains, self.cache_dir, device=self.device
        )

    def real_accuracy(self) -> torch.Tensor:
        """Recall per domain of the classifier on all held-aside real faces, (K,)."""
        said = classify(self.classifier, self.val_faces)
        return torch.stack(
            [(said[self.val_domains == d] == d).float().mean() for d in range(len(self.names))]
        )

    def _accuracy(self, said: torch.Tensor, prefix: str, figures: dict[str, float]) -> None:
        hit = (said == self.targets).float()
        figures[prefix] = float(hit.mean())
        for d, name in enumerate(self.names):
            figures[f"{prefix}_{name}"] = float(hit[self.targets == d].mean())

    def __call__(self, translator: nn.Module) -> dict[str, float]:
        """The figures for ``translator`` (eval mode)."""
        real = self.real_accuracy()
        figures = {"classifier_real_acc": float(real.mean())}
        for name, recall in zip(self.names, real, strict=True):
            figures[f"classifier_real_acc_{name}"] = float(recall)
        directions = self.identity.sources("val", self.val_faces[: self.count])
        figures["identity_cos_other_people"] = float(other_people_cosine(directions).mean())

        images = self.val_faces[self.sources]
        references = self.val_faces[self.references]
        targets, device = self.targets, self.device
        latent = translate_styled(translator, images, references, self.z, targets, 0.0, device)
        latent2 = translate_styled(translator, images, references, self.z2, targets, 0.0, device)
        styled = translate_styled(translator, images, references, self.z, targets, 1.0, device)
        self._accuracy(classify(self.classifier, latent), "val_domain_acc_latent", figures)
        self._accuracy(classify(self.classifier, styled), "val_domain_acc_reference", figures)
        kept_latent = self.identity.kept(directions[self.sources], latent)
        kept_reference = self.identity.kept(directions[self.sources], styled)
        figures["val_identity_cos_latent"] = float(kept_latent.mean())
        figures["val_identity_cos_reference"] = float(kept_reference.mean())
        figures["val_identity_cos"] = float(torch.cat([kept_latent, kept_reference]).mean())
        figures["val_latent_diversity_l1"] = float((latent - latent2).abs().mean())
        return figures
