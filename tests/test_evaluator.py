"""The evaluator's protocols and the metrics, against hand-computed values."""

import math

import pytest
import torch

from shiftbench.core.imageset import ImageSet
from shiftbench.evaluation import compute_metrics, run_stream
from shiftbench.evaluation.metrics import consistency, expected_calibration_error
from shiftbench.methods import Method


class Counter(Method):
    """Logits say how many batches were seen since the last reset (in class 0's logit)."""

    def __init__(self):
        self.resets = 0
        self.since_reset = 0

    def reset(self):
        self.resets += 1
        self.since_reset = 0

    def predict(self, x):
        self.since_reset += 1
        out = torch.zeros(len(x), 3)
        out[:, 0] = self.since_reset
        return out


def segment(n):
    return ImageSet(torch.zeros(n, 1, 2, 2, dtype=torch.uint8), torch.zeros(n, dtype=torch.int64), ("a", "b", "c"))


@pytest.mark.parametrize("protocol, expected", [
    ("episodic", [[1, 1, 1], [1, 1]]),
    ("per_scenario", [[1, 2, 3], [1, 2]]),
    ("continual", [[1, 2, 3], [4, 5]]),
])
def test_protocols_reset_where_they_say(protocol, expected):
    method = Counter()
    logits = run_stream(method, [segment(10), segment(8)], protocol, batch_size=4, device=torch.device("cpu"))
    seen = [[int(lg[i, 0]) for i in range(0, len(lg), 4)] for lg in logits]
    assert seen == expected


def test_logit_only_methods_get_the_shared_source_logits():
    class Double(Method):
        logit_only = True

        def adapt_logits(self, logits):
            return 2 * logits

    base = [torch.randn(10, 3), torch.randn(6, 3)]
    out = run_stream(Double(), [segment(10), segment(6)], "per_scenario", 4, torch.device("cpu"), base_logits=base)
    assert all(torch.equal(o, 2 * b) for o, b in zip(out, base))


def test_metrics_against_hand_computed_values():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.5, 0.4, 0.1], [0.2, 0.2, 0.6]]))
    labels = torch.tensor([0, 1, 1, 2])
    m = compute_metrics(logits, labels)
    assert m["accuracy"] == pytest.approx(0.75) and m["error"] == pytest.approx(0.25)
    assert m["nll"] == pytest.approx(-(math.log(0.7) + math.log(0.6) + math.log(0.4) + math.log(0.6)) / 4)
    # classes 0, 1, 2 recall 1, 0.5, 1
    assert m["balanced_accuracy"] == pytest.approx(2.5 / 3)
    # confidences 0.7, 0.6, 0.5, 0.6 fall in bins (0.667,0.733], (0.533,0.6] x2, (0.467,0.533]
    ece = 0.25 * abs(1 - 0.7) + 0.5 * abs(1.0 - 0.6) + 0.25 * abs(0 - 0.5)
    assert m["ece"] == pytest.approx(ece)


def test_ece_is_zero_when_confidence_matches_accuracy():
    probs = torch.tensor([[0.5, 0.5]] * 4)
    labels = torch.tensor([0, 1, 0, 1])
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0)


def test_group_metrics():
    logits = torch.eye(3)[[0, 1, 2, 0]] * 5
    labels = torch.tensor([0, 1, 1, 0])
    m = compute_metrics(logits, labels, groups=torch.tensor([0, 1, 1, 0]))
    assert m["worst_group_accuracy"] == pytest.approx(0.5)
    assert m["group_average_accuracy"] == pytest.approx(0.75)


def test_consistency_counts_images_whose_views_agree():
    pred = torch.tensor([1, 1, 2, 3, 4, 4])
    index = torch.tensor([0, 0, 1, 1, 2, 2])
    assert consistency(pred, index) == pytest.approx(2 / 3)
