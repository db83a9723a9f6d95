"""scripts/bench_corruptions.py --published, against the packaged published generator
(imagecorruptions, in the dev extra; skipped when it is not installed): its agreement figures are
computed from the two outputs, so they show a wrong severity on one side."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from shiftbench.core.imageset import ImageSet

pytestmark = pytest.mark.skipif(importlib.util.find_spec("imagecorruptions") is None,
                                reason="imagecorruptions is not installed (pip install imagecorruptions==1.1.2)")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_corruptions.py"
QUICK = ["--published", "--quick", "--only", "brightness", "gaussian_noise", "--severities", "1", "--budget", "0.02",
         "--images", "48", "2", "2", "--system-malloc"]


def smooth_colour_images(n: int) -> ImageSet:
    """n 32 px images: a random colour per corner, blended bilinearly, plus a little noise."""
    g = torch.Generator().manual_seed(0)
    corners = torch.rand(n, 3, 2, 2, generator=g)
    x = F.interpolate(corners, size=(32, 32), mode="bilinear", align_corners=True)
    x = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    return ImageSet(x.mul(255).round().to(torch.uint8), torch.arange(n) % 10, tuple(map(str, range(10))))


@pytest.fixture
def bench(monkeypatch, tmp_path):
    """The script as a module, on an empty data root and generated images (no model); torch's
    thread count restored after."""
    monkeypatch.setenv("SHIFTBENCH_DATA", str(tmp_path))
    spec = importlib.util.spec_from_file_location("bench_corruptions", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "published_images", lambda n: (smooth_colour_images(n), "generated images"))
    threads = torch.get_num_threads()
    yield module
    torch.set_num_threads(threads)


def by_key(rows):
    return {(r["name"], r["px"]): r for r in rows}


def test_published_quick_mode_measures_agreement_from_the_outputs(bench, monkeypatch, capsys):
    rows = by_key(bench.main(QUICK + ["--markdown"]))
    out = capsys.readouterr().out
    assert set(rows) == {(n, px) for n in ("brightness", "gaussian_noise") for px in (32, 224)}
    for r in rows.values():
        assert r["ours"] > 0 and r["theirs"] > 0 and r["ratio"] == pytest.approx(r["ours"] / r["theirs"])
        assert f"| {r['name']} | 1 |" in out  # both markdown tables carry the row
    # brightness is deterministic: the same HSV arithmetic on both sides, to within a level
    assert rows["brightness", 32]["diff"] < 1 and rows["brightness", 224]["diff"] < 1
    assert rows["brightness", 32]["change_ours"] > 10  # ...and it did change the images
    # gaussian noise is random: pixels differ, but both are equally strong
    noise = rows["gaussian_noise", 32]
    assert noise["diff"] > 5 and noise["change_ours"] == pytest.approx(noise["change_theirs"], rel=0.1)

    # the published side at severity 5 instead of 1: the same figures now show the mismatch
    real = bench.published_corrupt
    monkeypatch.setattr(bench, "published_corrupt", lambda ic, image, name, severity: real(ic, image, name, 5))
    wrong = by_key(bench.main(QUICK))
    assert wrong["brightness", 32]["diff"] > 20 and wrong["brightness", 224]["diff"] > 20
    noise = wrong["gaussian_noise", 32]
    assert noise["change_theirs"] > 1.5 * noise["change_ours"]
