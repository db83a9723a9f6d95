"""Online error along a stream: the error of each consecutive window of W images, in stream order.

A record carries it as {"window": W, "error": [e_1, e_2, ...]} (the last window holds the
remaining len % W images when the stream is not a multiple of W), so a collapse shows as a
rising curve that a single mean would hide.
"""

from __future__ import annotations

import torch


def window_errors(logits: torch.Tensor, labels: torch.Tensor, window: int) -> list[float]:
    """Error of rows [0, W), [W, 2W), ... (the prediction as compute_metrics makes it)."""
    wrong = (logits.double().cpu().softmax(1).argmax(1) != labels.cpu()).double()
    return [wrong[i:i + window].mean().item() for i in range(0, len(wrong), window)]


def online_error(logits: torch.Tensor, labels: torch.Tensor, window: int) -> dict | None:
    """The record's `online` entry; None for a stream no longer than one window."""
    if len(labels) <= window:
        return None
    return {"window": window, "error": window_errors(logits, labels, window)}
