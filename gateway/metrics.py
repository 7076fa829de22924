"""Prometheus metrics of the gateway (served at GET /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "gantry_http_requests_total", "HTTP requests by route and status", ["route", "status"]
)
REQUEST_LATENCY = Histogram(
    "gantry_http_request_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
TRITON_LATENCY = Histogram(
    "gantry_triton_infer_seconds",
    "Latency of one Triton infer call",
    ["model"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TILES = Counter("gantry_superres_tiles_total", "Tiles sent to Triton", ["model"])
PIXELS_OUT = Counter("gantry_superres_output_pixels_total", "Output pixels produced", ["model"])
