"""Tests for workbench.analysis.compare (and the figures of workbench.views.comparison_plots) on synthetic cases.

The frame builders here are shared with tests/test_gate.py.
"""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pandas as pd
import pytest

from workbench.analysis.compare import Comparison, compare, compare_results
from workbench.analysis.multiplicity import adjust_pvalues
from workbench.analysis.power import min_detectable_diff
from workbench.analysis.stats import (
    mcnemar_exact,
    paired_bootstrap_ci,
    paired_permutation_test,
)


def cases_frame(scores: dict[str, np.ndarray], *, model: str = "model-a", scorer: str = "label_match") -> pd.DataFrame:
    """A runner-shaped cases frame; ``scores[variant]`` has shape (n_cases, repeats)."""
    rows = []
    for variant, arr in scores.items():
        arr = np.asarray(arr, dtype=float).reshape(len(arr), -1)
        for i in range(arr.shape[0]):
            for r in range(arr.shape[1]):
                rows.append(
                    {
                        "case_id": f"c{i:03d}",
                        "variant": variant,
                        "variant_version": "1",
                        "model": model,
                        "repeat": r,
                        "input.text": f"listing {i}",
                        "expected.label": "shoes",
                        "prompt": f"[{variant}] listing {i}",
                        "output": f"{variant} says {i}/{r}",
                        "error": None,
                        f"score.{scorer}": float(arr[i, r]),
                        "prompt_tokens": 12,
                        "completion_tokens": 3,
                        "cost_usd": math.nan,
                        "latency_s": 0.2,
                    }
                )
    return pd.DataFrame(rows)


def pass_fail(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    return (rng.uniform(size=n) < rate).astype(float)


def win_frame() -> pd.DataFrame:
    """150 pass/fail cases on which few_shot (~85%) clearly beats zero_shot (~55%)."""
    rng = np.random.default_rng(1)
    return cases_frame({"zero_shot": pass_fail(rng, 150, 0.55), "few_shot": pass_fail(rng, 150, 0.85)})


def no_difference_scores() -> tuple[np.ndarray, np.ndarray]:
    """Baseline and candidate pass/fail scores that differ only by symmetric noise flips."""
    rng = np.random.default_rng(5)
    base = pass_fail(rng, 150, 0.7)
    cand = base.copy()
    flip = rng.choice(150, size=12, replace=False)
    cand[flip] = 1 - cand[flip]  # symmetric noise flips, no real effect
    return base, cand


@pytest.fixture
def win_cases() -> pd.DataFrame:
    return win_frame()


def test_clear_win_verdict_and_numbers(win_cases: pd.DataFrame) -> None:
    cmp = compare(win_cases, "zero_shot", "few_shot", n_resamples=2000)
    row = cmp["label_match"]
    base = win_cases[win_cases.variant == "zero_shot"]["score.label_match"].to_numpy()
    cand = win_cases[win_cases.variant == "few_shot"]["score.label_match"].to_numpy()
    regressed, fixed = int(((base == 1) & (cand == 0)).sum()), int(((base == 0) & (cand == 1)).sum())
    assert (row.n_regressed, row.n_fixed) == (regressed, fixed)
    assert row.kind == "binary" and row.n_cases == 150 and row.n_repeats == 1
    assert row.diff == pytest.approx(cand.mean() - base.mean())
    assert row.p_value == pytest.approx(mcnemar_exact(regressed, fixed))
    assert row.p_adjusted == row.p_value  # one scorer: nothing to adjust
    ci = paired_bootstrap_ci(base, cand, n_resamples=2000)
    assert (row.ci_low, row.ci_high) == pytest.approx((ci.low, ci.high))
    assert row.significant and row.direction == "better"
    assert row.effect_size_name == "Cohen's h" and row.effect_size > 0
    expected = (
        f"few_shot beats zero_shot on label_match by {row.diff * 100:+.1f} pts "
        f"[95% CI {row.ci_low * 100:+.1f}, {row.ci_high * 100:+.1f}], "
    )
    assert row.verdict.startswith(expected)
    assert row.verdict.endswith("(exact McNemar, n = 150)")
    assert re.search(r"p (< 0\.001|= 0\.\d+)", row.verdict)
    assert cmp.verdicts == [row.verdict]
    assert "adjusted" not in row.verdict


def test_clear_loss_verdict(win_cases: pd.DataFrame) -> None:
    cmp = compare(win_cases, "few_shot", "zero_shot", n_resamples=2000)
    row = cmp["label_match"]
    assert row.direction == "worse" and row.significant and row.diff < 0
    assert row.verdict.startswith("zero_shot is worse than few_shot on label_match by -")


def test_no_difference_verdict_reports_power() -> None:
    base, cand = no_difference_scores()
    cmp = compare(cases_frame({"a": base, "b": cand}), "a", "b", n_resamples=2000)
    row = cmp["label_match"]
    assert not row.significant and row.direction == "none"
    assert row.verdict.startswith("No detectable difference on label_match: ")
    null = 2 * min(row.n_fixed, row.n_regressed) / 150
    mdd = min_detectable_diff(150, base.mean(), null_discordance=null)
    assert row.min_detectable_diff == pytest.approx(mdd)
    shown = re.search(
        r"With n = 150 the smallest difference this test would detect 80% of the time is ~([\d.]+) pts",
        row.verdict,
    )
    assert shown and float(shown.group(1)) == pytest.approx(mdd * 100, abs=0.5)
    if row.diff != 0:
        assert re.search(r"about [\d,]+ cases would be needed to detect \d+\.\d pts\.$", row.verdict)


def test_no_difference_near_the_ceiling_says_nothing_was_detectable() -> None:
    # Both variants pass 147 of 150 cases (98%): a 2-point improvement is the most there is,
    # and without discordant pairs 150 cases detect about 5 points, so nothing is detectable.
    base = np.ones(150)
    base[:3] = 0
    cmp = compare(cases_frame({"a": base, "b": base.copy()}), "a", "b", n_resamples=500)
    row = cmp["label_match"]
    assert row.direction == "none" and row.min_detectable_diff == math.inf
    assert row.verdict.endswith(
        "With n = 150 there is no improvement over the baseline's 98.0% that this test could detect 80% of the time."
    )
    assert "inf" not in row.verdict and "~" not in row.verdict


def test_continuous_scorer_uses_permutation_and_raw_units() -> None:
    rng = np.random.default_rng(11)
    base = rng.uniform(0.3, 0.7, size=80)
    cand = np.clip(base + 0.05 + rng.normal(0, 0.05, size=80), 0, 1)
    cmp = compare(cases_frame({"a": base, "b": cand}, scorer="rouge"), "a", "b", n_resamples=2000)
    row = cmp["score.rouge"]  # the prefix is accepted
    assert row.kind == "continuous" and row.test == "paired permutation"
    assert row.p_value == pytest.approx(paired_permutation_test(base, cand, n_resamples=2000))
    assert row.effect_size_name == "Cohen's dz"
    assert row.effect_size == pytest.approx((cand - base).mean() / (cand - base).std(ddof=1))
    assert f"by {row.diff:+.3g} [95% CI {row.ci_low:+.3g}, {row.ci_high:+.3g}]" in row.verdict
    assert "pts" not in row.verdict


def test_several_scorers_are_holm_adjusted() -> None:
    rng = np.random.default_rng(2)
    frame = cases_frame({"a": pass_fail(rng, 120, 0.6), "b": pass_fail(rng, 120, 0.75)})
    other = cases_frame({"a": pass_fail(rng, 120, 0.5), "b": pass_fail(rng, 120, 0.5)}, scorer="valid_json")
    frame["score.valid_json"] = other["score.valid_json"]
    cmp = compare(frame, "a", "b", n_resamples=1000)
    raw = [r.p_value for r in cmp.results]
    np.testing.assert_allclose([r.p_adjusted for r in cmp.results], adjust_pvalues(raw, "holm"))
    assert all("Holm-adjusted" in v for v in cmp.verdicts)
    assert any("Holm-adjusted across 2 scorers" in n for n in cmp.notes)
    plain = compare(frame, "a", "b", adjust="none", n_resamples=1000)
    assert [r.p_adjusted for r in plain.results] == raw
    assert not any("adjusted" in v for v in plain.verdicts)
    only = compare(frame, "a", "b", scorers=["valid_json"], n_resamples=1000)
    assert only.scorers == ["valid_json"]


def test_flips_regressions_first() -> None:
    base = np.array([1, 1, 0, 0, 1, 0, 1])
    cand = np.array([0, 1, 1, 0, 0, 1, 1])
    cmp = compare(cases_frame({"a": base, "b": cand}), "a", "b", n_resamples=500)
    flips = cmp.flips()
    assert flips["case_id"].tolist() == ["c000", "c004", "c002", "c005"]
    assert flips["change"].tolist() == ["regression", "regression", "fix", "fix"]
    first = flips.iloc[0]
    assert first["input.text"] == "listing 0" and first["expected.label"] == "shoes"
    assert (first["baseline_output"], first["candidate_output"]) == ("a says 0/0", "b says 0/0")
    assert (first["baseline_score"], first["candidate_score"]) == (1.0, 0.0)
    assert (cmp["label_match"].n_regressed, cmp["label_match"].n_fixed) == (2, 2)


def test_flips_ties_count_as_fails() -> None:
    # Four repeats: a case passing exactly 2 of them fails (a pass needs more than half).
    base = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 0, 0]])
    cand = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1]])
    cmp = compare(cases_frame({"a": base, "b": cand}), "a", "b", n_resamples=100)
    flips = cmp.flips().set_index("case_id")
    assert flips["change"].to_dict() == {"c001": "regression", "c000": "fix"}  # c002: fail -> fail
    assert (cmp["label_match"].n_fixed, cmp["label_match"].n_regressed) == (1, 1)
    # The output shown for a tied side comes from a failing repeat.
    assert flips.loc["c000", "baseline_output"] == "a says 0/2"
    assert flips.loc["c001", "candidate_output"] == "b says 1/2"


def test_flips_rejects_continuous_scorer() -> None:
    frame = cases_frame({"a": [0.2, 0.4], "b": [0.3, 0.9]}, scorer="rouge")
    with pytest.raises(ValueError, match="pass/fail"):
        compare(frame, "a", "b", n_resamples=100).flips("rouge")


@pytest.fixture
def repeated() -> Comparison:
    rng = np.random.default_rng(4)
    base = (rng.uniform(size=(60, 4)) < 0.6).astype(float)
    cand = (rng.uniform(size=(60, 4)) < 0.6).astype(float)
    base[0] = [1, 0, 1, 1]
    cand[0] = [0, 0, 0, 1]  # majority pass -> majority fail: a regression
    base[1], cand[1] = [1, 1, 1, 1], [1, 1, 1, 1]  # stable: never flaky
    return compare(cases_frame({"a": base, "b": cand}), "a", "b", n_resamples=1000)


def test_repeats_use_case_means_and_cluster_ci(repeated: Comparison) -> None:
    row = repeated["label_match"]
    assert row.n_cases == 60 and row.n_repeats == 4
    assert row.test == "paired permutation on per-case means"
    assert "n = 60 cases x 4 repeats" in row.verdict
    per = repeated.case_scores("label_match")
    assert per["repeats"].eq(4).all()
    assert row.p_value == pytest.approx(paired_permutation_test(per["baseline"], per["candidate"], n_resamples=1000))
    pairs = repeated.pairs
    ci = paired_bootstrap_ci(
        pairs["baseline.score.label_match"],
        pairs["candidate.score.label_match"],
        clusters=pairs["case_id"],
        n_resamples=1000,
    )
    assert (row.ci_low, row.ci_high) == pytest.approx((ci.low, ci.high))
    flips = repeated.flips()
    first = flips[flips.case_id == "c000"].iloc[0]
    assert first["change"] == "regression" and first["baseline_score"] == 0.75
    assert first["candidate_output"] == "b says 0/0"  # a failing repeat of the candidate


def test_flaky_with_repeats(repeated: Comparison) -> None:
    flaky = repeated.flaky()
    assert set(flaky["variant"]) == {"a", "b"}
    assert "c001" not in set(flaky["case_id"])
    assert ((flaky["passes"] > 0) & (flaky["passes"] < flaky["repeats"])).all()
    c0 = flaky[(flaky.variant == "a") & (flaky.case_id == "c000")].iloc[0]
    assert (c0["repeats"], c0["passes"], c0["pass_rate"], c0["k"]) == (4, 3, 0.75, 4)
    # 3 passes in 4 repeats, k = 4: the only 4-subset has a pass and a fail.
    assert (c0["pass@k"], c0["pass^k"]) == (1.0, 0.0)
    # By the default k = repeats, every flaky case passed at least once and failed at least once.
    assert flaky["pass@k"].eq(1.0).all() and flaky["pass^k"].eq(0.0).all()
    assert flaky.loc[flaky.variant == "a", "pass_rate"].is_monotonic_increasing
    two = repeated.flaky("a", k=2)
    c0 = two[two.case_id == "c000"].iloc[0]
    # k = 2: 1 - C(1, 2) / C(4, 2) = 1 and C(3, 2) / C(4, 2) = 3 / 6.
    assert (c0["k"], c0["pass@k"], c0["pass^k"]) == (2, 1.0, 0.5)
    only_b = repeated.flaky("b", k=2)
    assert set(only_b["variant"]) == {"b"} and only_b["k"].eq(2).all()
    with pytest.raises(ValueError, match="unknown variant"):
        repeated.flaky("zzz")
    for k in (0, 5):
        with pytest.raises(ValueError, match=rf"k must be from 1 to the 4 repeat\(s\) per case, got k={k}"):
            repeated.flaky(k=k)


def test_flaky_pass_at_k_is_the_share_of_k_subsets() -> None:
    # The unbiased estimators count, over every k-subset of the n repeats, those with at
    # least one pass (pass@k) or only passes (pass^k).
    outcomes = [1, 0, 1, 1, 0, 0]  # 3 passes in 6 repeats
    frame = cases_frame({"a": [outcomes], "b": [outcomes]})
    cmp = compare(frame, "a", "b", n_resamples=100)
    for k in range(1, 7):
        row = cmp.flaky("a", k=k).iloc[0]
        subsets = list(itertools.combinations(outcomes, k))
        assert row["pass@k"] == pytest.approx(sum(any(s) for s in subsets) / len(subsets))
        assert row["pass^k"] == pytest.approx(sum(all(s) for s in subsets) / len(subsets))
    assert cmp.flaky("a", k=1).iloc[0]["pass@k"] == pytest.approx(0.5)  # pass@1 is the pass rate


def test_flaky_counts_only_scored_repeats() -> None:
    frame = cases_frame({"a": [[1, 0, 1, 1], [1, 0, 0, 1]], "b": [[1, 1, 1, 1], [1, 1, 1, 1]]})
    frame.loc[(frame.variant == "a") & (frame.case_id == "c000") & (frame.repeat == 3), "score.label_match"] = np.nan
    cmp = compare(frame, "a", "b", n_resamples=100)
    flaky = cmp.flaky("a").set_index("case_id")
    # c000 has 3 scored repeats (2 passes): its default k is 3, not the 4 repeats run.
    assert flaky.loc["c000", ["repeats", "passes", "k"]].tolist() == [3, 2, 3]
    assert flaky.loc["c001", ["repeats", "passes", "k"]].tolist() == [4, 2, 4]
    with pytest.raises(ValueError, match=r"k=4 is more than the 3 scored repeats of case 'c000'"):
        cmp.flaky("a", k=4)


def test_flaky_without_repeats_is_empty(win_cases: pd.DataFrame) -> None:
    flaky = compare(win_cases, "zero_shot", "few_shot", n_resamples=200).flaky()
    assert flaky.empty and "pass@k" in flaky.columns


def test_errored_rows_are_dropped_and_counted(win_cases: pd.DataFrame) -> None:
    frame = win_cases.copy()
    bad = frame.index[(frame.variant == "few_shot")][:5]
    frame.loc[bad, "score.label_match"] = np.nan
    frame.loc[bad, "error"] = "RateLimitError"
    frame.loc[frame.index[(frame.variant == "zero_shot")][10], "score.label_match"] = np.nan
    cmp = compare(frame, "zero_shot", "few_shot", n_resamples=500)
    row = cmp["label_match"]
    assert row.n_dropped == 6 and row.n_cases == 144
    assert "6 pair(s) without a score" in row.verdict
    assert (cmp.n_errors_baseline, cmp.n_errors_candidate) == (0, 5)
    assert any("few_shot 5" in n for n in cmp.notes)


def test_all_pairs_errored_leaves_nothing_to_test() -> None:
    frame = cases_frame({"a": [1.0, 0.0], "b": [np.nan, np.nan]})
    cmp = compare(frame, "a", "b", n_resamples=100)
    assert cmp["label_match"].n_cases == 0 and "No scored pairs" in cmp.verdicts[0]


def test_several_models_need_model_argument(win_cases: pd.DataFrame) -> None:
    other = win_cases.assign(model="model-b")
    both = pd.concat([win_cases, other], ignore_index=True)
    with pytest.raises(ValueError, match=r"several models \['model-a', 'model-b'\]"):
        compare(both, "zero_shot", "few_shot")
    cmp = compare(both, "zero_shot", "few_shot", model="model-b", n_resamples=200)
    assert cmp.model == "model-b" and cmp["label_match"].n_cases == 150
    with pytest.raises(ValueError, match="model 'model-c'"):
        compare(both, "zero_shot", "few_shot", model="model-c")


def test_bad_arguments(win_cases: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="variant 'nope'"):
        compare(win_cases, "zero_shot", "nope")
    with pytest.raises(ValueError, match="not scored on both sides"):
        compare(win_cases, "zero_shot", "few_shot", scorers=["f1"])
    with pytest.raises(ValueError, match="duplicate"):
        compare(pd.concat([win_cases, win_cases.iloc[:1]]), "zero_shot", "few_shot")
    with pytest.raises(ValueError, match="no column"):
        compare(win_cases.drop(columns="repeat"), "zero_shot", "few_shot")


def test_compare_results_across_runs(win_cases: pd.DataFrame) -> None:
    old = win_cases[win_cases.variant == "zero_shot"]
    new = win_cases[win_cases.variant == "few_shot"].assign(variant="zero_shot")
    cmp = compare_results(old, new, n_resamples=500)
    assert (cmp.baseline, cmp.candidate) == ("zero_shot (baseline)", "zero_shot (candidate)")
    assert cmp.verdicts[0].startswith("zero_shot (candidate) beats zero_shot (baseline)")
    same = compare(win_cases, "zero_shot", "few_shot", n_resamples=500)
    assert cmp["label_match"].p_value == same["label_match"].p_value
    labelled = compare_results(old, new, baseline_label="v1", candidate_label="v2", n_resamples=200)
    assert labelled.verdicts[0].startswith("v2 beats v1")
    with pytest.raises(ValueError, match="exactly one variant"):
        compare_results(win_cases, new)


def test_outputs_for_people(win_cases: pd.DataFrame) -> None:
    cmp = compare(win_cases, "zero_shot", "few_shot", n_resamples=500)
    page = cmp._repr_html_()
    assert "<table" in page and "<script" not in page and "<style" not in page
    assert "<td>&lt; 0.001</td>" in page  # escaped, not a broken tag
    assert "few_shot beats zero_shot" in page
    frame = cmp.to_frame()
    assert frame.loc[0, "scorer"] == "label_match" and "p_adjusted" in frame.columns
    assert "few_shot (candidate) vs zero_shot (baseline), model model-a" in str(cmp)


def test_figures(repeated: Comparison) -> None:
    go = pytest.importorskip("plotly.graph_objects")
    from workbench.views.comparison_plots import plot_diff, plot_flips, plot_means

    means = plot_means(repeated)
    assert isinstance(means, go.Figure) and [t.name for t in means.data] == ["a", "b"]
    assert means.data[0].y[0] == pytest.approx(repeated["label_match"].mean_baseline * 100)
    diff = plot_diff(repeated)
    assert diff.data[0].x[0] == pytest.approx(repeated["label_match"].diff * 100)
    flips = plot_flips(repeated)
    row = repeated["label_match"]
    assert (flips.data[0].y[0], flips.data[1].y[0]) == (row.n_regressed, row.n_fixed)


def _three_variant_cases(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows = []
    for variant, rate in (("base", 0.5), ("cand_a", 0.62), ("cand_b", 0.5)):
        for i in range(n):
            rows.append({"case_id": f"c{i}", "variant": variant, "variant_version": variant, "model": "m",
                         "repeat": 0, "output": "x", "error": None,
                         "score.acc": float(rng.random() < rate), "score.len": float(rng.normal(10, 2))})  # fmt: skip
    return pd.DataFrame(rows)


def test_compare_many_adjusts_over_every_variant_and_scorer():
    from workbench.analysis.compare import compare, compare_many

    cases = _three_variant_cases()
    many = compare_many(cases, "base")
    assert [c.candidate for c in many] == ["cand_a", "cand_b"]
    raw = [r.p_value for c in many for r in c.results]
    expected = adjust_pvalues(raw, "holm")
    assert [r.p_adjusted for c in many for r in c.results] == pytest.approx(list(expected))
    # Adjusting over four tests is stricter than over the two scorers of one comparison.
    single = compare(cases, "base", "cand_a")
    assert many[0].results[0].p_adjusted >= single.results[0].p_adjusted
    assert "Holm-adjusted over 4 tests" in many[0].verdicts[0]


def test_rows_that_line_up_pair_as_a_join_would(win_cases: pd.DataFrame) -> None:
    """Two variants of one run line up row for row and are put side by side without a join; rows
    in another order (another run's) are joined. Both give the same pairs, sorted by case."""
    old = win_cases[win_cases.variant == "zero_shot"]
    new = win_cases[win_cases.variant == "few_shot"]
    aligned = compare_results(old, new, n_resamples=200)
    shuffled = compare_results(old, new.sample(frac=1, random_state=3), n_resamples=200)
    pd.testing.assert_frame_equal(aligned.pairs, shuffled.pairs)
    assert list(aligned.pairs["case_id"]) == sorted(old["case_id"])
    assert aligned.verdicts == shuffled.verdicts
