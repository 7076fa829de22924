"""CycleGAN (Zhu et al., ICCV 2017): unpaired translation A ↔ B with two cycle-consistent GANs.

Networks as junyanz names them: G_A maps A → B and G_B maps B → A (ResNet generators);
D_A judges B images (real B against G_A's fakes), D_B judges A images; both are 70x70
PatchGANs with instance norm on RGB. G_A is the generator a run evaluates, EMAs and
publishes (``generator_key``).

One step is junyanz's ``optimize_parameters``:

1. forward: ``fake_B = G_A(A)``, ``rec_A = G_B(fake_B)``, ``fake_A = G_B(B)``,
   ``rec_B = G_A(fake_A)``;
2. G step (one Adam over G_A and G_B): LSGAN terms ``D_A(fake_B)`` and ``D_B(fake_A)``
   against "real", cycle losses ``λ_A·|rec_A − A|₁ + λ_B·|rec_B − B|₁``, identity losses
   ``λ_B·λ_idt·|G_A(B) − B|₁ + λ_A·λ_idt·|G_B(A) − A|₁``;
3. D step (one Adam over D_A and D_B): each D on real images against fakes drawn from its
   :class:`ImagePool` of 50 past fakes, the loss halved ("slows down the rate at which D
   learns").

junyanz switches the Ds' ``requires_grad`` off for the G step, only to save the gradients
of their weights. DistributedDataParallel must not see that flag change after wrapping, so a
wrapped D keeps it and its weights' gradients from the G step are discarded by the D step's
``zero_grad``; the updates are the same either way. junyanz's linear learning-rate decay
over the second half of training is the loop's ``optim.decay_start: 0.5``; the shipped
configs keep a constant rate (their measured runs are what the README reports).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from gantry.core.training import CycleGANConfig, TrainConfig, UnpairedTranslationConfig
from trainer.archs import build_network
from trainer.archs.pix2pix import RGB
from trainer.data import Sample, Split, TrainingDataset, build_dataset
from trainer.data.unpaired import UnpairedFaces
from trainer.distributed import unwrap
from trainer.evaluation import UnpairedTranslationEvaluator
from trainer.losses import build_gan_loss, cycle_consistency, identity
from trainer.recipes import RECIPES
from trainer.recipes.base import EVALUATION_DIR, Recipe
from trainer.weights.dlib import load_dlib_resnet

SAMPLE_ROWS_PER_DOMAIN = 2


class ImagePool:
    """junyanz's ``ImagePool``: a history of generated images for D to see besides the newest.

    Each queried image is stored and returned while fewer than ``size`` are held. Once full,
    each is, with probability 1/2, swapped for a uniformly chosen stored image (which is
    returned instead, so D sees a fake from an older G), and otherwise returned as it is.
    ``size`` 0 returns the images unchanged. The draws use torch's global CPU generator
    (junyanz uses Python's ``random``), which the training loop seeds per step, so a resumed
    run draws what the uninterrupted one drew; :meth:`state_dict` goes into checkpoints.

    Args:
        size: how many past images to keep.
    """

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Images for D, one per image of the (N, C, H, W) batch (detached)."""
        images = images.detach()
        if self.size == 0:
            return images
        chosen = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image)
                chosen.append(image)
            elif float(torch.rand(())) > 0.5:
                slot = int(torch.randint(0, self.size, ()))
                chosen.append(self.images[slot])
                self.images[slot] = image
            else:
                chosen.append(image)
        return torch.stack(chosen)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The stored images, in slot order, as one (n, C, H, W) CPU tensor."""
        stored = torch.stack(self.images).cpu() if self.images else torch.zeros(0)
        return {"images": stored}

    def load_state_dict(self, state: dict[str, torch.Tensor], device: torch.device) -> None:
        """Restore :meth:`state_dict`'s images onto ``device``."""
        stored = state["images"]
        if len(stored) > self.size:
            raise ValueError(f"{len(stored)} stored images exceed the pool size {self.size}")
        self.images = [image.to(device) for image in stored]


@RECIPES.register("cyclegan")
class CycleGANRecipe(Recipe):
    """Two ResNet generators, two PatchGANs, LSGAN + cycle + identity, image pools."""

    config_type: ClassVar[type[TrainConfig]] = CycleGANConfig
    config: UnpairedTranslationConfig
    generator_key = "G_A"

    def generators(self) -> tuple[nn.Module, nn.Module]:
        """G_A (A → B) and G_B (B → A), built in that order."""
        assert isinstance(self.config, CycleGANConfig)
        return build_network(self.config.generator), build_network(self.config.generator)

    def build(self) -> None:
        cfg = self.config
        # junyanz's order of construction, so the seed gives G_A, G_B, D_A, D_B in turn.
        g_a, g_b = self.generators()
        d_a = build_network(cfg.discriminator, input_nc=RGB, norm="instance")
        d_b = build_network(cfg.discriminator, input_nc=RGB, norm="instance")
        for name, network in (("G_A", g_a), ("G_B", g_b), ("D_A", d_a), ("D_B", d_b)):
            self.add(name, network, None)
        self.add_optimizer("G", self.adam(g_a, g_b))
        self.add_optimizer("D", self.adam(d_a, d_b))
        self.gan_loss = build_gan_loss(cfg.gan_loss)
        self.pool_a = ImagePool(cfg.pool_size)  # fake A images (G_B's), for D_B
        self.pool_b = ImagePool(cfg.pool_size)  # fake B images (G_A's), for D_A
        self._train = self._unpaired("train")
        val = self._unpaired("val")
        count = min(cfg.data.val_images, len(val.a), len(val.b))
        self._val = {"a": val.images("a").to(self.device), "b": val.images("b").to(self.device)}
        self.evaluator = UnpairedTranslationEvaluator(
            self._train.faces("a"),
            self._train.faces("b"),
            self._val["a"],
            self._val["b"],
            count=count,
            load_embedder=load_dlib_resnet,
            cache_dir=self.run_dir / EVALUATION_DIR if self.run_dir is not None else None,
            device=self.device,
        )

    def _unpaired(self, split: Split) -> UnpairedFaces:
        cfg = self.config
        dataset = build_dataset(cfg.data.dataset, self.data_dir, split, cfg.data.size)
        if not isinstance(dataset, UnpairedFaces):
            raise TypeError(f"cyclegan needs an unpaired dataset; {cfg.data.dataset} is not one")
        return dataset

    def train_dataset(self) -> TrainingDataset:
        return self._train

    def generator_architecture(self) -> str:
        assert isinstance(self.config, CycleGANConfig)
        return self.config.generator

    def extra_state(self) -> dict[str, Any]:
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.pool_a.load_state_dict(state["pool_a"], self.device)
        self.pool_b.load_state_dict(state["pool_b"], self.device)

    def _generator_gan_loss(
        self, discriminator: nn.Module, fake: torch.Tensor, real: torch.Tensor
    ) -> torch.Tensor:
        real_logits = discriminator(real) if self.gan_loss.generator_needs_real else None
        return self.gan_loss.generator(discriminator(fake), real_logits)

    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        cfg = self.config
        g_a, g_b = self.networks["G_A"], self.networks["G_B"]
        d_a, d_b = self.networks["D_A"], self.networks["D_B"]
        real_a, real_b = batch["a"], batch["b"]

        self.set_requires_grad(False, "D_A", "D_B")
        with self.autocast():
            fake_b = g_a(real_a)
            rec_a = g_b(fake_b)
            fake_a = g_b(real_b)
            rec_b = g_a(fake_a)
            loss_g_a = self._generator_gan_loss(d_a, fake_b, real_b)
            loss_g_b = self._generator_gan_loss(d_b, fake_a, real_a)
            loss_cycle_a = cycle_consistency(rec_a.float(), real_a, cfg.lambda_a)
            loss_cycle_b = cycle_consistency(rec_b.float(), real_b, cfg.lambda_b)
            loss_g = loss_g_a + loss_g_b + loss_cycle_a + loss_cycle_b
            losses = {
                "g_a": loss_g_a.item(),
                "g_b": loss_g_b.item(),
                "cycle_a": loss_cycle_a.item(),
                "cycle_b": loss_cycle_b.item(),
            }
            if cfg.lambda_identity > 0:
                # G_A should leave a B image as it is, G_B an A image.
                idt_a = identity(g_a(real_b).float(), real_b, cfg.lambda_b * cfg.lambda_identity)
                idt_b = identity(g_b(real_a).float(), real_a, cfg.lambda_a * cfg.lambda_identity)
                loss_g = loss_g + idt_a + idt_b
                losses |= {"idt_a": idt_a.item(), "idt_b": idt_b.item()}
        self.optimize("G", loss_g)
        self.set_requires_grad(True, "D_A", "D_B")

        with self.autocast():
            pooled_b = self.pool_b.query(fake_b)
            loss_d_a = 0.5 * self.gan_loss.discriminator(d_a(real_b), d_a(pooled_b))
            pooled_a = self.pool_a.query(fake_a)
            loss_d_b = 0.5 * self.gan_loss.discriminator(d_b(real_a), d_b(pooled_a))
        self.optimize("D", loss_d_a + loss_d_b)
        return losses | {"d_a": loss_d_a.item(), "d_b": loss_d_b.item()}

    def _g_b(self) -> nn.Module:
        return unwrap(self.networks["G_B"])

    def evaluate(self, generator: nn.Module) -> dict[str, float]:
        """Domain accuracy and identity kept, both ways, on the held-aside faces (see
        :mod:`trainer.evaluation.translation`); ``generator`` is G_A (or its EMA)."""
        g_b = self._g_b()
        was_training = g_b.training
        g_b.eval()
        try:
            return self.evaluator(generator, g_b)
        finally:
            g_b.train(was_training)

    @torch.no_grad()
    def samples(self, generator: nn.Module) -> list[list[torch.Tensor]]:
        """Rows ``A | G_A(A) | G_B(G_A(A))``, then ``B | G_B(B) | G_A(G_B(B))``."""
        g_b = self._g_b()
        was_training = g_b.training
        g_b.eval()
        try:
            a = self._val["a"][:SAMPLE_ROWS_PER_DOMAIN]
            b = self._val["b"][:SAMPLE_ROWS_PER_DOMAIN]
            fake_b, fake_a = generator(a).float(), g_b(b).float()
            rows = [[x, y, z] for x, y, z in zip(a, fake_b, g_b(fake_b).float(), strict=True)]
            rows += [
                [x, y, z] for x, y, z in zip(b, fake_a, generator(fake_a).float(), strict=True)
            ]
        finally:
            g_b.train(was_training)
        return rows
