"""The hostile-inputs harness classifies outcomes right: clear before work, late, silent."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

HARNESS_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "hostile_inputs.py"


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("hostile_inputs", HARNESS_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["hostile_inputs"] = module
    spec.loader.exec_module(module)
    return module


KEY = ("training.epochs",)
ONE_LINE = (
    "Error (ParameterError): Invalid parameters (conf/base/parameters*.yml, conf/<env>/, or "
    "--params):\n  - `training.epochs` is 0: Input should be greater than or equal to 1."
)


def test_a_short_message_naming_the_key_before_training_is_clear(harness) -> None:
    outcome = harness.Outcome(refused=True, message=ONE_LINE)
    assert harness.classify(outcome, KEY) == (harness.CLEAR, "before work")
    # the row shows the problem, not the header
    assert harness.first_line(ONE_LINE).startswith("`training.epochs` is 0")


@pytest.mark.parametrize(
    ("outcome", "why"),
    [
        ({"message": ONE_LINE, "trained_before_refusal": True}, "after training started"),
        ({"message": "Traceback ... ValueError: boom", "traceback_shown": True}, "a traceback"),
        ({"message": "Error (ParameterError): something is wrong"}, "does not name"),
        ({"message": ONE_LINE + "\n  - x" * 10}, "lines"),
    ],
)
def test_late_or_unclear_refusals_are_late(harness, outcome, why) -> None:
    kind, reason = harness.classify(harness.Outcome(refused=True, **outcome), KEY)
    assert kind == harness.LATE
    assert why in reason


def test_an_accepted_input_is_silent_even_with_no_training(harness) -> None:
    outcome = harness.Outcome(refused=False)
    assert harness.classify(outcome, KEY) == (harness.SILENT, "accepted")


def test_training_means_a_training_node_started_or_a_keras_fit_ran(harness) -> None:
    assert harness._trained(["ingest_ratings", "baseline.train_model"])
    assert not harness._trained(["ingest_ratings", "split_ratings", "baseline.build_model"])
    # the sweep's node checks its set-up before its first fit: only a fit counts there
    assert not harness._trained(["sweep.plan_sweep", "sweep.run_sweep"])
    assert harness._trained(["sweep.plan_sweep", "sweep.run_sweep"], fits=1)


def test_every_case_is_named_once_and_says_what_a_clear_message_names(harness) -> None:
    cases = harness.all_cases()
    names = [(case.category, case.name) for case in cases]
    assert len(names) == len(set(names))
    assert all(case.expect for case in cases)
    # each entry point is exercised: parameters, files, prediction, the command line
    assert {"data", "sweep", "ciao", "table", "movielens", "prediction", "cli"} <= {
        case.category for case in cases
    }
