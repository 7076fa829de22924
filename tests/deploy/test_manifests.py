"""docker-compose.yml, compose.cpu.yaml, the Kubernetes overlays and the Dockerfile, held to
their specifications and to what the code and the tests run: settings, commands, ports,
paths and Triton's arguments."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import typer
import yaml
from packaging.requirements import Requirement

import gantry
from deploy.triton.launcher import TritonServer
from gantry.cli import app as cli_app
from gantry.core.settings import DEPLOYMENT_SETTINGS, ENV_PREFIX, SECRET_SETTINGS, Settings
from gateway.routers.health import router as health_router
from tests.deploy.manifests import (
    OVERLAYS,
    Container,
    compose_config,
    compose_containers,
    k8s_containers,
    objects,
    rendered,
)
from tests.paths import REPO
from workers.kinds import INFERENCE_QUEUE, TRAINING_QUEUE

COMPOSE_SCHEMA = Path(sys.prefix) / "share" / "gantry" / "compose-spec.json"
KUBERNETES = kubernetes_validate.latest_version()
# Custom resources: KEDA's ScaledObject, the Prometheus Operator's PodMonitor.
CUSTOM = {"keda.sh/v1alpha1": "ScaledObject", "monitoring.coreos.com/v1": "PodMonitor"}
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
REQUIREMENTS = REPO / "deploy" / "docker" / "requirements"
# `gantry` commands the manifests run that land with a later issue.
PENDING: dict[str, str] = {}
GPU = "nvidia.com/gpu"


def _gantry(containers: dict[str, Container]) -> dict[str, Container]:
    """The containers running Gantry's own images."""
    return {k: c for k, c in containers.items() if re.match(r"gantry-\w+(:|$)", c.image)}


def _all_gantry() -> list[Container]:
    found = list(_gantry(compose_containers()).values())
    found += _gantry(compose_containers(cpu=True)).values()
    for overlay in OVERLAYS:
        found += _gantry(k8s_containers(overlay)).values()
    return found


# --- specifications ---------------------------------------------------------------------------


@pytest.mark.parametrize("cpu", [False, True], ids=["gpu-host", "cpu-host"])
def test_compose_follows_the_compose_specification(cpu: bool) -> None:
    assert COMPOSE_SCHEMA.exists(), "the Compose schema is fetched by `make install`"
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    jsonschema.Draft201909Validator(schema).validate(compose_config(cpu))


def test_cpu_override_serves_the_same_services_without_a_gpu() -> None:
    gpu, cpu = compose_config()["services"], compose_config(cpu=True)["services"]
    assert (
        set(cpu)
        == set(gpu)
        == {
            "models",
            "triton",
            "redis",
            "postgres",
            "gateway",
            "worker-inference",
            "worker-training",
            "prometheus",
            "grafana",
        }
    )
    reserving = {n for n, s in gpu.items() if "devices" in json.dumps(s.get("deploy", {}))}
    assert reserving == {"models", "triton", "worker-training"}
    assert not any("devices" in json.dumps(s.get("deploy", {})) for s in cpu.values())
    assert gpu["models"]["command"][-3:] == ["--profile", "gpu", "--tensorrt"]
    assert cpu["models"]["command"][-2:] == ["--profile", "cpu"]
    # Everything else is the same: images, volumes, health checks, secrets, dependencies.
    for name in gpu:
        same = {k: v for k, v in gpu[name].items() if k not in ("deploy", "command")}
        assert same == {k: v for k, v in cpu[name].items() if k not in ("deploy", "command")}
    # Health-gated start: the gateway waits for Triton, Redis and PostgreSQL to be healthy.
    depends = gpu["gateway"]["depends_on"]
    assert {n: d["condition"] for n, d in depends.items()} == dict.fromkeys(
        ("triton", "redis", "postgres"), "service_healthy"
    )
    assert gpu["triton"]["depends_on"]["models"]["condition"] == "service_completed_successfully"
    assert "--appendonly" in gpu["redis"]["command"]
    assert gpu["grafana"]["profiles"] == ["monitoring"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_manifests_validate(overlay: str) -> None:
    docs = rendered(overlay)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "StatefulSet", "Job", "Service", "Ingress", "ConfigMap"} <= kinds
    assert {"PersistentVolumeClaim", "PodDisruptionBudget", "NetworkPolicy"} <= kinds
    workloads = {d["metadata"]["name"] for d in docs if d["kind"] in ("Deployment",)}
    for doc in docs:
        if CUSTOM.get(doc["apiVersion"]) == doc["kind"]:
            continue
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    # The custom resources point at what exists.
    scaled = objects(overlay, "ScaledObject")
    assert (
        {s["spec"]["scaleTargetRef"]["name"] for s in scaled.values()}
        == {
            "gateway",
            "triton",
            "worker-inference",
            "worker-training",
        }
        <= workloads
    )
    for monitor in objects(overlay, "PodMonitor").values():
        assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] in workloads


def _gpus(pod: dict[str, Any]) -> int:
    return sum(int(c["resources"].get("limits", {}).get(GPU, 0)) for c in pod["containers"])


def test_overlays_differ_as_intended() -> None:
    gpu = {k: c.pod for k, c in k8s_containers("gpu").items()}
    cpu = {k: c.pod for k, c in k8s_containers("cpu").items()}
    on_gpus = {"Deployment/triton", "Job/models-build", "Deployment/worker-training", "Job/train"}
    assert {k for k, pod in gpu.items() if _gpus(pod)} == on_gpus
    for name in on_gpus:
        assert gpu[name]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert gpu[name]["tolerations"][0]["key"] == GPU
    assert not any(_gpus(pod) or "nodeSelector" in pod for pod in cpu.values())
    replicas = {o: objects(o, "Deployment")["triton"]["spec"]["replicas"] for o in OVERLAYS}
    assert replicas == {"cpu": 2, "gpu": 1}
    build = {o: k8s_containers(o)["Job/models-build"].command for o in OVERLAYS}
    assert build["gpu"][-3:] == ["--profile", "gpu", "--tensorrt"]
    assert build["cpu"][-2:] == ["--profile", "cpu"]


def test_every_container_has_requests_limits_and_probes() -> None:
    for overlay in OVERLAYS:
        for key, c in k8s_containers(overlay).items():
            spec = next(x for x in c.pod["containers"])
            assert {"cpu", "memory"} <= set(spec["resources"]["requests"]), key
            assert "memory" in spec["resources"]["limits"], key
            if key.startswith(("Deployment/", "StatefulSet/")):
                assert "livenessProbe" in spec, key
    triton = next(
        iter(objects("gpu", "Deployment")["triton"]["spec"]["template"]["spec"]["containers"])
    )
    assert triton["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert triton["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert (
        triton["startupProbe"]["failureThreshold"] * triton["startupProbe"]["periodSeconds"] >= 300
    )


def test_only_the_gateway_and_workers_reach_the_backends() -> None:
    policies = objects("gpu", "NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"]["podSelector"] == {}
    clients = {
        name
        for name, d in objects("gpu", "Deployment").items()
        if d["spec"]["template"]["metadata"]["labels"].get("gantry.dev/backends") == "true"
    }
    assert clients == {"gateway", "worker-inference", "worker-training"}
    for backend in ("triton", "redis", "postgres"):
        first = policies[backend]["spec"]["ingress"][0]["from"][0]
        assert first == {"podSelector": {"matchLabels": {"gantry.dev/backends": "true"}}}


# --- settings, commands, ports, paths -----------------------------------------------------


def _env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def test_every_setting_a_deployment_needs_is_set_and_real() -> None:
    known = {_env_name(f) for f in Settings.model_fields} | {f"{ENV_PREFIX}SECRETS_DIR"}
    containers = _all_gantry()
    assert len(containers) >= 10
    for c in containers:
        unknown = {k for k in c.env if k.startswith(ENV_PREFIX)} - known
        assert not unknown, f"{c.where}: no such setting {unknown}"
        secrets_dir = c.env.get(f"{ENV_PREFIX}SECRETS_DIR", "")
        secret_files = {
            Path(p).name for p in c.mounts if secrets_dir and p.startswith(secrets_dir)
        } | set(_k8s_secret_keys(c, secrets_dir))
        for field in DEPLOYMENT_SETTINGS:
            name = _env_name(field)
            if field in SECRET_SETTINGS:
                assert name not in c.env, f"{c.where}: {name} is a secret, not environment"
                if "gateway" in c.where or "worker" in c.where:
                    assert name.lower() in secret_files, f"{c.where}: no secret file for {name}"
            else:
                assert name in c.env, f"{c.where}: {name} is not set"
        # The values are valid settings, and the paths they name are mounted.
        values = {k.removeprefix(ENV_PREFIX).lower(): v for k, v in c.env.items()}
        values.pop("secrets_dir", None)
        settings = Settings.model_validate(values)
        assert settings.auth_mode == "keys"
        assert str(settings.model_repository) in c.mounts, c.where
        if c.command[:2] in (["gantry", "gateway"], ["gantry", "worker"]):
            assert str(settings.state_dir) in c.mounts, c.where
            assert settings.broker_url.startswith("redis://redis:6379/")
        if c.command[:3] == ["gantry", "models", "build"] or "train" in c.command[:2]:
            assert str(settings.data_dir) in c.mounts, c.where


def _k8s_secret_keys(c: Container, secrets_dir: str) -> list[str]:
    """Keys of the Secret volumes mounted at ``secrets_dir`` (Kubernetes containers)."""
    volumes = {v["name"]: v for v in c.pod.get("volumes", []) if isinstance(v, dict)}
    keys: list[str] = []
    for path, name in c.mounts.items():
        secret = volumes.get(name, {}).get("secret")
        if secret and path == secrets_dir:
            keys += [item["path"] for item in secret.get("items", [])]
    return keys


def _parse(args: list[str]) -> None:
    """Parse a `gantry ...` command line as the CLI would; UsageError when it does not."""
    command: Any = typer.main.get_command(cli_app)
    rest = list(args[1:])
    while hasattr(command, "get_command"):
        name = rest.pop(0)
        found = command.get_command(command.make_context(args[0], [], resilient_parsing=True), name)
        assert found is not None, f"no command `gantry {name}`"
        command = found
    command.make_context(args[0], rest)


def _expanded(c: Container) -> list[str]:
    """The command with Kubernetes' ``$(VAR)`` references to the container's own environment
    (``env`` entries, ``valueFrom`` included) replaced by a sample value, as kubelet would."""
    declared = set(c.env)
    for spec in c.pod.get("containers", []):
        declared |= {e["name"] for e in spec.get("env", [])}

    def sample(match: re.Match[str]) -> str:
        assert match.group(1) in declared, f"{c.where}: $({match.group(1)}) is not in its env"
        return c.env.get(match.group(1)) or "0"

    return [re.sub(r"\$\((\w+)\)", sample, arg) for arg in c.command]


def test_gantry_commands_are_the_clis_own() -> None:
    queues: list[str] = []
    for c in _all_gantry():
        assert c.command[0] == "gantry", c.where
        if c.command[1] in PENDING:
            assert c.command[1] not in typer.main.get_command(cli_app).commands, (  # type: ignore[attr-defined]
                f"`gantry {c.command[1]}` exists now: drop it from PENDING"
            )
            continue
        _parse(_expanded(c))
        if c.command[1] == "worker":
            queues += c.command[c.command.index("--queues") + 1].split(",")
    assert set(queues) == {INFERENCE_QUEUE, TRAINING_QUEUE}
    # KEDA watches the Redis lists of those queues, each for the workers that consume it.
    for overlay in OVERLAYS:
        workers = {k.split("/")[1]: c for k, c in k8s_containers(overlay).items()}
        for name, scaled in objects(overlay, "ScaledObject").items():
            for trigger in scaled["spec"]["triggers"]:
                if trigger["type"] == "redis":
                    command = workers[name].command
                    queue = command[command.index("--queues") + 1]
                    assert trigger["metadata"]["listName"] == queue
                    assert trigger["metadata"]["address"].split(".")[0] == "redis"


def _expected_triton(env: dict[str, str]) -> list[str]:
    server = TritonServer(
        repository=Path(env["GANTRY_MODEL_REPOSITORY"]),
        state_dir=Path("/unused"),
        http_port=int(env["GANTRY_TRITON_HTTP_PORT"]),
        grpc_port=int(env["GANTRY_TRITON_GRPC_PORT"]),
        metrics_port=int(env["GANTRY_TRITON_METRICS_PORT"]),
    )
    return ["tritonserver", f"--model-repository={server.repository}", *server.serving_flags()]


def test_triton_runs_with_the_arguments_the_tests_use() -> None:
    env = compose_config()["x-gantry-environment"]
    for cpu in (False, True):
        triton = compose_containers(cpu)["triton"]
        assert triton.command == _expected_triton(env)
        assert triton.mounts["/models"] == "models"
    for overlay in OVERLAYS:
        containers = k8s_containers(overlay)
        gateway_env = containers["Deployment/gateway"].env
        triton = containers["Deployment/triton"]
        assert triton.command == _expected_triton(gateway_env)
        ports = {int(gateway_env[f"GANTRY_TRITON_{p}_PORT"]) for p in ("HTTP", "GRPC", "METRICS")}
        assert set(triton.ports) == ports
        service = objects(overlay, "Service")["triton"]
        assert {p["port"] for p in service["spec"]["ports"]} == ports
        assert gateway_env["GANTRY_TRITON_HOST"] == "triton"


def test_gateway_ports_and_probes_are_the_apps() -> None:
    routes = {getattr(r, "path", "") for r in health_router.routes}
    for overlay in OVERLAYS:
        c = k8s_containers(overlay)["Deployment/gateway"]
        assert c.command == ["gantry", "gateway"]
        expected = {int(c.env["GANTRY_GATEWAY_PORT"]), int(c.env["GANTRY_GRPC_PORT"])}
        assert set(c.ports) == expected
        spec = c.pod["containers"][0]
        assert (
            {spec["readinessProbe"]["httpGet"]["path"], spec["livenessProbe"]["httpGet"]["path"]}
            == {"/readyz", "/healthz"}
            <= routes
        )
        service = objects(overlay, "Service")["gateway"]
        assert {p["port"] for p in service["spec"]["ports"]} == expected
    compose_gateway = compose_containers()["gateway"]
    assert set(compose_gateway.ports) == {
        int(compose_gateway.env["GANTRY_GATEWAY_PORT"]),
        int(compose_gateway.env["GANTRY_GRPC_PORT"]),
    }
    assert "/readyz" in " ".join(compose_config()["services"]["gateway"]["healthcheck"]["test"])


def test_secret_files_are_read_as_settings(tmp_path: Path) -> None:
    (tmp_path / "gantry_jobs_db_url").write_text("postgresql://u:p@postgres:5432/gantry\n")
    settings = Settings(_secrets_dir=tmp_path)  # type: ignore[call-arg]
    assert settings.jobs_db_url == "postgresql://u:p@postgres:5432/gantry"


# --- images -----------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.prefix) / "bin" / "hadolint"
    done = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _stages() -> dict[str, str]:
    """Each ``FROM ... AS name`` stage's text."""
    parts = re.split(r"^FROM ", DOCKERFILE.read_text(), flags=re.M)[1:]
    return {re.search(r"AS (\S+)", p.splitlines()[0]).group(1): p for p in parts}  # type: ignore[union-attr]


def test_final_images_are_slim_non_root_and_checked() -> None:
    stages = _stages()
    for name in ("gateway", "worker", "trainer"):
        text = stages[name]
        assert "HEALTHCHECK" in text, name
        assert "apt-get" not in text and "gcc" not in text, name
    # The runtime base ends as the non-root user; the trainer goes back to it after its copy.
    assert re.findall(r"^USER (\S+)", stages["serve-runtime"], flags=re.M) == ["10001:10001"]
    assert re.findall(r"^USER (\S+)", stages["trainer"], flags=re.M)[-1] == "10001:10001"
    assert all(stages[n].startswith("serve-runtime AS") for n in ("gateway", "worker", "trainer"))
    # Compose and Kubernetes run what the images' CMDs run.
    assert 'CMD ["gantry", "gateway"]' in stages["gateway"]
    assert 'CMD ["gantry", "worker", "--queues", "inference"]' in stages["worker"]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", "-r")):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_gateway_image_requirements_have_no_torch_and_cover_the_project() -> None:
    serve = _pins(REQUIREMENTS / "serve.txt")
    assert not {n for n in serve if n.startswith(("torch", "nvidia-", "triton"))} - {"tritonclient"}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = requirement.name.lower()
        assert name in serve, f"{name} is not pinned in serve.txt (python -m deploy.docker.lock)"
        assert requirement.specifier.contains(serve[name]), f"{name}=={serve[name]} vs {spec}"
    trainer = _pins(REQUIREMENTS / "trainer.txt")
    for spec in project["optional-dependencies"]["trainer"]:
        requirement = Requirement(spec)
        assert requirement.specifier.contains(trainer[requirement.name.lower()]), spec


def test_images_are_tagged_with_the_package_version() -> None:
    tags = {c.image.split(":")[1] for c in _gantry(compose_containers()).values()}
    assert tags == {gantry.__version__}
    kustomization = yaml.safe_load((REPO / "deploy/k8s/base/kustomization.yaml").read_text())
    assert {i["newTag"] for i in kustomization["images"]} == {gantry.__version__}
    assert {c.image for c in _gantry(k8s_containers("gpu")).values()} == {
        f"gantry-{n}:{gantry.__version__}" for n in ("gateway", "worker", "trainer")
    }
