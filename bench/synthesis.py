"""Wall time and peak memory of a 2048x1024 pix2pixHD synthesis job on this machine.

Runs the served stack (`gantry up`: Triton, gateway, one worker on the embedded broker),
uploads a CMP facade label map, submits a ``synthesis`` job at 2048x1024 and waits.
Reports the job's wall time (queue to result), the worker's peak RSS (from the job result),
and the peak RSS (VmHWM) of the Triton Python-backend stub that runs the generator.

Run: ``.venv/bin/python -m bench.synthesis`` (writes bench/results/synthesis.md).
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from bench.stack import DATA, served_stack, write_result

MODEL = "pix2pixhd-facades-tiny"


def stub_peak_rss_mib(model: str) -> float:
    """VmHWM of the Triton backend stub process(es) serving ``model``."""
    peak = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if "triton_python_backend_stub" not in cmdline or model not in cmdline:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            continue
    return peak


def main() -> str:
    label = sorted((DATA / "train" / "cmp_facades" / "val" / "label").glob("*.png"))[0]
    rows = [
        "| output | job wall time (s) | in the worker (s) | worker peak RSS (MiB) "
        "| Triton stub peak RSS (MiB) |",
        "|---|---|---|---|---|",
    ]
    with served_stack() as base, httpx.Client(base_url=base, timeout=600) as client:
        label_id = client.post(
            "/v1/inputs", files={"file": (label.name, label.read_bytes())}
        ).json()["id"]
        for width, height in ((2048, 1024), (2048, 1024)):  # the first run also warms up
            start = time.perf_counter()
            job_id = client.post(
                "/v1/jobs",
                json={
                    "kind": "synthesis",
                    "params": {
                        "label_map": label_id,
                        "model": MODEL,
                        "width": width,
                        "height": height,
                    },
                },
            ).json()["id"]
            while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] not in (
                "succeeded",
                "failed",
                "cancelled",
            ):
                time.sleep(0.1)
            wall = time.perf_counter() - start
            if job["status"] != "succeeded":
                raise RuntimeError(job)
        result = job["result"]
        rows.append(
            f"| {width}x{height} | {wall:.2f} | {result['seconds']:.2f} | "
            f"{result['worker_peak_rss_mib']:.0f} | {stub_peak_rss_mib(MODEL):.0f} |"
        )
    note = (
        f"Model `{MODEL}` (the tiny test configuration); label map `{label.name}` resized "
        "(nearest) to the output size; second of two runs (the first warms ONNX Runtime up)."
    )
    return write_result("synthesis", note + "\n\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
