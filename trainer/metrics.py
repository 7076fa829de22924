"""What a run leaves to look at: metrics.csv, TensorBoard events, sample grids, loss curves.

Only the main process writes. A resumed run first drops the rows (and events) after the
checkpoint it resumes from, so the files read as one uninterrupted run.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from PIL import Image

METRICS_FILE = "metrics.csv"
CURVES_FILE = "curves.png"
SAMPLES_DIR = "samples"
EVENTS_DIR = "tensorboard"


class MetricsLog:
    """Rows of (step, seconds, losses...) to CSV and scalars to TensorBoard."""

    def __init__(self, run_dir: Path, resume_step: int = 0) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir = run_dir
        self.path = run_dir / METRICS_FILE
        self.rows: list[dict[str, float]] = []
        if self.path.is_file():
            with self.path.open(newline="") as f:
                self.rows = [
                    {k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)
                ]
            self.rows = [r for r in self.rows if r["step"] <= resume_step]
            self._rewrite()
        # purge_step drops events a crashed run wrote after its last checkpoint.
        self.writer = SummaryWriter(
            str(run_dir / EVENTS_DIR), purge_step=resume_step + 1 if resume_step else None
        )

    def _columns(self) -> list[str]:
        keys = {k for row in self.rows for k in row}
        return ["step", "seconds", *sorted(keys - {"step", "seconds"})]

    def _rewrite(self) -> None:
        columns = self._columns()
        partial = self.path.with_suffix(".partial")
        with partial.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.rows)
        partial.replace(self.path)

    def log(self, step: int, seconds: float, values: Mapping[str, float]) -> None:
        """Append one row (new columns rewrite the file with the wider header)."""
        row = {"step": float(step), "seconds": round(seconds, 3), **values}
        new_columns = set(row) - set(self._columns())
        self.rows.append(row)
        if new_columns or not self.path.is_file():
            self._rewrite()
        else:
            with self.path.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=self._columns()).writerow(row)
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def image(self, tag: str, grid: torch.Tensor, step: int) -> None:
        """A (3, H, W) grid in [-1, 1] as a TensorBoard image."""
        self.writer.add_image(tag, (grid.clamp(-1, 1) + 1) / 2, step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


def image_grid(rows: list[list[torch.Tensor]], pad: int = 2) -> torch.Tensor:
    """Rows of (3, H, W) images in [-1, 1] tiled into one (3, H', W') image, white gaps."""
    height = max(im.shape[1] for row in rows for im in row)
    width = max(im.shape[2] for row in rows for im in row)
    columns = max(len(row) for row in rows)
    grid = torch.ones(3, len(rows) * (height + pad) + pad, columns * (width + pad) + pad)
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            y, x = pad + r * (height + pad), pad + c * (width + pad)
            channels = im.expand(3, -1, -1) if im.shape[0] == 1 else im
            grid[:, y : y + im.shape[1], x : x + im.shape[2]] = channels.clamp(-1, 1)
    return grid


def save_png(image: torch.Tensor, path: Path) -> None:
    """A (3, H, W) tensor in [-1, 1] as an 8-bit RGB PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = ((image.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte()
    Image.fromarray(array.permute(1, 2, 0).cpu().numpy()).save(path)


def plot_curves(rows: list[dict[str, float]], path: Path) -> None:
    """Each loss against the step (smoothed over a window), one panel per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({k for row in rows for k in row} - {"step", "seconds"})
    if not keys:
        return
    columns = min(3, len(keys))
    lines = math.ceil(len(keys) / columns)
    fig, axes = plt.subplots(lines, columns, figsize=(4.2 * columns, 2.8 * lines), squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        points = [(row["step"], row[key]) for row in rows if key in row]
        steps = np.array([p[0] for p in points])
        values = np.array([p[1] for p in points])
        ax.plot(steps, values, alpha=0.35, linewidth=0.8)
        window = max(1, len(values) // 20)
        if window > 1:
            smooth = np.convolve(values, np.ones(window) / window, mode="valid")
            ax.plot(steps[window - 1 :], smooth, linewidth=1.6)
        ax.set_title(key, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
