"""The shared evaluator: a method, a stream of batches, a protocol -> logits -> metrics."""

from .evaluator import PROTOCOLS, run_stream
from .metrics import compute_metrics

__all__ = ["PROTOCOLS", "compute_metrics", "run_stream"]
