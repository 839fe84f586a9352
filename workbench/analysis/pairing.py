"""Internals of :mod:`workbench.analysis.compare`: checking, selecting and pairing rows, testing scorers.

:func:`~workbench.analysis.compare.compare` and :func:`~workbench.analysis.compare.compare_results` check
their arguments here, then :func:`_build` pairs the two sides by ``(case_id, repeat)``,
tests every scorer (:func:`_test_scorer`), adjusts the p-values across scorers and writes
the verdicts into :class:`~workbench.analysis.outcome.ScorerComparison` objects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from workbench.analysis import power, stats
from workbench.analysis.multiplicity import adjust_pvalues
from workbench.analysis.outcome import Direction, ScorerComparison, _Options
from workbench.analysis.wording import _POWER, ADJUST_NAMES, _verdict
from workbench.core import schema as col
from workbench.core.exceptions import UsageError

_KEYS = ["case_id", "repeat"]  # what pairs a baseline row with a candidate row
_REQUIRED = ("case_id", "variant", "model", "repeat")


@dataclass(frozen=True)
class _Run:
    """The rows of one variant on one model, as :func:`~workbench.analysis.compare.compare_results` takes them."""

    rows: pd.DataFrame
    variant: str
    model: str


def _require_columns(df: pd.DataFrame, what: str) -> None:
    missing = [c for c in _REQUIRED if c not in df.columns]
    if missing:
        raise UsageError(f"{what} has no column(s) {missing!r}; pass the runner's cases DataFrame")


def comparison_columns(columns: Sequence[str]) -> list[str]:
    """Of a results table's ``columns``, those a comparison reads; prompts, tokens, costs and
    latencies stay behind (on disk, when a run's cases are read with them)."""
    keep = (*_REQUIRED, "output", "error")
    return [str(c) for c in columns if c in keep or str(c).startswith((col.SCORE, col.INPUT, col.EXPECTED))]


def _slim(df: pd.DataFrame) -> pd.DataFrame:
    """The columns a comparison reads (:func:`comparison_columns`).

    Every selection below copies the columns it is given, which at 100,000 cases is tens of MB.
    """
    return df[comparison_columns(df.columns)]


def _pick_model(rows: pd.DataFrame, model: str | None, baseline: str, candidate: str) -> str:
    """The model to compare on: the given one, or the only one in ``rows``."""
    models = sorted(map(str, rows["model"].unique()))
    if model is None and len(models) > 1:
        raise UsageError(
            f"cases hold several models {models!r} for {baseline!r} and {candidate!r}; "
            "pass model=... to compare on one of them (compare_results compares across models)"
        )
    model = models[0] if model is None else model
    if model not in models:
        raise UsageError(f"model {model!r} is not in cases for these variants; models: {models!r}")
    return model


def _one_run(df: pd.DataFrame, what: str, model: str | None) -> _Run:
    """Check that ``df`` (filtered to ``model`` if given) holds one variant on one model."""
    _require_columns(df, what)
    df = _slim(df) if model is None else _slim(df)[df["model"] == model]
    for column in ("variant", "model"):
        found = sorted(map(str, df[column].unique()))
        if len(found) != 1:
            raise UsageError(
                f"{what} must hold exactly one {column}, found {found!r}; filter it first, "
                f"e.g. df[df[{column!r}] == {found[0] if found else '...'!r}]"
            )
    return _Run(df, str(df["variant"].iloc[0]), str(df["model"].iloc[0]))


def _common_scorers(base: pd.DataFrame, cand: pd.DataFrame, scorers: Sequence[str] | None) -> list[str]:
    """The scorers to compare: the requested ones (default all), scored on both sides."""
    common = [col.scorer_name(c) for c in base.columns if c.startswith(col.SCORE) and c in cand.columns]
    names = common if scorers is None else [col.scorer_name(s) for s in scorers]
    unknown = [s for s in names if s not in common]
    if unknown or not names:
        raise UsageError(f"scorer(s) {unknown!r} not scored on both sides; scored on both: {common!r}")
    return names


def _require_unique_keys(df: pd.DataFrame, label: str) -> None:
    # A duplicate (case_id, repeat) would pair one call with two and count it twice.
    dup = df.duplicated(_KEYS)
    if dup.any():
        first = tuple(df.loc[dup, _KEYS].iloc[0])
        raise UsageError(f"{label!r} has {int(dup.sum())} duplicate (case_id, repeat) rows, e.g. {first!r}")


def _pair(base: pd.DataFrame, cand: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Join baseline and candidate rows on (case_id, repeat); see ``Comparison.pairs``."""
    ctx = [c for c in base.columns if c.startswith((col.INPUT, col.EXPECTED))]
    own = ["output", "error"] + [col.score_column(s) for s in names]

    def side(df: pd.DataFrame, prefix: str, extra: list[str]) -> pd.DataFrame:
        renamed = {c: f"{prefix}.{c}" for c in own}
        return df.reindex(columns=_KEYS + extra + own).rename(columns=renamed)

    # The case context (inputs, expectations) is the same on both sides: keep it once.
    left, right = side(base, "baseline", ctx).reset_index(drop=True), side(cand, "candidate", [])
    if _same_keys(left, right):  # two variants of one run: rows already line up, no join needed
        pairs = pd.concat([left, right.drop(columns=_KEYS).reset_index(drop=True)], axis=1)
    else:
        pairs = left.merge(right, on=_KEYS)
    # Sorted by (case_id, repeat) through Arrow: pandas' multi-key sort builds a Python string per id.
    keys = pa.table({"case_id": pa.array(pairs[col.CASE_ID]), "repeat": pa.array(pairs[col.REPEAT])})
    order = pc.sort_indices(keys, sort_keys=[("case_id", "ascending"), ("repeat", "ascending")])
    return pairs.take(order.to_numpy()).reset_index(drop=True)


def _same_keys(left: pd.DataFrame, right: pd.DataFrame) -> bool:
    """Whether both sides hold the same ``(case_id, repeat)`` rows in the same order.

    Then pairing is putting the columns side by side: a join of 100,000 string keys holds
    about 30 MB more while it runs, for the same pairs.
    """
    if len(left) != len(right):
        return False
    return all(left[key].reset_index(drop=True).equals(right[key].reset_index(drop=True)) for key in _KEYS)


def _n_errors(df: pd.DataFrame) -> int:
    return int(df["error"].notna().sum()) if "error" in df else 0


# --- testing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tested:
    """What :func:`_build` found; :mod:`workbench.analysis.compare` wraps it in a ``Comparison``."""

    pairs: pd.DataFrame
    results: list[ScorerComparison]


def _build(
    base: pd.DataFrame,
    cand: pd.DataFrame,
    blabel: str,
    clabel: str,
    scorers: Sequence[str] | None,
    options: _Options,
) -> _Tested:
    """Pair the rows, test every scorer, adjust, decide and write the verdicts."""
    if options.adjust not in ("holm", "bh", "none"):
        raise UsageError(f"adjust must be 'holm', 'bh' or 'none', got {options.adjust!r}")
    names = _common_scorers(base, cand, scorers)
    _require_unique_keys(base, blabel)
    _require_unique_keys(cand, clabel)
    pairs = _pair(base, cand, names)
    results = [_test_scorer(pairs, name, options) for name in names]
    results, note = _adjust_and_decide(results, options)
    results = [replace(r, verdict=_verdict(r, blabel, clabel, options.alpha, note)) for r in results]
    return _Tested(pairs, results)


def _adjust_and_decide(results: list[ScorerComparison], options: _Options) -> tuple[list[ScorerComparison], str]:
    """Adjust the p-values across tested scorers, then decide significance and direction.

    Returns:
        The updated results and the note that prefixes the test name in verdicts.
    """
    tested = [i for i, r in enumerate(results) if not math.isnan(r.p_value)]
    # A single test has nothing to be adjusted against; calling it "Holm-adjusted" misleads.
    method = options.adjust if len(tested) > 1 else "none"
    adjusted = adjust_pvalues([results[i].p_value for i in tested], method)
    decided = list(results)
    for i, p in zip(tested, adjusted, strict=True):
        significant = bool(p < options.alpha)
        direction: Direction = "better" if decided[i].diff > 0 else "worse"
        decided[i] = replace(
            decided[i],
            p_adjusted=float(p),
            significant=significant,
            direction=direction if significant else "none",
        )
    note = "" if method == "none" else f"{ADJUST_NAMES[method]}-adjusted; "
    return decided, note


@dataclass(frozen=True)
class _TestOutcome:
    """What the test of one scorer found, before adjustment."""

    test: str
    p_value: float
    min_detectable_diff: float
    n_needed: int | None


_NOT_TESTED = _TestOutcome("none", math.nan, math.nan, None)


def _test_scorer(pairs: pd.DataFrame, name: str, options: _Options) -> ScorerComparison:
    """Estimate, CI and unadjusted test of one scorer over its scored pairs."""
    bcol, ccol = f"baseline.score.{name}", f"candidate.score.{name}"
    kept = pairs.dropna(subset=[bcol, ccol])
    # Pass/fail when every score seen, also in dropped pairs, is 0 or 1.
    binary = bool(pd.concat([pairs[bcol], pairs[ccol]]).dropna().isin([0.0, 1.0]).all())
    if kept[col.REPEAT].nunique() <= 1:  # one call per case: the rows are the cases (pairs are sorted by case)
        a, b, n = kept[bcol].to_numpy(dtype=float), kept[ccol].to_numpy(dtype=float), len(kept)
        reps = 1 if n else 0
    else:
        per = kept.groupby(col.CASE_ID, sort=True).agg(r=(bcol, "size"), a=(bcol, "mean"), b=(ccol, "mean"))
        a, b, n = per["a"].to_numpy(), per["b"].to_numpy(), len(per)
        reps = int(per["r"].max()) if n else 0
    # With repeats, a case passes when more than half of its repeats pass: a tie is a fail.
    fixed = int(((a <= 0.5) & (b > 0.5)).sum()) if binary else 0
    regressed = int(((a > 0.5) & (b <= 0.5)).sum()) if binary else 0
    p1 = p2 = low = high = effect = math.nan
    outcome, effect_name = _NOT_TESTED, ""
    if n:
        ci = stats.paired_bootstrap_ci(
            kept[bcol],
            kept[ccol],
            clusters=kept["case_id"],
            confidence=1 - options.alpha,  # the level that matches the tests' alpha
            n_resamples=options.n_resamples,
            seed=options.seed,
        )
        low, high, p1, p2 = ci.low, ci.high, float(a.mean()), float(b.mean())
        if binary and reps == 1:
            outcome = _mcnemar(n, p1, p2, fixed, regressed, options.alpha)
        else:
            outcome = _permutation(a, b, p1, p2, reps, options)
        if binary:
            effect, effect_name = stats.cohens_h(p1, p2), "Cohen's h"
        else:
            effect, effect_name = stats.cohens_dz(b - a), "Cohen's dz"
    return ScorerComparison(
        scorer=name,
        kind="binary" if binary else "continuous",
        n_cases=n,
        n_repeats=reps,
        n_dropped=len(pairs) - len(kept),
        mean_baseline=p1,
        mean_candidate=p2,
        diff=p2 - p1,
        ci_low=low,
        ci_high=high,
        test=outcome.test,
        p_value=outcome.p_value,
        p_adjusted=outcome.p_value,  # until _adjust_and_decide
        effect_size=effect,
        effect_size_name=effect_name,
        n_fixed=fixed,
        n_regressed=regressed,
        min_detectable_diff=outcome.min_detectable_diff,
        n_needed=outcome.n_needed,
        significant=False,
        direction="none",
        verdict="",
    )


def _mcnemar(n: int, p1: float, p2: float, fixed: int, regressed: int, alpha: float) -> _TestOutcome:
    """Exact McNemar test of pass/fail scores, one call per case, with its power numbers."""
    p = stats.mcnemar_exact(regressed, fixed)
    # Flips that cancel out stay; a real difference d adds d more discordant pairs.
    plan = {"alpha": alpha, "power": _POWER, "null_discordance": 2 * min(fixed, regressed) / n}
    mdd = power.min_detectable_diff(n, p1, **plan)
    needed = power.sample_size(p1, p2 - p1, **plan) if p2 != p1 else None
    return _TestOutcome("exact McNemar", p, mdd, needed)


def _permutation(a: np.ndarray, b: np.ndarray, p1: float, p2: float, reps: int, options: _Options) -> _TestOutcome:
    """Sign-flip permutation test of per-case means, with its power numbers."""
    test = "paired permutation" + (" on per-case means" if reps > 1 else "")
    p = stats.paired_permutation_test(a, b, n_resamples=options.n_resamples, seed=options.seed)
    n = a.size
    sd = float(np.std(b - a, ddof=1)) if n > 1 else 0.0
    plan = {"alpha": options.alpha, "power": _POWER}
    # All-equal differences (sd = 0) leave nothing to plan with.
    mdd = power.paired_mean_min_detectable_diff(n, sd, **plan) if sd > 0 else math.nan
    needed = None
    if sd > 0 and p2 != p1:
        needed = power.paired_mean_sample_size(sd, p2 - p1, **plan)
    return _TestOutcome(test, p, mdd, needed)
