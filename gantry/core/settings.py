"""The one settings object for every Gantry process (gateway, workers, CLI).

Values come from the environment with the ``GANTRY_`` prefix (``GANTRY_TRITON_HOST``,
``GANTRY_MAX_UPLOAD_BYTES``, ...) or a ``.env`` file in the working directory. What Gantry
writes (the model repository, pid files, logs, the embedded broker and job store, inputs and
results) lives under ``GANTRY_HOME``, outside the source tree: ``$XDG_DATA_HOME/gantry``, by
default ``~/.local/share/gantry``.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "GANTRY_"
# The checkout this package runs from; only used to find ../shared/data beside a checkout.
SOURCE_ROOT = Path(__file__).resolve().parents[2]

# Settings whose defaults only make sense on one machine (loopback addresses, embedded SQLite
# stores, paths under ~ or beside a checkout, no auth): every deployment sets them
# (docker-compose.yml, deploy/k8s; tests/deploy hold those files to this list).
DEPLOYMENT_SETTINGS = (
    "home",
    "state_dir",
    "model_repository",
    "data_dir",
    "triton_host",
    "gateway_host",
    "broker_url",
    "jobs_db_url",
    "auth_mode",
)
# Those holding credentials: files in GANTRY_SECRETS_DIR, never plain environment.
SECRET_SETTINGS = ("jobs_db_url",)


def default_home() -> Path:
    """``$XDG_DATA_HOME/gantry`` (``~/.local/share/gantry`` when that is unset)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "gantry"


class Settings(BaseSettings):
    """Gantry settings; see the README's configuration table for each field."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    # --- where things live -------------------------------------------------------------
    home: Path = Field(default_factory=default_home, description="everything Gantry writes")
    model_repository: Path = Field(
        default_factory=lambda data: data["home"] / "model_repository",
        description="the Triton model repository: <name>/<version>/{model.onnx,card.json}",
    )
    state_dir: Path = Field(
        default_factory=lambda data: data["home"] / "state",
        description="pid files, logs, the embedded broker and job store, inputs, results",
    )
    data_dir: Path = Field(
        default=SOURCE_ROOT.parent / "shared" / "data",
        description="real images for the export parity gate (../shared/data beside a checkout)",
    )

    checkpoint_dir: Path = Field(
        default_factory=lambda data: data["home"] / "checkpoints",
        description="training runs: checkpoints, metrics, samples, curves (one folder a run)",
    )
    # Where training runs: auto picks CUDA when a GPU is visible (training workers are GPU
    # workers in deployments), else the CPU.
    train_device: Literal["auto", "cpu", "cuda"] = "auto"

    # --- Triton ------------------------------------------------------------------------
    triton_host: str = "127.0.0.1"
    triton_http_port: int = 8000
    triton_grpc_port: int = 8001
    triton_metrics_port: int = 8002
    triton_timeout_s: float = 120.0
    triton_start_timeout_s: float = 180.0
    # ONNX Runtime threads per model instance inside Triton (0 = ORT's default: all cores).
    ort_intra_op_threads: int = 0

    # --- gateway -----------------------------------------------------------------------
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8080
    grpc_port: int = 50051
    grpc_enabled: bool = True
    default_superres_model: str = "realesrgan-x4plus"
    # POST /v1/translate without `model` (empty: the field is required). The vintage CycleGAN
    # is MIT-licensed; pix2pix-facades is research only, so it is never the default.
    default_translate_model: str = "cyclegan-vintagify"
    # POST /v1/edit without `model`. Every face-editing model is trained on CelebA (research
    # only), so none is the default: requests name one.
    default_edit_model: str = ""
    # POST /v1/deblur without `model` (empty: the field is required). deblurgan-photos, the
    # only deblurring model, is trained here on research-only photos, so it is not the
    # default (a research-only model never is): requests name it, or a deployment sets it.
    default_deblur_model: str = ""
    # POST /v1/inpaint without `model` (empty: the field is required). glcic-photos, the only
    # inpainting model, is trained here on research-only photos, so it is not the default.
    default_inpaint_model: str = ""
    # POST /v1/generate without `model` (empty: the field is required). progan-celeba, the
    # only unconditional generator, is trained on CelebA (research only), so it is not the
    # default. At most this many images per request (a zip of PNGs beyond one).
    default_generate_model: str = ""
    max_generate_count: int = Field(default=16, ge=1)
    max_upload_bytes: int = 20 * 1024 * 1024
    max_input_pixels: int = 4096 * 4096
    max_output_pixels: int = 16384 * 16384
    # --- the front door: auth, limits, admission ---------------------------------------------
    # off: no keys (a local `make run`); keys: every API call needs a key (`gantry keys`).
    auth_mode: Literal["off", "keys"] = "off"
    # The key `gantry jobs` sends to a gateway (clients only; servers never read it).
    api_key: str = ""
    # Origins allowed by CORS (browsers calling the API from another site); none by default.
    cors_origins: list[str] = Field(default_factory=list)
    # A connection must finish its request line and headers within this, and its body within
    # the body timeout (counted from the headers), or it gets 408 and is closed.
    header_timeout_s: float = 10.0
    body_timeout_s: float = 120.0
    # Open connections the gateway accepts at once; beyond it, 503 (uvicorn's concurrency).
    max_connections: int = 256
    # Heavy requests in flight per family, and how many more may wait; beyond that, 503
    # `overloaded` with Retry-After, instead of unbounded memory.
    max_inflight_superres: int = 2
    max_inflight_translate: int = 2
    max_inflight_faces: int = 4
    max_queued_requests: int = 8
    queue_timeout_s: float = 30.0
    # gRPC messages larger than this end their call (stream) with RESOURCE_EXHAUSTED; smaller
    # ones whose images exceed max_upload_bytes get a per-message error.
    grpc_max_message_bytes: int = 64 * 1024 * 1024
    # --- faces ---------------------------------------------------------------------------
    default_detector: Literal["retinaface", "mtcnn"] = "retinaface"
    retinaface_model: str = "retinaface-mnet025"
    mtcnn_models: tuple[str, str, str] = ("mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet")
    # /v1/faces/embed and /verify without `model`. dlib's descriptor is CC0; the ArcFace
    # MobileFaceNet (mobilefacenet-arcface) separates pairs better but is research only (MS1M,
    # no upstream licence), so it is never the default: requests name it.
    default_embedder: str = "dlib-resnet-v1"
    # /v1/faces/landmarks without `model`: face-api.js's 68-point net (MIT).
    default_landmark_model: str = "faceapi-landmark68"
    # /v1/faces/frontalize without `model`, and `frontalize=true` on embed and verify: TP-GAN,
    # which keeps held-aside people's identity better than CAPG-GAN (`gantry train` runs of
    # both configs; README, Frontalization). Both are research only.
    default_frontalizer: str = "tpgan-cmu"
    detect_min_score: float = 0.5
    # Large photos are shrunk so the detector's long side is at most this (faces keep ≥ ~20 px
    # in 4K photos); boxes are mapped back to input pixels.
    detect_max_side: int = 1024
    mtcnn_min_face: int = 20
    # Verification compares "the largest face" of each image: among detections at least this
    # confident when there are any, so a large low-score false positive (hair, a necklace)
    # never outranks a clear face.
    verify_face_min_score: float = 0.9
    # Tiles per Triton request; peak memory of a request is bounded by this batch.
    tile_batch: int = 4
    # A synchronous request whose estimated compute exceeds this many seconds on the serving
    # hardware is refused with 413 and pointed at the batch job.
    sync_budget_s: float = 60.0
    # Starting estimate of the served GFLOP/s before the gateway has timed real requests.
    serving_gflops: float = 40.0

    # --- jobs ----------------------------------------------------------------------------
    # Empty: the embedded default, kombu's SQLAlchemy transport on SQLite under state_dir (no
    # server needed). Deployments set redis://host:6379/0.
    broker_url: str = ""
    # Job records (status, progress, results); SQLite under state_dir by default, any
    # SQLAlchemy URL (postgresql://...) in deployments.
    jobs_db_url: str = ""
    # Redis redelivers an unacknowledged message after this long; above the hard time limit so
    # a long job is never handed to a second worker while the first still runs it.
    broker_visibility_timeout_s: int = 4000
    job_soft_time_limit_s: int = 3600
    job_hard_time_limit_s: int = 3700
    # A running job whose worker has not reported for this long is requeued (worker lost).
    job_heartbeat_timeout_s: float = 60.0
    job_max_attempts: int = 3
    result_retention_hours: float = 72.0
    max_batch_images: int = 256
    max_job_input_bytes: int = 512 * 1024 * 1024
    # Zips are refused from their directory when a member or the whole unpacks past these.
    zip_max_member_bytes: int = 64 * 1024 * 1024
    zip_max_total_bytes: int = 2 * 1024 * 1024 * 1024
    # Uploaded inputs that no queued or running job refers to are deleted after this long.
    input_retention_hours: float = 24.0

    @property
    def results_dir(self) -> Path:
        return self.state_dir / "results"

    @property
    def inputs_dir(self) -> Path:
        return self.state_dir / "inputs"

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{self.state_dir / 'broker.sqlite'}"

    @property
    def effective_jobs_db_url(self) -> str:
        return self.jobs_db_url or f"sqlite:///{self.state_dir / 'jobs.sqlite'}"

    @property
    def triton_url(self) -> str:
        """host:port of Triton's gRPC endpoint (the gateway and workers speak gRPC to it)."""
        return f"{self.triton_host}:{self.triton_grpc_port}"

    @property
    def triton_http_url(self) -> str:
        """host:port of Triton's HTTP endpoint (health, the repository API)."""
        return f"{self.triton_host}:{self.triton_http_port}"

    def to_env(self) -> dict[str, str]:
        """These settings as ``GANTRY_*`` variables, so a child process reads the same values.

        Scalars are written as text, tuples and lists as JSON (what pydantic-settings parses).
        """
        env = {}
        for name, value in self.model_dump(mode="json").items():
            text = json.dumps(value) if isinstance(value, list | dict) else str(value)
            env[f"{ENV_PREFIX}{name.upper()}"] = text
        return env

    def child_env(self, base: dict[str, str] | None = None, **extra: Any) -> dict[str, str]:
        """``base`` (default: this process's environment) with :meth:`to_env` on top."""
        env = dict(os.environ if base is None else base)
        env.update(self.to_env())
        env.update({k: str(v) for k, v in extra.items()})
        return env


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once.

    Values may also come from files named after the variables (``gantry_jobs_db_url``) in
    ``$GANTRY_SECRETS_DIR``: how containers get secrets (compose ``secrets:``, Kubernetes
    Secret volumes) without putting them in the environment.
    """
    secrets_dir = os.environ.get(f"{ENV_PREFIX}SECRETS_DIR") or None
    return Settings(_secrets_dir=secrets_dir)  # type: ignore[call-arg]
