"""The MTCNN cascade (P-Net → R-Net → O-Net) around networks served elsewhere.

This reproduces facenet-pytorch 2.6's ``detect_face`` for one image, with the three networks
passed in as callables (so the service can call Triton) and every array step vectorised.

Network contract (facenet-pytorch's layout, which the exported models keep). The callables
take *pixels*: RGB, float32, NHWC, values in [0, 255] (a pyramid level, or area-resampled
crops); each callable normalises them as its model card says (facenet-pytorch's
``(x - 127.5) / 128``) before the network runs. Their outputs:

* ``pnet(x [1,H,W,3]) -> (reg [1,4,h,w], prob [1,2,h,w])``: ``h`` runs along image rows and
  ``w`` along columns, ``prob[:, 1]`` is the face probability, ``reg`` channels are
  ``dx1, dy1, dx2, dy2``. facenet-pytorch converted the original (transposed, MATLAB-order)
  weights so that this layout is *not* transposed; its ``generateBoundingBox`` only flips the
  ``(row, col)`` index of each hit to ``(x, y)``. We do the same.
* ``rnet(x [K,24,24,3]) -> (reg [K,4], prob [K,2])``.
* ``onet(x [K,48,48,3]) -> (reg [K,4], landmarks [K,10], prob [K,2])``, landmarks as five x
  fractions then five y fractions of the crop: left eye, right eye, nose, left mouth corner,
  right mouth corner, "left" meaning the left of the image.

Coordinates (facenet-pytorch's, inherited from the MATLAB original):

* Boxes are *1-based inclusive* pixel indices: ``x1`` is the first column inside the box and
  ``x2`` the last, so width is ``x2 - x1 + 1`` in :func:`bbreg` and the box covers 0-based
  continuous ``[x1 - 1, x2]``. Crops take 0-based pixels ``trunc(x1) - 1 .. trunc(x2) - 1``.
  Final boxes are returned in this convention, unchanged, for parity with facenet-pytorch.
* Landmarks are 0-based continuous coordinates (facenet-pytorch subtracts the 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from gantry.serving.faces.boxes import nms, square_boxes
from gantry.serving.faces.types import NUM_LANDMARKS, Detection, detections_from_arrays

PNetFn = Callable[[NDArray[np.float32]], tuple[NDArray[Any], NDArray[Any]]]
RNetFn = Callable[[NDArray[np.float32]], tuple[NDArray[Any], NDArray[Any]]]
ONetFn = Callable[[NDArray[np.float32]], tuple[NDArray[Any], NDArray[Any], NDArray[Any]]]

# P-Net is a 12x12 sliding window with stride 2 over each pyramid level.
PNET_STRIDE = 2
PNET_CELL = 12
RNET_SIZE = 24
ONET_SIZE = 48
# facenet-pytorch's NMS thresholds: within one pyramid scale, across scales, after R-Net,
# and after O-Net (the last with "min" overlap and inclusive pixel areas).
NMS_WITHIN_SCALE = 0.5
NMS_ACROSS_SCALES = 0.7
NMS_RNET = 0.7
NMS_ONET = 0.7
# Crops per integral-image gather: bounds the temporary (chunk, size+1, size+1, 3) arrays.
_CROP_CHUNK = 256


def pyramid_scales(
    height: int, width: int, *, min_face_size: float = 20, factor: float = 0.709
) -> list[float]:
    """Image-pyramid scales for P-Net.

    The first scale ``m = 12 / min_face_size`` maps the smallest wanted face onto P-Net's
    12-pixel window; each next scale multiplies by ``factor`` while the short side, scaled,
    is still at least 12 pixels. The running products are accumulated exactly as
    facenet-pytorch does, so the floats are identical.

    Args:
        height: Image height.
        width: Image width.
        min_face_size: Smallest face side, in pixels, to look for.
        factor: Ratio between consecutive scales (0.709 ≈ 1/√2: the pixel count halves).

    Returns:
        Scales from largest to smallest; empty when the image is too small for any.
    """
    if min_face_size <= 0 or not 0.0 < factor < 1.0:
        raise ValueError(
            f"need min_face_size > 0 and 0 < factor < 1, got {min_face_size}, {factor}"
        )
    scale = 12.0 / min_face_size
    short_side = min(height, width) * scale
    scales = []
    while short_side >= 12:
        scales.append(scale)
        scale *= factor
        short_side *= factor
    return scales


def as_pixels(image_rgb: NDArray[Any]) -> NDArray[np.float32]:
    """``(H, W, 3)`` or ``(K, H, W, 3)`` RGB values → contiguous ``(K, H, W, 3)`` float32."""
    x = np.asarray(image_rgb, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected (H, W, 3) or (K, H, W, 3) RGB, got {np.shape(image_rgb)}")
    return np.ascontiguousarray(x)


def generate_pnet_boxes(
    reg: NDArray[Any], prob: NDArray[Any], scale: float, threshold: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Candidate boxes from one pyramid level's P-Net output (``generateBoundingBox``).

    A hit at feature row ``y``, column ``x`` is the 12x12 window at ``(2x, 2y)`` of the scaled
    image; in original 1-based pixels ``x1 = floor((2x + 1) / scale)`` and
    ``x2 = floor((2x + 12) / scale)`` (likewise for y), exactly as facenet-pytorch computes
    ``(stride * xy + 1) / scale`` and ``(stride * xy + cell_size - 1 + 1) / scale``.

    Args:
        reg: ``(4, h, w)`` regression (``dx1, dy1, dx2, dy2``), rows along image rows.
        prob: ``(h, w)`` face probability.
        scale: The pyramid scale the level was computed at.
        threshold: Minimum probability (inclusive, as facenet-pytorch).

    Returns:
        ``boxes (K, 4)`` in original 1-based pixels (not yet regressed), ``scores (K,)`` and
        ``regs (K, 4)``, in row-major order of the hits.
    """
    r = np.asarray(reg)
    p = np.asarray(prob)
    if p.ndim != 2 or r.shape != (4, *p.shape):
        raise ValueError(f"expected reg (4, h, w) and prob (h, w), got {r.shape} and {p.shape}")
    rows, cols = np.nonzero(p >= threshold)
    scores = p[rows, cols].astype(np.float64)
    regs = r[:, rows, cols].T.astype(np.float64)
    # Column index is x, row index is y: the flip facenet-pytorch applies to (row, col).
    xy = np.stack([cols, rows], axis=1).astype(np.float32)
    # float32 on purpose: facenet-pytorch divides in float32, and at exact multiples the
    # rounding of the scale decides the floor (135 / 0.6 is 225 in float64, 224.99998 in
    # float32); float64 would move those boxes by a pixel and change what NMS keeps.
    scale32 = np.float32(scale)
    top_left = np.floor((np.float32(PNET_STRIDE) * xy + np.float32(1)) / scale32)
    bottom_right = np.floor((np.float32(PNET_STRIDE) * xy + np.float32(PNET_CELL)) / scale32)
    boxes = np.concatenate([top_left, bottom_right], axis=1).astype(np.float64)
    return boxes, scores, regs


def bbreg(boxes: NDArray[Any], reg: NDArray[Any], *, plus_one: bool = True) -> NDArray[np.float64]:
    """Apply MTCNN bounding-box regression: each corner moves by ``reg`` times the box size.

    Args:
        boxes: ``(K, 4)`` x1, y1, x2, y2.
        reg: ``(K, 4)`` ``dx1, dy1, dx2, dy2`` as fractions of the box width and height.
        plus_one: Width is ``x2 - x1 + 1`` (facenet-pytorch's ``bbreg``, used after R-Net and
            O-Net). Pass ``False`` for the P-Net stage, which facenet-pytorch regresses inline
            with ``x2 - x1``.

    Returns:
        ``(K, 4)`` float64 regressed boxes.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    offsets = np.asarray(reg, dtype=np.float64).reshape(-1, 4)
    sizes = b[:, 2:] - b[:, :2] + (1.0 if plus_one else 0.0)
    return b + offsets * np.tile(sizes, 2)


def crop_windows(boxes: NDArray[Any]) -> NDArray[np.int64]:
    """Integer pixel windows MTCNN crops for 1-based inclusive boxes.

    facenet-pytorch truncates the box (towards zero) and slices ``[trunc(x1) - 1, trunc(x2))``
    in 0-based pixels; the same window here, before any clipping to the image.

    Args:
        boxes: ``(K, 4)`` 1-based inclusive x1, y1, x2, y2.

    Returns:
        ``(K, 4)`` int64 half-open 0-based ``x0, y0, x1, y1``; may extend past the image or be
        empty.
    """
    t = np.trunc(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)).astype(np.int64)
    return np.stack([t[:, 0] - 1, t[:, 1] - 1, t[:, 2], t[:, 3]], axis=1)


def _integral_image(image: NDArray[Any]) -> NDArray[np.float64]:
    """Summed-area table with a zero first row and column: ``table[y, x] = sum(image[:y, :x])``.

    float64 keeps sums of up to gigapixel·255 exact to well below a grey level; it costs
    24 bytes per pixel while a request is processed.
    """
    h, w = image.shape[:2]
    table = np.zeros((h + 1, w + 1, image.shape[2]), dtype=np.float64)
    np.cumsum(np.cumsum(image, axis=0, dtype=np.float64), axis=1, out=table[1:, 1:])
    return table


def _area_resample(
    table: NDArray[np.float64], windows: NDArray[np.int64], size: int
) -> NDArray[np.float64]:
    """Resample windows of the image behind ``table`` to ``size x size`` by pixel area.

    Each output pixel is the mean of the image over its footprint in the window, the
    definition of area interpolation (what ``cv2.INTER_AREA`` computes for these square-ish
    crops, up- or downscaling). With the image seen as piecewise constant, its integral over
    ``[0, x] x [0, y]`` is exactly the bilinear interpolation of the summed-area table, so
    footprint sums at fractional edges are four bilinear lookups. Outside the image the
    integral stops growing, i.e. clamping the lookups to the image is zero padding.
    """
    h, w = table.shape[0] - 1, table.shape[1] - 1
    edges = np.arange(size + 1, dtype=np.float64) / size
    x0, y0 = windows[:, 0:1].astype(np.float64), windows[:, 1:2].astype(np.float64)
    span_x = (windows[:, 2:3] - windows[:, 0:1]).astype(np.float64)
    span_y = (windows[:, 3:4] - windows[:, 1:2]).astype(np.float64)
    gx = np.clip(x0 + span_x * edges, 0.0, w)  # (K, size + 1) footprint edges in the image
    gy = np.clip(y0 + span_y * edges, 0.0, h)
    ix = np.minimum(np.floor(gx).astype(np.intp), w - 1)
    iy = np.minimum(np.floor(gy).astype(np.intp), h - 1)
    fx = (gx - ix)[:, None, :, None]
    fy = (gy - iy)[:, :, None, None]

    def along_x(rows: NDArray[np.intp]) -> NDArray[np.float64]:
        left = table[rows[:, :, None], ix[:, None, :]]
        right = table[rows[:, :, None], ix[:, None, :] + 1]
        return left + (right - left) * fx

    top, bottom = along_x(iy), along_x(iy + 1)
    integral = top + (bottom - top) * fy  # (K, size + 1, size + 1, C)
    sums = integral[:, 1:, 1:] - integral[:, :-1, 1:] - integral[:, 1:, :-1] + integral[:, :-1, :-1]
    footprint = (span_x * span_y)[:, 0] / (size * size)
    return sums / footprint[:, None, None, None]


def _crops_from_table(
    table: NDArray[np.float64], windows: NDArray[np.int64], size: int
) -> NDArray[np.float32]:
    out = np.empty((windows.shape[0], size, size, 3), dtype=np.float32)
    # Chunks bound memory; each chunk is one vectorised gather over all its boxes.
    for start in range(0, windows.shape[0], _CROP_CHUNK):
        resampled = _area_resample(table, windows[start : start + _CROP_CHUNK], size)
        out[start : start + _CROP_CHUNK] = as_pixels(resampled)
    return out


def crop_and_resize(image_rgb: NDArray[Any], boxes: NDArray[Any], size: int) -> NDArray[np.float32]:
    """Crop MTCNN boxes, zero-padded outside the image, resized to ``size`` x ``size``.

    The crop is the window of :func:`crop_windows`; the part outside the image is black (0,
    before normalisation), as the original MTCNN's ``pad()``, so an overhanging face keeps its
    aspect ratio. (facenet-pytorch instead clips the window to the image and stretches it.)
    Resizing is area interpolation, equal to ``cv2.resize(..., INTER_AREA)`` of the padded
    float crop, computed for all boxes at once.

    Args:
        image_rgb: ``(H, W, 3)`` RGB in [0, 255].
        boxes: ``(K, 4)`` 1-based inclusive boxes; every window must be non-empty.
        size: Output side (24 for R-Net, 48 for O-Net).

    Returns:
        ``(K, size, size, 3)`` float32 pixels in [0, 255] (the networks normalise them).
    """
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"expected a non-empty (H, W, 3) image, got {image.shape}")
    windows = crop_windows(boxes)
    if np.any(windows[:, 2] <= windows[:, 0]) or np.any(windows[:, 3] <= windows[:, 1]):
        raise ValueError("every box must cover at least one pixel")
    return _crops_from_table(_integral_image(image), windows, size)


def _call_in_batches(
    net: Callable[[NDArray[np.float32]], tuple[NDArray[Any], ...]],
    batch: NDArray[np.float32],
    max_batch: int | None,
) -> tuple[NDArray[Any], ...]:
    if max_batch is None or batch.shape[0] <= max_batch:
        return tuple(np.asarray(o) for o in net(batch))
    parts = [net(batch[i : i + max_batch]) for i in range(0, batch.shape[0], max_batch)]
    return tuple(np.concatenate([np.asarray(p[k]) for p in parts]) for k in range(len(parts[0])))


def _rows(name: str, array: NDArray[Any], count: int, columns: int) -> NDArray[np.float64]:
    # Accept (K, C) as well as Caffe-style (K, C, 1, 1) outputs.
    a = np.asarray(array, dtype=np.float64)
    if a.size != count * columns:
        raise ValueError(f"{name}: expected {count} rows of {columns}, got shape {a.shape}")
    return a.reshape(count, columns)


def _proposals(
    image: NDArray[Any], pnet: PNetFn, scales: list[float], threshold: float
) -> NDArray[np.float64]:
    """Stage 1: P-Net over the pyramid → regressed, squared candidate boxes."""
    h, w = image.shape[:2]
    pixels = image.astype(np.float32)
    found_boxes, found_scores, found_regs = [], [], []
    for scale in scales:
        # int(h * scale + 1), not ceil: facenet-pytorch's level size, kept for parity.
        level_h, level_w = int(h * scale + 1), int(w * scale + 1)
        level = cv2.resize(pixels, (level_w, level_h), interpolation=cv2.INTER_AREA)
        reg, prob = (np.asarray(o) for o in pnet(as_pixels(level)))
        if reg.ndim != 4 or prob.ndim != 4 or prob.shape[1] != 2 or reg.shape[1] != 4:
            raise ValueError(
                f"pnet must return (1,4,h,w) and (1,2,h,w), got {reg.shape}, {prob.shape}"
            )
        boxes, scores, regs = generate_pnet_boxes(reg[0], prob[0, 1], scale, threshold)
        keep = nms(boxes, scores, NMS_WITHIN_SCALE)
        found_boxes.append(boxes[keep])
        found_scores.append(scores[keep])
        found_regs.append(regs[keep])
    if not found_boxes:
        return np.zeros((0, 4))
    boxes, scores, regs = (np.concatenate(a) for a in (found_boxes, found_scores, found_regs))
    keep = nms(boxes, scores, NMS_ACROSS_SCALES)
    return square_boxes(bbreg(boxes[keep], regs[keep], plus_one=False))


def _non_empty(boxes: NDArray[np.float64]) -> NDArray[np.float64]:
    # A regression can invert a box; facenet-pytorch skips such crops (and then misaligns its
    # outputs), we drop the box before the next network instead.
    windows = crop_windows(boxes)
    valid = (windows[:, 2] > windows[:, 0]) & (windows[:, 3] > windows[:, 1])
    return boxes[valid]


def detect_faces(
    image_rgb: NDArray[np.uint8],
    *,
    pnet: PNetFn,
    rnet: RNetFn,
    onet: ONetFn,
    min_face_size: float = 20,
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
    factor: float = 0.709,
    max_batch: int | None = None,
) -> list[Detection]:
    """Run the MTCNN cascade on one RGB image.

    1. P-Net on every pyramid level; hits ``>= thresholds[0]``; NMS 0.5 per level, 0.7
       across levels; regression (``w = x2 - x1``); squared.
    2. R-Net on 24x24 crops; ``> thresholds[1]``; NMS 0.7; regression (``w = x2 - x1 + 1``);
       squared.
    3. O-Net on 48x48 crops; ``> thresholds[2]``; landmarks from the crop box; regression; NMS
       0.7 with "min" overlap and inclusive areas.

    Args:
        image_rgb: ``(H, W, 3)`` uint8 RGB.
        pnet: P-Net, see the module docstring for the layouts.
        rnet: R-Net.
        onet: O-Net.
        min_face_size: Smallest face side, in pixels, to look for.
        thresholds: Face-probability thresholds of the three stages.
        factor: Pyramid scale ratio.
        max_batch: Largest batch passed to ``rnet`` / ``onet`` in one call (``None``: all
            crops of a stage at once); for models with a maximum batch size.

    Returns:
        Detections by descending O-Net score. Boxes in facenet-pytorch's 1-based inclusive
        convention, landmarks in 0-based continuous pixels (see the module docstring).
    """
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got {image.shape}")
    h, w = image.shape[:2]
    scales = pyramid_scales(h, w, min_face_size=min_face_size, factor=factor)
    boxes = _non_empty(_proposals(image, pnet, scales, thresholds[0]))
    if boxes.shape[0] == 0:
        return []
    # One summed-area table serves the crops of both later stages.
    table = _integral_image(image)

    crops = _crops_from_table(table, crop_windows(boxes), RNET_SIZE)
    reg, prob = _call_in_batches(rnet, crops, max_batch)
    regs = _rows("rnet reg", reg, len(boxes), 4)
    scores = _rows("rnet prob", prob, len(boxes), 2)[:, 1]
    passed = scores > thresholds[1]
    boxes, scores, regs = boxes[passed], scores[passed], regs[passed]
    keep = nms(boxes, scores, NMS_RNET)
    boxes = _non_empty(square_boxes(bbreg(boxes[keep], regs[keep])))
    if boxes.shape[0] == 0:
        return []

    crops = _crops_from_table(table, crop_windows(boxes), ONET_SIZE)
    reg, marks, prob = _call_in_batches(onet, crops, max_batch)
    regs = _rows("onet reg", reg, len(boxes), 4)
    fractions = _rows("onet landmarks", marks, len(boxes), 2 * NUM_LANDMARKS)
    scores = _rows("onet prob", prob, len(boxes), 2)[:, 1]
    passed = scores > thresholds[2]
    boxes, scores, regs, fractions = boxes[passed], scores[passed], regs[passed], fractions[passed]
    # Landmarks are fractions of the O-Net crop box (before its regression): first five are
    # x, last five y. The -1 turns the 1-based box corner into 0-based coordinates.
    sizes = boxes[:, 2:] - boxes[:, :2] + 1.0
    points = np.stack(
        [
            sizes[:, 0:1] * fractions[:, :NUM_LANDMARKS] + boxes[:, 0:1] - 1.0,
            sizes[:, 1:2] * fractions[:, NUM_LANDMARKS:] + boxes[:, 1:2] - 1.0,
        ],
        axis=-1,
    )
    boxes = bbreg(boxes, regs)
    # O-Net probabilities often saturate to exactly 1.0 in float32; nms() breaks such ties by
    # candidate order, where facenet-pytorch's np.argsort (quicksort) leaves it unspecified.
    keep = nms(boxes, scores, NMS_ONET, mode="min", plus_one=True)
    return detections_from_arrays(boxes[keep], scores[keep], points[keep])
