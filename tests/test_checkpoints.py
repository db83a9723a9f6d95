"""Checkpoint files: the usual wrappers and prefixes load, key_map renames, and every bad file is one line."""

from __future__ import annotations

import pickle

import pytest
import torch

from shiftbench.core.errors import UserError
from shiftbench.models.checkpoint import load_weights, read_state_dict
from shiftbench.models.train import build_classifier

SPEC = {"arch": "cifar_resnet", "depth": 20}


def resnet20_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return build_classifier(SPEC, 10, 3).net.state_dict()


def same_weights(net, state) -> bool:
    return all(torch.equal(v, state[k]) for k, v in net.state_dict().items())


@pytest.mark.parametrize("wrapper", [None, "state_dict", "model", "model_state_dict", "net"])
@pytest.mark.parametrize("prefix", ["", "module.", "model."])
def test_plain_and_wrapped_state_dicts_load_with_their_prefixes_stripped(tmp_path, wrapper, prefix):
    state = resnet20_state(1)
    saved = {f"{prefix}{k}": v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(saved if wrapper is None else {"epoch": 3, "best_prec1": 91.7, wrapper: saved}, tmp_path / "w.th")
    net = build_classifier(SPEC, 10, 3).net
    load_weights(net, tmp_path / "w.th")
    assert same_weights(net, state) or all(
        torch.equal(v, state[k]) for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked"))


def test_key_map_renames_prefixes_longest_first(tmp_path):
    state = resnet20_state(2)
    renamed = {k.replace("layer", "stage", 1).replace("linear", "head.fc"): v for k, v in state.items()}
    torch.save(renamed, tmp_path / "w.pt")
    net = build_classifier(SPEC, 10, 3).net
    with pytest.raises(UserError, match="unexpected keys"):
        load_weights(net, tmp_path / "w.pt")
    key_map = {"stage": "layer", "stage3.2.": "layer3.2.", "head.fc": "linear"}
    load_weights(net, tmp_path / "w.pt", key_map=key_map)
    assert same_weights(net, state)
    assert "layer3.2.bn2.weight" in read_state_dict(tmp_path / "w.pt", key_map=key_map)


def test_a_checkpoint_of_another_architecture_names_missing_unexpected_and_wrong_shaped_keys(tmp_path):
    torch.save(resnet20_state(), tmp_path / "r20.th")
    deeper = build_classifier({"arch": "cifar_resnet", "depth": 32}, 10, 3).net
    with pytest.raises(UserError) as e:
        load_weights(deeper, tmp_path / "r20.th", what="cifar_resnet depth 32")
    msg = str(e.value)
    assert msg.startswith("model.checkpoint: cannot load ") and "into cifar_resnet depth 32: missing keys ['layer1.3." in msg
    assert "\n" not in msg
    fewer_classes = build_classifier(SPEC, 7, 3).net
    with pytest.raises(UserError, match=r"wrong shapes \(file vs model\) \['linear.weight \(10, 64\) vs \(7, 64\)'"):
        load_weights(fewer_classes, tmp_path / "r20.th")


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))  # unpickling this creates the marker file


def test_files_that_are_not_plain_weights_are_refused_in_one_line(tmp_path):
    net = build_classifier(SPEC, 10, 3).net
    marker = tmp_path / "code-ran"
    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"state_dict": RunsCode(marker)}))
    (tmp_path / "evil-p2.pt").write_bytes(pickle.dumps({"state_dict": RunsCode(marker)}, protocol=2))
    torch.save({"state_dict": RunsCode(marker)}, tmp_path / "evil-zip.pt")
    full = tmp_path / "full.pt"
    torch.save(resnet20_state(), full)
    (tmp_path / "truncated.pt").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    (tmp_path / "text.pt").write_text("not a checkpoint\n")
    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}}, tmp_path / "nostate.pt")
    marker.unlink(missing_ok=True)  # torch.save above ran __reduce__ while pickling, never unpickling
    cases = {"evil.pt": "not a plain weights file: loading it would import and run ",
             "evil-p2.pt": "not a plain weights file: loading it would import and run ",
             "evil-zip.pt": "not a plain weights file: loading it would import and run ",
             "truncated.pt": "not a readable torch checkpoint",
             "text.pt": "not a readable torch checkpoint",
             "nostate.pt": "holds no state dict"}
    for name, expected in cases.items():
        with pytest.raises(UserError) as e:
            load_weights(net, tmp_path / name)
        assert expected in str(e.value) and str(tmp_path / name) in str(e.value) and "\n" not in str(e.value), name
        if "import and run" in expected:
            assert ".open; refused" in str(e.value), name  # names what it would have run
    assert not marker.exists()
