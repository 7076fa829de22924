"""GeneGAN (Zhou et al., BMVC 2017): one CelebA attribute moved between faces by swapping one
part of their encodings, trained as Prinsphield/GeneGAN's ``model.py`` and ``train.py`` do.

Networks (:mod:`trainer.archs.genegan`): ``G``, the splitter and joiner as a
:class:`~trainer.archs.genegan.GeneGANCrossover` (the network a run evaluates and exports,
``generator_key``: its state_dict is the served :class:`~trainer.archs.genegan.GeneGAN`'s),
and two WGAN critics: ``D_Au`` (upstream's ``D_Ax``) judges faces with the attribute, real
``Au`` against ``Bu``; ``D_B0`` (``D_Be``) judges faces without it, real ``B0`` against
``A0``.

Each sample is a face with the attribute, ``Au``, and an unrelated one without, ``B0``
(:class:`~trainer.data.attributes.AttributePairs`). The splitter encodes them into ``(A, u)``
and ``(B, ε)``; the "0" of ``B0`` is enforced: its attribute part is replaced by zeros
wherever it is decoded, and the nulling loss drives ``ε`` itself to zero. Then
``Au' = joiner(A, u)``, ``B0' = joiner(B, 0)`` (reconstructions) and the swaps
``A0 = joiner(A, 0)``, ``Bu = joiner(B, u)``.

**A loop step is one critic update.** Upstream's iteration ``i`` makes 100 critic updates
when ``i % 500 == 0`` and one otherwise, each on a fresh batch, then one G update; here each
step's batch feeds one update of both critics, and G is updated on the last critic step of
each iteration (:meth:`GeneGANRecipe.is_generator_step`), on that step's batch.

1. Critics (every step): ``E[D_Au(Bu)] - E[D_Au(Au)] + E[D_B0(A0)] - E[D_B0(B0)]`` (WGAN,
   the swaps made without gradient), one RMSProp step over both, then every critic weight
   clipped to ``±clip`` (upstream clips all of the critics' variables, batch norm's
   included; ``fct``'s bias never moves: this loss gives it the gradient 1 - 1).
2. G (on G steps): ``λ_nulling · mean|ε| + λ_rec · (|Au' - Au| + |B0' - B0|) - λ_adv ·
   (E[D_Au(Bu)] + E[D_B0(A0)]) + λ_parallelogram · mean|Au + B0 - A0 - Bu|`` plus the weight
   decay ``0.5 · weight_decay · mean(W²)`` of each splitter and joiner kernel (upstream's
   ``G*/W`` variables), one RMSProp step. Pixel terms are L1 means of images in [0, 1]
   (upstream's ``/ 255``), so the parallelogram weight 2.55 is upstream's 0.01 on [0, 255].

Every weight defaults to upstream's (``lambda_adv`` 1); the shipped config raises
``lambda_adv`` to 100 for its short CPU run (its header says why). ``gan_loss``, ``clip``
and ``optimizer`` default to upstream's WGAN, 0.01 and RMSProp; the paper writes the log-D
GAN loss instead, which ``gan_loss: nonsaturating`` with ``clip: null`` (and ``optimizer:
adam``) trains. Not here from upstream: its fresh batch for every
critic update and for the G update (G reuses the last critic step's batch), and its RMSProp's
squared-gradient average starting at 1 (TensorFlow's; PyTorch's starts at 0).

Batch norm is in training mode for every call of a training step, each call on its own
batch's statistics, as in upstream's graph; evaluation and the served module use the running
statistics. The randomness is the data's alone (no pools, no noise), so a resumed run
repeats the uninterrupted one without extra state.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gantry.core.training import GeneGANConfig
from trainer.archs import build_network
from trainer.archs.genegan import Crossover, GeneGAN, GeneGANCrossover
from trainer.data import Sample, Split, TrainingDataset
from trainer.data.attributes import AttributePairs, CelebAAttributes, labelled_faces
from trainer.distributed import unwrap
from trainer.evaluation import AttributeSwapEvaluator
from trainer.losses import build_gan_loss, clip_weights
from trainer.recipes import RECIPES
from trainer.recipes.base import EVALUATION_DIR, Recipe
from trainer.weights.dlib import load_dlib_resnet

SAMPLE_ROWS = 4
# TensorFlow's RMSPropOptimizer epsilon (upstream leaves it at its default).
RMSPROP_EPS = 1e-10
CRITICS = ("D_Au", "D_B0")


def unit_l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of [-1, 1] images in [0, 1] units (upstream's ``/ 255`` of
    its [0, 255] images)."""
    return F.l1_loss(x, y) / 2


def parallelogram_loss(
    au: torch.Tensor, b0: torch.Tensor, a0: torch.Tensor, bu: torch.Tensor
) -> torch.Tensor:
    """GeneGAN's parallelogram loss ``mean|Au + B0 - A0 - Bu|``, in [0, 1] pixel units: the
    swap of the attribute should add to one face what it takes from the other."""
    return (au + b0 - a0 - bu).abs().mean() / 2


def kernel_decay(generator: nn.Module, weight_decay: float) -> torch.Tensor:
    """Upstream's G weight decay: ``Σ 0.5 · weight_decay · mean(W²)`` over the conv and
    transposed-conv kernels (not batch norm, not the joiner's bias)."""
    kernels = [
        m.weight for m in generator.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)
    ]
    return 0.5 * weight_decay * torch.stack([w.pow(2).mean() for w in kernels]).sum()


def swapper(generator: nn.Module) -> GeneGAN:
    """The served module over a run's generator (the crossover or its EMA), parts shared.

    Raises:
        TypeError: ``generator`` is not a :class:`GeneGANCrossover`.
    """
    inner = unwrap(generator)
    if not isinstance(inner, GeneGANCrossover):
        raise TypeError(f"genegan evaluates a GeneGANCrossover, got {type(inner).__name__}")
    return inner.generator()


@RECIPES.register("genegan")
class GeneGANRecipe(Recipe):
    """Splitter + joiner (one G), two weight-clipped WGAN critics, RMSProp; nulling,
    reconstruction, adversarial and parallelogram losses."""

    config_type = GeneGANConfig
    config: GeneGANConfig
    generator_key = "G"

    def build(self) -> None:
        cfg = self.config
        # Upstream's order of construction: splitter, joiner, then D_Ax and D_Be.
        generator = build_network(cfg.generator, second_ratio=cfg.second_ratio)
        if not isinstance(generator, GeneGAN):
            raise TypeError(f"{cfg.generator} is not a GeneGAN generator")
        critics = [build_network(cfg.discriminator, image_size=cfg.data.size) for _ in CRITICS]
        self.add("G", GeneGANCrossover.of(generator), None)
        for name, critic in zip(CRITICS, critics, strict=True):
            self.add(name, critic, None)
        self.add_optimizer("G", self.optimizer(generator))
        self.add_optimizer("D", self.optimizer(*critics))
        self.gan_loss = build_gan_loss(cfg.gan_loss)
        self._train = AttributePairs(self._faces("train"), cfg.attribute)
        val = AttributePairs(self._faces("val"), cfg.attribute)
        self._val_with = val.faces_with().float() / 127.5 - 1
        self._val_without = val.faces_without().float() / 127.5 - 1
        count = min(cfg.data.val_images, len(self._val_with), len(self._val_without))
        self.evaluator = AttributeSwapEvaluator(
            self._train.faces_with(),
            self._train.faces_without(),
            self._val_with,
            self._val_without,
            count=count,
            load_embedder=load_dlib_resnet,
            cache_dir=self.run_dir / EVALUATION_DIR if self.run_dir is not None else None,
            device=self.device,
        )

    def optimizer(self, *modules: nn.Module) -> torch.optim.Optimizer:
        """Upstream's RMSProp at the config's rate (decay ``rmsprop_decay``, no momentum,
        TensorFlow's epsilon), or Adam with the config's rate and betas."""
        cfg = self.config
        if cfg.optimizer == "adam":
            return self.adam(*modules)
        params = [p for m in modules for p in m.parameters()]
        return torch.optim.RMSprop(
            params, lr=cfg.optim.lr, alpha=cfg.rmsprop_decay, eps=RMSPROP_EPS
        )

    def _faces(self, split: Split) -> CelebAAttributes:
        cfg = self.config
        return labelled_faces(
            cfg.data.dataset, self.data_dir, split, cfg.data.size, family="genegan"
        )

    def train_dataset(self) -> TrainingDataset:
        return self._train

    def generator_architecture(self) -> str:
        return self.config.generator

    def is_generator_step(self, step: int) -> bool:
        """Whether G is updated at (0-based) ``step``: the last critic update of an iteration.

        Every ``burst_every`` iterations form a cycle of ``critic_burst + burst_every - 1``
        steps: the first iteration's ``critic_burst`` critic updates, then one per iteration.
        """
        cfg = self.config
        position = step % (cfg.critic_burst + cfg.burst_every - 1)
        return position >= cfg.critic_burst - 1

    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        cfg = self.config
        g, d_au, d_b0 = self.networks["G"], self.networks["D_Au"], self.networks["D_B0"]
        au, b0 = batch["au"], batch["b0"]

        # 1. Critics: real faces of each set against the swaps into it.
        with self.autocast():
            with torch.no_grad():  # the critics' step does not reach G
                fake: Crossover = g(au, b0)
            d_au_loss = self.gan_loss.discriminator(d_au(au).float(), d_au(fake.bu).float())
            d_b0_loss = self.gan_loss.discriminator(d_b0(b0).float(), d_b0(fake.a0).float())
        self.optimize("D", d_au_loss + d_b0_loss)
        if cfg.clip is not None:
            for name in CRITICS:
                clip_weights(unwrap(self.networks[name]), cfg.clip)
        losses = {"d_au": d_au_loss.item(), "d_b0": d_b0_loss.item()}
        if not self.is_generator_step(step):
            return losses

        # 2. G: null ε, reconstruct both faces, fool both critics, close the parallelogram.
        self.set_requires_grad(False, *CRITICS)
        with self.autocast():
            out: Crossover = g(au, b0)
            nulling = out.epsilon.float().abs().mean()
            rec_au = unit_l1(out.au_rec.float(), au)
            rec_b0 = unit_l1(out.b0_rec.float(), b0)
            needs_real = self.gan_loss.generator_needs_real
            adv_bu = self.gan_loss.generator(
                d_au(out.bu).float(), d_au(au).float() if needs_real else None
            )
            adv_a0 = self.gan_loss.generator(
                d_b0(out.a0).float(), d_b0(b0).float() if needs_real else None
            )
            parallelogram = parallelogram_loss(au, b0, out.a0.float(), out.bu.float())
        decay = kernel_decay(unwrap(g), cfg.weight_decay)
        loss = (
            cfg.lambda_nulling * nulling
            + cfg.lambda_rec * (rec_au + rec_b0)
            + cfg.lambda_adv * (adv_bu + adv_a0)
            + cfg.lambda_parallelogram * parallelogram
            + decay
        )
        self.optimize("G", loss)
        self.set_requires_grad(True, *CRITICS)
        return losses | {
            "g_nulling": nulling.item(),
            "g_rec_au": rec_au.item(),
            "g_rec_b0": rec_b0.item(),
            "g_adv_bu": adv_bu.item(),
            "g_adv_a0": adv_a0.item(),
            "g_parallelogram": parallelogram.item(),
            "g_decay": decay.item(),
        }

    def evaluate(self, generator: nn.Module) -> dict[str, float]:
        """Attribute added and removed, identity kept and reconstruction on the held-aside
        faces (see :mod:`trainer.evaluation.attribute_swap`), through the served module."""
        return self.evaluator(swapper(generator))

    @torch.no_grad()
    def samples(self, generator: nn.Module) -> list[list[torch.Tensor]]:
        """Per held-aside pair, the row ``Au | B0 | A0 | Bu`` (the swaps through the served
        module: ``A0 = swap(Au, B0)``, ``Bu = swap(B0, Au)``)."""
        swap = swapper(generator)
        device = next(swap.parameters()).device
        au = self._val_with[:SAMPLE_ROWS].to(device)
        b0 = self._val_without[:SAMPLE_ROWS].to(device)
        a0, bu = swap(au, b0).float(), swap(b0, au).float()
        return [list(row) for row in zip(au, b0, a0, bu, strict=True)]
