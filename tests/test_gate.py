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


def test_gate_maxima_cap_a_failure_rate_or_a_scorer_mean() -> None:
    # 20 attacks: the baseline resists 10, the candidate 18 (attack success rate 10%).
    base = [1.0] * 10 + [0.0] * 10
    cand = [1.0] * 18 + [0.0] * 2
    cmp = compare(cases_frame({"plain": base, "guarded": cand}, scorer="attack_resisted"), "plain", "guarded")
    assert gate(cmp, maxima={"attack_success_rate": 0.10}).passed  # at the ceiling passes
    over = gate(cmp, maxima={"attack_success_rate": 0.05})
    assert not over.passed
    assert over.reasons == [
        "guarded attack_success_rate = 10.0% (1 - attack_resisted, over 20 scored cases) is above the maximum 5.0%"
    ]
    assert not gate(cmp, maxima={"attack_resisted": 0.5}).passed  # a plain scorer mean can be capped too
    with pytest.raises(ValueError, match=r"not in the comparison.*rates a maximum may also name"):
        gate(cmp, maxima={"canary_leak_rate": 0.0})  # canary_kept was not scored here


def test_gate_maxima_fail_when_nothing_was_scored() -> None:
    frame = cases_frame({"a": [1.0, 0.0], "b": [np.nan, np.nan]}, scorer="attack_resisted")
    result = gate(compare(frame, "a", "b", n_resamples=100), maxima={"attack_success_rate": 0.5})
    assert not result.passed and any("nothing scored" in r for r in result.reasons)
