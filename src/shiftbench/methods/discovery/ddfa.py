"""DDFA, Discriminate-Discretize-Factorize-Adjust (Roberts, Mani, Garg, Lipton: Unsupervised Learning
under Latent Label Shift, NeurIPS 2022; code acmi-lab/Latent-Label-Shift-DDFA), and its baselines.

Input: unlabelled images from D domains (their domain index known) whose p_d(y) differ while
p(x|y) is shared; K, the number of classes. Steps, as the authors' code takes them:
  1. Discriminate: a domain classifier p(d|x) on the pooled data. Here a multinomial logistic
     regression (`inverse_regularisation` C = 1) on the frozen features of the source model,
     fitted and applied to the same pooled data (the authors train a ResNet or a SCAN-pretrained
     network on a training split and cluster a validation split; that needs more data than a
     test stream has and is left to the caller).
  2. Discretize: k-means on p(d|x) into m clusters (`n_clusters`, default K; the authors' k-means
     runs 100 iterations, best of 5 starts).
  3. Factorize: the m x D table of p(cluster | d) (each domain's column normalised), transposed,
     by non-negative matrix factorisation with K components (sklearn NMF, random initialisation,
     seeded, at most 1000 iterations where the authors keep sklearn's 200): table^T ~ W H. p(y|d) = W^T with the columns of C = H^T (p(cluster|y)) scaled to
     sum to 1, the scale moved into W, and each domain's column renormalised.
  4. Adjust: with p(d|y) = p(y|d)^T normalised over domains (equal-sized domains),
     p(y|x) = pinv(p(d|y)) p(d|x) and p_d(y|x) proportional to p(y|x) p(d|y) for the image's own
     domain d; the prediction is its argmax. (pinv can give negative entries; the authors' code
     normalises the product as it is, and so does this.)
Classes come out in an arbitrary order: score them with matching.py.

Baselines in the same scenario: k-means with K clusters on the source model's features, and
the source model with the true p_d(y) (its logits corrected by log p_d(y) - log p_source(y), an
oracle); registered as kmeans_features and oracle_domain_prior.

As a registered method (`ddfa`) it is transductive (`whole_segment`): the evaluator hands it a
segment's images at once with their domain indices; it returns log p_d(y|x) (clamped at 1e-12,
so the argmax is DDFA's prediction) in its discovered class order, and reports the recovered
p(y|d) as `domain_prior_estimate`. Its plain accuracy is that of an arbitrary labelling: the
matched accuracy is its score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import Field

from ...core.lazy import LazyModule
from ..base import Method
from ..labelshift import adjust_logits
from ..registry import register_method

cluster = LazyModule("sklearn.cluster")
decomposition = LazyModule("sklearn.decomposition")
linear_model = LazyModule("sklearn.linear_model")

KMEANS_ITERATIONS, KMEANS_STARTS = 100, 5
EPS = 1e-8
LOG_FLOOR = 1e-12


@dataclass(frozen=True)
class DDFAResult:
    p_y_d: torch.Tensor  # K x D
    p_cluster_y: torch.Tensor  # m x K
    clusters: torch.Tensor  # cluster id of each image
    posterior: torch.Tensor  # N x K, p_d(y|x)

    @property
    def labels(self) -> torch.Tensor:
        return self.posterior.argmax(1)


def domain_posterior(features: torch.Tensor, domains: torch.Tensor, n_domains: int, seed: int,
                     inverse_regularisation: float = 1.0) -> torch.Tensor:
    """p(d|x), N x D, from a logistic-regression domain discriminator fitted on the pooled features."""
    clf = linear_model.LogisticRegression(C=inverse_regularisation, max_iter=1000, random_state=seed)
    clf.fit(features.double().numpy(), domains.numpy())
    p = np.zeros((len(features), n_domains))
    p[:, clf.classes_] = clf.predict_proba(features.double().numpy())
    return torch.from_numpy(p)


def kmeans(points: torch.Tensor, m: int, seed: int) -> torch.Tensor:
    km = cluster.KMeans(n_clusters=m, max_iter=KMEANS_ITERATIONS, n_init=KMEANS_STARTS, random_state=seed)
    return torch.from_numpy(km.fit_predict(points.double().numpy()).astype(np.int64))


def cluster_domain_table(clusters: torch.Tensor, domains: torch.Tensor, m: int, n_domains: int) -> torch.Tensor:
    """m x D, column d = the distribution of cluster ids within domain d."""
    counts = torch.bincount(clusters.long() * n_domains + domains.long(), minlength=m * n_domains).view(m, n_domains)
    return counts.double() / counts.sum(0, keepdim=True).clamp_min(1)


def factorise(table: torch.Tensor, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(p(y|d) K x D, p(cluster|y) m x K) from the m x D table p(cluster|d) (step 3)."""
    nmf = decomposition.NMF(n_components=k, init="random", random_state=seed, max_iter=1000)
    w = nmf.fit_transform(table.T.numpy()).T  # K x D
    c = nmf.components_.T.copy()  # m x K
    scale = c.sum(0, keepdims=True)
    c /= np.where(scale == 0, 1, scale)
    w *= scale.T
    w /= np.where(w.sum(0, keepdims=True) == 0, 1, w.sum(0, keepdims=True))
    return torch.from_numpy(w), torch.from_numpy(c)


def adjusted_posterior(p_d_x: torch.Tensor, p_y_d: torch.Tensor, domains: torch.Tensor) -> torch.Tensor:
    """p_d(y|x), N x K (step 4)."""
    p_d_y = p_y_d.T.double()
    p_d_y = p_d_y / torch.where(p_d_y.sum(0, keepdim=True) == 0, EPS, p_d_y.sum(0, keepdim=True))
    p_y_x = (torch.linalg.pinv(p_d_y) @ p_d_x.double().T).T
    joint = p_y_x * p_d_y[domains.long()]
    return joint / joint.sum(1, keepdim=True)


def ddfa(features: torch.Tensor, domains: torch.Tensor, k: int, n_domains: int, seed: int,
         n_clusters: int | None = None, inverse_regularisation: float = 1.0) -> DDFAResult:
    p_d_x = domain_posterior(features, domains, n_domains, seed, inverse_regularisation)
    return ddfa_from_domain_posterior(p_d_x, domains, k, seed, n_clusters)


def ddfa_from_domain_posterior(p_d_x: torch.Tensor, domains: torch.Tensor, k: int, seed: int,
                               n_clusters: int | None = None) -> DDFAResult:
    m = n_clusters or k
    clusters = kmeans(p_d_x, m, seed)
    p_y_d, p_c_y = factorise(cluster_domain_table(clusters, domains, m, p_d_x.shape[1]), k, seed)
    return DDFAResult(p_y_d, p_c_y, clusters, adjusted_posterior(p_d_x, p_y_d, domains))


def source_with_true_priors(logits: torch.Tensor, domains: torch.Tensor, p_y_d: torch.Tensor,
                            source_prior: torch.Tensor) -> torch.Tensor:
    """The oracle baseline: each image's logits corrected to its domain's true p_d(y)."""
    out = torch.empty_like(logits)
    for d in domains.unique().tolist():
        rows = domains == d
        out[rows] = adjust_logits(logits[rows], p_y_d[:, d], source_prior)
    return out


@torch.no_grad()
def segment_features(model, x: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(features, logits) of a whole segment on the CPU, in chunks of batch_size (the head's input as features)."""
    if not hasattr(model, "features_and_logits"):
        raise RuntimeError("needs a model with a declared features/classifier split (a shiftbench Classifier)")
    parts = [model.features_and_logits(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    return torch.cat([f.float().cpu() for f, _ in parts]), torch.cat([z.float().cpu() for _, z in parts])


def domains_of(method: Method) -> tuple[torch.Tensor, int]:
    """The segment's domain indices (CPU) and their number, or a clear error where the scenario has no domains."""
    if method.domains is None or len(method.domains.unique()) < 2:
        raise RuntimeError(f"{method.name} needs a scenario of several domains (ImageSet.domains; the "
                           "latent_label_domains shift makes them)")
    domains = method.domains.cpu()
    return domains, int(domains.max()) + 1


@register_method("ddfa")
class DDFA(Method):
    """DDFA: classes discovered from several unlabelled domains (discriminate, discretize, factorize, adjust)."""

    whole_segment = True

    def __init__(self, n_clusters: Annotated[int, Field(ge=1, le=10_000)] | None = None,
                 inverse_regularisation: Annotated[float, Field(gt=0, le=1e6)] = 1.0):
        self.n_clusters, self.inverse_regularisation = n_clusters, inverse_regularisation

    def setup(self, model, source):
        super().setup(model, source)
        self.estimate: torch.Tensor | None = None

    @torch.no_grad()
    def predict(self, x):
        domains, n_domains = domains_of(self)
        features, logits = segment_features(self.model, x, self.source.batch_size)
        result = ddfa(features, domains, logits.shape[1], n_domains, self.source.seed, self.n_clusters,
                      self.inverse_regularisation)
        self.estimate = result.p_y_d
        return result.posterior.clamp_min(LOG_FLOOR).log().float().to(x.device)

    def describe(self) -> dict[str, Any]:
        return {} if self.estimate is None else {"domain_prior_estimate": self.estimate.tolist()}
