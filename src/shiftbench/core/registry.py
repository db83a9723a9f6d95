"""One registry mechanism for every plugin kind: methods, shifts, dataset loaders, recipes, architectures, executors.

A built-in registers itself with the registry's decorator when its module is imported (the
registry imports every module of its package, subpackages included, the first time it is
asked). A third-party plugin is found by name through the registry's entry-point group
(`[project.entry-points."shiftbench.methods"]`), or by an import path `pkg.module:attr`
written where the name would go. A *family* answers every name `PREFIX:REST` (the
architectures `torchvision:resnet50`, `timm:vit_small_patch16_224`): it lists the names it
knows and makes the entry for one of them on first use. An unknown name gives the same
one-line error everywhere.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from difflib import get_close_matches
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, Generic, TypeVar

from .errors import UserError

T = TypeVar("T")
LISTED = 20  # an unknown-name error lists at most this many known names


@dataclass(frozen=True)
class Family(Generic[T]):
    """Entries named `prefix:REST`. make(REST) -> the entry; names() -> the RESTs it knows, or None
    when it takes any (then make raises UserError for a bad one); pattern: how it reads in listings."""

    prefix: str
    make: Callable[[str], T]
    names: Callable[[], list[str] | None]
    pattern: str
    doc: str = ""


class Registry(Generic[T]):
    """Named entries of one kind.

    kind: what an entry is, for messages ("method", "shift", ...).
    package: the package whose modules hold the built-ins (imported once, on first use, subpackages
        included).
    group: the entry-point group of installed plugins.
    accept: turns an object loaded by import path or entry point into an entry; raises
        TypeError saying what was expected. Default: the object must be an entry already
        (its module's decorator registered it on import).
    """

    def __init__(self, kind: str, package: str, group: str, accept: Callable[[Any], T] | None = None):
        self.kind, self.package, self.group = kind, package, group
        self._accept = accept
        self._entries: dict[str, T] = {}
        self._families: dict[str, Family[T]] = {}
        self._made: dict[str, T] = {}  # family members made so far, by full name
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

    def add_family(self, prefix: str, make: Callable[[str], T], names: Callable[[], list[str] | None],
                   pattern: str = "", doc: str = "") -> None:
        """Register a family answering every name 'prefix:REST' (see Family)."""
        if not prefix.isidentifier() or prefix in self._families:
            raise ValueError(f"{self.kind} family prefix must be a new identifier: {prefix!r}")
        self._families[prefix] = Family(prefix, make, names, pattern or f"{prefix}:<name>", doc)

    def families(self) -> dict[str, Family[T]]:
        self._load_builtins()
        return dict(sorted(self._families.items()))

    def _load_builtins(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        pkg = importlib.import_module(self.package)
        for mod in pkgutil.walk_packages(pkg.__path__, prefix=f"{self.package}."):
            importlib.import_module(mod.name)

    def _plugins(self) -> dict[str, Any]:
        return {ep.name: ep for ep in entry_points(group=self.group)}

    def names(self) -> list[str]:
        """Built-in and installed plugin names, sorted (plugins are listed without being imported),
        then each family's pattern."""
        self._load_builtins()
        return sorted(set(self._entries) | set(self._plugins())) + [f.pattern for f in self.families().values()]

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
        prefix, _, rest = name.partition(":")
        if prefix in self._families:
            return self._family_member(self._families[prefix], rest, source, field)
        if ":" in name:
            return self.by_import_path(name, source, field)
        plugins = self._plugins()
        if name in plugins:
            return self._accepted(_imported(plugins[name].load, f"{self.kind} plugin '{name}'", source, field),
                                  f"entry point '{name}'", source, field)
        self.unknown(name, self.names(), source=source, field=field, import_path=True)

    def unknown(self, name: str, known: list[str], *, source: str | None = None, field: str | None = None,
                import_path: bool = False):
        """Raise the one unknown-name error: the name, close matches first, at most LISTED known names."""
        close = get_close_matches(name, known, n=5, cutoff=0.6)
        listed = close + [k for k in known if k not in close][: max(0, LISTED - len(close))]
        more = f" and {len(known) - len(listed)} more" if len(known) > len(listed) else ""
        tail = ", or an import path 'pkg.module:attr'" if import_path else ""
        raise UserError(f"unknown {self.kind} '{name}'; known: {', '.join(listed) or 'none'}{more}{tail}",
                        source=source, field=field or self.kind)

    def _family_member(self, family: Family[T], rest: str, source: str | None, field: str) -> T:
        full = f"{family.prefix}:{rest}"
        if full not in self._made:
            try:
                known = family.names()
                if known is not None and rest not in known:
                    self.unknown(full, [f"{family.prefix}:{k}" for k in known], source=source, field=field)
                self._made[full] = family.make(rest)
            except UserError as e:  # say where the name was written
                if e.source or e.field:
                    raise
                raise UserError(str(e), source=source, field=field) from None
        return self._made[full]

    def by_import_path(self, spec: str, source: str | None = None, field: str | None = None) -> T:
        """The entry at import path 'pkg.module:attr' (accepted as this registry accepts plugins)."""
        field = field or self.kind
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
