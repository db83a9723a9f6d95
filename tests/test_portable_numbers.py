"""The built-in data, initial weights and trained source models are the same bits whatever CPU kernels torch picks.

ATEN_CPU_CAPABILITY=default makes torch use its generic kernels instead of this machine's AVX2 or
AVX512 ones: a child process run that way must produce exactly what this process produces.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from shiftbench.data.digits import upsample_exact
from shiftbench.models.architectures.portable_init import portable_uniform_

# prints, as JSON: the digits' sha256, the initial weights' hash, and the weights after one epoch of erm
FINGERPRINT = """
import hashlib, json, torch
torch.set_num_threads(1)
from shiftbench.data.registry import load_dataset
from shiftbench.models.recipes import RECIPES
from shiftbench.models.train import build_classifier

def digest(model):
    h = hashlib.sha256()
    for v in model.state_dict().values():
        h.update(v.detach().contiguous().numpy().tobytes())
    return h.hexdigest()

d = load_dataset("digits")
torch.manual_seed(0)
model = build_classifier({"arch": "small_cnn", "width": 4}, 10, 3)
init = digest(model)
RECIPES.get("erm")(model, d.source_train, d.source_val, seed=0, device=torch.device("cpu"), progress=False,
                   epochs=1, batch_size=128)
print(json.dumps({"data": d.sha256(), "init": init, "trained": digest(model)}))
"""


def fingerprint(capability: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    if capability:
        env["ATEN_CPU_CAPABILITY"] = capability
    out = subprocess.run([sys.executable, "-c", FINGERPRINT], env=env, capture_output=True, text=True, timeout=300,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() == "DEFAULT", reason="this CPU has no vector kernels")
def test_generic_and_vector_kernels_give_the_same_data_initial_weights_and_trained_model():
    assert fingerprint(None) == fingerprint("default")


def test_exact_upsampling_is_bilinear_interpolation_rounded_half_to_even():
    from sklearn.datasets import load_digits

    levels = torch.tensor(load_digits().images[:200], dtype=torch.int64)[:, None]
    for size in (24, 20, 13):
        ours = upsample_exact(levels, 16, size).double()
        ref = F.interpolate(levels.double() / 16, size=(size, size), mode="bilinear", align_corners=False) * 255
        clear = ((ref - ref.floor()) - 0.5).abs() > 1e-9  # away from exact halves the rounding is unambiguous
        assert torch.equal(ours[clear], ref.round()[clear]), size
        halves = ~clear
        assert torch.equal(ours[halves] % 2, torch.zeros_like(ours[halves])), size  # a half goes to the even neighbour
        assert (ours[halves] - ref[halves]).abs().max() <= 0.5 + 1e-9


def test_portable_uniform_draws_what_torch_draws_for_the_same_seed():
    bound = 1 / 27 ** 0.5
    torch.manual_seed(3)
    theirs = torch.empty(10_000).uniform_(-bound, bound)
    torch.manual_seed(3)
    ours = portable_uniform_(torch.empty(10_000), bound)
    assert (ours - theirs).abs().max() <= 2 * torch.finfo(torch.float32).eps * bound  # the same draws, rounded once
    assert ours.min() >= -bound and ours.max() < bound
