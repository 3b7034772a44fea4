"""Name -> object registries with helpful lookup errors and lazy population."""

from __future__ import annotations

import importlib
from typing import Generic, Iterator, TypeVar

from molgen.core.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of classes or factories.

    Registries live in ``core`` so that higher layers can look up objects of
    sibling layers (a backbone finding a domain by name when loading a saved
    model) without importing them statically. ``autoload`` lists modules that
    register entries on import; they are imported on first lookup.

    Args:
        kind: What the registry holds, used in error messages ("domain").
        autoload: Module names imported before the first lookup.
    """

    def __init__(self, kind: str, autoload: tuple[str, ...] = ()):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._autoload = autoload
        self._loaded = not autoload

    def register(self, name: str, obj: T | None = None):
        """Register ``obj`` under ``name``; usable as a decorator.

        Args:
            name: Lookup name (lower case, dashes).
            obj: The object; omit to use as ``@registry.register("name")``.

        Returns:
            ``obj`` (or the decorator).
        """

        def add(item: T) -> T:
            if name in self._entries and self._entries[name] is not item:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = item
            return item

        return add(obj) if obj is not None else add  # type: ignore[return-value]

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._autoload:
                importlib.import_module(module)

    def get(self, name: str) -> T:
        """Look ``name`` up.

        Raises:
            RegistryError: naming the valid choices.
        """
        self._ensure_loaded()
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(sorted(self._entries)) or "(none registered)"
            raise RegistryError(f"unknown {self.kind} {name!r}; valid names: {valid}") from None

    def names(self) -> list[str]:
        """Sorted registered names."""
        self._ensure_loaded()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        """(name, object) pairs in name order."""
        self._ensure_loaded()
        return iter(sorted(self._entries.items()))

    def __contains__(self, name: str) -> bool:
        self._ensure_loaded()
        return name in self._entries


# Global registries. Entries are registered by the modules of their layer.
DOMAINS: Registry = Registry("domain", autoload=("molgen.domains",))
BACKBONES: Registry = Registry("backbone", autoload=("molgen.backbones",))
DATASETS: Registry = Registry("data set", autoload=("molgen.datasets",))

