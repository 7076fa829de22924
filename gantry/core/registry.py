"""Name → item registries, one per kind of thing (architecture, card, importer, job kind, ...).

One idiom for every table of named things in Gantry. A registry is filled by decorating small
factory functions or by adding items, and a lookup of an unknown name fails with the list of
known names, so a typo in a config or a request is a one-line fix rather than a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class UnknownNameError(KeyError):
    """A name no registry entry has; the message lists the known ones."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = known
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(known) or 'none'}")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class Registry(Generic[T]):
    """A named collection of ``T`` (often factories returning what they build)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        """Register ``item`` as ``name``; a second item of the same name is a bug."""
        if name in self._items:
            raise KeyError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        return item

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: register a function (or class) as ``name`` (default: its ``__name__``)."""

        def decorate(item: T) -> T:
            return self.add(name or item.__name__, item)  # type: ignore[attr-defined]

        return decorate

    def get(self, name: str) -> T:
        """The item registered as ``name``.

        Raises:
            UnknownNameError: no such name; the message lists the known names.
        """
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names()) from None

    def build(self: Registry[Callable[..., R]], name: str, **kwargs: Any) -> R:
        """Call the factory registered as ``name`` with ``kwargs``."""
        return self.get(name)(**kwargs)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        """(name, item) pairs in name order."""
        return [(name, self._items[name]) for name in self.names()]
