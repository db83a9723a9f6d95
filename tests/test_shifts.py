"""Shifts are pure and seeded, compose, and do what their family says."""

import pytest
import torch

# Shifts with no randomness give the same output for every seed.
from test_corruptions import DETERMINISTIC, FROST_PHOTOS, SHARED_DATA  # noqa: E402

from shiftbench.data import load_dataset
from shiftbench.shifts import all_shifts, apply_shifts, check_shift_spec, get_shift
from shiftbench.shifts.translation import crop_at, roll_each

SEED_FREE = DETERMINISTIC | {"translate_grid"}  # translate_grid renders every offset


def runs_with_defaults(name):
    """Shifts needing arguments (e.g. which -C file to read) are tested where their data is."""
    from shiftbench.core.params import params_model

    return all(not f.is_required() for f in params_model(all_shifts()[name].fn).model_fields.values())


# frost overlays the published photographs: tested where they are on disk (developers, CI)
DEFAULT_SHIFTS = [n for n in sorted(all_shifts()) if runs_with_defaults(n) and (n != "frost" or FROST_PHOTOS)]


@pytest.fixture(autouse=True)
def frost_photos_on_disk(monkeypatch):
    if FROST_PHOTOS:
        monkeypatch.setenv("SHIFTBENCH_DATA", str(SHARED_DATA))


@pytest.fixture(scope="module")
def test_split():
    return load_dataset("digits").test.subset(torch.arange(200))


@pytest.mark.parametrize("name", DEFAULT_SHIFTS)
def test_every_shift_is_deterministic_for_a_seed(name, test_split):
    spec = check_shift_spec({"shift": name})
    a = apply_shifts(test_split, [spec], seed=3)
    b = apply_shifts(test_split, [spec], seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert a.images.dtype == torch.uint8
    if name not in SEED_FREE:
        c = apply_shifts(test_split, [spec], seed=4)
        assert not (a.images.shape == c.images.shape and torch.equal(a.images, c.images) and torch.equal(a.labels, c.labels))


def test_shifts_do_not_mutate_their_input(test_split):
    before = test_split.images.clone()
    for name in DEFAULT_SHIFTS:
        apply_shifts(test_split, [check_shift_spec({"shift": name})], seed=0)
    assert torch.equal(test_split.images, before)


def test_shifts_compose_covariate_and_label(test_split):
    """A chain is function composition with per-step seeds: noise first, then resampling to a prior,
    so every output row is a noised source row under its own label (p(x|y) kept, p(y) moved)."""
    from shiftbench.shifts.registry import _child_seed

    chain = [check_shift_spec({"shift": "gaussian_noise", "severity": 5}),
             check_shift_spec({"shift": "dirichlet_prior", "alpha": 0.5, "n": 500})]
    out = apply_shifts(test_split, chain, seed=3)
    noisy = get_shift("gaussian_noise").fn(test_split, seed=_child_seed(3, 0), severity=5)
    expected = get_shift("dirichlet_prior").fn(noisy, seed=_child_seed(3, 1), alpha=0.5, n=500)
    assert torch.equal(out.images, expected.images) and torch.equal(out.labels, expected.labels)
    assert out.meta["target_prior"] == expected.meta["target_prior"]

    noisy_rows = {(bytes(x.numpy()), int(y)) for x, y in zip(noisy.images, noisy.labels)}
    clean_rows = {bytes(x.numpy()) for x in test_split.images}
    assert all((bytes(x.numpy()), int(y)) in noisy_rows for x, y in zip(out.images, out.labels))
    assert not any(bytes(x.numpy()) in clean_rows for x in out.images)  # the noise reached every row
    assert (out.class_prior() - test_split.class_prior()).abs().sum() > 0.2  # and the prior moved


@pytest.mark.parametrize("alpha", [0.1, 1.0, 10.0])
def test_dirichlet_builder_reaches_its_prior(alpha):
    pool = load_dataset("digits").test
    out = apply_shifts(pool, [check_shift_spec({"shift": "dirichlet_prior", "alpha": alpha, "n": 2000})], seed=7)
    designed = torch.tensor(out.meta["designed_prior"])
    realised = out.class_prior()
    assert len(out) == 2000
    assert (designed - realised).abs().sum() <= 0.05


def test_long_tail_prior_is_exponential():
    pool = load_dataset("digits").test
    out = apply_shifts(pool, [check_shift_spec({"shift": "long_tail", "rho": 10, "n": 2000})], seed=0)
    q = torch.tensor(out.meta["designed_prior"])
    assert q[0] / q[-1] == pytest.approx(10.0)
    ratios = q[:-1] / q[1:]
    assert torch.allclose(ratios, ratios[0].expand_as(ratios))
    assert (out.class_prior() - q).abs().sum() <= 0.05


def test_spurious_colour_correlation_and_groups(test_split):
    out = apply_shifts(test_split, [check_shift_spec({"shift": "spurious_colour", "correlation": 0.9})], seed=0)
    colour = out.groups % 2
    assert torch.equal(out.groups // 2, out.labels)
    red = out.images[:, 0].flatten(1).amax(1) > 0
    green = out.images[:, 1].flatten(1).amax(1) > 0
    assert torch.equal(red, colour == 0) and not (red & green).any() and (out.images[:, 2] == 0).all()
    agree = (colour == 0) == (out.labels < 5)
    assert 0.8 < agree.float().mean() < 0.97


def test_relabel_moves_only_the_chosen_class(test_split):
    out = apply_shifts(test_split, [check_shift_spec({"shift": "relabel_subpopulation", "source_class": 1,
                                                      "target_class": 7, "mass": 0.5})], seed=0)
    changed = out.labels != test_split.labels
    assert torch.equal(out.images, test_split.images)
    assert (test_split.labels[changed] == 1).all() and (out.labels[changed] == 7).all()
    assert torch.equal(changed.long(), out.groups)
    assert 0.2 < changed.sum() / (test_split.labels == 1).sum() < 0.8


def test_realistic_translation_moves_the_window_inside_real_pixels(test_split):
    out = apply_shifts(test_split, [check_shift_spec({"shift": "translate", "distance": 2})], seed=0)
    assert out.images.shape[-1] == 28 and len(out) == 2 * len(test_split)
    centre, moved = out.images[0::2], out.images[1::2]
    base = test_split.images
    assert torch.equal(centre, base[:, :, 2:30, 2:30])
    # Each moved view is the 28 px crop at some offset of exactly 2 px (Chebyshev) of the 32 px canvas.
    for i in range(10):
        hits = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                if max(abs(dy), abs(dx)) == 2 and torch.equal(moved[i], base[i, :, 2 + dy:30 + dy, 2 + dx:30 + dx])]
        assert hits, i
    assert torch.equal(out.source_index, torch.arange(len(test_split)).repeat_interleave(2))


def test_cyclic_translation_is_a_roll_of_the_window():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.uint8).view(2, 1, 4, 4)
    rolled = roll_each(x, torch.tensor([1, -1]), torch.tensor([0, 2]))
    assert torch.equal(rolled[0], torch.roll(x[0], (1, 0), dims=(1, 2)))
    assert torch.equal(rolled[1], torch.roll(x[1], (-1, 2), dims=(1, 2)))
    crop = crop_at(torch.arange(36, dtype=torch.uint8).view(1, 1, 6, 6), 4, torch.tensor([1]), torch.tensor([-1]))
    assert torch.equal(crop[0, 0], torch.arange(36, dtype=torch.uint8).view(6, 6)[2:6, 0:4])


def test_bad_shift_parameters_are_rejected_by_name():
    from shiftbench.core.errors import UserError

    with pytest.raises(UserError, match="severity"):
        check_shift_spec({"shift": "gaussian_noise", "severity": 9})
    with pytest.raises(UserError, match="unknown parameter 'sigma'"):
        check_shift_spec({"shift": "gaussian_noise", "sigma": 0.1})
    with pytest.raises(UserError, match="unknown shift 'gaussian_nois'"):
        check_shift_spec({"shift": "gaussian_nois"})
