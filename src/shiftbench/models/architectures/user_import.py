"""`import:pkg.module:build`: a user's own network, a callable (function or class) returning an nn.Module.

Its typed keyword parameters are the `model:` fields it accepts; it gets `num_classes` and
`in_channels` only if its signature names them. Unless it returns a Classifier, the head is
its last nn.Linear (or `model.head`) and preprocessing comes from `model:` (mean, std, ...).
The module must be importable (installed, or on PYTHONPATH); its file is part of every
cell's code identity. A bare `pkg.module:build` works the same.
"""

from __future__ import annotations

from .registry import ARCHITECTURES, register_family


def make(spec: str):
    return ARCHITECTURES.by_import_path(spec, None, "model.arch")


register_family("import", make, lambda: None, "import:<pkg.module:build>",
                "your own network: a callable returning an nn.Module")
