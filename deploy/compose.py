"""Reading Compose files as ``docker compose config`` does: several files merged in order.

The merge follows the Compose Specification's rules for what Gantry's files use: mappings
merge key by key; ``command``, ``entrypoint`` and a health check's ``test`` are replaced;
other sequences (ports, volumes, secrets, ...) are appended without repeats; a value tagged
``!reset`` removes the key, one tagged ``!override`` replaces it whole. The schema the result
is checked against is the specification's own JSON schema (tests/deploy/test_compose.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPLACED = frozenset({"command", "entrypoint", "test"})


class Reset:
    """``!reset``: the key is removed from what it overrides."""


class Override:
    """``!override``: the value replaces what it overrides instead of merging."""

    def __init__(self, value: Any) -> None:
        self.value = value


class ComposeLoader(yaml.SafeLoader):
    """YAML with Compose's ``!reset`` and ``!override`` tags."""


def _reset(loader: yaml.SafeLoader, node: yaml.Node) -> Reset:
    return Reset()


def _override(loader: yaml.SafeLoader, node: yaml.Node) -> Override:
    if isinstance(node, yaml.MappingNode):
        return Override(loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    return Override(loader.construct_scalar(node))


ComposeLoader.add_constructor("!reset", _reset)
ComposeLoader.add_constructor("!override", _override)


def load_file(path: Path) -> dict[str, Any]:
    """One Compose file, tags kept as :class:`Reset` / :class:`Override` markers."""
    data = yaml.load(path.read_text(), Loader=ComposeLoader)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a Compose file is a mapping")
    return data


def merge(base: Any, override: Any, key: str = "") -> Any:
    """``override`` on top of ``base``, by the rules in the module docstring."""
    if isinstance(override, Override):
        return _plain(override.value)
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for name, value in override.items():
            if isinstance(value, Reset):
                merged.pop(name, None)
            elif name in merged:
                merged[name] = merge(merged[name], value, name)
            else:
                merged[name] = _plain(value)
        return merged
    if isinstance(base, list) and isinstance(override, list) and key not in REPLACED:
        return base + [v for v in _plain(override) if v not in base]
    return _plain(override)


def _plain(value: Any) -> Any:
    """A value with no markers left (resets dropped, overrides unwrapped)."""
    if isinstance(value, Override):
        return _plain(value.value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [_plain(v) for v in value if not isinstance(v, Reset)]
    return value


def config(*paths: Path) -> dict[str, Any]:
    """The merged configuration of Compose files, in the order given."""
    merged: dict[str, Any] = {}
    for path in paths:
        merged = merge(merged, load_file(path))
    return _plain(merged)
