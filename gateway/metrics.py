"""Prometheus metrics of the HTTP front door (the pipelines' own are in gantry.serving)."""

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
