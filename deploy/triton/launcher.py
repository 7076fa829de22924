"""Start and stop the real ``tritonserver`` that the ``nvidia-pytriton`` wheel ships.

The wheel carries the server binary, the Python backend (``libtriton_python.so``,
``triton_python_backend_utils.py``) and one backend stub per Python version. We assemble a
backend directory from those plus our Python-based ``onnxruntime`` backend, put the wheel's
bundled libraries on ``LD_LIBRARY_PATH`` and run the server against the model repository.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

BACKEND_SHIM = Path(__file__).resolve().parent / "backends" / "onnxruntime" / "model.py"


class TritonNotFoundError(RuntimeError):
    """The nvidia-pytriton wheel (and so tritonserver) is not installed."""


@dataclass(frozen=True)
class TritonDistribution:
    """Paths inside the installed ``nvidia-pytriton`` wheel."""

    root: Path

    @classmethod
    def find(cls) -> TritonDistribution:
        """Locate the wheel in the running interpreter's site-packages."""
        try:
            import pytriton
        except ImportError as exc:
            raise TritonNotFoundError(
                "tritonserver not found: install the serve extra (pip install '.[serve]')"
            ) from exc
        return cls(Path(pytriton.__file__).resolve().parent / "tritonserver")

    @property
    def binary(self) -> Path:
        return self.root / "bin" / "tritonserver"

    @property
    def python_backend(self) -> Path:
        return self.root / "backends" / "python"

    @property
    def stub(self) -> Path:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        return self.root / "python_backend_stubs" / version / "triton_python_backend_stub"

    @property
    def libs(self) -> Path:
        return self.root.parent.parent / "nvidia_pytriton.libs"


def prepare_backends(dist: TritonDistribution, target: Path) -> Path:
    """Write ``target/{python,onnxruntime}`` for ``--backend-directory``.

    The python backend gets the wheel's library, utils and the stub for this interpreter;
    ``onnxruntime`` gets our shim. Files are copied (not linked) so the directory also works
    when mounted into a container.
    """
    python_dir = target / "python"
    ort_dir = target / "onnxruntime"
    for d in (python_dir, ort_dir):
        d.mkdir(parents=True, exist_ok=True)
    for src in (
        dist.python_backend / "libtriton_python.so",
        dist.python_backend / "triton_python_backend_utils.py",
        dist.stub,
    ):
        shutil.copy2(src, python_dir / src.name)
    shutil.copy2(BACKEND_SHIM, ort_dir / "model.py")
    return target


@dataclass
class TritonServer:
    """A tritonserver process serving one model repository."""

    repository: Path
    state_dir: Path
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    host: str = "127.0.0.1"
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "triton.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "triton.log"

    @property
    def ready_url(self) -> str:
        return f"http://{self.host}:{self.http_port}/v2/health/ready"

    def serving_flags(self) -> list[str]:
        """The flags every Gantry Triton runs with, here and in NVIDIA's container (compose,
        Kubernetes): the deployment tests hold those files to this list."""
        return [
            # Explicit control: every model is loaded at start, and later a training job can
            # load a new version through the repository API without a restart.
            "--model-control-mode=explicit",
            "--load-model=*",
            "--strict-readiness=true",
            "--exit-on-error=false",
            f"--http-port={self.http_port}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-port={self.metrics_port}",
            "--allow-metrics=true",
            "--exit-timeout-secs=15",
            "--log-verbose=0",
        ]

    def command(self, dist: TritonDistribution) -> list[str]:
        """The tritonserver command line: the serving flags, this host's paths and address,
        and the Python backend's settings (only the CPU shim runs on it)."""
        backends = prepare_backends(dist, self.state_dir / "backends")
        return [
            str(dist.binary),
            f"--model-repository={self.repository.resolve()}",
            f"--backend-directory={backends}",
            *self.serving_flags(),
            f"--http-address={self.host}",
            f"--grpc-address={self.host}",
            # Tiles are megabytes: a large first shared-memory region spares the python
            # backend a resize on every request.
            "--backend-config=python,shm-default-byte-size=67108864",
            "--backend-config=python,shm-growth-byte-size=67108864",
            *self.extra_args,
        ]

    def environment(self, dist: TritonDistribution) -> dict[str, str]:
        """Environment for the server: bundled libraries, and this interpreter first on PATH."""
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (str(dist.libs), env.get("LD_LIBRARY_PATH", "")) if p
        )
        # The backend stub runs the first `python3` on PATH: it must be the one that has
        # onnxruntime and this package.
        env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
        return env

    def start(self, *, wait: bool = True, timeout_s: float = 180.0) -> TritonServer:
        """Start the server (detached from this process group) and wait for readiness."""
        if self.is_ready():
            raise RuntimeError(f"a Triton server already answers on {self.ready_url}")
        dist = TritonDistribution.find()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_file.open("ab")
        self.process = subprocess.Popen(
            self.command(dist),
            env=self.environment(dist),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.pid_file.write_text(str(self.process.pid))
        if wait:
            try:
                self.wait_ready(timeout_s)
            except BaseException:
                # Never leave a half-started server behind (it runs in its own session).
                self.stop()
                raise
        return self

    def is_ready(self) -> bool:
        """True when the server answers ready (every model loaded)."""
        try:
            with urllib.request.urlopen(self.ready_url, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout_s: float, on_tick: Callable[[float], None] | None = None) -> None:
        """Block until ready; raise with the log's tail if the server dies or times out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.is_ready():
                return
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"tritonserver exited early:\n{self.log_tail()}")
            if on_tick is not None:
                on_tick(deadline - time.monotonic())
            time.sleep(0.5)
        raise TimeoutError(f"tritonserver not ready after {timeout_s:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server log."""
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the server started by this object or recorded in the pid file."""
        pid = self.process.pid if self.process is not None else read_pid(self.pid_file)
        if pid is None:
            return False
        stopped = stop_process_group(pid, timeout_s)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=1)
        self.pid_file.unlink(missing_ok=True)
        return stopped

    @contextlib.contextmanager
    def running(self, timeout_s: float = 180.0) -> Iterator[TritonServer]:
        """Context manager: start, yield, always stop."""
        self.start(timeout_s=timeout_s)
        try:
            yield self
        finally:
            self.stop()


def read_pid(path: Path) -> int | None:
    """The pid recorded in ``path``, or None."""
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists"; treat it as gone.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def stop_process_group(pid: int, timeout_s: float) -> bool:
    """SIGTERM a process group (a server and its children), SIGKILL it if it lingers.

    Returns False when the process was already gone.
    """
    if not _alive(pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True


def stop_pid_file(path: Path, timeout_s: float = 15.0) -> bool:
    """Stop the process group whose leader's pid is in ``path``; remove the file."""
    pid = read_pid(path)
    if pid is None:
        return False
    stopped = stop_process_group(pid, timeout_s)
    path.unlink(missing_ok=True)
    return stopped
