"""Real inputs, prepared as each card says, for the export parity gate; one probe per task.

A probe turns files of ``../shared/data`` into (label, CHW float32) network inputs the way
serving would: photos normalised by :func:`gantry.core.preprocess.normalise`, label maps
encoded by :func:`gantry.core.labelmaps.generator_input`. Without the data directory the gate
still runs, on a fixed pseudo-random image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from gantry.core.cards import (
    FaceEditSpec,
    GenerationSpec,
    ModelCard,
    StyleTranslationSpec,
    SynthesisSpec,
)
from gantry.core.labelmaps import classes_from_ids, generator_input
from gantry.core.latents import seeded_latents
from gantry.core.preprocess import face_square, normalise, normalise_grey
from gantry.core.registry import Registry
from trainer.export.onnx import ProbeInput

Probe = Sequence[tuple[str, ProbeInput]]
PROBES: Registry[Callable[[ModelCard, Path], Probe]] = Registry("task probe")

# Crops small enough that the 23-block RRDBNet check stays in seconds on a CPU.
SUPERRES_CROP = 48
DETECTION_LONG_SIDE = 160
_SET5_LR = ("superres/Set5/LR_bicubic/X4/babyx4.png", "superres/Set5/LR_bicubic/X4/birdx4.png")
_OBAMA = "faces_verify/face_recognition_knn/obama/obama.jpg"
_BIDEN = "faces_verify/face_recognition_knn/biden/biden.jpg"


def _center_square(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return rgb[top : top + side, left : left + side]


def _photos(data_dir: Path, relative: tuple[str, ...]) -> list[tuple[str, NDArray[np.uint8]]]:
    """(name, RGB) of the files that exist; a fixed random image when none does."""
    found = [
        (rel, np.asarray(Image.open(data_dir / rel).convert("RGB")))
        for rel in relative
        if (data_dir / rel).exists()
    ]
    if not found:
        rng = np.random.default_rng(0)
        found = [("random-64x64", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))]
    return found


def _fixed_size(rgb: NDArray[np.uint8], card: ModelCard) -> NDArray[np.uint8]:
    fixed = card.input_hw
    assert fixed is not None
    square = Image.fromarray(_center_square(rgb))
    return np.asarray(square.resize((fixed[1], fixed[0]), Image.Resampling.BILINEAR))


def _crop(rgb: NDArray[np.uint8], card: ModelCard) -> NDArray[np.uint8]:
    """A centre crop of SUPERRES_CROP px, grown to the card's size multiple and minimum."""
    side = -(-max(SUPERRES_CROP, card.min_input_size) // card.size_multiple) * card.size_multiple
    h, w = rgb.shape[:2]
    top, left = max((h - side) // 2, 0), max((w - side) // 2, 0)
    return rgb[top : top + side, left : left + side]


def _shrunk(rgb: NDArray[np.uint8], card: ModelCard) -> NDArray[np.uint8]:
    h, w = rgb.shape[:2]
    scale = DETECTION_LONG_SIDE / max(h, w)
    side = max(card.min_input_size, 12)
    size = (max(round(w * scale), side), max(round(h * scale), side))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))


@PROBES.register("superres")
@PROBES.register("image_to_image")
@PROBES.register("deblur")
def _image_crops(card: ModelCard, data_dir: Path) -> Probe:
    """Crops of Set5 photos (dynamic H, W)."""
    return [(n, normalise(_crop(rgb, card), card)) for n, rgb in _photos(data_dir, _SET5_LR)]


@PROBES.register("inpaint")
def _holed_crops(card: ModelCard, data_dir: Path) -> Probe:
    """Crops of Set5 photos, each with a hole as serving sends one: RGB then the mask
    (1 = hole) as a fourth channel; a centred square on the first, a bar on the others."""
    probes = []
    for i, (name, rgb) in enumerate(_photos(data_dir, _SET5_LR)):
        crop = normalise(_crop(rgb, card), card)
        h, w = crop.shape[1:]
        mask = np.zeros((1, h, w), np.float32)
        if i == 0:
            mask[:, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 1
        else:
            mask[:, h // 3 : h // 3 + max(2, h // 8), :] = 1
        probes.append((f"{name} with a hole", np.concatenate([crop, mask])))
    return probes


@PROBES.register("face_detection")
def _detection_photos(card: ModelCard, data_dir: Path) -> Probe:
    """A group photo and a portrait, shrunk to detector size."""
    names = ("faces_detect/dlib_voc/2008_001322.jpg", _OBAMA)
    return [(n, normalise(_shrunk(rgb, card), card)) for n, rgb in _photos(data_dir, names)]


@PROBES.register("face_detection_stage")
def _stage_inputs(card: ModelCard, data_dir: Path) -> Probe:
    """A portrait: at the stage's crop size, or shrunk for the fully convolutional P-Net."""
    prepare = _fixed_size if card.input_hw is not None else _shrunk
    return [(n, normalise(prepare(rgb, card), card)) for n, rgb in _photos(data_dir, (_OBAMA,))]


@PROBES.register("face_embedding")
@PROBES.register("face_landmarks")
def _face_chips(card: ModelCard, data_dir: Path) -> Probe:
    """Two faces at the model's chip size."""
    photos = _photos(data_dir, (_OBAMA, _BIDEN))
    return [(n, normalise(_fixed_size(rgb, card), card)) for n, rgb in photos]


@PROBES.register("synthesis")
def _label_maps(card: ModelCard, data_dir: Path) -> Probe:
    """A real facade label map turned into generator inputs, at two sizes."""
    spec = card.spec
    assert isinstance(spec, SynthesisSpec)
    labels = sorted((data_dir / "train" / "cmp_facades" / "val" / "label").glob("*.png"))[:1]
    if not labels:
        rng = np.random.default_rng(0)
        ids = rng.integers(0, spec.n_classes, (64, 64)) + spec.first_label_id
        labels_arrays = [("random-64x64", ids, (64, 64))]
    else:
        raw = np.asarray(Image.open(labels[0]))
        name = str(labels[0].relative_to(data_dir))
        labels_arrays = [(name, raw, (256, 512)), (name, raw, (128, 128))]
    inputs = []
    for name, ids, (h, w) in labels_arrays:
        resized = Image.fromarray(ids.astype(np.uint8)).resize((w, h), Image.Resampling.NEAREST)
        classes = classes_from_ids(
            np.asarray(resized), first_id=spec.first_label_id, n_classes=spec.n_classes
        )
        rng = np.random.default_rng(0)
        features = {c: rng.uniform(-1, 1, spec.feat_num) for c in range(spec.n_classes)}
        x = generator_input(
            classes,
            None,
            features,
            n_classes=spec.n_classes,
            feat_num=spec.feat_num,
            boundary=spec.boundary,
        )
        inputs.append((f"{name} at {h}x{w}", x))
    return inputs


# Two CelebA faces (research-only data: read here to check the export, never shipped).
_CELEBA_FACES = (
    "train/celeba_attr_subset/images/000001.jpg",
    "train/celeba_attr_subset/images/000002.jpg",
)


def _aligned_faces(card: ModelCard, data_dir: Path) -> list[tuple[str, NDArray[np.float32]]]:
    """The two CelebA faces cut as serving cuts a face for a fixed-size face model."""
    fixed = card.input_hw
    assert fixed is not None
    return [
        (name, normalise(face_square(rgb, fixed[0]), card))
        for name, rgb in _photos(data_dir, _CELEBA_FACES)
    ]


@PROBES.register("face_edit")
def _face_edits(card: ModelCard, data_dir: Path) -> Probe:
    """Two faces cut as serving cuts them, each with an edit: attribute vectors that set,
    clear and keep, or the other face as the donor."""
    spec = card.spec
    assert isinstance(spec, FaceEditSpec)
    faces = _aligned_faces(card, data_dir)
    if spec.conditioning == "donor":
        return [
            (f"{name} from {faces[-1 - i][0]}", (face, faces[-1 - i][1]))
            for i, (name, face) in enumerate(faces)
        ]
    c = len(spec.attributes)
    edits = [np.resize(np.asarray(v, np.float32), c) for v in ([1, 0, -1], [-1, 1, 0])]
    return [
        (f"{name} with {edit.tolist()}", (face, edit))
        for (name, face), edit in zip(faces, edits, strict=False)
    ]


@PROBES.register("style_translation")
def _styled_faces(card: ModelCard, data_dir: Path) -> Probe:
    """Two faces cut as serving cuts them: one translated with the other as the reference
    (to the first domain), the other with a seeded latent style (to the last domain)."""
    spec = card.spec
    assert isinstance(spec, StyleTranslationSpec)
    faces = _aligned_faces(card, data_dir)
    k = len(spec.domains)
    z = np.random.default_rng(0).standard_normal(spec.latent_dim).astype(np.float32)
    probes: list[tuple[str, ProbeInput]] = []
    for i, (name, face) in enumerate(faces):
        reference_name, reference = faces[-1 - i]
        use_reference = i % 2 == 0
        domain = np.eye(k, dtype=np.float32)[0 if use_reference else k - 1]
        how = f"{reference_name}'s style" if use_reference else "seed 0"
        flag = np.full(1, 1.0 if use_reference else 0.0, np.float32)
        probes.append(
            (
                f"{name} to {spec.domains[int(domain.argmax())]}, {how}",
                (face, reference, z, domain, flag),
            )
        )
    return probes


@PROBES.register("generation")
def _seeded_latents(card: ModelCard, data_dir: Path) -> Probe:
    """The latents serving draws for seeds 0 and 1 (numpy PCG64 standard normals); a
    generator reads no data."""
    spec = card.spec
    assert isinstance(spec, GenerationSpec)
    return [(f"seed {seed}", seeded_latents(spec.latent_dim, seed)[0]) for seed in (0, 1)]


# Half-profiles of two people the frontalizers never trained on (held aside), one each way.
_CMU_PROFILES = (
    "train/cmu_faces_pose/dave/dave_left_neutral_eyes.png",
    "train/cmu_faces_pose/henry/henry_right_happy_sunglasses.png",
)


@PROBES.register("face_frontalization")
def _frontalization_crops(card: ModelCard, data_dir: Path) -> Probe:
    """Two CMU half-profiles cut as serving cuts them (the crop around RetinaFace's box, in
    the card's range) with face-api's points relative to the crop; a fixed random crop and
    random points without the data."""
    from trainer.data.frontalization import locate_face, source_crop

    hw = card.input_hw
    assert hw is not None
    probes: list[tuple[str, ProbeInput]] = []
    for rel in _CMU_PROFILES:
        if not (data_dir / rel).exists():
            continue
        grey = np.asarray(Image.open(data_dir / rel).convert("L"))
        found = locate_face(grey)
        if found is None:
            continue
        crop, points = source_crop(found, grey, hw[0])
        pixels = normalise_grey(crop, card)
        probes.append((rel, (pixels, points.astype(np.float32))))
    if not probes:
        rng = np.random.default_rng(0)
        pixels = rng.uniform(-1, 1, (1, *hw)).astype(np.float32)
        points = rng.uniform(0.3, 0.7, (card.inputs[1].dims[0], 2)).astype(np.float32)
        probes.append(("random-64x64", (pixels, points)))
    return probes


def probe_inputs(card: ModelCard, data_dir: Path) -> Probe:
    """(label, CHW float32) real inputs for ``card``, from ``data_dir`` (../shared/data)."""
    return PROBES.get(card.task)(card, data_dir)
