"""The unsupervised losses the test-time methods share, per row of logits (the caller averages or weights).

entropy: TENT's loss and the certainty measure of EATA, SAR, DeYO, T3A, ROID.
symmetric_cross_entropy: the self-training loss of RMT and the consistency loss of ROID and CMF,
    as the test-time-adaptation repository (mariodoebler) writes it: with a = `alpha` (0.5),
    -(1 - a) sum softmax(t) log softmax(z) - a sum softmax(z) log softmax(t), z the logits being
    trained and t the target's; neither side is detached here.
soft_likelihood_ratio: ROID's and CMF's loss, -sum p log(p / (1 - p) + eps) with
    p = softmax(z) clipped to at most `clip` (0.99) and eps 1e-5, as in the same repository.
supervised_contrastive: RMT's contrastive loss (Khosla et al. 2020, the SupCon form the RMT code
    uses), over several views of each of B samples.
"""

from __future__ import annotations

import torch


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Shannon entropy of softmax(logits), per row."""
    return -(logits.softmax(1) * logits.log_softmax(1)).sum(1)


def symmetric_cross_entropy(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    return (-(1 - alpha) * (target.softmax(1) * logits.log_softmax(1)).sum(1)
            - alpha * (logits.softmax(1) * target.log_softmax(1)).sum(1))


def soft_likelihood_ratio(logits: torch.Tensor, clip: float = 0.99, eps: float = 1e-5) -> torch.Tensor:
    p = logits.softmax(1).clamp(min=0.0, max=clip)
    return -(p * torch.log(p / (1 - p) + eps)).sum(1)


def supervised_contrastive(views: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """views (B, V, D), already projected and L2-normalised. Every one of the B*V vectors is an anchor;
    its positives are the other views of the same sample, its negatives every other vector.
    -mean over anchors of the mean log-softmax (over all vectors but itself, at `temperature`) of its positives."""
    b, v, _ = views.shape
    flat = torch.cat(torch.unbind(views, dim=1), dim=0)  # view-major: row i*B + j is view i of sample j
    sim = flat @ flat.T / temperature
    sim = sim - sim.max(dim=1, keepdim=True).values.detach()
    not_self = 1 - torch.eye(b * v, device=views.device, dtype=sim.dtype)
    positive = torch.eye(b, device=views.device, dtype=sim.dtype).repeat(v, v) * not_self
    log_prob = sim - torch.log((sim.exp() * not_self).sum(1, keepdim=True))
    return -((positive * log_prob).sum(1) / positive.sum(1)).mean()

