"""Name → factory registries for datasets, methods and backbones.

The CLI's choices, ``--all``, the docs' tables and the leaderboard rows all come from here. Entries register
themselves when their module is imported; :func:`load_all` imports every module of the registering packages,
so adding a method is one file with one ``@METHODS.register(...)``.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ltbench.errors import LTBenchError

T = TypeVar("T")


@dataclass
class Entry(Generic[T]):
    name: str
    obj: T
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """A named collection; registering a duplicate name is a bug and raises."""

    def __init__(self, kind: str, packages: tuple[str, ...]):
        self.kind = kind
        self.packages = packages
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = False
        self._loading = False

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"duplicate {self.kind} name {name!r}")
            self._entries[name] = Entry(name, obj, meta)
            return obj

        return deco

    def load(self) -> None:
        """Import every module of the registering packages once. A module that fails to import leaves no
        entry behind and the registry unloaded, so the error comes back on the next call instead of a
        silently half-filled registry. (Lookups made while loading, from a module being imported, see the
        entries registered so far.)"""
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            for pkg in self.packages:
                for module in _submodules(pkg):
                    before = set(self._entries)
                    try:
                        importlib.import_module(module)
                    except BaseException:
                        for name in set(self._entries) - before:  # what the failed module registered
                            del self._entries[name]
                        raise
            self._loaded = True
        finally:
            self._loading = False

    def names(self) -> list[str]:
        self.load()
        return sorted(self._entries)

    def entries(self) -> Iterator[Entry[T]]:
        self.load()
        for name in sorted(self._entries):
            yield self._entries[name]

    def entry(self, name: str) -> Entry[T]:
        self.load()
        if name not in self._entries:
            close = difflib.get_close_matches(name, self._entries, n=3)
            hint = (
                f"did you mean {', '.join(close)}?" if close else f"choose one of: {', '.join(self.names())}"
            )
            raise LTBenchError(f"unknown {self.kind} {name!r}", f"{hint} (`ltbench {self.kind}s` lists them)")
        return self._entries[name]

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def __contains__(self, name: str) -> bool:
        self.load()
        return name in self._entries


def _submodules(package: str) -> list[str]:
    pkg = importlib.import_module(package)
    infos = sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name)
    return [f"{package}.{i.name}" for i in infos if not i.name.startswith("_")]


DATASETS: Registry = Registry("dataset", ("ltbench.builders.sources",))
METHODS: Registry = Registry("method", ("ltbench.baselines", "ltbench.candle"))
BACKBONES: Registry = Registry("backbone", ("ltbench.backbones",))
