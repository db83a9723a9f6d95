"""One cell = (scenario, method + params, protocol, seed) on a benchmark's dataset and model: its key and its record.

A Cell holds everything that decides its numbers, so its key (the hash of all of it) is its
content address in the store: the resolved scenario (split and shift chains as played, every
parameter filled; the name that seeds them; the stream settings and online window), the
dataset's name and data sha256, the model spec and checkpoint sha256, the training recipe,
the method with its parameters, protocol, seed, batch size, the shiftbench version, and the
code identity of the parts it runs (run/plan.py fills those last three kinds of facts).
Nothing else enters the key: not the rest of the benchmark, not what else is on disk.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.hashing import config_hash

# Bump when the meaning of a key's fields changes: older records are then never found again.
KEY_SCHEMA = 2


@dataclass(frozen=True)
class Cell:
    benchmark: str
    scenario: str
    family: str
    spec: dict[str, Any]  # the resolved scenario (ScenarioSpec.resolved): split, chains as played, settings
    dataset: str
    model: dict[str, Any]  # arch + params (+ checkpoint)
    training: dict[str, Any]  # the source-model recipe, defaults filled
    method: str
    params: dict[str, Any]
    protocol: str
    seed: int
    batch_size: int
    version: str
    data_sha256: str = ""
    checkpoint_sha256: str = ""
    code: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def key(self) -> str:
        """Content address: everything that decides the result, nothing that does not."""
        return config_hash({"schema": KEY_SCHEMA, **self.as_dict()}, length=32)
