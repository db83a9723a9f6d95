"""The identity of the code a computation runs: a hash of its modules' source and everything they import.

A cell's key holds one such hash per component (the evaluator, the method, the shifts of
its scenario, the architecture), so that editing one method's file recomputes that method's
cells and nothing else, while editing the evaluator recomputes them all. Imports are read
statically (every `import` statement in a module, function-level ones included), and only
shiftbench's own modules are followed: a third-party plugin counts as its own file.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

PACKAGE = "shiftbench"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def source_bytes(path: Path) -> bytes:
    """A module's source as hashed (tests replace this to simulate an edit)."""
    return path.read_bytes()


def module_file(name: str) -> Path | None:
    """The .py file of a shiftbench module or package, None if there is none."""
    if name == PACKAGE:
        return PACKAGE_DIR / "__init__.py"
    if not name.startswith(PACKAGE + "."):
        return None
    rel = Path(*name.split(".")[1:])
    for candidate in (PACKAGE_DIR / rel.with_suffix(".py"), PACKAGE_DIR / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@lru_cache(maxsize=None)
def _imports(name: str) -> tuple[str, ...]:
    """The shiftbench modules that module `name` imports, directly."""
    path = module_file(name)
    if path is None:
        return ()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in _runtime_nodes(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append(base)
            found += [f"{base}.{a.name}" for a in node.names]  # `from pkg import module`
    return tuple(sorted({m for m in found if module_file(m) is not None and m != name}))


def _runtime_nodes(tree: ast.AST):
    """Every node except those under `if TYPE_CHECKING:` (imports for annotations only never run) and in
    a module-level `__getattr__` (a lazy attribute hook, PEP 562: importing the module does not run it)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
                continue
            if isinstance(child, ast.FunctionDef) and child.name == "__getattr__" and node is tree:
                continue
            todo.append(child)


@lru_cache(maxsize=None)
def closure(name: str) -> tuple[str, ...]:
    """Module `name` and every shiftbench module it reaches through imports, sorted."""
    seen, todo = set(), [name]
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        todo.extend(_imports(mod))
    return tuple(sorted(seen))


def files_of(obj: Any) -> list[Path]:
    """The source files that define obj (a module name, a module, a class or a function) and what it imports."""
    name = obj if isinstance(obj, str) else getattr(obj, "__module__", None) or getattr(obj, "__name__", None)
    if name is None:
        raise TypeError(f"cannot tell which module defines {obj!r}")
    if module_file(name) is not None:
        return [module_file(m) for m in closure(name)]
    module = sys.modules.get(name)
    if module is not None:
        path = getattr(module, "__file__", None)
    else:
        spec = importlib.util.find_spec(name)
        path = spec.origin if spec else None
    return [Path(path).resolve()] if path else []


DEPENDS_ON = "__code_depends_on__"


def _depends_on(obj: Any) -> tuple:
    deps = getattr(obj, DEPENDS_ON, ())
    return tuple(deps() if callable(deps) else deps)


def code_hash(objs: Iterable[Any]) -> str:
    """sha256 (16 hex digits) over the source of the files that define the given objects and their imports.

    An object made on the fly (a family's builder wrapping a torchvision or a user's function)
    names the other objects whose code it runs in its `__code_depends_on__` attribute (or a function
    returning them, so that naming them does not import a heavy package before it is used).
    """
    objs = list(objs)
    objs += [dep for obj in objs for dep in _depends_on(obj)]
    files = sorted({p for obj in objs for p in files_of(obj)})
    h = hashlib.sha256()
    for path in files:
        rel = path.relative_to(PACKAGE_DIR).as_posix() if path.is_relative_to(PACKAGE_DIR) else path.name
        h.update(rel.encode() + b"\0" + source_bytes(path) + b"\0")
    return h.hexdigest()[:16]
