"""Overlapping tiles for fully convolutional image-to-image models, blended without seams.

Every window has the same size, so the tiles of one image batch together in Triton. Adjacent
windows overlap by ``2 * pad`` input pixels; in the overlap their outputs are cross-faded
linearly, so each pixel comes mostly from the window where it has the most context and the
weights of two neighbours sum to one. Memory is bounded by the tile batch plus the output
accumulator, never by a whole-image activation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


def _origins(size: int, window: int, stride: int) -> list[int]:
    if size <= window:
        return [0]
    starts = list(range(0, size - window, stride))
    starts.append(size - window)
    return starts


@dataclass(frozen=True)
class TilePlan:
    """Where the windows of one image lie, in input pixels."""

    height: int
    width: int
    window_h: int
    window_w: int
    pad: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.ys) * len(self.xs)

    @property
    def window_pixels(self) -> int:
        return self.window_h * self.window_w

    def origins(self) -> Iterator[tuple[int, int]]:
        """Window origins (y, x) in row-major order."""
        for y in self.ys:
            for x in self.xs:
                yield y, x


def plan_tiles(height: int, width: int, *, tile: int, pad: int) -> TilePlan:
    """Windows of ``tile`` x ``tile`` input pixels (clipped to the image) overlapping by 2·pad.

    ``tile <= 0`` means one window over the whole image.
    """
    if tile <= 0:
        return TilePlan(height, width, height, width, 0, (0,), (0,))
    if tile <= 2 * pad:
        raise ValueError(f"tile ({tile}) must exceed twice the pad ({pad})")
    wh, ww = min(tile, height), min(tile, width)
    stride = tile - 2 * pad
    return TilePlan(
        height,
        width,
        wh,
        ww,
        pad,
        tuple(_origins(height, wh, stride)),
        tuple(_origins(width, ww, stride)),
    )


def _ramp(length: int, ramp: int, fade_start: bool, fade_end: bool) -> np.ndarray:
    pos = np.arange(length, dtype=np.float32) + 0.5
    weight = np.ones(length, np.float32)
    if ramp > 0 and fade_start:
        weight = np.minimum(weight, pos / ramp)
    if ramp > 0 and fade_end:
        weight = np.minimum(weight, (length - pos) / ramp)
    return weight


def window_weights(plan: TilePlan, y: int, x: int, scale: int) -> np.ndarray:
    """Blend weights of the window at (y, x), at output resolution (H·s x W·s of the window).

    Edges that lie on the image border are not faded: no other window covers them.
    """
    ramp = 2 * plan.pad * scale
    wy = _ramp(
        plan.window_h * scale, ramp, y > 0, y + plan.window_h < plan.height
    )
    wx = _ramp(
        plan.window_w * scale, ramp, x > 0, x + plan.window_w < plan.width
    )
    return np.outer(wy, wx)


class Blender:
    """Accumulates weighted window outputs into one output image (C x H·s x W·s)."""

    def __init__(self, plan: TilePlan, channels: int, scale: int) -> None:
        self.plan = plan
        self.scale = scale
        self.total = np.zeros((channels, plan.height * scale, plan.width * scale), np.float32)
        self.weight = np.zeros((plan.height * scale, plan.width * scale), np.float32)

    def add(self, y: int, x: int, output: np.ndarray) -> None:
        """Add the output (C x h·s x w·s) of the window whose input origin is (y, x)."""
        s = self.scale
        w = window_weights(self.plan, y, x, s)
        ys = slice(y * s, y * s + output.shape[1])
        xs = slice(x * s, x * s + output.shape[2])
        self.total[:, ys, xs] += output * w
        self.weight[ys, xs] += w

    def result(self) -> np.ndarray:
        """The blended image; every pixel is covered by at least one window."""
        return self.total / np.maximum(self.weight, 1e-8)


def crop_window(image_chw: np.ndarray, plan: TilePlan, y: int, x: int) -> np.ndarray:
    """The input window at (y, x) of a C x H x W image."""
    return image_chw[:, y : y + plan.window_h, x : x + plan.window_w]
