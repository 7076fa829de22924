"""StarGAN v2 (Choi et al., CVPR 2020): diverse translations of a face to several domains,
with the style taken from a random latent code or from a reference face, trained as
clovaai/stargan-v2's ``Solver.train`` does.

Networks (:mod:`trainer.archs.stargan_v2`): the generator G, the mapping network F (latent
→ style, one head per domain), the style encoder E (image → style, one head per domain) and
the multi-head discriminator D (one real/fake logit per domain). Domains are CelebA hair
colours (by default black, blond and brown: the faces labelled with exactly one of them,
:class:`~trainer.data.domains.AttributeDomains`, drawn class-balanced as clovaai's loaders
draw). CelebA is licensed for research only: a model trained here is not for the product.

**A loop step is one clovaai iteration.** Each step draws a batch of real faces ``x`` with
their domains ``y_org``, and from the global generator the loop seeds per step: target
domains ``y_trg`` (uniform, as clovaai's balanced reference loader gives), two reference
faces of each target domain (random training faces of it, randomly mirrored when
``data.flip``), and two latent codes ``z, z2 ~ N(0, I)``. Then four updates, in clovaai's
order:

1. D, latent-guided: ``BCE(D(x, y_org), 1) + BCE(D(G(x, F(z, y_trg)), y_trg), 0)`` (the
   non-saturating loss, :func:`trainer.losses.build_gan_loss`) plus ``λ_reg`` times R1 on
   the real images (:func:`trainer.losses.r1_penalty` with γ = 1: clovaai's ``0.5 ·
   E‖∇_x D(x)‖²``). The fake is made without gradient.
2. D, reference-guided: the same with the style ``E(x_ref, y_trg)``.
3. G, latent-guided, stepping G, F and E: with ``s = F(z, y_trg)`` and ``x̃ = G(x, s)``,
   ``BCE(D(x̃, y_trg), 1) + λ_sty |E(x̃, y_trg) - s| - λ_ds |x̃ - G(x, F(z2, y_trg))| +
   λ_cyc |G(x̃, E(x, y_org)) - x|`` (means of absolute values; the second translation is
   detached, as clovaai's).
4. G, reference-guided, stepping G only: the same with ``s = E(x_ref, y_trg)`` and the
   second style ``E(x_ref2, y_trg)``.

``λ_ds`` decays linearly from ``lambda_ds`` at step 0 to 0 at ``ds_steps`` (clovaai's
``lambda_ds -= initial / ds_iter`` after every iteration), a function of the step, so a
resumed run needs no extra state. F learns at ``optim.lr × mapping_lr_scale`` (clovaai's
``f_lr`` 1e-6 against ``lr`` 1e-4); every optimiser is Adam with ``weight_decay``.

**What a run exports.** ``generator_key`` is ``nets``, a
:class:`~trainer.archs.stargan_v2.StarGANv2` holding G, F and E, so the loop's EMA of it is
clovaai's ``nets_ema`` (EMA of all three at ``ema_decay`` 0.999) and ``generator.pth`` loads
into the served container with ``strict=True``. G, F and E train as networks of their own
(``generator``, ``mapping_network``, ``style_encoder``, each its own optimiser and, in a
distributed run, its own DistributedDataParallel wrapper, called only through its
forward); ``nets`` is a copy of them without gradients, refreshed from them at the end of
every step, so the EMA the loop keeps after the step is the EMA of the trained weights.

Not from clovaai: the random resized crops of its loaders (``randcrop_prob`` 0.5) are left
out (the faces are aligned; flips stay), and the EMA starts at the trained networks'
initial weights (clovaai's EMA copies are taken before ``he_init``, so they start at
PyTorch's default initialisation). The high-pass / FAN path of CelebA-HQ (``w_hpf 1``) is
not implemented: these are clovaai's ``w_hpf 0`` networks (its AFHQ setting).
"""

from __future__ import annotations

import copy
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from gantry.core.training import StarGANv2Config
from trainer.archs import build_network
from trainer.archs.stargan_v2 import Discriminator, StarGANv2
from trainer.data import Sample, Split, TrainingDataset
from trainer.data.attributes import CelebAAttributes, labelled_faces
from trainer.data.domains import AttributeDomains
from trainer.distributed import unwrap
from trainer.evaluation import StyleTranslationEvaluator, translate_styled
from trainer.losses import build_gan_loss, r1_penalty
from trainer.recipes import RECIPES
from trainer.recipes.base import EVALUATION_DIR, Recipe
from trainer.weights.dlib import load_dlib_resnet

NETS = "nets"
PARTS = ("generator", "mapping_network", "style_encoder")
SAMPLE_ROWS = 4
SAMPLE_SEED = 0  # latent codes of the sample grid (its own generator: the loop's RNG stays)


def diversity_weight(lambda_ds: float, step: int, ds_steps: int) -> float:
    """clovaai's decayed diversity weight at (0-based) ``step``: ``lambda_ds`` at 0, falling
    by ``lambda_ds / ds_steps`` per step, 0 from ``ds_steps`` on."""
    return lambda_ds * max(0.0, 1 - step / ds_steps)


@RECIPES.register("stargan_v2")
class StarGANv2Recipe(Recipe):
    """G, F, E and the multi-head D; adversarial + R1 + style + diversity + cycle."""

    config_type = StarGANv2Config
    config: StarGANv2Config
    generator_key = NETS

    def build(self) -> None:
        cfg = self.config
        k = len(cfg.domains)
        nets = build_network(cfg.networks, num_domains=k)
        d = build_network(cfg.discriminator, num_domains=k)
        if not isinstance(nets, StarGANv2) or not isinstance(d, Discriminator):
            raise TypeError(f"{cfg.networks} / {cfg.discriminator} are not StarGAN v2 networks")
        if nets.img_size != cfg.data.size or d.img_size != cfg.data.size:
            raise ValueError(
                f"{cfg.networks} ({nets.img_size} px) and {cfg.discriminator} ({d.img_size} px)"
                f" must be built for data.size {cfg.data.size}"
            )
        lr = cfg.optim.lr
        for name in PARTS:
            # The trained copy of each part starts from the weights ``nets`` holds.
            self.add(name, copy.deepcopy(cast(nn.Module, getattr(nets, name))), None)
        self.add_optimizer("generator", self._adam(self.networks["generator"], lr))
        self.add_optimizer(
            "mapping_network",
            self._adam(self.networks["mapping_network"], lr * cfg.mapping_lr_scale),
        )
        self.add_optimizer("style_encoder", self._adam(self.networks["style_encoder"], lr))
        self.add("discriminator", d, self._adam(d, lr))
        self.add(NETS, nets.requires_grad_(False), None)
        self.gan_loss = build_gan_loss("nonsaturating")
        self.num_domains, self.latent_dim = k, nets.latent_dim

        train = AttributeDomains(self._faces("train"), cfg.domains)
        val = AttributeDomains(self._faces("val"), cfg.domains)
        self._train = train
        # References are drawn from each domain's training faces: kept as one uint8 block
        # with per-domain offsets, so a draw is one gather.
        blocks = [train.domain_faces(d) for d in range(k)]
        self._ref_faces = torch.cat(blocks)
        counts = torch.tensor([len(b) for b in blocks])
        self._ref_counts = counts
        self._ref_offsets = torch.cumsum(counts, 0) - counts
        self._val_images, self._val_domains = val.images(), val.labels()
        self.evaluator = StyleTranslationEvaluator(
            self._ref_faces,
            torch.repeat_interleave(torch.arange(k), counts),
            self._val_images,
            self._val_domains,
            names=cfg.domains,
            count=cfg.data.val_images,
            latent_dim=self.latent_dim,
            load_embedder=load_dlib_resnet,
            cache_dir=self.run_dir / EVALUATION_DIR if self.run_dir is not None else None,
            device=self.device,
            seed=cfg.seed,
        )

    def _adam(self, network: nn.Module, lr: float) -> torch.optim.Adam:
        optim = self.config.optim
        return torch.optim.Adam(
            network.parameters(),
            lr=lr,
            betas=(optim.beta1, optim.beta2),
            weight_decay=self.config.weight_decay,
        )

    def _faces(self, split: Split) -> CelebAAttributes:
        cfg = self.config
        return labelled_faces(
            cfg.data.dataset, self.data_dir, split, cfg.data.size, family="stargan_v2"
        )

    def train_dataset(self) -> TrainingDataset:
        return self._train

    def generator_architecture(self) -> str:
        return self.config.networks

    # --- one step ----------------------------------------------------------------------------
    def _one_hot(self, domains: torch.Tensor) -> torch.Tensor:
        return F.one_hot(domains, self.num_domains).float().to(self.device)

    def references(self, domains: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Two random training faces of each of ``domains`` (N,) (CPU), in [-1, 1] on the
        device, each mirrored with probability 0.5 when ``data.flip`` (global generator)."""
        pairs = []
        for _ in range(2):
            counts = self._ref_counts[domains]
            picks = self._ref_offsets[domains] + (torch.rand(len(domains)) * counts).long()
            faces = self._ref_faces[picks.clamp(max=len(self._ref_faces) - 1)].float()
            mirror = (torch.rand(len(domains)) < 0.5).view(-1, 1, 1, 1) & self.config.data.flip
            faces = torch.where(mirror, faces.flip(3), faces) / 127.5 - 1
            pairs.append(faces.to(self.device))
        return pairs[0], pairs[1]

    def _style(self, source: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        """F(z, domain) for a latent (N, latent_dim), E(x, domain) for an image."""
        name = "mapping_network" if source.dim() == 2 else "style_encoder"
        return self.networks[name](source, domain)

    def _d_loss(
        self, x_real: torch.Tensor, y_org: torch.Tensor, y_trg: torch.Tensor, guide: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        cfg, d = self.config, self.networks["discriminator"]
        x_real = x_real.detach().requires_grad_(True)
        # R1 differentiates D on the real images: kept in float32, outside autocast.
        out_real = d(x_real, y_org)
        reg = r1_penalty(out_real, x_real, gamma=1.0)
        with self.autocast():
            with torch.no_grad():  # D's step does not reach G, F or E (clovaai's no_grad)
                x_fake = self.networks["generator"](x_real, self._style(guide, y_trg))
            out_fake = d(x_fake, y_trg)
        adv = self.gan_loss.discriminator(out_real, out_fake.float())
        return adv + cfg.lambda_reg * reg, {"adv": adv.item(), "reg": reg.item()}

    def _g_loss(
        self,
        x_real: torch.Tensor,
        y_org: torch.Tensor,
        y_trg: torch.Tensor,
        guides: tuple[torch.Tensor, torch.Tensor],
        lambda_ds: float,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.config
        g, e = self.networks["generator"], self.networks["style_encoder"]
        with self.autocast():
            s_trg = self._style(guides[0], y_trg)
            x_fake = g(x_real, s_trg)
            adv = self.gan_loss.generator(self.networks["discriminator"](x_fake, y_trg).float())
            sty = (e(x_fake, y_trg) - s_trg).abs().mean()
            with torch.no_grad():  # clovaai detaches the second translation
                x_fake2 = g(x_real, self._style(guides[1], y_trg))
            ds = (x_fake - x_fake2).abs().mean()
            cyc = (g(x_fake, e(x_real, y_org)) - x_real).abs().mean()
        loss = adv + cfg.lambda_sty * sty.float() - lambda_ds * ds.float()
        loss = loss + cfg.lambda_cyc * cyc.float()
        parts = {"adv": adv.item(), "sty": sty.item(), "ds": ds.item(), "cyc": cyc.item()}
        return loss, parts

    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        cfg = self.config
        x_real = batch["image"]
        y_org = self._one_hot(batch["domain"].cpu())
        n = len(x_real)
        # The step's randomness, drawn on the CPU from the generator the loop seeds.
        target = torch.randint(self.num_domains, (n,))
        x_ref, x_ref2 = self.references(target)
        z, z2 = (torch.randn(n, self.latent_dim).to(self.device) for _ in range(2))
        y_trg = self._one_hot(target)
        losses: dict[str, float] = {}

        for mode, guide in (("latent", z), ("ref", x_ref)):
            d_loss, parts = self._d_loss(x_real, y_org, y_trg, guide)
            self.optimize("discriminator", d_loss)
            losses |= {f"d_{mode}_{k}": v for k, v in parts.items()}

        lambda_ds = diversity_weight(cfg.lambda_ds, step, cfg.ds_steps or cfg.steps)
        self.set_requires_grad(False, "discriminator")
        g_loss, parts = self._g_loss(x_real, y_org, y_trg, (z, z2), lambda_ds)
        self.optimize("generator", g_loss, also=("mapping_network", "style_encoder"))
        losses |= {f"g_latent_{k}": v for k, v in parts.items()}
        g_loss, parts = self._g_loss(x_real, y_org, y_trg, (x_ref, x_ref2), lambda_ds)
        self.optimize("generator", g_loss)
        losses |= {f"g_ref_{k}": v for k, v in parts.items()}
        self.set_requires_grad(True, "discriminator")
        self.refresh_nets()
        return losses | {"lambda_ds": lambda_ds}

    @torch.no_grad()
    def refresh_nets(self) -> None:
        """Copy the trained G, F and E into ``nets`` (what the loop's EMA then reads)."""
        nets = unwrap(self.networks[NETS])
        for name in PARTS:
            mirror = cast(nn.Module, getattr(nets, name)).parameters()
            live = unwrap(self.networks[name]).parameters()
            for target, source in zip(mirror, live, strict=True):
                target.copy_(source)

    # --- measuring ---------------------------------------------------------------------------
    def evaluate(self, generator: nn.Module) -> dict[str, float]:
        """Target-domain accuracy (latent- and reference-guided), identity kept and latent
        diversity on the held-aside faces (see :mod:`trainer.evaluation.style_translation`)."""
        return self.evaluator(generator)

    @torch.no_grad()
    def samples(self, generator: nn.Module) -> list[list[torch.Tensor]]:
        """Per held-aside face: the face, its latent-guided translation to each domain (one
        seeded code per row), then per domain a held-aside reference face of it (the last
        of that domain) and the reference-guided translation."""
        device = next(unwrap(generator).parameters()).device
        k = self.num_domains
        faces = self._val_images[:SAMPLE_ROWS]
        n = len(faces)
        codes = torch.randn(
            n, self.latent_dim, generator=torch.Generator().manual_seed(SAMPLE_SEED)
        )
        last = [int(torch.nonzero(self._val_domains == d).flatten()[-1]) for d in range(k)]
        columns: list[torch.Tensor] = []
        for d in range(k):
            target = torch.full((n,), d, dtype=torch.int64)
            columns.append(translate_styled(generator, faces, faces, codes, target, 0.0, device))
        for d in range(k):
            target = torch.full((n,), d, dtype=torch.int64)
            reference = self._val_images[last[d]].expand(n, -1, -1, -1)
            columns.append(reference)
            columns.append(
                translate_styled(generator, faces, reference, codes, target, 1.0, device)
            )
        return [[face, *(c[r] for c in columns)] for r, face in enumerate(faces)]
