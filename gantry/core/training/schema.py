"""The schema of every training config: the loop's fields, then one subclass per recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gantry.core.registry import Registry

# The adversarial losses of trainer/losses (tests hold the two lists equal).
GanLossName = Literal["minimax", "nonsaturating", "lsgan", "wgan", "hinge", "relativistic_average"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


class OptimConfig(_Strict):
    """Adam (the GAN default) for every network of a recipe, unless the recipe says otherwise."""

    lr: float = Field(default=2e-4, gt=0)
    beta1: float = Field(default=0.5, ge=0, lt=1)
    beta2: float = Field(default=0.999, ge=0, lt=1)
    decay_start: float | None = Field(
        default=None,
        ge=0,
        lt=1,
        description="linear decay of every learning rate to 0 from this fraction of `steps` "
        "(junyanz and yunjey: 0.5, the second half); None: constant",
    )

    def lr_factor(self, step: int, steps: int) -> float:
        """What the learning rates are multiplied by at (0-based) ``step`` of ``steps``."""
        if self.decay_start is None:
            return 1.0
        start = self.decay_start * steps
        return 1.0 - max(0.0, step - start) / max(steps - start, 1.0)


class DataConfig(_Strict):
    """Which dataset under the data directory, at what size, and what is held aside."""

    dataset: str = Field(description="a dataset of trainer/data, e.g. cmp_facades")
    size: int = Field(default=128, ge=16, description="square training size in pixels")
    flip: bool = Field(default=True, description="random horizontal flips")
    val_images: int = Field(
        default=8, ge=1, description="held-aside images the run is measured on (never trained on)"
    )


class TrainConfig(_Strict):
    """What every recipe's run has: budgets, seeds, intervals, precision, publishing."""

    recipe: str = Field(description="the trainer/recipes family that runs this config")
    description: str = ""
    steps: int = Field(ge=1, description="optimiser steps (the run stops at this step)")
    time_limit_s: float | None = Field(
        default=None, gt=0, description="stop (with a checkpoint) after this many seconds"
    )
    seed: int = 0
    batch_size: int = Field(default=1, ge=1, description="images per step per process")
    amp: bool = Field(default=False, description="mixed precision (fp16 on CUDA, bf16 on CPU)")
    log_every: int = Field(default=10, ge=1, description="steps between metric rows")
    checkpoint_every: int = Field(default=100, ge=1)
    sample_every: int = Field(default=100, ge=1, description="steps between sample grids")
    eval_every: int = Field(
        default=0, ge=0, description="steps between held-aside evaluations (0: start and end)"
    )
    keep_checkpoints: int = Field(default=2, ge=1)
    ema_decay: float = Field(
        default=0.0, ge=0, lt=1, description="EMA of the generator's weights (0: off)"
    )
    optim: OptimConfig = OptimConfig()
    data: DataConfig
    publish: str | None = Field(
        default=None, description="the model (card name) a run with --publish exports to"
    )
    build_steps: int | None = Field(
        default=None,
        ge=1,
        description="steps `gantry models build` trains the published model's version 1 with",
    )

    def for_build(self) -> TrainConfig:
        """The short run `gantry models build` trains version 1 with: ``build_steps`` steps,
        no time limit (a family with stages scales them to fit).

        Raises:
            ValueError: the config has no ``build_steps``.
        """
        if self.build_steps is None:
            raise ValueError("the config has no build_steps")
        return self.model_copy(update={"steps": self.build_steps, "time_limit_s": None})


class PerceptualTerm(_Strict):
    """A VGG19 perceptual term (features before activation); off unless given a weights file."""

    perceptual_weights: Path | None = Field(
        default=None, description="a torchvision VGG19 state_dict (none ships with Gantry)"
    )
    lambda_perceptual: float = Field(default=0.0, ge=0, description="pix2pixHD uses 10")

    @model_validator(mode="after")
    def _perceptual_needs_weights(self) -> PerceptualTerm:
        if self.lambda_perceptual > 0 and self.perceptual_weights is None:
            raise ValueError(
                "lambda_perceptual > 0 needs perceptual_weights: no ImageNet VGG19 weights "
                "ship with Gantry, so the file must be yours"
            )
        return self


class Pix2PixConfig(TrainConfig, PerceptualTerm):
    """pix2pix (Isola et al., 2017): U-Net G, 70x70 PatchGAN on (input, output), cGAN + λ·L1."""

    recipe: Literal["pix2pix"] = "pix2pix"
    generator: str = "pix2pix_unet_tiny"
    discriminator: str = "patchgan70_tiny"
    gan_loss: GanLossName = Field(
        default="nonsaturating", description="junyanz's 'vanilla' is the non-saturating loss"
    )
    lambda_l1: float = Field(default=100.0, ge=0)


class Pix2PixHDConfig(TrainConfig, PerceptualTerm):
    """pix2pixHD (Wang et al., 2018): coarse-to-fine G (G1, then G2 with G1 fixed, then both),
    multi-scale D, LSGAN + feature matching (+ VGG), instance boundary maps, feature encoder."""

    recipe: Literal["pix2pixhd"] = "pix2pixhd"
    generator: str = "pix2pixhd_facades_tiny"
    global_generator: str = "pix2pixhd_facades_tiny_global"
    encoder: str = "pix2pixhd_facades_tiny_encoder"
    discriminator: str = "pix2pixhd_facades_tiny_discriminator"
    global_share: float = Field(
        default=0.0, ge=0, le=1, description="share of steps training G1 alone at half size"
    )
    fix_global_share: float = Field(
        default=0.0, ge=0, le=1, description="then the share training G2 (and E), G1 fixed"
    )

    @property
    def global_steps(self) -> int:
        return round(self.steps * self.global_share)

    @property
    def fixed_until(self) -> int:
        """The step from which G1 trains with G2 (pix2pixHD's ``niter_fix_global`` ends)."""
        return self.global_steps + round(self.steps * self.fix_global_share)

    @model_validator(mode="after")
    def _phases_fit(self) -> Pix2PixHDConfig:
        if self.global_share + self.fix_global_share > 1:
            raise ValueError("global_share + fix_global_share must be at most 1")
        return self

    gan_loss: GanLossName = "lsgan"
    lambda_feat: float = Field(default=10.0, ge=0, description="feature matching weight")


class UnpairedTranslationConfig(TrainConfig):
    """What CycleGAN and ComboGAN share: 70x70 PatchGANs (instance norm) on unpaired domains;
    LSGAN, λ·L1 cycle losses both ways and an identity term.

    The defaults are junyanz's (``--lambda_A 10 --lambda_B 10 --lambda_identity 0.5
    --pool_size 50 --gan_mode lsgan``). ``data.val_images`` is how many held-aside faces of
    each domain the translations are measured on.
    """

    discriminator: str = Field(
        default="patchgan70_tiny", description="D_A (judges B) and D_B (judges A), on RGB"
    )
    gan_loss: GanLossName = "lsgan"
    lambda_a: float = Field(default=10.0, ge=0, description="cycle loss A → B → A")
    lambda_b: float = Field(default=10.0, ge=0, description="cycle loss B → A → B")
    lambda_identity: float = Field(
        default=0.5,
        ge=0,
        description="identity loss weight as a fraction of lambda_a / lambda_b (junyanz)",
    )
    pool_size: int = Field(
        default=50, ge=0, description="generated images D sees from history (0: none)"
    )


class CycleGANConfig(UnpairedTranslationConfig):
    """CycleGAN (Zhu et al., 2017): two ResNet generators, G_A (A → B) and G_B (B → A)."""

    recipe: Literal["cyclegan"] = "cyclegan"
    generator: str = Field(
        default="cyclegan_resnet_tiny", description="G_A (A → B) and G_B (B → A)"
    )


class ComboGANConfig(UnpairedTranslationConfig):
    """ComboGAN (Anoosheh et al., 2018): one encoder and one decoder per domain; the
    translation i → j is decoder_j(encoder_i(x)), trained with CycleGAN's losses."""

    recipe: Literal["combogan"] = "combogan"
    encoder: str = Field(default="combogan_encoder_tiny", description="one per domain")
    decoder: str = Field(default="combogan_decoder_tiny", description="one per domain")


# yunjey/stargan's defaults (main.py): the selected CelebA attributes, and the names
# create_labels treats as one hair colour (set one, clear the others).
STARGAN_ATTRIBUTES = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
STARGAN_HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")


class StarGANConfig(TrainConfig):
    """StarGAN (Choi et al., 2018): one generator for every domain of a set of CelebA
    attributes, a PatchGAN critic with an auxiliary attribute classifier; WGAN-GP,
    domain classification and reconstruction losses.

    The defaults are yunjey/stargan's (``--lambda_cls 1 --lambda_rec 10 --lambda_gp 10
    --n_critic 5 --g_lr 1e-4 --d_lr 1e-4 --beta1 0.5 --beta2 0.999``). One loop step is one
    D update; G is updated on every ``n_critic``-th step (yunjey's ``(i + 1) % n_critic``),
    so ``steps`` counts D updates, as yunjey's ``num_iters`` does. yunjey's linear
    learning-rate decay over the last half is ``optim.decay_start: 0.5``; the shipped config
    keeps a constant rate (its measured run is what the README reports).

    ``mask_vector`` gives the networks the label layout of StarGAN's joint CelebA + RaFD
    training (``[CelebA labels | second dataset's one-hot | mask one-hot(2)]`` into G, and
    ``len(attributes) + second_label_dim`` classifier outputs in D, of which each dataset's
    classification loss reads only its own part). No second dataset ships with Gantry, so
    a run trains the CelebA rows of that layout only.
    """

    recipe: Literal["stargan"] = "stargan"
    generator: str = Field(
        default="stargan_tiny", description="G, built with c_dim from the labels"
    )
    discriminator: str = Field(
        default="stargan_tiny_discriminator",
        description="D (critic + classifier), built with c_dim and image_size = data.size",
    )
    optim: OptimConfig = OptimConfig(lr=1e-4, beta1=0.5, beta2=0.999)
    attributes: tuple[str, ...] = Field(
        default=STARGAN_ATTRIBUTES, min_length=1, description="CelebA attributes of the domains"
    )
    hair_colours: tuple[str, ...] = Field(
        default=STARGAN_HAIR_COLOURS,
        description="attributes that form one hair-colour group in target labels (one set)",
    )
    lambda_cls: float = Field(default=1.0, ge=0, description="domain classification weight")
    lambda_rec: float = Field(default=10.0, ge=0, description="reconstruction (cycle) L1 weight")
    lambda_gp: float = Field(default=10.0, ge=0, description="WGAN-GP gradient penalty weight")
    n_critic: int = Field(default=5, ge=1, description="D updates per G update")
    mask_vector: bool = Field(
        default=False, description="joint-training label layout with a mask vector"
    )
    second_label_dim: int = Field(
        default=8, ge=1, description="classes of the second dataset (RaFD: 8 expressions)"
    )

    @model_validator(mode="after")
    def _attributes_unique(self) -> StarGANConfig:
        if len(set(self.attributes)) != len(self.attributes):
            raise ValueError(f"attributes are listed twice: {list(self.attributes)}")
        return self


class IcGANStages(_Strict):
    """Steps of each IcGAN training stage, run one after the other in one run."""

    cgan: int = Field(ge=0, description="stage 1: the conditional GAN (G and D)")
    encoder_z: int = Field(ge=0, description="stage 2: E_z on (z, G(z, y)) pairs, G frozen")
    encoder_y: int = Field(ge=0, description="stage 3: E_y on real faces and their labels")

    @property
    def total(self) -> int:
        """Steps of the whole run."""
        return self.cgan + self.encoder_z + self.encoder_y


class IcGANConfig(TrainConfig):
    """IcGAN (Perarnau et al., 2016): a conditional DCGAN G(z, y) / D(x, y) on a set of CelebA
    attributes, then the encoders that invert G: E_z (image → z) and E_y (image → y).

    The defaults are Guim3/IcGAN's (``cfg/mainConfig.lua``): nz 100, Adam 2e-4 / beta1 0.5 for
    the GAN, D also trained on real faces with mismatched labels (``trainWrongY``), and Adam
    1e-4 / beta1 0.1 for both encoders. ``steps`` is the sum of ``stage_steps`` (filled in
    when omitted); the stage of a step depends only on its number. Differences from upstream:
    E_y is trained with binary cross-entropy on its logits (upstream: MSE on the -1/1
    labels), and the three stages run in one run instead of three scripts.
    """

    recipe: Literal["icgan"] = "icgan"
    generator: str = Field(
        default="icgan_tiny", description="the G + E_z + E_y container, built with ny"
    )
    discriminator: str = Field(
        default="icgan_tiny_discriminator",
        description="D(x, y), built with ny and image_size = data.size",
    )
    attributes: tuple[str, ...] = Field(
        default=STARGAN_ATTRIBUTES, min_length=1, description="CelebA attributes y conditions on"
    )
    hair_colours: tuple[str, ...] = Field(
        default=STARGAN_HAIR_COLOURS,
        description="attributes that form one hair-colour group in the evaluation's targets",
    )
    stage_steps: IcGANStages
    gan_loss: GanLossName = Field(
        default="nonsaturating", description="upstream: BCE on D's sigmoid (non-saturating G)"
    )
    train_wrong_y: bool = Field(
        default=True, description="D also learns to reject real faces with other faces' labels"
    )
    encoder_optim: OptimConfig = OptimConfig(lr=1e-4, beta1=0.1, beta2=0.999)
    bn_refresh_batches: int = Field(
        default=100,
        ge=0,
        description="batches G's batch-norm statistics are re-estimated on after stage 1",
    )

    @model_validator(mode="before")
    @classmethod
    def _steps_from_stages(cls, data: object) -> object:
        if isinstance(data, dict) and "steps" not in data:
            stages = data.get("stage_steps")
            if isinstance(stages, dict):
                data = {**data, "steps": sum(int(v) for v in stages.values())}
            elif isinstance(stages, IcGANStages):
                data = {**data, "steps": stages.total}
        return data

    def for_build(self) -> IcGANConfig:
        """The build-time run: every stage scaled by ``build_steps / steps`` (each at least
        one step), so version 1 has trained encoders too.

        Raises:
            ValueError: the config has no ``build_steps``.
        """
        short = super().for_build()
        scale = short.steps / self.steps
        stages = IcGANStages(
            cgan=max(1, round(self.stage_steps.cgan * scale)),
            encoder_z=max(1, round(self.stage_steps.encoder_z * scale)),
            encoder_y=max(1, round(self.stage_steps.encoder_y * scale)),
        )
        return self.model_copy(
            update={"stage_steps": stages, "steps": stages.total, "time_limit_s": None}
        )

    @model_validator(mode="after")
    def _consistent(self) -> IcGANConfig:
        if self.steps != self.stage_steps.total:
            raise ValueError(
                f"steps ({self.steps}) must be the sum of stage_steps ({self.stage_steps.total})"
            )
        if len(set(self.attributes)) != len(self.attributes):
            raise ValueError(f"attributes are listed twice: {list(self.attributes)}")
        return self


class GeneGANConfig(TrainConfig):
    """GeneGAN (Zhou et al., 2017): one CelebA attribute, faces with it (Au) and without (B0);
    a splitter encodes a face into a background and an attribute part (by channels), a joiner
    decodes them; training swaps the attribute parts (A0 = joiner(A, 0), Bu = joiner(B, u)).

    The defaults are Prinsphield/GeneGAN's (``model.py``, ``dataset.py``, ``train.py``): the
    attribute part is the last quarter of the channels (``second_ratio`` 0.25); the G loss is
    the nulling loss ``mean|ε|``, the reconstructions of Au and B0 (L1 of images in [0, 1],
    upstream's ``/ 255``), the WGAN terms of the two swaps, the parallelogram loss
    ``0.01 · mean|Au + B0 - A0 - Bu|`` on [0, 255] pixel values (2.55 on [0, 1] values, as
    ``lambda_parallelogram`` counts) and a weight decay of ``0.5 · 5e-5 · mean(W²)`` per G
    kernel; two WGAN critics, D_Au (real Au against Bu) and D_B0 (real B0 against A0), with
    weights clipped to ±0.01; RMSProp (decay 0.8) at 5e-5 for both; 100 critic updates at the
    start of every 500th iteration, one otherwise. A loop step is one critic update (on both
    critics), so ``steps`` counts those; G is updated on the last critic step of each
    iteration. Not here from upstream: its RMSProp starts its squared-gradient average at 1
    (TensorFlow's), PyTorch's at 0.
    """

    recipe: Literal["genegan"] = "genegan"
    generator: str = Field(
        default="genegan_tiny", description="the splitter + joiner, built with second_ratio"
    )
    discriminator: str = Field(
        default="genegan_tiny_discriminator",
        description="D_Au and D_B0, built with image_size = data.size",
    )
    attribute: str = Field(
        default="Smiling", description="the CelebA attribute (upstream's train.py default)"
    )
    second_ratio: float = Field(
        default=0.25, gt=0, lt=1, description="the attribute part's share of the channels"
    )
    gan_loss: GanLossName = Field(
        default="wgan", description="upstream's WGAN; the paper writes the log-D GAN loss"
    )
    clip: float | None = Field(
        default=0.01, gt=0, description="the critics' weight clipping (None: off)"
    )
    optimizer: Literal["rmsprop", "adam"] = Field(
        default="rmsprop", description="RMSProp (upstream's) or Adam with optim's betas"
    )
    optim: OptimConfig = OptimConfig(lr=5e-5)
    rmsprop_decay: float = Field(
        default=0.8, ge=0, lt=1, description="RMSProp's squared-gradient decay (upstream 0.8)"
    )
    lambda_rec: float = Field(default=1.0, ge=0, description="each reconstruction's L1 weight")
    lambda_nulling: float = Field(default=1.0, ge=0, description="weight of mean|ε|")
    lambda_adv: float = Field(default=1.0, ge=0, description="weight of each swap's WGAN term")
    lambda_parallelogram: float = Field(
        default=2.55, ge=0, description="parallelogram L1 weight on [0, 1] pixel values"
    )
    weight_decay: float = Field(
        default=5e-5, ge=0, description="G's 0.5 · weight_decay · mean(W²) per kernel"
    )
    critic_burst: int = Field(
        default=100, ge=1, description="critic updates in every burst_every-th iteration"
    )
    burst_every: int = Field(
        default=500, ge=1, description="iterations between critic bursts (each else has one)"
    )


# StarGAN v2's domains in Gantry: CelebA's three hair colours (a face with exactly one).
STARGAN_V2_DOMAINS = ("Black_Hair", "Blond_Hair", "Brown_Hair")


class StarGANv2Config(TrainConfig):
    """StarGAN v2 (Choi et al., 2020): a style-conditioned generator, a mapping network and
    a style encoder with one head per domain, and a multi-head discriminator.

    The defaults are clovaai/stargan-v2's (``main.py`` and the README's commands):
    ``--lambda_reg 1 --lambda_sty 1 --lambda_ds 1 --lambda_cyc 1 --lr 1e-4 --f_lr 1e-6
    --beta1 0 --beta2 0.99 --weight_decay 1e-4``, the EMA of G, F and E at 0.999, and the
    diversity weight decayed linearly to 0 over ``ds_iter`` iterations (clovaai's default
    ``ds_iter`` equals ``total_iters``: here ``ds_steps`` None, the run's ``steps``). One
    loop step is one clovaai iteration: two D updates (latent-guided fakes, then
    reference-guided) and two G updates (latent-guided, stepping G, F and E; then
    reference-guided, stepping G only).

    ``networks`` is the container (G, F, E) a run exports and serves; ``discriminator`` D.
    Both are built with ``num_domains = len(domains)`` and must be built for ``data.size``.
    """

    recipe: Literal["stargan_v2"] = "stargan_v2"
    networks: str = Field(
        default="stargan_v2_tiny", description="the G + F + E container (exported, served)"
    )
    discriminator: str = Field(
        default="stargan_v2_tiny_discriminator", description="D, one logit per domain"
    )
    domains: tuple[str, ...] = Field(
        default=STARGAN_V2_DOMAINS,
        min_length=2,
        description="CelebA attributes, one domain each (faces with exactly one of them)",
    )
    optim: OptimConfig = OptimConfig(lr=1e-4, beta1=0.0, beta2=0.99)
    ema_decay: float = Field(default=0.999, ge=0, lt=1, description="EMA of G, F and E")
    mapping_lr_scale: float = Field(
        default=0.01, gt=0, description="F's learning rate over optim.lr (clovaai: 1e-6 / 1e-4)"
    )
    weight_decay: float = Field(default=1e-4, ge=0, description="Adam's L2 term, every network")
    lambda_reg: float = Field(default=1.0, ge=0, description="R1 penalty on real images")
    lambda_sty: float = Field(default=1.0, ge=0, description="style reconstruction weight")
    lambda_ds: float = Field(
        default=1.0, ge=0, description="diversity sensitive weight at step 0 (AFHQ: 2)"
    )
    ds_steps: int | None = Field(
        default=None, ge=1, description="steps lambda_ds decays to 0 over (None: steps)"
    )
    lambda_cyc: float = Field(default=1.0, ge=0, description="cycle consistency weight")

    @model_validator(mode="after")
    def _domains_unique(self) -> StarGANv2Config:
        if len(set(self.domains)) != len(self.domains):
            raise ValueError(f"domains are listed twice: {list(self.domains)}")
        return self


class DeblurGANConfig(TrainConfig):
    """DeblurGAN (Kupyn et al., 2018): a ResNet generator with a global skip (it learns the
    residual) against a PatchGAN critic, WGAN-GP plus a content loss, on blurred/sharp pairs.

    The defaults are KupynOrest/DeblurGAN's (``--gan_type wgan-gp --lambda_A 100 --lr 1e-4
    --beta1 0.5``, five critic updates per G update, a gradient-penalty weight of 10). One
    loop step is one G update with its ``n_critic`` critic updates on the same batch and the
    same G output, as upstream's ``optimize_parameters`` does, so ``steps`` counts G
    updates. Upstream's content loss is the MSE between VGG19 ``conv3_3`` features; no VGG
    weights ship with Gantry, so without ``perceptual_weights`` (a torchvision VGG19 file)
    the content loss is L1 on pixels, with the same weight, and the run's notes say so.
    """

    recipe: Literal["deblurgan"] = "deblurgan"
    generator: str = Field(default="deblurgan_tiny", description="G (learns the residual)")
    critic: str = Field(default="deblurgan_critic_tiny", description="the WGAN-GP critic")
    optim: OptimConfig = OptimConfig(lr=1e-4, beta1=0.5, beta2=0.999)
    lambda_gp: float = Field(default=10.0, ge=0, description="WGAN-GP gradient penalty weight")
    n_critic: int = Field(default=5, ge=1, description="critic updates per G update")
    lambda_content: float = Field(
        default=100.0, ge=0, description="content loss weight (upstream's lambda_A)"
    )
    identity_init: bool = Field(
        default=False,
        description="start G as the identity (its output conv zeroed); upstream: off, every "
        "conv N(0, 0.02), so an untrained G adds a random residual to its input",
    )
    perceptual_weights: Path | None = Field(
        default=None,
        description="a torchvision VGG19 state_dict: the content loss is then upstream's "
        "VGG19 conv3_3 feature loss; without one (none ships with Gantry) it is pixel L1",
    )


class PFLDConfig(TrainConfig):
    """PFLD (Guo et al. 2019): a MobileNetV2 landmark regressor with multi-scale fusion, and
    an auxiliary net estimating head pose in training, under the pose- and condition-weighted
    squared point loss.

    The defaults are polarisZhao/PFLD-pytorch's (Adam 1e-4, weight decay 1e-6, 112 px crops,
    the reference's loss with no floor). 300-W has no attribute labels, so the rare-condition
    classes are what the points tell: profile, head up or down, open mouth, else frontal
    (trainer/data/landmarks.py); their weights are the reciprocal of their share of the
    training faces.
    """

    recipe: Literal["pfld"] = "pfld"
    network: str = Field(default="pfld", description="the landmark network (served)")
    auxiliary: str = Field(default="pfld_auxiliary", description="the pose net (training only)")
    optim: OptimConfig = OptimConfig(lr=1e-4, beta1=0.9, beta2=0.999)
    weight_decay: float = Field(default=1e-6, ge=0, description="Adam's L2 (the reference's)")
    pose_floor: float = Field(
        default=0.0,
        ge=0,
        description="added to each face's pose weight; 0 (the reference): a face whose pose "
        "the auxiliary net gets right adds nothing to the landmark loss",
    )
    condition_weights: bool = Field(
        default=True, description="weight faces by the reciprocal share of their conditions"
    )
    init_mean_shape: bool = Field(
        default=False,
        description="start the point layer's bias at the mean training shape (the reference: "
        "PyTorch's default initialisation)",
    )


# The face-recognition losses of trainer/losses/recognition.py (tests hold the lists equal).
RecognitionLossName = Literal[
    "norm_softmax",
    "l_softmax",
    "sphereface",
    "cosface",
    "arcface",
    "combined",
    "triplet",
    "center",
]


class RecognitionConfig(TrainConfig):
    """A face embedder trained with one recognition loss, measured by verification on people
    it never saw (the loss comparison of bench/train's recognition table).

    ``loss_options`` are the loss's own settings (``s``, ``m``, ``margin``, ``lambda_c`` ...;
    trainer/losses/recognition.py documents each loss's defaults).
    """

    recipe: Literal["recognition"] = "recognition"
    network: str = Field(default="face_embedder_small", description="the embedder")
    embedding_dim: int = Field(default=128, ge=2)
    loss: RecognitionLossName = "arcface"
    loss_options: dict[str, float] = Field(default_factory=dict)
    optim: OptimConfig = OptimConfig(lr=1e-3, beta1=0.9, beta2=0.999)
    weight_decay: float = Field(default=5e-4, ge=0, description="Adam's L2 (insightface: 5e-4)")


class GLCICConfig(TrainConfig):
    """Globally and Locally Consistent Image Completion (Iizuka et al., 2017): a dilated-conv
    completion network against a context discriminator (a global and a local one), in the
    paper's three phases.

    Steps ``[0, t_c)`` train the completion network alone on the MSE inside the hole; steps
    ``[t_c, t_c + t_d)`` train the discriminator alone on real images and completions of the
    fixed network; from ``t_c + t_d`` both train, the network on the MSE plus ``alpha`` times
    the adversarial loss (the paper: T_C 90,000, T_D 10,000, 500,000 in all, alpha 0.0004).
    The paper optimises with Adadelta; these runs are a few thousand steps on a CPU, where
    Adam (the loop's optimiser for every recipe) gets much further, so ``optim`` is Adam.
    """

    recipe: Literal["glcic"] = "glcic"
    generator: str = Field(default="glcic_completion_tiny", description="the completion network")
    discriminator: str = Field(
        default="glcic_discriminator_tiny",
        description="the context discriminator, built for data.size images and half-size patches",
    )
    optim: OptimConfig = OptimConfig(lr=1e-3, beta1=0.9, beta2=0.999)
    t_c: int = Field(default=720, ge=0, description="steps of MSE-only completion training")
    t_d: int = Field(default=120, ge=0, description="then steps of discriminator-only training")
    alpha: float = Field(default=0.0004, ge=0, description="adversarial weight in the joint phase")

    def for_build(self) -> GLCICConfig:
        """``build_steps`` steps with both phases scaled by the same factor, so version 1 has
        seen the three phases (an MSE phase at least one step long)."""
        short = super().for_build()
        scale = short.steps / self.steps
        return self.model_copy(
            update={
                "steps": short.steps,
                "time_limit_s": None,
                "t_c": max(1, round(self.t_c * scale)),
                "t_d": round(self.t_d * scale),
            }
        )


class FrontalizationConfig(TrainConfig):
    """What both frontalization recipes share: pose pairs of 64 px grey faces, and the
    identity-preserving loss on a frozen served embedder's features (1 - cosine)."""

    data: DataConfig = DataConfig(dataset="cmu_pose_pairs", size=64, val_images=72)
    gan_loss: GanLossName = "lsgan"
    identity_model: str = Field(
        default="mobilefacenet-arcface",
        description="the face embedder (a card) whose features the identity loss compares",
    )
    lambda_identity: float = Field(default=1.0, ge=0)
    lambda_tv: float = Field(default=1e-4, ge=0, description="total variation")
    lambda_adv: float = Field(default=0.1, ge=0, description="each adversarial term's weight")


class CAPGGANConfig(FrontalizationConfig):
    """CAPG-GAN (Hu et al., 2018): a generator conditioned on the face and on source and
    target landmark heatmaps, against two agents (identity: input/output pairs; pose: target
    heatmaps/output pairs), with a multi-scale pixel loss, identity loss and TV."""

    recipe: Literal["capg_gan"] = "capg_gan"
    generator: str = "capg_generator_tiny"
    discriminator: str = Field(
        default="capg_discriminator_tiny", description="both agents' network (built per stack)"
    )
    lambda_pixel: float = Field(default=10.0, ge=0, description="multi-scale L1 (1, 1/2, 1/4)")


class TPGANConfig(FrontalizationConfig):
    """TP-GAN (Huang et al., 2017): a global pathway and four landmark-patch pathways fused,
    with multi-scale pixel, local patch, symmetry (pixel and Laplacian), identity,
    adversarial and TV losses (the paper's weights relative to the pixel loss: symmetry
    0.3, adversarial 1e-3, identity 3e-3 on Light CNN features, TV 1e-4)."""

    recipe: Literal["tpgan"] = "tpgan"
    generator: str = "tpgan_generator_tiny"
    discriminator: str = "tpgan_discriminator_tiny"
    lambda_pixel: float = Field(default=1.0, ge=0, description="multi-scale L1 (1, 1/2, 1/4)")
    lambda_local: float = Field(default=1.0, ge=0, description="L1 of each part's patch")
    lambda_symmetry: float = Field(default=0.3, ge=0, description="pixel + Laplacian symmetry")
    lambda_adv: float = Field(default=1e-3, ge=0)
    lambda_identity: float = Field(default=0.3, ge=0)


class ProGANSchedule(_Strict):
    """The growth schedule: the same number of steps for every resolution.

    Stage 0 (4x4) trains ``stable`` steps; every later stage first fades its new block in
    over ``fade_in`` steps (alpha rising linearly from 0 towards 1), then trains ``stable``
    steps at alpha 1. tkarras' defaults are 600k images of each (``lod_training_kimg``,
    ``lod_transition_kimg``; the paper writes 800k), i.e. 37,500 steps at batch 16.
    """

    fade_in: int = Field(ge=1, description="steps a new resolution's block fades in over")
    stable: int = Field(ge=1, description="steps at each resolution with its block fully in")


class ProGANConfig(TrainConfig):
    """Progressive GAN (Karras et al., 2018): G and D grow together from 4x4 to
    ``data.size`` (a power of two), one doubling per stage, each new block faded in.

    The defaults are tkarras/progressive_growing_of_gans' (``config.py``, ``loss.py``,
    ``train.py``): WGAN-GP with ``wgan_lambda`` 10 and target 1, the drift term
    ``wgan_epsilon`` 0.001 · E[D(x)²], one D update per G update, Adam 1e-3 with betas
    (0, 0.99), Adam's state reset when a new resolution starts (``reset_opt_for_new_lod``),
    the EMA of G's weights as the evaluated and exported generator (``G_smoothing``), real
    faces shown at the stage's resolution and blended between two resolutions during a
    fade-in as G's output is. The stage and alpha of a step depend on its number alone
    (:meth:`stage_at`), so a run resumed anywhere follows the same schedule.
    """

    recipe: Literal["progan"] = "progan"
    generator: str = Field(default="progan_tiny", description="G, built for data.size")
    discriminator: str = Field(
        default="progan_tiny_discriminator", description="D, the mirror image of G"
    )
    optim: OptimConfig = OptimConfig(lr=1e-3, beta1=0.0, beta2=0.99)
    schedule: ProGANSchedule
    lambda_gp: float = Field(default=10.0, ge=0, description="WGAN-GP gradient penalty weight")
    eps_drift: float = Field(
        default=0.001, ge=0, description="weight of the drift term E[D(real)²] in D's loss"
    )
    reset_optimizers_per_stage: bool = Field(
        default=True, description="clear Adam's moments when a new resolution fades in"
    )
    ema_decay: float = Field(default=0.999, ge=0, lt=1, description="EMA of G (G_smoothing)")

    @property
    def stages(self) -> int:
        """Resolutions the run trains at: 4, 8, ... ``data.size``."""
        return max(self.data.size.bit_length() - 2, 1)

    def stage_start(self, stage: int) -> int:
        """The first step of ``stage`` (its fade-in's first step; 0 for 4x4)."""
        if stage == 0:
            return 0
        return self.schedule.stable + (stage - 1) * (self.schedule.fade_in + self.schedule.stable)

    def stage_end(self, stage: int) -> int:
        """The step after the last one the schedule gives ``stage`` (the last stage may
        train on until ``steps``)."""
        return (
            self.stage_start(stage)
            + (self.schedule.fade_in if stage else 0)
            + (self.schedule.stable)
        )

    def stage_at(self, step: int) -> tuple[int, float]:
        """The stage and the fade-in alpha (0 at a fade's first step, 1 once faded in) of
        (0-based) ``step``."""
        stage = 0
        while stage + 1 < self.stages and step >= self.stage_start(stage + 1):
            stage += 1
        if stage == 0:
            return 0, 1.0
        into = step - self.stage_start(stage)
        return stage, min(into / self.schedule.fade_in, 1.0)

    def for_build(self) -> ProGANConfig:
        """The build-time run: the schedule scaled by ``build_steps / steps`` (each part at
        least one step), so version 1 reaches the final resolution too.

        Raises:
            ValueError: the config has no ``build_steps``.
        """
        short = super().for_build()
        scale = short.steps / self.steps
        schedule = ProGANSchedule(
            fade_in=max(1, round(self.schedule.fade_in * scale)),
            stable=max(1, round(self.schedule.stable * scale)),
        )
        steps = max(
            short.steps, self.model_copy(update={"schedule": schedule}).stage_end(self.stages - 1)
        )
        return self.model_copy(update={"schedule": schedule, "steps": steps, "time_limit_s": None})

    @model_validator(mode="after")
    def _grows_to_the_final_size(self) -> ProGANConfig:
        size = self.data.size
        if size & (size - 1):
            raise ValueError(f"data.size must be a power of two for ProGAN, not {size}")
        last_fade_done = self.stage_start(self.stages - 1) + (
            self.schedule.fade_in if self.stages > 1 else 0
        )
        if self.steps < last_fade_done:
            raise ValueError(
                f"steps ({self.steps}) end before the {size}x{size} stage has faded in "
                f"(step {last_fade_done} with this schedule)"
            )
        return self


class SuperResolutionConfig(TrainConfig, PerceptualTerm):
    """What SRGAN and ESRGAN share: an x4 generator trained in two stages.

    * ``stage: psnr``: the PSNR-oriented pre-training, the pixel loss alone (SRResNet's MSE,
      ESRGAN's L1); no discriminator is built.
    * ``stage: gan``: ``lambda_pixel`` · pixel + ``lambda_perceptual`` · VGG19 features
      before activation (only with ``perceptual_weights``, none ship with Gantry) +
      ``lambda_adv`` · the adversarial loss, against ``discriminator`` (one D update per G
      update), G initialised from the PSNR stage: ``init_weights`` (a run's
      ``generator.pth``) or ``init_model`` (a model's packaged weights, e.g. the served
      realesrgan-x4plus).

    Pairs come from ``data.dataset`` (``bicubic_x4_photos`` or ``realesrgan_x4_photos``);
    ``data.size`` is the HR crop (LR is a quarter of it; the discriminator needs a multiple
    of 32). ``photos_dir`` points the dataset at another folder of photos (a user's), with
    the same held-aside split by file name.
    """

    generator: str
    discriminator: str
    stage: Literal["psnr", "gan"] = "psnr"
    pixel_loss: Literal["l1", "mse"] = "l1"
    lambda_pixel: float = Field(default=1.0, ge=0, description="pixel loss weight (gan stage)")
    perceptual_layer: str = Field(
        default="conv5_4", description="the VGG19 layer (before its ReLU) of the perceptual loss"
    )
    gan_loss: GanLossName = "nonsaturating"
    lambda_adv: float = Field(default=1e-3, ge=0, description="adversarial weight (gan stage)")
    init_weights: Path | None = Field(
        default=None,
        description="a generator state_dict G starts from, e.g. a PSNR run's generator.pth; "
        "a relative path is taken from the checkpoint directory (`<run>/generator.pth`)",
    )
    init_model: str | None = Field(
        default=None, description="a model card whose weights G starts from (realesrgan-x4plus)"
    )
    photos_dir: Path | None = Field(
        default=None, description="a folder of photos to train on instead of the dataset's own"
    )

    @model_validator(mode="after")
    def _consistent(self) -> SuperResolutionConfig:
        if self.init_weights is not None and self.init_model is not None:
            raise ValueError("name init_weights or init_model, not both")
        if self.data.size % 4:
            raise ValueError(
                f"data.size (the HR crop) must be a multiple of 4, not {self.data.size}"
            )
        if self.stage == "gan" and self.data.size % 32:
            raise ValueError(
                f"the discriminator needs data.size a multiple of 32, not {self.data.size}"
            )
        return self


class SRGANConfig(SuperResolutionConfig):
    """SRGAN (Ledig et al., 2017): SRResNet (BN, PReLU, PixelShuffle) against a VGG-style D.

    The paper's defaults: MSE pre-training (SRResNet), then the GAN stage with the
    non-saturating adversarial loss at 1e-3, Adam 1e-4 / beta1 0.9. Its SRGAN-VGG54 content
    loss is the MSE between VGG19 ``conv5_4`` features (ours: the L1 of
    :class:`~trainer.losses.VGGPerceptualLoss`, with ``perceptual_weights``); without VGG
    weights the GAN stage is the paper's SRGAN-MSE variant: MSE + 1e-3 adversarial.
    """

    recipe: Literal["srgan"] = "srgan"
    generator: str = "srresnet_x4_tiny"
    discriminator: str = Field(
        default="vgg_discriminator_tiny", description="D, built with input_size = data.size"
    )
    pixel_loss: Literal["l1", "mse"] = "mse"
    optim: OptimConfig = OptimConfig(lr=1e-4, beta1=0.9, beta2=0.999)


class ESRGANConfig(SuperResolutionConfig):
    """ESRGAN (Wang et al., 2018): RRDBNet (no BN, residual scaling 0.2) against a VGG-style
    D with the relativistic average GAN loss.

    The paper's defaults: L1 pre-training (Adam 2e-4, betas 0.9 / 0.99), then L1 x 1e-2 +
    VGG19 ``conv5_4`` (before activation) L1 x 1 + RaGAN x 5e-3 at 1e-4. Our RaGAN sums the
    two terms where BasicSR averages them, so its 5e-3 is ``lambda_adv`` 2.5e-3 here. The
    perceptual term needs ``perceptual_weights`` (none ship), so it is off by default.
    """

    recipe: Literal["esrgan"] = "esrgan"
    generator: str = "rrdbnet_x4_tiny"
    discriminator: str = Field(
        default="vgg_discriminator_tiny", description="D, built with input_size = data.size"
    )
    pixel_loss: Literal["l1", "mse"] = "l1"
    gan_loss: GanLossName = "relativistic_average"
    lambda_pixel: float = Field(default=1e-2, ge=0, description="ESRGAN's eta (gan stage)")
    lambda_adv: float = Field(
        default=2.5e-3, ge=0, description="ESRGAN's lambda 5e-3 with averaged RaGAN terms"
    )
    optim: OptimConfig = OptimConfig(lr=2e-4, beta1=0.9, beta2=0.99)


CONFIG_TYPES: Registry[type[TrainConfig]] = Registry("training recipe")
CONFIG_TYPES.add("pix2pix", Pix2PixConfig)
CONFIG_TYPES.add("pix2pixhd", Pix2PixHDConfig)
CONFIG_TYPES.add("cyclegan", CycleGANConfig)
CONFIG_TYPES.add("combogan", ComboGANConfig)
CONFIG_TYPES.add("stargan", StarGANConfig)
CONFIG_TYPES.add("icgan", IcGANConfig)
CONFIG_TYPES.add("genegan", GeneGANConfig)
CONFIG_TYPES.add("stargan_v2", StarGANv2Config)
CONFIG_TYPES.add("deblurgan", DeblurGANConfig)
CONFIG_TYPES.add("pfld", PFLDConfig)
CONFIG_TYPES.add("recognition", RecognitionConfig)
CONFIG_TYPES.add("glcic", GLCICConfig)
CONFIG_TYPES.add("progan", ProGANConfig)
CONFIG_TYPES.add("capg_gan", CAPGGANConfig)
CONFIG_TYPES.add("tpgan", TPGANConfig)
CONFIG_TYPES.add("srgan", SRGANConfig)
CONFIG_TYPES.add("esrgan", ESRGANConfig)
