"""Target class-prior estimators from source-model predictions.

Each returns an estimate q of the target prior (non-negative, sums to 1). Inputs are
probabilities (after any calibration); all arithmetic is float64 on CPU.

  BBSE   (Lipton et al. 2018)       w = C^-1 mu, negatives clipped to 0, q = w * p
  RLLS   (Azizzadenesheli et al. 2019)  theta = w - 1 from a regularised, constrained least squares
  MLLS   (Saerens et al. 2002)      EM on the target posteriors
"""

from __future__ import annotations

import numpy as np
import torch

from ...core.lazy import LazyModule

optimize = LazyModule("scipy.optimize")  # ~0.5 s to import; only the estimates need it


def _f64(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu", torch.float64)


def confusion_matrix(probs: torch.Tensor, labels: torch.Tensor, soft: bool = False) -> torch.Tensor:
    """Joint C[i, j] = P(yhat = i, y = j) on held-out source data; soft uses p(i|x) instead of 1[argmax = i]."""
    probs = _f64(probs)
    k = probs.shape[1]
    pred = probs if soft else torch.nn.functional.one_hot(probs.argmax(1), k).double()
    onehot = torch.nn.functional.one_hot(labels.cpu(), k).double()
    return pred.T @ onehot / len(labels)


def predicted_distribution(probs: torch.Tensor, soft: bool = False) -> torch.Tensor:
    """mu[i] = mean over the target of p(i|x) (soft) or of 1[argmax = i] (hard)."""
    probs = _f64(probs)
    if soft:
        return probs.mean(0)
    return torch.bincount(probs.argmax(1), minlength=probs.shape[1]).double() / len(probs)


def _prior_from_weights(w: torch.Tensor, confusion: torch.Tensor) -> torch.Tensor:
    q = w.clamp_min(0) * confusion.sum(0)
    total = q.sum()
    return q / total if total > 0 else confusion.sum(0) / confusion.sum()


def bbse_weights(confusion: torch.Tensor, mu_target: torch.Tensor) -> torch.Tensor:
    """w = C^-1 mu; least squares (pseudo-inverse) when C is singular; negatives clipped to 0."""
    c, mu = _f64(confusion), _f64(mu_target)
    if torch.linalg.matrix_rank(c) == c.shape[0]:
        w = torch.linalg.solve(c, mu)
    else:
        w = torch.linalg.pinv(c) @ mu
    return w.clamp_min(0)


def bbse_prior(confusion: torch.Tensor, mu_target: torch.Tensor) -> torch.Tensor:
    return _prior_from_weights(bbse_weights(confusion, mu_target), _f64(confusion))


def rlls_weights(confusion: torch.Tensor, mu_target: torch.Tensor, regularization: float,
                 init: torch.Tensor | None = None) -> torch.Tensor:
    """w = 1 + theta, theta = argmin ||C theta - b|| + D ||theta||  s.t. theta >= -1,  b = mu_target - C 1.

    Both norms are Euclidean (not squared) as in the paper; they are smoothed by 1e-12 inside the
    square root so that a bounded quasi-Newton solver (TNC, with the bound theta >= -1) can minimise them.
    """
    c, mu = _f64(confusion).numpy(), _f64(mu_target).numpy()
    b = mu - c.sum(1)
    d = float(regularization)
    exact = _exact_fit_if_optimal(c, b, d)
    if exact is not None:
        return torch.from_numpy(1.0 + exact)

    def objective(theta):
        r = c @ theta - b
        nr, nt = np.sqrt(r @ r + 1e-12), np.sqrt(theta @ theta + 1e-12)
        return nr + d * nt, c.T @ r / nr + d * theta / nt

    k = c.shape[0]
    start = np.zeros(k) if init is None else _f64(init).numpy() - 1.0  # a warm start: the previous batch's w
    res = optimize.minimize(objective, np.clip(start, -1.0, None), jac=True, method="TNC", bounds=[(-1.0, None)] * k)
    return torch.from_numpy(1.0 + res.x).clamp_min(0)


def _exact_fit_if_optimal(c: np.ndarray, b: np.ndarray, d: float) -> np.ndarray | None:
    """theta with C theta = b when it is the RLLS optimum, else None (then a solver is needed).

    With C invertible and theta* = C^-1 b >= -1, theta* is optimal iff some u with ||u|| <= 1 has
    C^T u = -d theta*/||theta*|| (the subgradient of ||C theta - b|| at a zero residual), i.e.
    iff d ||C^-T theta*/||theta*|| || <= 1: then RLLS equals BBSE and no iterations are needed.
    """
    try:
        theta = np.linalg.solve(c, b)
    except np.linalg.LinAlgError:
        return None
    norm = np.linalg.norm(theta)
    if not np.isfinite(theta).all() or (theta < -1).any():
        return None
    if norm == 0 or d * np.linalg.norm(np.linalg.solve(c.T, theta / norm)) <= 1:
        return theta
    return None


def rlls_prior(confusion: torch.Tensor, mu_target: torch.Tensor, regularization: float,
               init: torch.Tensor | None = None) -> torch.Tensor:
    """q = w * p from rlls_weights; init: a prior to start from (e.g. the last estimate)."""
    c = _f64(confusion)
    w0 = None if init is None else _f64(init) / c.sum(0).clamp_min(1e-12)
    return _prior_from_weights(rlls_weights(c, mu_target, regularization, w0), c)


def mlls_em(probs: torch.Tensor, source_prior: torch.Tensor, init: torch.Tensor | None = None,
            tol: float = 1e-6, max_iter: int = 100) -> torch.Tensor:
    """Saerens EM. E: r(y|x) proportional to p(y|x) q(y)/p(y); M: q(y) = mean_x r(y|x). Stops when max |dq| < tol."""
    probs = _f64(probs).numpy()
    p = _f64(source_prior).clamp_min(1e-12).numpy()
    q = p.copy() if init is None else _f64(init).clamp_min(1e-12).numpy()
    q = q / q.sum()
    for _ in range(max_iter if len(probs) else 0):  # numpy: these arrays are small, torch's per-op cost dominates
        r = probs * (q / p)
        r /= np.maximum(r.sum(1, keepdims=True), 1e-300)
        q_next = r.mean(0)
        done = np.abs(q_next - q).max() < tol
        q = q_next
        if done:
            break
    return torch.from_numpy(q)
