"""Tests for workbench.analysis.gate on synthetic comparisons (frames built as in test_compare)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_compare import cases_frame, no_difference_scores, win_frame

from workbench.analysis.compare import compare
from workbench.analysis.gate import GateResult, gate


@pytest.fixture
def win_cases() -> pd.DataFrame:
    return win_frame()


def test_significant_loss_fails_the_gate(win_cases: pd.DataFrame) -> None:
    cmp = compare(win_cases, "few_shot", "zero_shot", n_resamples=2000)
    assert cmp["label_match"].significant and cmp["label_match"].direction == "worse"
    result = gate(cmp)
    assert not result.passed
    assert len(result.reasons) == 1 and "label_match" in result.reasons[0]
    assert "FAILED" in str(result)


def test_no_difference_passes_the_gate() -> None:
    base, cand = no_difference_scores()
    cmp = compare(cases_frame({"a": base, "b": cand}), "a", "b", n_resamples=2000)
    assert not cmp["label_match"].significant
    assert gate(cmp).passed  # not significantly different is not a failure


def test_all_pairs_errored_fails_the_gate() -> None:
    frame = cases_frame({"a": [1.0, 0.0], "b": [np.nan, np.nan]})
    cmp = compare(frame, "a", "b", n_resamples=100)
    assert cmp["label_match"].n_cases == 0
    assert not gate(cmp).passed


def test_gate_thresholds(win_cases: pd.DataFrame) -> None:
    cmp = compare(win_cases, "zero_shot", "few_shot", n_resamples=500)
    mean = cmp["label_match"].mean_candidate
    assert gate(cmp, thresholds={"label_match": mean - 0.01}).passed
    missed = gate(cmp, thresholds={"label_match": mean + 0.01})
    assert not missed.passed and "below the threshold" in missed.reasons[0]
    with pytest.raises(ValueError, match="not in the comparison"):
        gate(cmp, thresholds={"hallucination": 0.9})
    with pytest.raises(ValueError, match="not in the comparison"):
        gate(cmp, gated_scorers=["nope"])


def test_gate_only_checks_gated_scorers(win_cases: pd.DataFrame) -> None:
    frame = win_cases.copy()
    frame["score.valid_json"] = 1.0
    worse = compare(frame, "few_shot", "zero_shot", n_resamples=500)
    assert not gate(worse).passed
    assert gate(worse, gated_scorers=["valid_json"]).passed


def test_gate_result_reads_as_a_list_of_reasons() -> None:
    assert str(GateResult(passed=True, reasons=[])) == "Gate passed."
    failed = GateResult(passed=False, reasons=["a", "b"])
    assert str(failed) == "Gate FAILED:\n- a\n- b"
