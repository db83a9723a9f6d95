"""The shared evaluator: a method, a stream of batches, a protocol -> logits -> metrics."""

from .metrics import compute_metrics
from .stream import PROTOCOLS, run_stream

__all__ = ["PROTOCOLS", "compute_metrics", "run_stream"]
