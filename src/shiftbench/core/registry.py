"""One registry mechanism for every plugin kind: methods, shifts, dataset loaders, recipes, architectures, executors.

A built-in registers itself with the registry's decorator when its module is imported (the
registry imports every module of its package the first time it is asked). A third-party
plugin is found by name through the registry's entry-point group
(`[project.entry-points."shiftbench.methods"]`), or by an import path `pkg.module:attr`
written where the name would go. An unknown name gives the same one-line error everywhere.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, Generic, TypeVar

from .errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind.

    kind: what an entry is, for messages ("method", "shift", ...).
    package: the package whose modules hold the built-ins (imported once, on first use).
    group: the entry-point group of installed plugins.
    accept: turns an object loaded by import path or entry point into an entry; raises
        TypeError saying what was expected. Default: the object must be an entry already
        (its module's decorator registered it on import).
    """

    def __init__(self, kind: str, package: str, group: str, accept: Callable[[Any], T] | None = None):
        self.kind, self.package, self.group = kind, package, group
        self._accept = accept
        self._entries: dict[str, T] = {}
        self._loaded = False

    def add(self, name: str, entry: T) -> T:
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise ValueError(f"a {self.kind} name must be a non-empty string without surrounding spaces: {name!r}")
        if name in self._entries and self._entries[name] is not entry:
            raise ValueError(f"{self.kind} '{name}' registered twice")
        self._entries[name] = entry
        return entry

    def decorator(self, name: str, make: Callable[[Any], T] | None = None) -> Callable[[Any], Any]:
        """A decorator that registers `make(obj)` (default: obj itself) under `name` and returns obj."""

        def wrap(obj):
            self.add(name, make(obj) if make else obj)
            return obj

        return wrap

    def _load_builtins(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        pkg = importlib.import_module(self.package)
        for mod in pkgutil.iter_modules(pkg.__path__):
            importlib.import_module(f"{self.package}.{mod.name}")

    def _plugins(self) -> dict[str, Any]:
        return {ep.name: ep for ep in entry_points(group=self.group)}

    def names(self) -> list[str]:
        """Built-in and installed plugin names, sorted (plugins are listed without being imported)."""
        self._load_builtins()
        return sorted(set(self._entries) | set(self._plugins()))

    def entries(self) -> dict[str, T]:
        """Every built-in entry (and every plugin already loaded), by name."""
        self._load_builtins()
        return dict(sorted(self._entries.items()))

    def get(self, name: str, *, source: str | None = None, field: str | None = None) -> T:
        """The entry called `name`: a built-in, an installed plugin, or 'pkg.module:attr'."""
        self._load_builtins()
        field = field or self.kind
        if not isinstance(name, str):
            raise UserError(f"a {self.kind} name must be a string, got {type(name).__name__}", source=source,
                            field=field)
        if name in self._entries:
            return self._entries[name]
        if ":" in name:
            return self._by_import_path(name, source, field)
        plugins = self._plugins()
        if name in plugins:
            return self._accepted(_imported(plugins[name].load, f"{self.kind} plugin '{name}'", source, field),
                                  f"entry point '{name}'", source, field)
        raise UserError(f"unknown {self.kind} '{name}'; known: {', '.join(self.names()) or 'none'}, "
                        "or an import path 'pkg.module:attr'", source=source, field=field)

    def _by_import_path(self, spec: str, source: str | None, field: str) -> T:
        module_name, _, attr = spec.partition(":")
        if not module_name or not attr:
            raise UserError(f"'{spec}' is not an import path 'pkg.module:attr'", source=source, field=field)
        module = _imported(lambda: importlib.import_module(module_name), f"{self.kind} '{spec}'", source, field)
        if not hasattr(module, attr):
            raise UserError(f"module '{module_name}' has no attribute '{attr}'", source=source, field=field)
        return self._accepted(getattr(module, attr), f"'{spec}'", source, field)

    def _accepted(self, obj: Any, what: str, source: str | None, field: str) -> T:
        try:
            if self._accept is not None:
                return self._accept(obj)
            if any(obj is e or getattr(e, "fn", None) is obj for e in self._entries.values()):
                return next(e for e in self._entries.values() if obj is e or getattr(e, "fn", None) is obj)
            raise TypeError(f"is not a registered {self.kind} (decorate it with the {self.kind} registry's decorator)")
        except TypeError as e:
            raise UserError(f"{what} {e}", source=source, field=field) from None


def _imported(load: Callable[[], Any], what: str, source: str | None, field: str) -> Any:
    """load() (an import), with whatever goes wrong in the plugin's module as one UserError line.

    A module that calls sys.exit() or raises any other BaseException on import is a broken
    plugin too; only Ctrl-C passes through.
    """
    try:
        return load()
    except ModuleNotFoundError as e:
        raise UserError(f"cannot import module '{e.name}' for {what}", source=source, field=field) from None
    except KeyboardInterrupt:
        raise
    except SyntaxError as e:
        raise UserError(f"importing {what} failed: SyntaxError: {e.msg} ({Path(e.filename or '?').name}, line "
                        f"{e.lineno})", source=source, field=field) from None
    except BaseException as e:  # noqa: BLE001 - a plugin's own bug, SystemExit included
        raise UserError(f"importing {what} failed: {type(e).__name__}: {e}", source=source, field=field) from None
