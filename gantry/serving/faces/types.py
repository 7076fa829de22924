"""The result type shared by the face detectors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Number of facial landmarks both detectors predict.
NUM_LANDMARKS = 5


@dataclass(frozen=True)
class Detection:
    """One detected face, in pixel coordinates of the image handed to the detector.

    Attributes:
        box: ``(x1, y1, x2, y2)``, top-left and bottom-right corners.
        score: Face probability in [0, 1].
        landmarks: Five ``(x, y)`` points ordered left eye, right eye, nose, left mouth corner,
            right mouth corner, where "left" means the left side *of the image* (the subject's
            right), as both RetinaFace and MTCNN were trained.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...]


def detections_from_arrays(
    boxes: NDArray[Any], scores: NDArray[Any], landmarks: NDArray[Any]
) -> list[Detection]:
    """Package parallel arrays as :class:`Detection` objects, in the order given.

    Args:
        boxes: ``(K, 4)`` x1, y1, x2, y2.
        scores: ``(K,)``.
        landmarks: ``(K, 5, 2)`` x, y.

    Returns:
        ``K`` detections holding plain Python floats (JSON-ready).
    """
    # tolist() converts to Python floats in C, once, rather than per element in the loop.
    box_rows = np.asarray(boxes, np.float64).reshape(-1, 4).tolist()
    score_rows = np.asarray(scores, np.float64).reshape(-1).tolist()
    point_rows = np.asarray(landmarks, np.float64).reshape(-1, NUM_LANDMARKS, 2).tolist()
    if not len(box_rows) == len(score_rows) == len(point_rows):
        raise ValueError(
            f"boxes, scores and landmarks disagree in length: "
            f"{len(box_rows)}, {len(score_rows)}, {len(point_rows)}"
        )
    return [
        Detection(
            box=(b[0], b[1], b[2], b[3]),
            score=s,
            landmarks=tuple((p[0], p[1]) for p in pts),
        )
        for b, s, pts in zip(box_rows, score_rows, point_rows, strict=True)
    ]
