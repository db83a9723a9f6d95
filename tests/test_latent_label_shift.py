"""Latent label shift: the Dirichlet domains split, Hungarian scoring, and the DDFA steps.

Hungarian accuracy against brute force over every relabelling; NMF recovers p(y|d) from an exact
factorisation with anchor clusters (the paper's identifiability condition); the adjustment step
returns the true class when p(d|x) is exactly p(d|y); DDFA end to end on separable synthetic
features.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from shiftbench.methods.discovery.ddfa import (adjusted_posterior, cluster_domain_table, ddfa, factorise, kmeans,
                                               source_with_true_priors)
from shiftbench.methods.discovery.matching import best_matching, contingency, matched_accuracy, prior_error
from shiftbench.shifts.latent_label import latent_domains


# ---------------------------------------------------------------- scoring

@pytest.mark.parametrize("k, seed", [(2, 0), (3, 1), (4, 2), (5, 3), (4, 4)])
def test_matched_accuracy_is_the_best_over_every_relabelling(k, seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (60,), generator=g)
    clusters = torch.where(torch.rand(60, generator=g) < 0.6, (labels + 1) % k, torch.randint(0, k, (60,), generator=g))
    brute = max((torch.tensor(perm)[clusters] == labels).double().mean().item()
                for perm in itertools.permutations(range(k)))
    assert matched_accuracy(clusters, labels, k) == pytest.approx(brute, abs=1e-12)
    mapping = best_matching(clusters, labels, k)
    assert sorted(mapping.tolist()) == list(range(k))


def test_contingency_counts_each_pair():
    c, y = torch.tensor([0, 0, 1, 2, 2, 2]), torch.tensor([1, 1, 0, 2, 2, 0])
    assert contingency(c, y, 3).tolist() == [[0, 2, 0], [1, 0, 0], [1, 0, 2]]


def test_prior_error_is_zero_for_a_relabelled_truth_and_the_l1_distance_otherwise():
    truth = torch.tensor([[0.7, 0.1], [0.2, 0.3], [0.1, 0.6]])
    mapping = torch.tensor([2, 0, 1])  # cluster c is class mapping[c]
    estimate = truth[mapping]
    assert prior_error(estimate, truth, mapping) == pytest.approx(0.0)
    assert prior_error(estimate, truth, torch.arange(3)) == pytest.approx((estimate - truth).abs().sum().item())


# ---------------------------------------------------------------- the scenario

def test_latent_domains_respect_the_pool_and_the_drawn_priors():
    labels = torch.arange(10).repeat_interleave(100)
    split = latent_domains(labels, 10, n_domains=6, concentration=3.0, seed=0)
    assert len(split.rows.unique()) == len(split.rows)  # no image twice
    counts = torch.zeros(6, 10, dtype=torch.long)
    counts.index_put_((split.domains, labels[split.rows]), torch.ones(len(split.rows), dtype=torch.long),
                      accumulate=True)
    assert counts.sum(0).max() <= 100  # the class needed most fits the pool
    torch.testing.assert_close(split.priors, (counts.double() / counts.sum(1, keepdim=True)).T)
    sizes = counts.sum(1).double()
    # rounding each count down moves a domain's prior by at most K / its size
    assert (split.priors - split.design).abs().max() <= 10 / sizes.min()
    again = latent_domains(labels, 10, n_domains=6, concentration=3.0, seed=0)
    assert torch.equal(again.rows, split.rows) and torch.equal(again.domains, split.domains)


def test_latent_domains_redraw_until_the_condition_number_fits():
    labels = torch.arange(4).repeat_interleave(50)
    free = latent_domains(labels, 4, n_domains=4, concentration=0.5, seed=3)
    bounded = latent_domains(labels, 4, n_domains=4, concentration=0.5, seed=3, max_condition=free.condition / 2)
    assert bounded.condition <= free.condition / 2
    assert np.linalg.cond(bounded.design.T.numpy()) == pytest.approx(bounded.condition, rel=1e-6)


# ---------------------------------------------------------------- DDFA's steps

def anchored_factors(m, k, d, seed):
    """p(cluster|y) (m x K) with one anchor cluster per class (a cluster only that class produces) and
    p(y|d) (K x D) with one pure domain per class, both column-stochastic: then the factorisation of
    their product is unique up to relabelling (with anchors on one side only it is not)."""
    rng = np.random.default_rng(seed)
    c = rng.random((m, k))
    c[:k] = 0
    c[np.arange(k), np.arange(k)] = 1.0 + rng.random(k)
    c /= c.sum(0, keepdims=True)
    w = rng.dirichlet(np.ones(k), d).T
    w[:, :k] = np.eye(k)
    return torch.from_numpy(c), torch.from_numpy(w)


@pytest.mark.parametrize("m, k, d, seed", [(6, 3, 6, 0), (6, 4, 8, 1), (8, 3, 6, 2), (10, 4, 10, 3)])
def test_nmf_recovers_the_priors_of_an_exact_anchored_factorisation(m, k, d, seed):
    c, w = anchored_factors(m, k, d, seed)
    p_y_d, p_c_y = factorise(c @ w, k, seed=0)
    torch.testing.assert_close(p_y_d.sum(0), torch.ones(d, dtype=torch.float64))
    torch.testing.assert_close(p_c_y.sum(0), torch.ones(k, dtype=torch.float64))
    # match estimated to true classes by their p(y|d) rows, then compare both factors
    cost = torch.cdist(p_y_d, w, p=1)
    perm = min(itertools.permutations(range(k)), key=lambda p: sum(cost[i, j] for i, j in enumerate(p)))
    mapping = torch.tensor(perm)
    assert prior_error(p_y_d, w, mapping) < 5e-3  # NMF stops at its tolerance (1e-4), not at zero
    relabelled = torch.empty_like(p_c_y)
    relabelled[:, mapping] = p_c_y
    torch.testing.assert_close(relabelled, c, atol=5e-3, rtol=0)


def test_the_cluster_domain_table_holds_each_domains_cluster_distribution():
    clusters, domains = torch.tensor([0, 1, 1, 2, 0, 0]), torch.tensor([0, 0, 0, 1, 1, 1])
    torch.testing.assert_close(cluster_domain_table(clusters, domains, 3, 2),
                               torch.tensor([[1 / 3, 2 / 3], [2 / 3, 0.0], [0.0, 1 / 3]], dtype=torch.float64))


def test_the_adjustment_returns_the_class_whose_domain_profile_an_image_has():
    """p(d|x) = p(d|y) exactly (a noiseless image of class y): pinv gives e_y, whatever the image's domain."""
    _, w = anchored_factors(4, 3, 6, seed=5)
    p_d_y = w.T / w.T.sum(0, keepdim=True)
    y = torch.tensor([0, 1, 2, 2, 1, 0, 1])
    domains = torch.tensor([3, 4, 5, 3, 4, 5, 3])  # mixed domains (the pure ones hold one class only)
    post = adjusted_posterior(p_d_y[:, y].T, w, domains)
    assert torch.equal(post.argmax(1), y)
    torch.testing.assert_close(post, torch.eye(3, dtype=torch.float64)[y], atol=1e-9, rtol=0)


def test_the_adjustment_weighs_an_ambiguous_image_by_its_own_domains_p_d_given_y():
    """p(d|x) halfway between the profiles of classes 0 and 1: p(y|x) = (1/2, 1/2, 0), and in domain d the
    posterior is proportional to p(y|x) p(d|y), so the domain decides between them."""
    _, w = anchored_factors(4, 3, 6, seed=5)
    p_d_y = w.T / w.T.sum(0, keepdim=True)
    mixed = (0.5 * p_d_y[:, 0] + 0.5 * p_d_y[:, 1]).expand(3, -1)
    domains = torch.tensor([3, 4, 5])
    post = adjusted_posterior(mixed, w, domains)
    expected = torch.stack([0.5 * p_d_y[domains, 0], 0.5 * p_d_y[domains, 1], torch.zeros(3, dtype=torch.float64)], 1)
    torch.testing.assert_close(post, expected / expected.sum(1, keepdim=True), atol=1e-9, rtol=0)


def separable_world(seed, k=3, n_domains=6, per_class=120):
    """Features: one well-separated Gaussian blob per class; domains from the Dirichlet split."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(k).repeat_interleave(per_class)
    centres = torch.eye(k) * 6
    features = centres[labels] + torch.randn(len(labels), k, generator=g)
    split = latent_domains(labels, k, n_domains=n_domains, concentration=1.0, seed=seed, max_condition=4)
    return features[split.rows], labels[split.rows], split


def test_ddfa_discovers_the_classes_and_their_domain_priors_on_a_separable_world():
    x, y, split = separable_world(0)
    result = ddfa(x, split.domains, k=3, n_domains=6, seed=0)
    acc = matched_accuracy(result.labels, y, 3)
    mapping = best_matching(result.labels, y, 3)
    assert acc > 0.9
    assert prior_error(result.p_y_d, split.priors, mapping) / 6 < 0.25  # mean L1 per domain (2 at worst)
    assert matched_accuracy(kmeans(x, 3, seed=0), y, 3) > 0.9  # the baseline on features sees the same blobs


def test_source_with_true_priors_is_the_bayes_correction_per_domain():
    logits = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    domains = torch.tensor([0, 0, 1, 1, 1, 0])
    p_y_d = torch.tensor([[0.8, 0.1], [0.1, 0.1], [0.1, 0.8]], dtype=torch.float64)
    out = source_with_true_priors(logits, domains, p_y_d, torch.full((3,), 1 / 3))
    expected = (logits.softmax(1).double() * p_y_d[:, domains].T)
    torch.testing.assert_close(out.softmax(1).double(), expected / expected.sum(1, keepdim=True), atol=1e-6, rtol=0)
