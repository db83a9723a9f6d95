"""Source models are trained once and found again by content hash; the cache dir follows the environment."""

from pathlib import Path

import torch

from shiftbench.core.paths import cache_dir
from shiftbench.data import load_dataset
from shiftbench.models import get_source_model
from shiftbench.models.recipes import RECIPES


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("SHIFTBENCH_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "shiftbench"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "shiftbench"
    monkeypatch.setenv("SHIFTBENCH_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_model_is_trained_once_and_keyed_by_what_decides_it(monkeypatch, tmp_path):
    monkeypatch.setenv("SHIFTBENCH_CACHE", str(tmp_path / "cache"))
    calls = []
    erm = RECIPES.get("erm")

    def counting(*args, **kwargs):
        calls.append(kwargs.get("seed"))
        return erm(*args, **kwargs)

    monkeypatch.setitem(RECIPES._entries, "erm", counting)
    d = load_dataset("digits")
    train = d.source_train.subset(torch.arange(200))
    arch = {"arch": "small_cnn", "width": 4}
    recipe = {"name": "erm", "epochs": 1}
    a = get_source_model(train, d.source_val, arch, recipe, 0, torch.device("cpu"), progress=False)
    b = get_source_model(train, d.source_val, arch, recipe, 0, torch.device("cpu"), progress=False)
    assert calls == [0]
    assert a.sha256 == b.sha256 and a.key == b.key
    assert Path(a.checkpoint).parent == tmp_path / "cache" / "models"
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k])

    c = get_source_model(train, d.source_val, arch, recipe, 1, torch.device("cpu"), progress=False)
    e = get_source_model(train, d.source_val, arch, {"name": "erm", "epochs": 2}, 0, torch.device("cpu"), progress=False)
    f = get_source_model(train.subset(torch.arange(100)), d.source_val, arch, recipe, 0, torch.device("cpu"), progress=False)
    assert len({a.key, c.key, e.key, f.key}) == 4
    assert calls == [0, 1, 0, 0]


def test_editing_the_recipe_or_architecture_code_retrains(monkeypatch):
    """The model key holds the code of the recipe and architecture: an edit never reuses old weights."""
    from shiftbench.core import code_identity
    from shiftbench.models.train import model_key

    train = load_dataset("digits").source_train.subset(torch.arange(50))
    arch, recipe = {"arch": "small_cnn", "width": 4}, {"name": "erm", "epochs": 1}
    before = model_key(train, arch, recipe, 0)
    real = code_identity.source_bytes
    for edited in ("models/recipes/erm.py", "models/architectures/small_cnn.py"):
        monkeypatch.setattr(code_identity, "source_bytes",
                            lambda path, e=edited: real(path) + (b"# edit" if path.as_posix().endswith(e) else b""))
        assert model_key(train, arch, recipe, 0) != before, edited
    monkeypatch.setattr(code_identity, "source_bytes",
                        lambda path: real(path) + (b"# edit" if path.name == "tent.py" else b""))
    assert model_key(train, arch, recipe, 0) == before  # a method's code does not decide the weights


def test_digits_data_matches_its_manifest_hash():
    from shiftbench.data import load_manifest

    d = load_dataset("digits")
    assert d.sha256() == load_manifest("digits").sha256
    assert (len(d.source_train), len(d.source_val), len(d.test)) == (988, 270, 539)
    assert d.test.images.shape[1:] == (3, 32, 32) and d.test.window == 28
    # the digit sits on a black border wide enough for 2 px realistic shifts
    assert d.test.images[:, :, :4].max() == 0 and d.test.images[:, :, :, -4:].max() == 0


def test_the_shipped_digits_csv_read_directly_is_what_load_digits_gives():
    import numpy as np
    from sklearn.datasets import load_digits

    from shiftbench.data.digits import raw_digits

    pixels, target = raw_digits()
    raw = load_digits()
    assert np.array_equal(pixels, raw.images) and np.array_equal(target, raw.target)
