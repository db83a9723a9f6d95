"""The golden digits run: every built-in method's numbers on a small benchmark equal the pinned ones.

A refactor that changes any number fails here. On the machine kind the numbers were pinned on
(same torch build and CPU kernels) they must agree to float rounding; elsewhere training may
round differently, so only closeness is asserted.
"""

import json

import pytest
from golden_run import EXPECTED, machine, run_golden


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    return run_golden(tmp_path_factory.mktemp("golden"))


def test_every_number_of_the_golden_run_is_unchanged(golden):
    pinned = json.loads(EXPECTED.read_text())
    same_machine = pinned["machine"] == machine()
    tolerance = 1e-9 if same_machine else 0.03
    expected = pinned["numbers"]
    assert sorted(golden) == sorted(expected)
    for entry, scenarios in expected.items():
        assert sorted(golden[entry]) == sorted(scenarios), entry
        for scenario, metrics in scenarios.items():
            got = golden[entry][scenario]
            assert sorted(got) == sorted(metrics), (entry, scenario)
            for name, value in metrics.items():
                assert got[name] == pytest.approx(value, abs=tolerance, rel=0), (entry, scenario, name)
