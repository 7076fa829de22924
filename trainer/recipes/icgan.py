"""IcGAN (Perarnau et al., 2016): a conditional GAN on CelebA attributes, inverted by two
encoders so that a real face can be re-generated with some of its attributes changed.

Networks (:mod:`trainer.archs.icgan`): the container ``IcGAN`` (``generator`` G(z, y),
``encoder_z`` E_z, ``encoder_y`` E_y), which a run evaluates and exports (``generator_key``),
and the conditional discriminator D(x, y). Each part has its own optimiser (``G``, ``E_z``,
``E_y``, ``D``).

**Stages.** One run trains Guim3/IcGAN's three scripts in order; the stage of a step depends
only on its number (``stage_steps``), so a resumed run lands in the right one, and the stage
is in every metric row (``stage`` 1, 2 or 3):

1. ``cgan`` (``trainGAN.lua``): per step one D update, then one G update on the same fakes.
   z ~ N(0, 1); the fakes' labels are the batch's own labels in a random order (upstream's
   ``sampleY`` draws real label vectors). D minimises BCE(D(x, y) → real) and, with
   ``train_wrong_y``, half BCE(D(x, y_wrong) → fake) and half BCE(D(G(z, y'), y') → fake),
   y_wrong being the batch's labels shifted by one face (upstream draws another face's
   labels until they differ; a shift can repeat a label vector when two faces share it).
   Without it, BCE(real) + BCE(fake). G minimises the non-saturating BCE(D(G(z, y'), y') →
   real).
2. ``encoder_z`` (``generateEncoderDataset.lua`` + ``trainEncoder.lua type=Z``): G is frozen
   (its optimiser never steps again) and in eval mode. At the stage's first step G's
   batch-norm statistics are re-estimated on ``bn_refresh_batches`` batches of fakes, as
   upstream's ``stabilizeBN`` does before generating (eval-mode statistics left over from
   training differ from the batches' own). Then E_z learns the inverse on fresh pairs: MSE
   between E_z(G(z, y)) and z, with y the batch's real labels.
3. ``encoder_y`` (``trainEncoder.lua type=Y``): E_y on the real faces and their labels,
   binary cross-entropy on its logits (upstream: MSE against -1/1).

**Editing** (the container's forward): z = E_z(x), y = the asked-for attributes, or E_y's
reading where an entry is negative, and the edit is G(z, y).

**Evaluation** (:class:`~trainer.evaluation.AttributeTranslationEvaluator`, as StarGAN's):
``container(x, c)`` with c the full target vector from StarGAN's ``create_labels`` (a hair
colour set, the others cleared; sex or age toggled), so the figures compare with StarGAN's.
``val_rec_l1`` there is the cycle: the edit edited back to the face's labels. Beyond them:
``val_reconstruction_l1``, the mean |G(E_z(x), E_y(x)) - x| in [-1, 1] units (IcGAN's
reconstruction), next to ``val_l1_other_faces`` (the same error between neighbouring faces,
what a reconstruction of someone else scores), and ``val_encoder_y_acc``, E_y's balanced
accuracy on the held-aside faces.

**Distributed runs are refused.** The stages train different parts of one container, so the
steps call its parts directly; under DistributedDataParallel that would bypass the gradient
sync, and routing them through one forward would leave parameters unused (DDP's error) in
every stage. IcGAN trains in one process.

CelebA is for non-commercial research only: the served ``icgan-celeba`` is marked so.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gantry.core.training import IcGANConfig
from trainer.archs import build_network
from trainer.archs.icgan import IcGAN, IcGANDiscriminator
from trainer.data import Sample, Split, TrainingDataset
from trainer.data.attributes import CelebAAttributes, labelled_faces
from trainer.distributed import unwrap
from trainer.evaluation import AttributeTranslationEvaluator
from trainer.evaluation.attribute_translation import balanced_accuracy
from trainer.losses import build_gan_loss
from trainer.recipes import RECIPES
from trainer.recipes.base import EVALUATION_DIR, Recipe
from trainer.recipes.stargan import create_labels, hair_colour_indices, random_targets
from trainer.weights.dlib import load_dlib_resnet

Stage = Literal["cgan", "encoder_z", "encoder_y"]
STAGES: tuple[Stage, ...] = ("cgan", "encoder_z", "encoder_y")
SAMPLE_ROWS = 4
KEEP = -1.0  # the editor's "keep the face's own attribute"


def keep_own(n: int, ny: int, device: torch.device | None = None) -> torch.Tensor:
    """Attributes asking the editor to keep every attribute: (n, ny) of -1."""
    return torch.full((n, ny), KEEP, device=device)


@RECIPES.register("icgan")
class IcGANRecipe(Recipe):
    """cGAN (G, D), then E_z on G's pairs, then E_y on real faces; one container exported."""

    config_type = IcGANConfig
    config: IcGANConfig
    generator_key = "IcGAN"

    def build(self) -> None:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            raise ValueError("icgan trains in one process (see trainer.recipes.icgan)")
        cfg = self.config
        ny = len(cfg.attributes)
        icgan = build_network(cfg.generator, ny=ny)
        d = build_network(cfg.discriminator, ny=ny, image_size=cfg.data.size)
        if not isinstance(icgan, IcGAN) or not isinstance(d, IcGANDiscriminator):
            raise TypeError(f"{cfg.generator} / {cfg.discriminator} are not IcGAN networks")
        if icgan.generator.image_size != cfg.data.size:
            raise ValueError(
                f"{cfg.generator} makes {icgan.generator.image_size} px faces; "
                f"data.size is {cfg.data.size}"
            )
        self.add("IcGAN", icgan, None)
        self.add("D", d, self.adam(d))
        self.add_optimizer("G", self.adam(icgan.generator))
        encoder = cfg.encoder_optim
        for name, part in (("E_z", icgan.encoder_z), ("E_y", icgan.encoder_y)):
            self.add_optimizer(
                name,
                torch.optim.Adam(
                    part.parameters(), lr=encoder.lr, betas=(encoder.beta1, encoder.beta2)
                ),
            )
        self.gan_loss = build_gan_loss(cfg.gan_loss)
        self.hair = hair_colour_indices(cfg.attributes, cfg.hair_colours)
        self._train = self._faces("train")
        self._columns = torch.tensor(self._train.columns(cfg.attributes), device=self.device)
        self._train_labels = self._train.selected(cfg.attributes).to(self.device)
        val = self._faces("val")
        self._count = min(cfg.data.val_images, len(val))
        self._val_images = val.images()
        self._val_labels = val.selected(cfg.attributes)
        self.evaluator = AttributeTranslationEvaluator(
            self._train.faces(),
            self._train.selected(cfg.attributes),
            self._val_images,
            self._val_labels,
            names=cfg.attributes,
            targets=create_labels(self._val_labels[: self._count], self.hair),
            count=self._count,
            load_embedder=load_dlib_resnet,
            cache_dir=self.run_dir / EVALUATION_DIR if self.run_dir is not None else None,
            device=self.device,
        )

    def _faces(self, split: Split) -> CelebAAttributes:
        cfg = self.config
        return labelled_faces(cfg.data.dataset, self.data_dir, split, cfg.data.size, family="icgan")

    def train_dataset(self) -> TrainingDataset:
        return self._train

    def generator_architecture(self) -> str:
        return self.config.generator

    @property
    def icgan(self) -> IcGAN:
        """The trained container (never DDP-wrapped: :meth:`build` refuses several processes)."""
        network = unwrap(self.networks["IcGAN"])
        assert isinstance(network, IcGAN)
        return network

    def stage(self, step: int) -> Stage:
        """The stage (0-based) ``step`` belongs to: ``cgan``, ``encoder_z``, then ``encoder_y``."""
        stages = self.config.stage_steps
        if step < stages.cgan:
            return "cgan"
        return "encoder_z" if step < stages.cgan + stages.encoder_z else "encoder_y"

    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        x_real = batch["image"]
        labels = batch["attributes"].index_select(1, self._columns)
        stage = self.stage(step)
        number = {"stage": float(STAGES.index(stage) + 1)}
        if stage == "cgan":
            self.icgan.generator.train()
            return number | self._cgan_step(x_real, labels)
        # G is frozen from here on, and generates (and is served) with its running statistics.
        if step == self.config.stage_steps.cgan:
            self.refresh_generator_statistics(x_real.shape[0])
        self.icgan.generator.eval()
        if stage == "encoder_z":
            return number | self._encoder_z_step(labels)
        return number | self._encoder_y_step(x_real, labels)

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.icgan.generator.nz, device=self.device)

    def _cgan_step(self, x_real: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        g, d = self.icgan.generator, self.networks["D"]
        y_fake = random_targets(labels)
        z = self._noise(x_real.shape[0])
        # 1. D: real faces with their labels are real; fakes (and mismatched labels) fake.
        with self.autocast():
            x_fake = g(z, y_fake)
            real = d(x_real, labels).float()
            fake = d(x_fake.detach(), y_fake).float()
            if self.config.train_wrong_y:
                wrong = d(x_real, labels.roll(1, dims=0)).float()
                # Upstream's weights: BCE(real) + ½ BCE(wrong) + ½ BCE(fake).
                d_loss = 0.5 * (
                    self.gan_loss.discriminator(real, fake)
                    + self.gan_loss.discriminator(real, wrong)
                )
            else:
                d_loss = self.gan_loss.discriminator(real, fake)
        self.optimize("D", d_loss)
        losses = {"d": d_loss.item(), "d_real": float(torch.sigmoid(real.detach()).mean())}
        # 2. G: on the same fakes, against the updated D (D's weights get no step).
        self.set_requires_grad(False, "D")
        with self.autocast():
            g_loss = self.gan_loss.generator(d(x_fake, y_fake).float())
        self.optimize("G", g_loss)
        self.set_requires_grad(True, "D")
        return losses | {"g": g_loss.item()}

    @torch.no_grad()
    def refresh_generator_statistics(self, batch_size: int) -> None:
        """Re-estimate G's batch-norm running statistics as the plain average over
        ``bn_refresh_batches`` batches of fakes (z ~ N(0, 1), training faces' label vectors),
        without changing any weight: upstream's ``stabilizeBN``. No-op for 0 batches."""
        batches = self.config.bn_refresh_batches
        if batches == 0:
            return
        g = self.icgan.generator
        norms = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
        momenta = [m.momentum for m in norms]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average over the refresh batches
        g.train()
        for _ in range(batches):
            rows = torch.randint(len(self._train_labels), (batch_size,))
            g(self._noise(batch_size), self._train_labels[rows.to(self.device)])
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        g.eval()

    def _encoder_z_step(self, labels: torch.Tensor) -> dict[str, float]:
        icgan = self.icgan
        z = self._noise(labels.shape[0])
        with torch.no_grad(), self.autocast():
            x = icgan.generator(z, labels).float()
        icgan.encoder_z.train()
        with self.autocast():
            loss = F.mse_loss(icgan.encoder_z(x).float(), z)
        self.optimize("E_z", loss)
        return {"e_z_mse": loss.item()}

    def _encoder_y_step(self, x_real: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        encoder = self.icgan.encoder_y
        encoder.train()
        with self.autocast():
            logits = encoder(x_real).float()
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        self.optimize("E_y", loss)
        hits = ((logits > 0).float() == labels).float().mean()
        return {"e_y_bce": loss.item(), "e_y_acc": hits.item()}

    def evaluate(self, generator: nn.Module) -> dict[str, float]:
        """StarGAN's figures for ``generator(x, c)`` (the container edits with a full target
        vector), plus IcGAN's reconstruction and E_y's accuracy on the held-aside faces."""
        # Not under no_grad: the evaluator trains its classifier on first use.
        figures = self.evaluator(generator)
        return figures | self._inversion_figures(generator)

    @torch.no_grad()
    def _inversion_figures(self, generator: nn.Module) -> dict[str, float]:
        figures: dict[str, float] = {}
        editor = unwrap(generator)
        assert isinstance(editor, IcGAN)
        faces = self._val_images[: self._count].to(self.device)
        rebuilt = torch.cat(
            [editor(x, keep_own(len(x), editor.ny, self.device)).float() for x in faces.split(32)]
        )
        figures["val_reconstruction_l1"] = float((rebuilt - faces).abs().mean())
        figures["val_l1_other_faces"] = float((faces.roll(1, dims=0) - faces).abs().mean())
        read = torch.cat(
            [editor.own_attributes(x) for x in self._val_images.to(self.device).split(32)]
        )
        accuracy = balanced_accuracy(read.cpu() > 0.5, self._val_labels > 0.5)
        figures["val_encoder_y_acc"] = float(accuracy.mean())
        return figures

    @torch.no_grad()
    def samples(self, generator: nn.Module) -> list[list[torch.Tensor]]:
        """Per held-aside face: the face, its reconstruction G(E_z(x), E_y(x)), then one edit
        per attribute (StarGAN's targets, :func:`~trainer.recipes.stargan.create_labels`)."""
        editor = unwrap(generator)
        assert isinstance(editor, IcGAN)
        device = next(editor.parameters()).device
        faces = self._val_images[:SAMPLE_ROWS].to(device)
        targets = create_labels(self._val_labels[:SAMPLE_ROWS].to(device), self.hair)
        rebuilt = editor(faces, keep_own(len(faces), editor.ny, device)).float()
        columns = [editor(faces, t).float() for t in targets]
        return [[face, rebuilt[r], *(c[r] for c in columns)] for r, face in enumerate(faces)]
