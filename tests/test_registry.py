"""The plugin registry finds its built-ins in subpackages too (methods are grouped by kind in folders)."""

import re
from pathlib import Path

from shiftbench.core.registry import Registry
from shiftbench.methods import METHODS

METHODS_DIR = Path(__file__).resolve().parents[1] / "src" / "shiftbench" / "methods"


def test_a_registry_imports_the_modules_of_its_subpackages(tmp_path, monkeypatch):
    pkg = tmp_path / "things_pkg"
    (pkg / "sub" / "deeper").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "registry.py").write_text("from shiftbench.core.registry import Registry\n"
                                     "THINGS = Registry('thing', 'things_pkg', 'things_pkg.none')\n")
    (pkg / "top.py").write_text("from .registry import THINGS\nTHINGS.add('top', 1)\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "mid.py").write_text("from ..registry import THINGS\nTHINGS.add('mid', 2)\n")
    (pkg / "sub" / "deeper" / "__init__.py").write_text("from ..mid import THINGS\nTHINGS.add('deep', 3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from things_pkg.registry import THINGS

    assert isinstance(THINGS, Registry)
    assert THINGS.entries() == {"deep": 3, "mid": 2, "top": 1}


def test_every_method_file_under_methods_is_registered():
    written = {name for path in METHODS_DIR.rglob("*.py")
               for name in re.findall(r'@register_method\("([^"]+)"\)', path.read_text())}
    assert len(written) > 20
    assert written <= set(METHODS.entries())
