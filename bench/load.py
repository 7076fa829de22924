"""Load and soak: the served stack under concurrent clients, and its memory over time.

One run of the real stack (`gantry up`: tritonserver + gateway), driven over REST from
threads, each with its own ``httpx.Client``, on 127.0.0.1:
- **load**: face verification (``POST /v1/faces/verify``, real pairs from
  ../shared/data/faces_verify/face_recognition_knn) and small super-resolution
  (``POST /v1/superres``, Set5 bird x4 input, realesr-animevideov3-x2), each with 4 and with
  8 clients for 60 s: successful requests, their throughput and latency p50/p95/p99, refusals
  (503 ``overloaded`` from admission control; the client waits out ``Retry-After`` and they
  are no latency samples), other errors by status, and memory — gateway RSS before and after,
  its peak (VmHWM, since the process started), Triton's RSS (the server and its Python
  backend stubs) before and after;
- **soak**: 10 minutes of a mixed load (2 clients on verify, 2 on super-resolution), gateway
  and Triton RSS sampled every 30 s, with the drift from first to last sample.

Memory is read from /proc/<pid>/status; the processes are found by their command lines (the
gateway by its ``--port``, Triton by the ``--http-port`` in the gateway's environment).

Run: ``.venv/bin/python -m bench.load`` (writes bench/results/load.md); ``--quick`` shortens
every duration for a smoke run (5 s runs, a 60 s soak sampled every 10 s).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

from bench.stack import DATA, SET5, served_stack, write_result
from gantry.core.settings import get_settings

FACES = DATA / "faces_verify" / "face_recognition_knn"
SUPERRES_IMAGE = SET5 / "LR_bicubic" / "X4" / "birdx4.png"
SUPERRES_MODEL = "realesr-animevideov3-x2"
CLIENTS = (4, 8)
TIMEOUT_S = 120.0
COMMAND = ".venv/bin/python -m bench.load"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Durations:
    """How long each load run and the soak last, and how often the soak samples memory."""

    run_s: float = 60.0
    soak_s: float = 600.0
    sample_s: float = 30.0


QUICK = Durations(run_s=5.0, soak_s=60.0, sample_s=10.0)


# --- what the clients send -----------------------------------------------------------------

Files = dict[str, tuple[str, bytes]]


@dataclass(frozen=True)
class Payload:
    files: Files
    data: dict[str, str]


@dataclass(frozen=True)
class Workload:
    """One endpoint and the requests cycled over by its clients."""

    name: str
    path: str
    payloads: list[Payload]


def face_pairs() -> list[tuple[Path, Path]]:
    """Every same-person pair in the folder, and one different-person pair per neighbour."""
    people = sorted(p for p in FACES.iterdir() if p.is_dir())
    images = {p.name: sorted(p.iterdir()) for p in people}
    same = [pair for imgs in images.values() for pair in itertools.combinations(imgs, 2)]
    firsts = [imgs[0] for imgs in images.values() if imgs]
    different = list(itertools.pairwise(firsts))
    return same + different


def verify_workload() -> Workload:
    payloads = [
        Payload({"image_a": (a.name, a.read_bytes()), "image_b": (b.name, b.read_bytes())}, {})
        for a, b in face_pairs()
    ]
    return Workload("face verify", "/v1/faces/verify", payloads)


def superres_workload() -> Workload:
    image = {"image": (SUPERRES_IMAGE.name, SUPERRES_IMAGE.read_bytes())}
    payload = Payload(image, {"model": SUPERRES_MODEL})
    return Workload(f"superres {SUPERRES_MODEL} (bird)", "/v1/superres", [payload])


# --- what the clients measure --------------------------------------------------------------


@dataclass
class Tally:
    """Outcomes of one workload's requests, shared by its client threads."""

    latencies: list[float] = field(default_factory=list)
    refused: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self, seconds: float) -> None:
        with self.lock:
            self.latencies.append(seconds)

    def refuse(self) -> None:
        with self.lock:
            self.refused += 1

    def error(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] += 1

    @property
    def completed(self) -> int:
        return len(self.latencies)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def is_overloaded(response: httpx.Response) -> bool:
    """A 503 from admission control (code ``overloaded``), not some other unavailability."""
    if response.status_code != 503:
        return False
    try:
        return bool(response.json()["error"]["code"] == "overloaded")
    except (ValueError, KeyError, TypeError):
        return False


def retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0


def client_loop(base: str, work: Workload, tally: Tally, deadline: float, offset: int) -> None:
    """Send ``work``'s requests one after another until ``deadline`` (monotonic)."""
    payloads = itertools.islice(itertools.cycle(work.payloads), offset, None)
    with httpx.Client(base_url=base, timeout=TIMEOUT_S) as client:
        for payload in payloads:
            if time.monotonic() >= deadline:
                return
            start = time.perf_counter()
            try:
                response = client.post(work.path, files=payload.files, data=payload.data)
            except httpx.HTTPError as exc:
                tally.error(type(exc).__name__)
                continue
            seconds = time.perf_counter() - start
            if response.is_success:
                tally.ok(seconds)
            elif is_overloaded(response):
                tally.refuse()
                time.sleep(min(retry_after(response), max(0.0, deadline - time.monotonic())))
            else:
                tally.error(str(response.status_code))


def start_clients(
    base: str, plan: list[tuple[Workload, Tally, int]], deadline: float
) -> list[threading.Thread]:
    """Start ``clients`` threads per (workload, tally, clients) of ``plan``."""
    threads = [
        threading.Thread(target=client_loop, args=(base, work, tally, deadline, i), daemon=True)
        for work, tally, clients in plan
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    return threads


def warm_up(base: str, work: Workload) -> None:
    """One request per payload, unmeasured (first calls load sessions and fill caches)."""
    with httpx.Client(base_url=base, timeout=TIMEOUT_S) as client:
        for payload in work.payloads:
            client.post(work.path, files=payload.files, data=payload.data).raise_for_status()


def percentile(samples: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``samples``, NaN when there are none."""
    if not samples:
        return float("nan")
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[round(q) - 1]


# --- memory of the served processes --------------------------------------------------------


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def pids() -> Iterator[int]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def status_kib(pid: int, key: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM), 0 for a process that is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return 0


def parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat.rsplit(")", 1)[1].split()[1])  # fields after "(comm)": state, ppid, ...


def descendants(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for pid in pids():
        children.setdefault(parent(pid), []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def find_process(*needles: str) -> int:
    """The one process whose command line has every one of ``needles`` as an argument."""
    matches = [pid for pid in pids() if all(n in cmdline(pid) for n in needles)]
    if len(matches) != 1:
        raise RuntimeError(f"expected one process with {needles}, found {matches}")
    return matches[0]


def environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (part.decode(errors="replace").partition("=") for part in raw.split(b"\0") if part)
    return {key: value for key, _, value in pairs}


def triton_pid(gateway: int) -> int:
    """The tritonserver this gateway talks to: the one on its GANTRY_TRITON_HTTP_PORT."""
    port = environment(gateway)["GANTRY_TRITON_HTTP_PORT"]
    matches = [
        pid
        for pid in pids()
        if (args := cmdline(pid))
        and Path(args[0]).name == "tritonserver"
        and f"--http-port={port}" in args
    ]
    if len(matches) != 1:
        raise RuntimeError(f"expected one tritonserver on --http-port={port}, found {matches}")
    return matches[0]


@dataclass(frozen=True)
class Served:
    """The pids whose memory is reported."""

    gateway: int
    triton: int

    @classmethod
    def find(cls, base: str) -> Served:
        port = urlparse(base).port
        gateway = find_process("gateway.app:create_app", "--port", str(port))
        return cls(gateway, triton_pid(gateway))

    def gateway_mib(self) -> float:
        return status_kib(self.gateway, "VmRSS") / 1024

    def gateway_peak_mib(self) -> float:
        return status_kib(self.gateway, "VmHWM") / 1024

    def triton_mib(self) -> float:
        """RSS of tritonserver and its children (the Python backend stubs), summed."""
        return sum(status_kib(pid, "VmRSS") for pid in descendants(self.triton)) / 1024


# --- the load runs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    work: str
    clients: int
    seconds: float
    tally: Tally
    gateway_mib: tuple[float, float]
    gateway_peak_mib: float
    triton_mib: tuple[float, float]


def load_run(base: str, served: Served, work: Workload, clients: int, run_s: float) -> LoadResult:
    """``clients`` threads on ``work`` for ``run_s`` seconds, memory read around it."""
    gateway_before, triton_before = served.gateway_mib(), served.triton_mib()
    tally = Tally()
    start = time.monotonic()
    for thread in start_clients(base, [(work, tally, clients)], start + run_s):
        thread.join()
    seconds = time.monotonic() - start
    result = LoadResult(
        work.name,
        clients,
        seconds,
        tally,
        (gateway_before, served.gateway_mib()),
        served.gateway_peak_mib(),
        (triton_before, served.triton_mib()),
    )
    print(load_row(result), flush=True)
    return result


def errors_cell(tally: Tally) -> str:
    if not tally.errors:
        return "0"
    kinds = ", ".join(f"{kind}: {n}" for kind, n in sorted(tally.errors.items()))
    return f"{tally.error_count} ({kinds})"


def load_row(r: LoadResult) -> str:
    lat = r.tally.latencies
    p50, p95, p99 = (percentile(lat, q) for q in (50, 95, 99))
    return (
        f"| {r.work} | {r.clients} | {r.tally.completed} | {r.tally.completed / r.seconds:.2f} "
        f"| {p50:.3f} | {p95:.3f} | {p99:.3f} | {r.tally.refused} | {errors_cell(r.tally)} "
        f"| {r.gateway_mib[0]:.0f} → {r.gateway_mib[1]:.0f} | {r.gateway_peak_mib:.0f} "
        f"| {r.triton_mib[0]:.0f} → {r.triton_mib[1]:.0f} |"
    )


def load_table(results: list[LoadResult], run_s: float) -> list[str]:
    return [
        f"Load: each workload with {' and '.join(map(str, CLIENTS))} clients for {run_s:.0f} s. "
        "Requests = successful ones, req/s = those per second of the run, latency in seconds "
        "(successful requests only); gateway peak = VmHWM since the gateway started.",
        "",
        "| workload | clients | requests | req/s | p50 | p95 | p99 | refused 503 "
        "| other errors | gateway RSS before→after MiB | gateway peak MiB "
        "| Triton RSS before→after MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(load_row(r) for r in results),
    ]


# --- the soak --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    seconds: float
    gateway_mib: float
    triton_mib: float
    requests: int
    refused: int
    errors: int


def sample(served: Served, start: float, tallies: list[Tally]) -> Sample:
    s = Sample(
        time.monotonic() - start,
        served.gateway_mib(),
        served.triton_mib(),
        sum(t.completed for t in tallies),
        sum(t.refused for t in tallies),
        sum(t.error_count for t in tallies),
    )
    print(soak_row(s), flush=True)
    return s


def soak(base: str, served: Served, works: list[Workload], durations: Durations) -> list[Sample]:
    """Two clients per workload for ``soak_s``, memory sampled every ``sample_s``."""
    tallies = [Tally() for _ in works]
    start = time.monotonic()
    plan = [(work, tally, 2) for work, tally in zip(works, tallies, strict=True)]
    threads = start_clients(base, plan, start + durations.soak_s)
    samples = [sample(served, start, tallies)]
    steps = round(durations.soak_s / durations.sample_s)
    for step in range(1, steps + 1):
        time.sleep(max(0.0, start + step * durations.sample_s - time.monotonic()))
        samples.append(sample(served, start, tallies))
    for thread in threads:
        thread.join()
    return samples


def soak_row(s: Sample) -> str:
    return (
        f"| {s.seconds:.0f} | {s.gateway_mib:.1f} | {s.triton_mib:.1f} | {s.requests} "
        f"| {s.refused} | {s.errors} |"
    )


def soak_table(samples: list[Sample], works: list[Workload], durations: Durations) -> list[str]:
    first, last = samples[0], samples[-1]
    return [
        f"Soak: {durations.soak_s / 60:g} min, 2 clients each on "
        f"{' and '.join(w.name for w in works)}; memory every {durations.sample_s:.0f} s.",
        "",
        "| time (s) | gateway MiB | Triton MiB | requests so far | refused 503 so far "
        "| errors so far |",
        "|---|---|---|---|---|---|",
        *(soak_row(s) for s in samples),
        "",
        f"Drift (last − first sample): gateway {last.gateway_mib - first.gateway_mib:+.1f} MiB, "
        f"Triton {last.triton_mib - first.triton_mib:+.1f} MiB.",
    ]


# --- the report ------------------------------------------------------------------------------


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header(command: str) -> list[str]:
    s = get_settings()
    return [
        f"CPU: {cpu_name()}, {os.cpu_count()} cores; {platform.platform()}. Admission: "
        f"max_inflight_faces={s.max_inflight_faces}, max_inflight_superres="
        f"{s.max_inflight_superres}, max_queued_requests={s.max_queued_requests}, "
        f"queue_timeout_s={s.queue_timeout_s:g}.",
        "",
        f"Command: `{command}`",
    ]


def main(argv: list[str] | None = None) -> str:
    """Run the bench (``argv``: this script's own options; none from `gantry bench load`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    args = parser.parse_args(argv or [])
    durations = QUICK if args.quick else Durations()
    command = COMMAND + (" --quick" if args.quick else "")
    print(command, flush=True)
    works = [verify_workload(), superres_workload()]
    with served_stack() as base:
        served = Served.find(base)
        for work in works:
            warm_up(base, work)
        results = [
            load_run(base, served, work, clients, durations.run_s)
            for work in works
            for clients in CLIENTS
        ]
        samples = soak(base, served, works, durations)
    report = [
        *header(command),
        "",
        *load_table(results, durations.run_s),
        "",
        *soak_table(samples, works, durations),
    ]
    return write_result("load", "\n".join(report))


if __name__ == "__main__":
    main(sys.argv[1:])
