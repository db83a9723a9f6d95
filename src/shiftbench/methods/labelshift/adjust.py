"""The Bayes correction under pure label shift: p_q(y|x) is proportional to p(y|x) q(y) / p(y)."""

from __future__ import annotations

import torch

PRIOR_FLOOR = 1e-8  # keeps log q finite for classes estimated absent


def adjust_logits(logits: torch.Tensor, target_prior: torch.Tensor, source_prior: torch.Tensor) -> torch.Tensor:
    """z + log q - log p: softmax of the result is the posterior under the target prior q."""
    q = target_prior.to(logits.device, torch.float64).clamp_min(PRIOR_FLOOR)
    p = source_prior.to(logits.device, torch.float64).clamp_min(PRIOR_FLOOR)
    return (logits.double() + q.log() - p.log()).to(logits.dtype)

