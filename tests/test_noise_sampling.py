"""The 8-bit noise corruptions draw from the same distributions as their float definitions."""

from __future__ import annotations

import torch

from shiftbench.shifts import all_shifts
from shiftbench.shifts.corruption import CORRUPTIONS, to_uint8
from shiftbench.shifts.corruptions_noise import bernoulli_positions, shot_noise_levels
from shiftbench.shifts.level_sampling import alias_table, sample_levels

all_shifts()
LEVELS = (0, 1, 37, 128, 200, 254, 255)


def constant_images(per_level: int) -> torch.Tensor:
    """(len(LEVELS), 1, per_level, 1): one column of images per level."""
    return torch.tensor(LEVELS, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, per_level, 1).contiguous()


def histograms(images: torch.Tensor) -> torch.Tensor:
    """Output level frequencies per input level (rows of constant_images)."""
    flat = images.view(images.shape[0], -1).long()
    return torch.stack([torch.bincount(row, minlength=256).double() / len(row) for row in flat])


def total_variation(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return 0.5 * (p - q).abs().sum(-1)


def implied_probabilities(table: torch.Tensor) -> torch.Tensor:
    """The distribution an alias table samples, read back from its packed entries."""
    entry = table.long().view(256, 256)
    accept = (entry >> 8).double() / 2**23
    probs = accept.clone()
    probs.scatter_add_(1, entry & 0xFF, 1 - accept)
    return probs / 256


def test_alias_table_encodes_exactly_the_given_distributions():
    torch.manual_seed(0)
    probs = torch.distributions.Dirichlet(torch.full((256,), 0.3)).sample((256,))
    probs[3] = 0
    probs[3, 17] = 1  # a point mass
    assert torch.allclose(implied_probabilities(alias_table(probs)), probs.double(), atol=2e-7)


def test_sampled_levels_follow_the_table():
    g = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    probs = torch.distributions.Dirichlet(torch.full((256,), 0.5)).sample((256,)).double()
    images = constant_images(100_000)
    got = histograms(sample_levels(images, alias_table(probs), g))
    assert total_variation(got, probs[list(LEVELS)]).max() < 0.02
    assert torch.equal(sample_levels(images, alias_table(probs), torch.Generator().manual_seed(5)),
                       sample_levels(images, alias_table(probs), torch.Generator().manual_seed(5)))


def test_shot_noise_table_is_the_distribution_of_the_float_definition():
    images = constant_images(100_000)
    x = images.float() / 255
    for c in (500, 60, 3):
        float_way = to_uint8(torch.poisson(x * c, generator=torch.Generator().manual_seed(2)) / c)
        exact = shot_noise_levels(float(c))[list(LEVELS)]
        assert torch.allclose(exact.sum(1), torch.ones(len(LEVELS), dtype=torch.float64))
        assert total_variation(histograms(float_way), exact).max() < 0.02, c


def distribution_gap(name: str, severity: int) -> float:
    """Largest total variation, over input levels, between the 8-bit and the float version's outputs."""
    c = CORRUPTIONS[name]
    images = constant_images(60_000)
    fast = c.apply_uint8(images, severity, seed=3)
    slow_fn, c.uint8_fn = c.uint8_fn, None
    try:
        slow = c.apply_uint8(images, severity, seed=3)
    finally:
        c.uint8_fn = slow_fn
    return total_variation(histograms(fast), histograms(slow)).max().item()


def test_shot_and_impulse_noise_keep_their_distributions():
    for name in ("shot_noise", "impulse_noise"):
        for severity in (1, 5):
            assert distribution_gap(name, severity) < 0.03, (name, severity)


def test_gaussian_and_speckle_noise_compute_the_float_formula_on_8_bits():
    x = torch.randint(0, 256, (4, 3, 40, 40), generator=torch.Generator().manual_seed(4), dtype=torch.uint8)
    for name in ("gaussian_noise", "speckle_noise"):
        c = CORRUPTIONS[name]
        fast = c.apply_uint8(x, 4, seed=9)
        float_way = to_uint8(c.apply_float(x.float() / 255, 4, seed=9))  # same generator, same draws
        diff = (fast.int() - float_way.int()).abs()
        assert diff.max() <= 1 and (diff == 0).float().mean() > 0.999, name


def test_bernoulli_positions_are_independent_trials():
    g = torch.Generator().manual_seed(6)
    n, p = 1_000_000, 0.03
    hits = bernoulli_positions(n, p, g, "cpu")
    assert hits.min() >= 0 and hits.max() < n and bool((hits[1:] > hits[:-1]).all())
    sd = (n * p * (1 - p)) ** 0.5
    assert abs(len(hits) - n * p) < 5 * sd
    first_half = int((hits < n // 2).sum())
    assert abs(first_half - len(hits) / 2) < 5 * (len(hits) / 4) ** 0.5
    mask = torch.zeros(n, dtype=torch.bool)
    mask[hits] = True
    both = (mask[1:] & mask[:-1]).float().mean().item()  # neighbours hit together with p^2
    assert abs(both - p * p) < 5 * (p * p / n) ** 0.5
    assert len(bernoulli_positions(10, 0.0, g, "cpu")) == 0 and len(bernoulli_positions(10, 1.0, g, "cpu")) == 10
