"""Sequential testing: boundaries, the false-positive rate under repeated looks, and early stops in the engine."""

import dataclasses
import math
import zlib

import numpy as np
import pytest
from conftest import FakeLLM, sentiment_of
from scipy import stats as sps

import workbench as wb
from workbench.analysis.group_sequential import (
    BENEFIT,
    FUTILITY,
    HARM,
    SequentialDesign,
    _boundaries,
    obf_boundaries,
    obf_spending,
)

N_SIMULATIONS = 2_000
N_CASES = 400  # per simulated experiment: 5 looks at 80, 160, ... 400 complete cases


# --- boundaries -----------------------------------------------------------------------------


def test_one_look_is_the_fixed_sample_test():
    assert obf_boundaries([1.0], alpha=0.05)[0] == pytest.approx(1.959964, abs=1e-6)
    assert obf_boundaries([1.0], alpha=0.01)[0] == pytest.approx(2.575829, abs=1e-6)


def test_obrien_fleming_boundaries_decrease_and_match_published_values():
    five = obf_boundaries([0.2, 0.4, 0.6, 0.8, 1.0], alpha=0.05)
    # Lan-DeMets O'Brien-Fleming type, 5 equally spaced looks, two-sided 0.05 (gsDesign, ldbounds).
    assert five == pytest.approx([4.877, 3.357, 2.680, 2.290, 2.031], abs=2e-3)
    for fractions in ([0.2, 0.4, 0.6, 0.8, 1.0], [0.1, 0.15, 0.5, 1.0], np.arange(1, 11) / 10):
        assert np.all(np.diff(obf_boundaries(fractions)) < 0)


@pytest.mark.parametrize("fractions", [[0.2, 0.4, 0.6, 0.8, 1.0], [0.25, 0.3, 0.7, 1.0]])
def test_cumulative_alpha_spent_is_alpha_at_the_last_look(fractions):
    """Checked against the joint normal of the look statistics, integrated by scipy (not by our recursion)."""
    t = np.array(fractions)
    c = obf_boundaries(t, alpha=0.05)
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))  # corr(Z_i, Z_j) = sqrt(t_i / t_j)
    for k in range(1, len(t) + 1):
        joint = sps.multivariate_normal(mean=np.zeros(k), cov=cov[:k, :k])
        never_crossed = joint.cdf(c[:k], lower_limit=-c[:k], rng=np.random.default_rng(0))
        expected = 0.05 if k == len(t) else obf_spending(t[:k], 0.05)[-1]
        assert 1 - never_crossed == pytest.approx(expected, abs=1e-3 if k == len(t) else 2e-4)


def test_boundaries_are_deterministic():
    fractions = (0.15, 0.4, 0.55, 1.0)
    first = _boundaries.__wrapped__(fractions, 0.05)
    assert _boundaries.__wrapped__(fractions, 0.05) == first


# --- simulation -----------------------------------------------------------------------------


def _paired_binary(rng, p_baseline, p_candidate):
    """N_SIMULATIONS experiments of N_CASES cases each: candidate minus baseline, pass/fail outcomes."""
    baseline = rng.random((N_SIMULATIONS, N_CASES)) < p_baseline
    candidate = rng.random((N_SIMULATIONS, N_CASES)) < p_candidate
    return candidate.astype(float) - baseline.astype(float)


def test_aa_false_positive_rate_stays_at_alpha_under_repeated_looks():
    design = SequentialDesign.plan(N_CASES, alpha=0.05, looks=5, min_cases=None, min_detectable_diff=0.10)
    differences = _paired_binary(np.random.default_rng(2024), 0.7, 0.7)
    replay = design.replay(differences)
    # The same data, tested at 1.96 at every look: what the boundaries protect against.
    naive = dataclasses.replace(design, boundaries=(1.959964,) * design.looks, min_detectable_diff=None)
    naive_rate = naive.replay(differences).false_positive_rate
    print(
        f"\nA/A, {N_SIMULATIONS} experiments x {N_CASES} cases, looks at {design.schedule}: "
        f"false-positive rate {replay.false_positive_rate:.4f} (naive 1.96 at every look: {naive_rate:.4f}); "
        f"stopped for futility {replay.rate(FUTILITY):.1%}"
    )
    assert replay.false_positive_rate <= 0.05 + 0.01
    assert naive_rate > 0.05 + 0.01  # the simulation is sensitive enough to catch an inflated rate


def test_a_true_ten_point_difference_stops_before_the_full_sample_in_most_runs():
    design = SequentialDesign.plan(N_CASES, alpha=0.05, looks=5, min_cases=None, min_detectable_diff=0.10)
    replay = design.replay(_paired_binary(np.random.default_rng(7), 0.6, 0.7))
    print(
        f"\n+10 pts (60% -> 70%), {N_SIMULATIONS} experiments x {N_CASES} cases: "
        f"stopped early {replay.early_stop_rate:.1%}, found benefit {replay.rate(BENEFIT):.1%}, "
        f"harm {replay.rate(HARM):.1%}, futility {replay.rate(FUTILITY):.1%}, "
        f"calls saved {replay.saved_fraction:.1%} on average"
    )
    assert replay.early_stop_rate > 0.5
    assert replay.rate(BENEFIT) > 0.75
    assert replay.rate(HARM) == 0


def test_a_look_decides_harm_and_futility():
    design = SequentialDesign.plan(100, alpha=0.05, looks=4, min_cases=None, min_detectable_diff=0.2)
    worse = np.array([-1.0] * 15 + [0.0] * 10)
    assert design.assess(0, worse).decision == HARM
    flat = np.array([1.0, -1.0] * 2 + [0.0] * 71)  # 75 cases (the third look), mean 0, few flips
    assert design.assess(0, flat[:25]).decision == 0  # the first look's repeated CI is still too wide
    assessed = design.assess(2, flat)
    assert assessed.decision == FUTILITY and -0.2 < assessed.ci_low < assessed.ci_high < 0.2
    assert design.assess(3, np.resize(flat, 100)).decision == 0  # never futility at the last look


# --- the engine -----------------------------------------------------------------------------


def many_reviews(n):
    words = ["Lovely, works well.", "It broke on day one."]
    return wb.Dataset.from_records(
        [
            {"id": f"r{i:03d}", "review": f"{words[i % 2]} #{i}", "label": ["positive", "negative"][i % 2]}
            for i in range(n)
        ],
        expected=["label"],
    )


def make(variants, dataset, label_match):
    return wb.Experiment(
        name="sequential",
        variants=variants,
        dataset=dataset,
        models=["openai/gpt-4o-mini"],
        scorers=[label_match],
    )


def run(exp, fake, **kw):
    return exp.run(log_to_mlflow=False, progress=False, acompletion=fake, **kw)


def few_shot_is_right(model, messages):
    """few_shot (it has an example turn) reads the review; zero_shot always says positive (50%)."""
    return sentiment_of(messages) if len(messages) > 1 else "positive"


def test_a_planted_difference_stops_early_with_fewer_calls(fake_key, variants, label_match):
    exp = make(variants, many_reviews(200), label_match)
    fake = FakeLLM(few_shot_is_right)
    result = run(exp, fake, stop_early=wb.Sequential(looks=5))
    stop = result.early_stop
    assert stop.stopped and stop.decision == "benefit" and stop.look == 1 and stop.n_cases == 40
    assert stop.diff == pytest.approx(0.5) and stop.z > stop.boundary == pytest.approx(4.877, abs=2e-3)
    assert len(fake.calls) == result.calls_made == len(result.cases) < exp.n_calls == 400
    assert stop.calls_planned == 400 and stop.calls_saved == 400 - len(result.cases) > 200
    assert result.notes[0].startswith("stopped early for benefit at look 1 of 5 (n = 40 of 200 cases)")
    assert "few_shot beats zero_shot on label_match by +50.0 pts" in result.notes[0]
    assert f"{stop.calls_saved} of 400 planned calls saved" in result.notes[0]
    assert "O'Brien-Fleming" in result.notes[0]
    # Deterministic given the completed rows: the cached re-run decides the same, with no call.
    again = run(exp, FakeLLM(few_shot_is_right), stop_early=wb.Sequential(looks=5))
    assert again.calls_made == 0
    assert dataclasses.replace(again.early_stop, calls_run=0, calls_saved=0, note="") == dataclasses.replace(
        stop, calls_run=0, calls_saved=0, note=""
    )


def coin(model, messages):
    """Right 70% of the time, independently for each variant (crc32 of the whole prompt, no salt)."""
    text = "".join(m["content"] for m in messages) + str(len(messages))
    right = zlib.crc32(text.encode()) % 10 < 7
    truth = sentiment_of(messages)
    return truth if right else ("positive" if truth == "negative" else "negative")


def test_an_aa_run_does_not_stop_for_benefit_or_harm(fake_key, variants, label_match):
    exp = make(variants, many_reviews(200), label_match)
    result = run(exp, FakeLLM(coin), stop_early=wb.Sequential(looks=4, min_detectable_diff=0.15))
    stop = result.early_stop
    print(f"\nA/A engine run: {result.notes[0]}")
    assert stop.decision in (None, "futility")
    assert stop.decision != "futility" or (stop.stopped and -0.15 < stop.ci_low < stop.ci_high < 0.15)
    without = run(exp, FakeLLM(coin), cache=False, stop_early=wb.Sequential(looks=1))
    assert without.early_stop.decision is None and not without.early_stop.stopped
    assert without.notes[0].startswith("sequential monitoring did not stop the run: at look 1 of 1")
    assert without.early_stop.calls_saved == 0 and without.early_stop.boundary == pytest.approx(1.96, abs=1e-2)


@pytest.mark.parametrize(
    ("rule", "error", "message"),
    [
        (dict(metric="accuracy"), wb.UsageError, "metric='accuracy' is not a scorer"),
        (dict(baseline="cot"), wb.UsageError, "baseline='cot' is not a variant"),
        (dict(candidate="zero_shot"), wb.UsageError, "baseline and candidate are both 'zero_shot'"),
        (dict(model="openai/gpt-4o"), wb.UsageError, "model='openai/gpt-4o' is not a model"),
        (dict(min_cases=60), wb.UsageError, "min_cases=60 but the dataset has 50 cases"),
        (dict(min_cases=45, looks=10), wb.UsageError, "use fewer looks or a smaller min_cases"),
    ],
)
def test_a_rule_that_cannot_apply_fails_before_any_call(fake_key, variants, label_match, rule, error, message):
    fake = FakeLLM()
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(make(variants, many_reviews(50), label_match), fake, stop_early=wb.Sequential(**rule))
    assert fake.calls == []


def test_one_variant_or_no_scorer_fails_before_any_call(fake_key, variants, label_match):
    fake = FakeLLM()
    with pytest.raises(wb.UsageError, match=r"compares two variants, but experiment 'sequential' has \['zero_shot'\]"):
        run(make(variants[:1], many_reviews(50), label_match), fake, stop_early=wb.Sequential())
    exp = wb.Experiment(name="s", variants=variants, dataset=many_reviews(50), models=["openai/gpt-4o-mini"])
    with pytest.raises(wb.UsageError, match="needs a scorer to decide on"):
        run(exp, fake, stop_early=wb.Sequential())
    assert fake.calls == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("alpha", 0), ("alpha", 1.5), ("alpha", True), ("looks", 0), ("looks", 2.5), ("min_cases", 3),
     ("min_detectable_diff", -0.1)],
)  # fmt: skip
def test_bad_settings_name_the_field_and_the_fix(field, value):
    with pytest.raises(wb.UsageError, match=rf"Sequential: {field} must be .*; (e\.g\.|leave it out)"):
        wb.Sequential(**{field: value})


def test_repeats_are_averaged_within_a_case_and_unscored_pairs_left_out():
    exp = wb.Experiment(
        name="r",
        variants=[wb.PromptVariant(name="a", prompt="{{ x }}"), wb.PromptVariant(name="b", prompt="{{ x }}")],
        dataset=wb.Dataset.from_records([{"id": i, "x": i} for i in range(20)]),
        models=["openai/gpt-4o-mini"],
        scorers=[wb.ExactMatch(expected="x")],
        repeats=2,
    )
    monitor = wb.Sequential(looks=2, min_cases=10).monitor(exp)
    for case in range(10):
        for variant, scores in (("a", [0.0, 1.0]), ("b", [1.0, math.nan if case == 0 else 1.0])):
            for repeat, score in enumerate(scores):
                row = {"case_id": str(case), "variant": variant, "model": "openai/gpt-4o-mini", "repeat": repeat}
                monitor.row_done({**row, "score.exact_match": score})
    assert monitor.look == 0 and monitor.differences == [0.5] * 10  # case 0: b's one score, 1.0 - 0.5
    assert monitor.last is not None and monitor.last.n == 10


def test_a_look_reads_the_first_cases_of_the_dataset_whatever_order_calls_finish_in():
    """Calls finish in the order latency decides; the look must not depend on it."""
    exp = wb.Experiment(
        name="r",
        variants=[wb.PromptVariant(name="a", prompt="{{ x }}"), wb.PromptVariant(name="b", prompt="{{ x }}")],
        dataset=wb.Dataset.from_records([{"id": i, "x": i} for i in range(40)]),
        models=["openai/gpt-4o-mini"],
        scorers=[wb.ExactMatch(expected="x")],
    )
    # b is right on the first 20 cases only: a look at 20 cases in dataset order sees +100 pts.
    rows = [
        {"case_id": str(case), "variant": variant, "model": "openai/gpt-4o-mini", "repeat": 0,
         "score.exact_match": float(variant == "b" and case < 20)}
        for case in range(40)
        for variant in ("a", "b")
    ]  # fmt: skip
    decisions = []
    for order in (rows, rows[::-1], [rows[i] for i in np.random.default_rng(7).permutation(len(rows))]):
        monitor = wb.Sequential(looks=2, min_cases=20).monitor(exp)
        for row in order:
            monitor.row_done(row)
            if monitor.decided:
                break
        decisions.append((monitor.look, monitor.decision, monitor.differences[:20]))
    assert decisions[0][1] == "benefit" and decisions[0][2] == [1.0] * 20
    assert decisions[1] == decisions[0] and decisions[2] == decisions[0]
