"""Axis-aligned box utilities: overlap, non-maximum suppression, clipping, squaring, padding.

Boxes are ``(N, 4)`` arrays of ``x1, y1, x2, y2``. Two area conventions coexist in the
detectors we reproduce, so the overlap functions take ``plus_one``:

* ``plus_one=False`` (default): continuous coordinates, width ``x2 - x1`` (torchvision).
* ``plus_one=True``: inclusive integer pixel indices, width ``x2 - x1 + 1``, as in the
  original Fast R-CNN / MTCNN NMS that biubug6's RetinaFace and facenet-pytorch's last MTCNN
  stage call. It makes overlaps of small boxes slightly larger, so it changes which boxes
  survive; match the reference when reproducing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray


def _as_boxes(boxes: NDArray[Any], name: str = "boxes") -> NDArray[np.float64]:
    array = np.asarray(boxes, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4), got {array.shape}")
    return array


def box_areas(boxes: NDArray[Any], *, plus_one: bool = False) -> NDArray[np.float64]:
    """Areas of ``(N, 4)`` boxes; inverted boxes count as empty.

    Args:
        boxes: ``(N, 4)`` x1, y1, x2, y2.
        plus_one: Inclusive pixel convention (width ``x2 - x1 + 1``).

    Returns:
        ``(N,)`` float64 areas, never negative.
    """
    b = _as_boxes(boxes)
    offset = 1.0 if plus_one else 0.0
    widths = np.maximum(b[:, 2] - b[:, 0] + offset, 0.0)
    heights = np.maximum(b[:, 3] - b[:, 1] + offset, 0.0)
    return widths * heights


def iou(a: NDArray[Any], b: NDArray[Any], *, plus_one: bool = False) -> NDArray[np.float64]:
    """Pairwise intersection over union.

    Args:
        a: ``(N, 4)`` boxes.
        b: ``(M, 4)`` boxes.
        plus_one: Inclusive pixel convention (width ``x2 - x1 + 1``).

    Returns:
        ``(N, M)`` float64 IoU; 0 where the union is empty.
    """
    boxes_a, boxes_b = _as_boxes(a, "a"), _as_boxes(b, "b")
    offset = 1.0 if plus_one else 0.0
    top_left = np.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    bottom_right = np.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    overlap = np.maximum(bottom_right - top_left + offset, 0.0)
    inter = overlap[..., 0] * overlap[..., 1]
    union = (
        box_areas(boxes_a, plus_one=plus_one)[:, None]
        + box_areas(boxes_b, plus_one=plus_one)[None, :]
        - inter
    )
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(
    boxes: NDArray[Any],
    scores: NDArray[Any],
    iou_threshold: float,
    *,
    mode: Literal["union", "min"] = "union",
    max_output: int | None = None,
    plus_one: bool = False,
) -> NDArray[np.intp]:
    """Greedy non-maximum suppression.

    The highest-scoring remaining box is kept and every remaining box that overlaps it by
    *more than* ``iou_threshold`` is dropped, until none remain.

    Args:
        boxes: ``(N, 4)`` x1, y1, x2, y2.
        scores: ``(N,)``; ties are broken by the lower index first (stable sort), so results
            are deterministic.
        iou_threshold: Overlap above which a lower-scoring box is suppressed.
        mode: ``"union"`` divides the intersection by the union (IoU); ``"min"`` divides by
            the smaller of the two areas, which also suppresses a box nested inside a
            larger one. MTCNN uses ``"min"`` for its last stage for exactly that reason.
        max_output: Stop after this many boxes are kept (``None``: no limit).
        plus_one: Inclusive pixel convention for areas and intersections.

    Returns:
        Indices into ``boxes`` of the kept boxes, by descending score.
    """
    b = _as_boxes(boxes)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.shape[0] != b.shape[0]:
        raise ValueError(f"{b.shape[0]} boxes but {s.shape[0]} scores")
    if mode not in ("union", "min"):
        raise ValueError(f"mode must be 'union' or 'min', got {mode!r}")
    limit = b.shape[0] if max_output is None else max(int(max_output), 0)

    offset = 1.0 if plus_one else 0.0
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    areas = box_areas(b, plus_one=plus_one)
    order = np.argsort(-s, kind="stable")
    keep: list[int] = []
    # One iteration per kept box, each vectorised over the boxes still in play.
    while order.size > 0 and len(keep) < limit:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        widths = np.maximum(
            np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + offset, 0.0
        )
        heights = np.maximum(
            np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + offset, 0.0
        )
        inter = widths * heights
        if mode == "union":
            denominator = areas[best] + areas[rest] - inter
        else:
            denominator = np.minimum(areas[best], areas[rest])
        # Two empty boxes have no overlap to speak of: keep both rather than divide by zero.
        overlap = np.divide(inter, denominator, out=np.zeros_like(inter), where=denominator > 0)
        order = rest[overlap <= iou_threshold]
    return np.asarray(keep, dtype=np.intp)


def clip_boxes(boxes: NDArray[Any], height: float, width: float) -> NDArray[np.float64]:
    """Clamp boxes to the image rectangle ``[0, width] x [0, height]``.

    Args:
        boxes: ``(N, 4)`` x1, y1, x2, y2.
        height: Image height.
        width: Image width.

    Returns:
        A clipped float64 copy.
    """
    b = _as_boxes(boxes).copy()
    np.clip(b[:, 0::2], 0.0, width, out=b[:, 0::2])
    np.clip(b[:, 1::2], 0.0, height, out=b[:, 1::2])
    return b


def square_boxes(boxes: NDArray[Any]) -> NDArray[np.float64]:
    """Grow each box to a square of side ``max(w, h)`` around the same centre (MTCNN ``rerec``).

    ``w = x2 - x1`` without the ``+1``, as facenet-pytorch's ``rerec`` does; the next MTCNN
    stage needs square crops so that resizing to 24x24 or 48x48 does not distort the face.

    Args:
        boxes: ``(N, 4)`` x1, y1, x2, y2.

    Returns:
        ``(N, 4)`` float64 squares.
    """
    b = _as_boxes(boxes)
    sizes = b[:, 2:] - b[:, :2]
    side = np.max(sizes, axis=1, keepdims=True)
    top_left = b[:, :2] + 0.5 * sizes - 0.5 * side
    return np.concatenate([top_left, top_left + side], axis=1)


@dataclass(frozen=True)
class PaddedWindows:
    """How integer crop windows meet the image, for crops zero-padded outside it.

    All rectangles are half-open ``x0, y0, x1, y1`` integer pixel ranges
    (``image[y0:y1, x0:x1]``).

    Attributes:
        source: ``(K, 4)`` part of the image inside each window; empty (``x1 == x0`` or
            ``y1 == y0``) when the window misses the image.
        target: ``(K, 4)`` where that part lands inside the window-sized crop.
        size: ``(K, 2)`` window height and width.
    """

    source: NDArray[np.int64]
    target: NDArray[np.int64]
    size: NDArray[np.int64]


def pad_boxes_to_image(windows: NDArray[Any], height: int, width: int) -> PaddedWindows:
    """Split integer windows into the image part to copy and its place in a padded crop.

    This is the bookkeeping of MTCNN's ``pad()``: a window that overhangs the image is cropped
    at its true size and the overhang is filled with zeros, so the face keeps its aspect
    ratio when the crop is resized.

    Args:
        windows: ``(K, 4)`` integer half-open ``x0, y0, x1, y1``; may extend past the image.
        height: Image height.
        width: Image width.

    Returns:
        The source and target rectangles and window sizes.
    """
    w = np.asarray(windows)
    if w.ndim != 2 or w.shape[1] != 4:
        raise ValueError(f"windows must have shape (K, 4), got {w.shape}")
    w = w.astype(np.int64)
    x0, y0, x1, y1 = w[:, 0], w[:, 1], w[:, 2], w[:, 3]
    sx0, sy0 = np.clip(x0, 0, width), np.clip(y0, 0, height)
    # max() keeps a window that misses the image entirely as an empty range, not an inverted one.
    sx1 = np.maximum(np.clip(x1, 0, width), sx0)
    sy1 = np.maximum(np.clip(y1, 0, height), sy0)
    source = np.stack([sx0, sy0, sx1, sy1], axis=1)
    target = np.stack([sx0 - x0, sy0 - y0, sx1 - x0, sy1 - y0], axis=1)
    # A window that misses the image copies nothing; give it an empty target at the origin
    # rather than offsets that point outside the crop.
    target[(sx1 == sx0) | (sy1 == sy0)] = 0
    size = np.stack([np.maximum(y1 - y0, 0), np.maximum(x1 - x0, 0)], axis=1)
    return PaddedWindows(source=source, target=target, size=size)
