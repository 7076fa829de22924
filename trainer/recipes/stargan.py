"""StarGAN (Choi et al., CVPR 2018): one generator translating a face to any combination of
CelebA attributes, trained as yunjey/stargan's ``Solver.train`` does.

Networks: G (``G(x, c)``: the image and the target label vector, tiled) and D (a PatchGAN
critic ``D_src`` without sigmoid and an auxiliary classifier ``D_cls`` of the attributes),
from :mod:`trainer.archs.stargan`. G is the generator a run evaluates and exports
(``generator_key``).

**A loop step is one D update.** Each step draws a batch of real faces ``x`` with their
labels ``c_org`` (the selected attributes), and target labels ``c_trg`` as a random
permutation of the batch's own labels (yunjey's ``label_org[randperm]``: targets are label
combinations real faces have). Then:

1. D (every step): ``E[D_src(G(x, c_trg))] - E[D_src(x)]`` (WGAN), plus ``λ_cls`` times the
   classification loss of ``D_cls(x)`` against ``c_org``, plus ``λ_gp`` times the gradient
   penalty on random interpolates of ``x`` and ``G(x, c_trg)``
   (:func:`trainer.losses.gradient_penalty`, computed in float32 outside autocast).
2. G (on the steps where ``(step + 1) % n_critic == 0``, yunjey's ``(i + 1) % n_critic``):
   ``-E[D_src(G(x, c_trg))]``, plus ``λ_cls`` times the classification loss of
   ``D_cls(G(x, c_trg))`` against ``c_trg``, plus ``λ_rec`` times
   ``|G(G(x, c_trg), c_org) - x|₁``.

The classification loss is yunjey's for CelebA: binary cross-entropy with logits summed over
the attributes and averaged over the batch. The G-loss figures appear only on the steps G is
updated (so in the metric rows when ``log_every`` is a multiple of ``n_critic``). The
randomness (permutations, interpolation weights) comes from the global generator the loop
seeds per step, so a resumed run repeats the uninterrupted one exactly; there is no other
state to checkpoint.

**Labels.** :func:`create_labels` makes yunjey's test-time targets, one per attribute: a
hair colour is set and the other hair colours of the selection cleared (they are one
group), any other attribute is toggled. The samples and the evaluation use them.
:class:`LabelLayout` is StarGAN's mask vector for training on two datasets at once
(CelebA's attributes and RaFD's expressions): G reads ``[CelebA labels | second dataset's
one-hot | mask one-hot(2)]`` with the part of the other dataset zero and the mask saying
which part is known, and each dataset's classification loss reads only its own part of D's
outputs (:func:`classification_loss`). Gantry ships no second dataset, so a run with
``mask_vector`` trains the CelebA rows of that layout (mask ``[1, 0]``) only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gantry.core.training import StarGANConfig
from trainer.archs import build_network
from trainer.archs.stargan import StarGANDiscriminator, StarGANEditor, StarGANGenerator
from trainer.data import Sample, Split, TrainingDataset
from trainer.data.attributes import CelebAAttributes, labelled_faces
from trainer.distributed import unwrap
from trainer.evaluation import AttributeTranslationEvaluator
from trainer.losses import build_gan_loss, gradient_penalty
from trainer.recipes import RECIPES
from trainer.recipes.base import EVALUATION_DIR, Recipe
from trainer.weights.dlib import load_dlib_resnet

SAMPLE_ROWS = 4
CELEBA_SOURCE, SECOND_SOURCE = 0, 1  # the mask vector's one-hot positions


def hair_colour_indices(attributes: Sequence[str], hair_colours: Sequence[str]) -> list[int]:
    """Positions of the selected ``attributes`` that are hair colours (one group)."""
    return [i for i, name in enumerate(attributes) if name in hair_colours]


def create_labels(labels: torch.Tensor, hair: Sequence[int]) -> list[torch.Tensor]:
    """yunjey's ``create_labels`` for CelebA: one target per attribute of (N, c) 0/1 labels.

    Target ``i`` is ``labels`` with, when ``i`` is a hair colour (in ``hair``), hair colour
    ``i`` set and the other hair colours cleared; otherwise attribute ``i`` toggled.

    Returns:
        c tensors, each (N, c).
    """
    targets = []
    for i in range(labels.shape[1]):
        target = labels.clone()
        if i in hair:
            target[:, list(hair)] = 0
            target[:, i] = 1
        else:
            target[:, i] = 1 - target[:, i]
        targets.append(target)
    return targets


def random_targets(labels: torch.Tensor) -> torch.Tensor:
    """yunjey's training targets: the batch's labels in a random order (global generator)."""
    order = torch.randperm(labels.shape[0])
    return labels[order.to(labels.device)]


@dataclass(frozen=True)
class LabelLayout:
    """The label vectors of G and the outputs of D's classifier, with or without the mask.

    Without the mask vector, G reads the c CelebA labels and D classifies c attributes. With
    it (StarGAN's joint training), G reads ``c + c2 + 2`` values and D has ``c + c2``
    classifier outputs: CelebA's attributes first, then the second dataset's classes.

    Args:
        c_dim: CelebA attributes selected.
        c2_dim: classes of the second dataset (RaFD: 8); used only with the mask vector.
        mask_vector: use the joint layout.
    """

    c_dim: int
    c2_dim: int = 0
    mask_vector: bool = False

    @property
    def generator_dim(self) -> int:
        """Length of G's label input."""
        return self.c_dim + self.c2_dim + 2 if self.mask_vector else self.c_dim

    @property
    def classifier_dim(self) -> int:
        """Outputs of D's classifier."""
        return self.c_dim + self.c2_dim if self.mask_vector else self.c_dim

    def _check(self, source: int) -> None:
        if source == SECOND_SOURCE and not self.mask_vector:
            raise ValueError("a second label source needs the mask vector layout")
        if source not in (CELEBA_SOURCE, SECOND_SOURCE):
            raise ValueError(f"source must be {CELEBA_SOURCE} (CelebA) or {SECOND_SOURCE}")

    def generator_labels(self, labels: torch.Tensor, source: int = CELEBA_SOURCE) -> torch.Tensor:
        """G's label input from one dataset's labels.

        Args:
            labels: CelebA's (N, c_dim) 0/1 labels (``source`` 0), or the second dataset's
                (N,) class indices (``source`` 1).
            source: which dataset the labels are of.

        Returns:
            ``labels`` as they are without the mask vector; with it ``[celeba | second |
            mask]``, the other dataset's part zero and the mask one-hot at ``source``.
        """
        self._check(source)
        if not self.mask_vector:
            return labels
        n = labels.shape[0]
        mask = F.one_hot(torch.full((n,), source, device=labels.device), 2).float()
        if source == CELEBA_SOURCE:
            second = torch.zeros(n, self.c2_dim, device=labels.device)
            return torch.cat([labels.float(), second, mask], dim=1)
        celeba = torch.zeros(n, self.c_dim, device=labels.device)
        second = F.one_hot(labels.long(), self.c2_dim).float()
        return torch.cat([celeba, second, mask], dim=1)

    def classifier_part(self, logits: torch.Tensor, source: int = CELEBA_SOURCE) -> torch.Tensor:
        """The columns of D's (N, classifier_dim) logits that ``source``'s labels judge."""
        self._check(source)
        if source == CELEBA_SOURCE:
            return logits[:, : self.c_dim]
        return logits[:, self.c_dim : self.c_dim + self.c2_dim]


def classification_loss(
    logits: torch.Tensor, labels: torch.Tensor, layout: LabelLayout, source: int = CELEBA_SOURCE
) -> torch.Tensor:
    """StarGAN's domain classification loss on the labelled dataset's part of D's outputs.

    CelebA (``source`` 0): binary cross-entropy with logits, summed over the attributes and
    averaged over the batch (yunjey's ``size_average=False`` sum divided by N). The second
    dataset (``source`` 1, mask vector only): cross-entropy over its classes, ``labels``
    being (N,) class indices. The other dataset's outputs get no gradient.
    """
    part = layout.classifier_part(logits, source)
    if source == CELEBA_SOURCE:
        bce = F.binary_cross_entropy_with_logits(part, labels.float(), reduction="sum")
        return bce / logits.shape[0]
    return F.cross_entropy(part, labels.long())


@RECIPES.register("stargan")
class StarGANRecipe(Recipe):
    """G and D (critic + attribute classifier), WGAN-GP + classification + reconstruction."""

    config_type = StarGANConfig
    config: StarGANConfig
    generator_key = "G"

    def build(self) -> None:
        cfg = self.config
        second = cfg.second_label_dim if cfg.mask_vector else 0
        self.layout = LabelLayout(len(cfg.attributes), second, cfg.mask_vector)
        # yunjey's order of construction: G, then D.
        g = build_network(cfg.generator, c_dim=self.layout.generator_dim)
        d = build_network(
            cfg.discriminator, c_dim=self.layout.classifier_dim, image_size=cfg.data.size
        )
        self.add("G", g, self.adam(g))
        self.add("D", d, self.adam(d))
        self.gan_loss = build_gan_loss("wgan")
        self.hair = hair_colour_indices(cfg.attributes, cfg.hair_colours)
        self._train = self._faces("train")
        self._columns = torch.tensor(self._train.columns(cfg.attributes), device=self.device)
        val = self._faces("val")
        count = min(cfg.data.val_images, len(val))
        val_labels = val.selected(cfg.attributes)
        self._val_images = val.images()
        self._val_labels = val_labels
        self.evaluator = AttributeTranslationEvaluator(
            self._train.faces(),
            self._train.selected(cfg.attributes),
            self._val_images,
            val_labels,
            names=cfg.attributes,
            targets=create_labels(val_labels[:count], self.hair),
            count=count,
            load_embedder=load_dlib_resnet,
            condition=self.layout.generator_labels,
            cache_dir=self.run_dir / EVALUATION_DIR if self.run_dir is not None else None,
            device=self.device,
        )

    def _faces(self, split: Split) -> CelebAAttributes:
        cfg = self.config
        return labelled_faces(
            cfg.data.dataset, self.data_dir, split, cfg.data.size, family="stargan"
        )

    def train_dataset(self) -> TrainingDataset:
        return self._train

    def generator_architecture(self) -> str:
        """The editor of G and D (:class:`~trainer.archs.stargan.StarGANEditor`)."""
        return f"{self.config.generator}_editor"

    def served_network(self, generator: nn.Module) -> nn.Module:
        """G with D's attribute classifier, as a face editor."""
        cfg = self.config
        g, d = unwrap(generator), unwrap(self.networks["D"])
        if not isinstance(g, StarGANGenerator) or not isinstance(d, StarGANDiscriminator):
            raise TypeError(f"stargan serves yunjey's G and D, not {type(g).__name__}")
        second = cfg.second_label_dim if cfg.mask_vector else 0
        return StarGANEditor(g, d, c_dim=len(cfg.attributes), second_label_dim=second)

    def is_generator_step(self, step: int) -> bool:
        """Whether G is updated at (0-based) ``step``: every ``n_critic``-th D update."""
        return (step + 1) % self.config.n_critic == 0

    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        cfg, layout = self.config, self.layout
        g, d = self.networks["G"], self.networks["D"]
        x_real = batch["image"]
        label_org = batch["attributes"].index_select(1, self._columns)
        label_trg = random_targets(label_org)
        c_org, c_trg = layout.generator_labels(label_org), layout.generator_labels(label_trg)

        # 1. D: critic on real and fake, classifier on real, gradient penalty.
        with self.autocast():
            with torch.no_grad():  # D's step does not reach G (yunjey detaches)
                x_fake = g(x_real, c_trg)
            real_src, real_cls = d(x_real)
            fake_src, _ = d(x_fake)
            d_adv = self.gan_loss.discriminator(real_src.float(), fake_src.float())
            d_cls = classification_loss(real_cls.float(), label_org, layout)
        d_gp = gradient_penalty(lambda x: d(x)[0], x_real, x_fake.float(), lambda_gp=1.0)
        self.optimize("D", d_adv + cfg.lambda_cls * d_cls + cfg.lambda_gp * d_gp)
        losses = {"d_adv": d_adv.item(), "d_cls": d_cls.item(), "d_gp": d_gp.item()}
        if not self.is_generator_step(step):
            return losses

        # 2. G: fool the critic, be classified as the target, reconstruct the input.
        self.set_requires_grad(False, "D")
        with self.autocast():
            x_fake = g(x_real, c_trg)
            fake_src, fake_cls = d(x_fake)
            g_adv = self.gan_loss.generator(fake_src.float())
            g_cls = classification_loss(fake_cls.float(), label_trg, layout)
            g_rec = F.l1_loss(g(x_fake, c_org).float(), x_real)
        self.optimize("G", g_adv + cfg.lambda_cls * g_cls + cfg.lambda_rec * g_rec)
        self.set_requires_grad(True, "D")
        return losses | {"g_adv": g_adv.item(), "g_cls": g_cls.item(), "g_rec": g_rec.item()}

    def evaluate(self, generator: nn.Module) -> dict[str, float]:
        """Target-attribute accuracy, identity kept and reconstruction on the held-aside
        faces (see :mod:`trainer.evaluation.attribute_translation`)."""
        return self.evaluator(generator)

    @torch.no_grad()
    def samples(self, generator: nn.Module) -> list[list[torch.Tensor]]:
        """Per held-aside face, yunjey's sample row: the face, then one translation per
        attribute (:func:`create_labels`)."""
        device = next(unwrap(generator).parameters()).device
        faces = self._val_images[:SAMPLE_ROWS].to(device)
        targets = create_labels(self._val_labels[:SAMPLE_ROWS].to(device), self.hair)
        columns = [generator(faces, self.layout.generator_labels(t)).float() for t in targets]
        return [[face, *(c[r] for c in columns)] for r, face in enumerate(faces)]
