"""Stable content hashes for configs, tensors and files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal configs give equal strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_default)


def _default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (np.ndarray, torch.Tensor)):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    raise TypeError(f"cannot hash object of type {type(obj).__name__}")


def config_hash(obj: Any, length: int = 16) -> str:
    """sha256 of the canonical JSON of obj, shortened."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def seed_from(*parts: Any) -> int:
    """A 31-bit seed derived by hashing the arguments (DomainBed style)."""
    return int(hashlib.sha256(canonical_json(list(parts)).encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def tensor_sha256(*tensors: torch.Tensor | np.ndarray | None) -> str:
    """sha256 over the raw bytes, shapes and dtypes of the given arrays."""
    h = hashlib.sha256()
    for t in tensors:
        if t is None:
            h.update(b"none")
            continue
        arr = t.detach().cpu().contiguous().numpy() if isinstance(t, torch.Tensor) else np.ascontiguousarray(t)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.reshape(-1).view(np.uint8))  # the bytes in place: a memory-mapped set is not copied
    return h.hexdigest()


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
