"""RetinaFace post-processing for biubug6/Pytorch_Retinaface outputs, in numpy.

The network (served by Triton) maps an ``H x W`` image to one row per prior box:

* ``loc (N, 4)``: SSD offsets ``(dcx, dcy, dw, dh)`` relative to the prior;
* ``conf (N, 2)``: softmax probabilities (the test-phase export), column 1 = face;
* ``landms (N, 10)``: offsets of five ``(x, y)`` points, interleaved ``x1, y1, ..., x5, y5``.

The anchor layout comes from the model card (:class:`~gantry.core.cards.PriorSpec`).
Priors, decoding and thresholds follow biubug6's ``PriorBox``, ``box_utils.decode`` /
``decode_landm`` and ``detect.py``. Landmarks come out in the model's order: left eye, right
eye, nose, left mouth corner, right mouth corner, "left" meaning the left of the image.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gantry.core.cards import PriorSpec
from gantry.serving.faces.boxes import nms
from gantry.serving.faces.types import NUM_LANDMARKS, Detection, detections_from_arrays


@lru_cache(maxsize=64)
def prior_boxes(height: int, width: int, config: PriorSpec) -> NDArray[np.float64]:
    """Prior boxes of an ``height x width`` network input, in biubug6's exact order.

    For each feature map ``k`` (size ``ceil(H / step_k) x ceil(W / step_k)``, which is what
    the stride-2, padding-1 convolutions of both backbones produce for any input size), row
    ``i``, column ``j`` and anchor size ``s``: ``cx = (j + 0.5) * step / W``,
    ``cy = (i + 0.5) * step / H``, ``w = s / W``, ``h = s / H``. The order must match the
    network's concatenated head outputs row for row.

    Args:
        height: Network input height in pixels.
        width: Network input width in pixels.
        config: Anchor layout (the detector card's ``spec.priors``).

    Returns:
        Read-only ``(N, 4)`` float64 ``(cx, cy, w, h)`` normalised to the input size. Cached
        per ``(height, width, config)``, hence read-only.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    blocks = []
    # One pass per pyramid level; everything within a level is broadcast.
    for step, sizes in zip(config.steps, config.min_sizes, strict=True):
        rows, cols = -(-height // step), -(-width // step)
        block = np.empty((rows, cols, len(sizes), 4), dtype=np.float64)
        block[..., 0] = ((np.arange(cols) + 0.5) * step / width)[None, :, None]
        block[..., 1] = ((np.arange(rows) + 0.5) * step / height)[:, None, None]
        anchor = np.asarray(sizes, dtype=np.float64)
        block[..., 2] = anchor / width
        block[..., 3] = anchor / height
        blocks.append(block.reshape(-1, 4))
    priors = np.concatenate(blocks, axis=0)
    if config.clip:
        np.clip(priors, 0.0, 1.0, out=priors)
    priors.flags.writeable = False
    return priors


def decode_boxes(
    loc: NDArray[Any], priors: NDArray[Any], variance: tuple[float, float]
) -> NDArray[np.float64]:
    """Undo the SSD box encoding (biubug6 ``box_utils.decode``).

    ``centre = prior_c + loc_c * v0 * prior_wh``; ``size = prior_wh * exp(loc_wh * v1)``.

    Args:
        loc: ``(N, 4)`` predicted offsets.
        priors: ``(N, 4)`` ``(cx, cy, w, h)``.
        variance: ``(v0, v1)``.

    Returns:
        ``(N, 4)`` ``x1, y1, x2, y2`` in the priors' normalised units.
    """
    offsets = np.asarray(loc, dtype=np.float64)
    p = np.asarray(priors, dtype=np.float64)
    centres = p[:, :2] + offsets[:, :2] * variance[0] * p[:, 2:]
    sizes = p[:, 2:] * np.exp(offsets[:, 2:] * variance[1])
    top_left = centres - 0.5 * sizes
    return np.concatenate([top_left, top_left + sizes], axis=1)


def decode_landmarks(
    landms: NDArray[Any], priors: NDArray[Any], variance: tuple[float, float]
) -> NDArray[np.float64]:
    """Undo the landmark encoding (biubug6 ``box_utils.decode_landm``).

    Each point is ``prior_c + offset * v0 * prior_wh``; only the centre variance is used.

    Args:
        landms: ``(N, 10)`` offsets, interleaved ``x1, y1, ..., x5, y5``.
        priors: ``(N, 4)`` ``(cx, cy, w, h)``.
        variance: ``(v0, v1)``.

    Returns:
        ``(N, 5, 2)`` points in the priors' normalised units.
    """
    offsets = np.asarray(landms, dtype=np.float64).reshape(-1, NUM_LANDMARKS, 2)
    p = np.asarray(priors, dtype=np.float64)
    return p[:, None, :2] + offsets * variance[0] * p[:, None, 2:]


def _scale_xy(scale: tuple[float, float] | float) -> tuple[float, float]:
    if isinstance(scale, tuple):
        sx, sy = (float(v) for v in scale)
    else:
        sx = sy = float(scale)
    if sx <= 0 or sy <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    return sx, sy


def _drop_batch(name: str, array: NDArray[Any], columns: int) -> NDArray[Any]:
    a = np.asarray(array)
    if a.ndim == 3:
        if a.shape[0] != 1:
            raise ValueError(f"{name} holds a batch of {a.shape[0]}; pass one image's rows")
        a = a[0]
    if a.ndim != 2 or a.shape[1] != columns:
        raise ValueError(f"{name} must have shape (N, {columns}), got {np.shape(array)}")
    return a


def detect_from_outputs(
    loc: NDArray[Any],
    conf: NDArray[Any],
    landms: NDArray[Any],
    *,
    height: int,
    width: int,
    config: PriorSpec,
    score_threshold: float = 0.5,
    nms_threshold: float = 0.4,
    top_k: int = 5000,
    keep_top_k: int = 750,
    scale: tuple[float, float] | float = 1.0,
) -> list[Detection]:
    """Faces from one image's RetinaFace outputs, as biubug6's ``detect.py`` does.

    Steps: keep ``score > score_threshold``; keep the ``top_k`` best; decode; map to pixels;
    NMS at ``nms_threshold`` (inclusive-pixel IoU, as biubug6's ``py_cpu_nms``, computed in
    original-image pixels like there); keep ``keep_top_k``.

    Args:
        loc: ``(N, 4)`` or ``(1, N, 4)`` box offsets.
        conf: ``(N, 2)`` or ``(1, N, 2)`` softmax probabilities, column 1 = face.
        landms: ``(N, 10)`` or ``(1, N, 10)`` landmark offsets.
        height: Height of the *network input* the outputs belong to.
        width: Width of the network input.
        config: The model's anchor layout.
        score_threshold: Minimum face probability (strictly greater, as biubug6).
        nms_threshold: IoU above which the weaker of two boxes is dropped.
        top_k: Candidates kept before NMS.
        keep_top_k: Detections kept after NMS.
        scale: Network-input size divided by original-image size, as returned by
            :func:`resize_for_detection`: a float, or ``(scale_x, scale_y)`` when the two axes
            were resized by different factors. Coordinates are divided by it, so the result is
            in original-image pixels; 1.0 when the image was not resized.

    Returns:
        Detections by descending score; boxes and landmarks in continuous pixel coordinates
        of the original image (may extend slightly past its borders, as in biubug6).
    """
    loc2 = _drop_batch("loc", loc, 4)
    conf2 = _drop_batch("conf", conf, 2)
    landms2 = _drop_batch("landms", landms, 2 * NUM_LANDMARKS)
    priors = prior_boxes(int(height), int(width), config)
    if not loc2.shape[0] == conf2.shape[0] == landms2.shape[0] == priors.shape[0]:
        raise ValueError(
            f"outputs have {loc2.shape[0]}/{conf2.shape[0]}/{landms2.shape[0]} rows but a "
            f"{height}x{width} input has {priors.shape[0]} priors; pass the network input size"
        )
    scale_x, scale_y = _scale_xy(scale)

    scores = np.asarray(conf2[:, 1], dtype=np.float64)
    candidates = np.flatnonzero(scores > score_threshold)
    # Stable descending sort keeps ties in prior order, so results are reproducible.
    order = candidates[np.argsort(-scores[candidates], kind="stable")][: max(top_k, 0)]
    # Decoding only the survivors is equivalent to biubug6 decoding every prior first.
    boxes = decode_boxes(loc2[order], priors[order], config.variance)
    points = decode_landmarks(landms2[order], priors[order], config.variance)
    to_pixels = np.array([width / scale_x, height / scale_y], dtype=np.float64)
    boxes *= np.tile(to_pixels, 2)
    points *= to_pixels
    kept = nms(boxes, scores[order], nms_threshold, max_output=max(keep_top_k, 0), plus_one=True)
    return detections_from_arrays(boxes[kept], scores[order][kept], points[kept])


def resize_for_detection(
    height: int, width: int, *, max_side: int = 1024, min_side: int = 0, multiple: int = 32
) -> tuple[int, int, tuple[float, float]]:
    """Network input size for an ``height x width`` photo, and the scale to map results back.

    Policy:

    1. Scale factor ``s = 1``; if ``min_side > 0`` and the short side is below it, upscale so
       it reaches ``min_side``; then, if the long side exceeds ``max_side``, downscale so it
       equals ``max_side`` (the memory bound wins over ``min_side``). Aspect ratio is kept.
    2. Round each side *to the nearest* multiple of ``multiple`` (at least one multiple),
       never above ``max_side`` rounded down to a multiple.

    Why round: at multiples of 32 every FPN level is an exact integer fraction of the input,
    so the nearest-neighbour 2x upsampling in biubug6's FPN lines up with the lateral feature
    maps as in training (e.g. at 333 px the levels are 42, 21 and 11 cells and 11 cells do not
    upsample onto 21), and a small set of input shapes lets Triton batch requests together
    and TensorRT reuse its profiles. Nearest (rather than always up or down) keeps the aspect
    distortion to at most ``multiple / 2`` pixels per side; each axis gets its own exact
    scale, so coordinates map back without error. Images already under ``max_side`` are only
    touched by this rounding. ``multiple=1`` disables it.

    Args:
        height: Original image height.
        width: Original image width.
        max_side: Upper bound for the long side (``<= 0``: no bound).
        min_side: Lower bound for the short side (``0``: never upscale).
        multiple: Each output side is a multiple of this.

    Returns:
        ``(new_height, new_width, (scale_x, scale_y))`` with ``scale_x = new_width / width``
        and ``scale_y = new_height / height``, ready for ``detect_from_outputs(scale=...)``.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if multiple <= 0:
        raise ValueError(f"multiple must be positive, got {multiple}")
    factor = 1.0
    if min_side > 0 and min(height, width) < min_side:
        factor = min_side / min(height, width)
    if max_side > 0 and max(height, width) * factor > max_side:
        factor = max_side / max(height, width)
    ceiling = (max_side // multiple) * multiple if max_side >= multiple else None

    def snap(side: float) -> int:
        # floor(x + 0.5): round half up, unlike Python's round-half-even.
        snapped = max(1, math.floor(side / multiple + 0.5)) * multiple
        return min(snapped, ceiling) if ceiling is not None else snapped

    new_height, new_width = snap(height * factor), snap(width * factor)
    return new_height, new_width, (new_width / width, new_height / height)
