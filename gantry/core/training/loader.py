"""Loading a training config: shipped name or path, ``base`` chain, overrides, validation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gantry.core.errors import InvalidInput
from gantry.core.registry import UnknownNameError
from gantry.core.training.schema import CONFIG_TYPES, TrainConfig

CONFIG_DIR = Path(__file__).parent / "configs"
_MAX_BASES = 8


def shipped_configs() -> list[str]:
    """The names of the configs Gantry ships (``gantry train NAME``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if not p.stem.startswith("_"))


def _config_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise InvalidInput("unknown_config", f"no config file {path}")
        return path
    shipped = CONFIG_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    raise InvalidInput(
        "unknown_config",
        f"unknown training config {str(name_or_path)!r}; shipped: {', '.join(shipped_configs())}"
        " (or a path to a .yaml file)",
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidInput("invalid_config", f"{path.name} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidInput("invalid_config", f"{path.name} must hold a mapping of keys")
    return raw


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``, recursing into sections that both have."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _resolve(path: Path) -> dict[str, Any]:
    """The file's keys over its ``base`` chain (bases are shipped names or sibling files)."""
    chain = [_read(path)]
    while "base" in chain[-1]:
        if len(chain) > _MAX_BASES:
            raise InvalidInput("invalid_config", f"{path.name}: base chain longer than 8")
        base = str(chain[-1].pop("base"))
        sibling = path.parent / f"{base}.yaml"
        chain.append(_read(sibling if sibling.is_file() else _config_path(base)))
    merged: dict[str, Any] = {}
    for layer in reversed(chain):
        merged = _merge(merged, layer)
    return merged


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["steps=30", "optim.lr=1e-4"]`` → ``{"steps": 30, "optim.lr": 0.0001}`` (YAML values)."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput("invalid_override", f"{pair!r} is not key=value")
        overrides[key.strip()] = _scalar(value)
    return overrides


def _scalar(text: str) -> Any:
    """A YAML value, with ``1e-4`` read as a float (YAML 1.1 wants ``1.0e-4``)."""
    if not text.strip():
        return None
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _apply(config: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InvalidInput("invalid_override", f"{dotted!r} sets a key inside a value")
        node[leaf] = value
    return _merge(config, nested)


def _describe(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in error.errors()
    )


def load_train_config(
    name_or_path: str | Path, overrides: Mapping[str, Any] | None = None
) -> TrainConfig:
    """The validated config ``name_or_path`` (a shipped name or a YAML path) with overrides.

    Args:
        name_or_path: ``"pix2pix-facades"`` or ``"runs/my.yaml"``.
        overrides: dotted keys to values, applied last (``{"steps": 30, "optim.lr": 1e-4}``).

    Returns:
        An instance of the recipe's schema (``Pix2PixConfig``, ...).

    Raises:
        InvalidInput: unknown config, bad YAML, unknown recipe, or a field that fails its
            schema (the message names the field).
    """
    raw = _apply(_resolve(_config_path(name_or_path)), overrides or {})
    try:
        schema = CONFIG_TYPES.get(str(raw.get("recipe")))
    except UnknownNameError as exc:
        raise InvalidInput("invalid_config", str(exc)) from None
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput("invalid_config", f"{name_or_path}: {_describe(exc)}") from None
