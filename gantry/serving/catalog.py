"""The models the pipelines can serve: every built version in the model repository.

The catalog re-reads the repository whenever its fingerprint changes (a cheap ``stat`` of each
model and version directory), so a version published by `gantry models publish` or a
training job is visible to the gateway and the workers on their next request, without a
restart.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from gantry.core.cards import BuiltCard
from gantry.core.errors import InvalidInput, NotFound
from gantry.core.repository import ModelRepository


@dataclass(frozen=True)
class CatalogModel:
    """One model: its built versions and the one requests get by default."""

    name: str
    default_version: int
    versions: dict[int, BuiltCard]

    @property
    def default(self) -> BuiltCard:
        return self.versions[self.default_version]

    @property
    def task(self) -> str:
        return self.default.card.task


class ModelCatalog:
    """Built cards by model name and version, read from ``<repository>/<name>/<version>/``."""

    def __init__(self, repository: Path) -> None:
        self.repository = ModelRepository(repository)
        self._models: dict[str, CatalogModel] = {}
        self._signature: tuple[tuple[str, int], ...] | None = None
        self._lock = threading.Lock()
        self.refresh()

    def refresh(self) -> None:
        """Re-read the repository if anything in it changed since the last read."""
        signature = self.repository.signature()
        if signature == self._signature:
            return
        with self._lock:
            models: dict[str, CatalogModel] = {}
            for name in self.repository.names():
                default = self.repository.default_version(name)
                versions = {
                    v: self.repository.read(name, v) for v in self.repository.versions(name)
                }
                if default is not None and versions:
                    models[name] = CatalogModel(name, default, versions)
            self._models = models
            self._signature = signature

    def models(self) -> list[CatalogModel]:
        """Every model, by name."""
        self.refresh()
        return [self._models[name] for name in sorted(self._models)]

    def names(self, task: str | Collection[str]) -> list[str]:
        """Names of the models of a task (or of any of several tasks)."""
        tasks = {task} if isinstance(task, str) else set(task)
        return [m.name for m in self.models() if m.task in tasks]

    def defaults(self) -> list[BuiltCard]:
        """The default version of every model that must be ready for the gateway to be."""
        return [m.default for m in self.models() if m.default.card.default]

    def resolve_or_default(
        self,
        name: str | None,
        default: str | None,
        *,
        task: str | Collection[str],
        version: int | None = None,
    ) -> BuiltCard:
        """:meth:`resolve` for ``name``, or for ``default`` (an endpoint's configured model)
        when the request names none.

        Raises:
            InvalidInput: ``missing_model``: neither is given (the message lists the models
                of the task); and :meth:`resolve`'s errors.
        """
        if name is None:
            if default is None:
                known = ", ".join(self.names(task)) or "none"
                raise InvalidInput("missing_model", f"name a model (available: {known})")
            name = default
        return self.resolve(name, task=task, version=version)

    def resolve(
        self, name: str, *, task: str | Collection[str], version: int | None = None
    ) -> BuiltCard:
        """The card of ``name`` at ``version`` (its default version when None).

        Raises:
            InvalidInput: ``unknown_model``: no model of that task has this name; the message
                names the ones there are.
            NotFound: ``unknown_version``: the model exists but not at this version.
        """
        self.refresh()
        tasks = {task} if isinstance(task, str) else set(task)
        model = self._models.get(name)
        if model is None or model.task not in tasks:
            known = self.names(tasks)
            what = " or ".join(sorted(tasks))
            raise InvalidInput(
                "unknown_model",
                f"no {what} model named {name!r}; available: {', '.join(known) or 'none'}"
                " (run `gantry models build`)",
            )
        if version is None:
            return model.default
        built = model.versions.get(version)
        if built is None:
            raise NotFound(
                "unknown_version",
                f"{name} has no version {version}; versions: "
                f"{', '.join(str(v) for v in sorted(model.versions))}",
            )
        return built
