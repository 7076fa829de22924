"""Prometheus metrics of the serving pipelines (exported at the gateway's GET /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

TRITON_LATENCY = Histogram(
    "gantry_triton_infer_seconds",
    "Latency of one Triton infer call",
    ["model"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TILES = Counter("gantry_superres_tiles_total", "Tiles sent to Triton", ["model"])
PIXELS_OUT = Counter("gantry_superres_output_pixels_total", "Output pixels produced", ["model"])
