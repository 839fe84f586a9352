"""Compare a candidate prompt variant with a baseline on a cases DataFrame.

Rows of the two variants are paired by ``(case_id, repeat)`` for one model. For each scorer,
repeats are averaged within a case (the case is the unit of evidence), then:

- pass/fail scorer with one call per case: exact McNemar test;
- otherwise: paired sign-flip permutation test on per-case means;
- the CI of the difference is a cluster bootstrap over cases;
- p-values are adjusted across scorers (Holm by default) when there is more than one.

Scores are assumed to be "higher is better". Pairs where either side has no score (the call
errored or the scorer could not score) are dropped for that scorer and counted.

Deciding whether a candidate may ship is :func:`workbench.analysis.gate.gate`. The pairing and the
per-scorer tests live in :mod:`workbench.analysis.pairing`; the result, :class:`Comparison`
(re-exported here), in :mod:`workbench.analysis.comparison`; the sentences are written by
:mod:`workbench.analysis.wording`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pandas as pd

from workbench.analysis.comparison import Comparison
from workbench.analysis.outcome import Adjust, ScorerComparison
from workbench.analysis.pairing import (
    _adjust_and_decide,
    _build,
    _n_errors,
    _one_run,
    _Options,
    _pick_model,
    _require_columns,
    _slim,
    comparison_columns,
)
from workbench.analysis.wording import _verdict
from workbench.core import schema as col
from workbench.core.exceptions import UsageError
from workbench.core.result import RunResult

__all__ = ["Comparison", "ScorerComparison", "compare", "compare_many", "compare_results", "compare_run", "ranking"]


def compare(
    cases: pd.DataFrame,
    baseline: str,
    candidate: str,
    *,
    model: str | None = None,
    scorers: Sequence[str] | None = None,
    confidence: float = 0.95,
    adjust: Adjust = "holm",
    n_resamples: int = 10_000,
    seed: int = 0,
) -> Comparison:
    """Compare two variants of one run, paired by ``(case_id, repeat)`` on one model.

    Args:
        cases: The runner's cases DataFrame.
        baseline: Name of the baseline variant.
        candidate: Name of the candidate variant.
        model: Model to compare on; required when the two variants ran on several models.
        scorers: Scorer names (``"label_match"`` or ``"score.label_match"``); default all.
        confidence: Level of the CIs; ``1 - confidence`` is the tests' significance level.
        adjust: Multiple-comparison adjustment of p-values across scorers.
        n_resamples: Bootstrap and permutation resamples.
        seed: Random seed, so that a report reproduces exactly.

    Returns:
        A :class:`Comparison`; in a notebook it shows as a table plus verdicts.

    Example:
        >>> cmp = compare(cases, "zero_shot", "few_shot", model="gpt-4o-mini")  # doctest: +SKIP
        >>> print(cmp.verdicts[0])  # doctest: +SKIP
        few_shot beats zero_shot on label_match by +18.0 pts [95% CI +10.7, +25.3], p < 0.001 ...
    """
    _require_columns(cases, "cases")
    variants = sorted(map(str, cases["variant"].unique()))
    for name in (baseline, candidate):
        if name not in variants:
            raise UsageError(f"variant {name!r} is not in cases; variants: {variants!r}")
    if baseline == candidate:
        raise UsageError(f"baseline and candidate are both {baseline!r}; to compare two runs use compare_results")
    wanted = cases["variant"].isin([baseline, candidate])
    model = _pick_model(cases.loc[wanted, ["model"]], model, baseline, candidate)
    on_model, rows = cases["model"] == model, _slim(cases)  # one copy per side, of what is read
    base, cand = rows[on_model & (cases["variant"] == baseline)], rows[on_model & (cases["variant"] == candidate)]
    options = _Options(confidence, adjust, n_resamples, seed)
    return _comparison(base, cand, baseline, candidate, model, scorers, options)


def compare_results(
    baseline_cases: pd.DataFrame | RunResult,
    candidate_cases: pd.DataFrame | RunResult,
    *,
    baseline_variant: str | None = None,
    candidate_variant: str | None = None,
    baseline_label: str | None = None,
    candidate_label: str | None = None,
    model: str | None = None,
    scorers: Sequence[str] | None = None,
    confidence: float = 0.95,
    adjust: Adjust = "holm",
    n_resamples: int = 10_000,
    seed: int = 0,
) -> Comparison:
    """Compare two runs (e.g. last week's against today's), one variant of each on one model.

    Each side is a cases DataFrame holding one variant on one model, or a whole run (an
    :class:`~workbench.ExperimentResult`, e.g. from :func:`workbench.load_run`): then
    ``baseline_variant`` / ``candidate_variant`` pick its variant (needed when it ran
    several). Cases pair by ``(case_id, repeat)``; the comparison's notes say how many
    cases of each side found no counterpart, and whether the two runs' datasets differ.

    Labels default to the variant names, with " (baseline)" / " (candidate)" appended when
    both runs used the same name. The two models may differ (a model A/B test). ``model``
    filters both sides; other arguments are as in :func:`compare`.

    Example:
        >>> old = wb.load_run("sentiment@production")  # doctest: +SKIP
        >>> cmp = compare_results(old, result, candidate_variant="few_shot")  # doctest: +SKIP
    """
    base = _one_run(_side(baseline_cases, baseline_variant, model, "baseline"), "baseline_cases", model)
    cand = _one_run(_side(candidate_cases, candidate_variant, model, "candidate"), "candidate_cases", model)
    same = base.variant == cand.variant
    blabel = baseline_label or (f"{base.variant} (baseline)" if same else base.variant)
    clabel = candidate_label or (f"{cand.variant} (candidate)" if same else cand.variant)
    shown = base.model if base.model == cand.model else f"{base.model} vs {cand.model}"
    options = _Options(confidence, adjust, n_resamples, seed)
    comparison = _comparison(base.rows, cand.rows, blabel, clabel, shown, scorers, options)
    comparison.run_notes.extend(_pairing_notes(base.rows, cand.rows, baseline_cases, candidate_cases))
    return comparison


def _side(cases: pd.DataFrame | RunResult, variant: str | None, model: str | None, what: str) -> pd.DataFrame:
    """One side's rows: the frame as given, or one variant's rows read from a run's file."""
    if not isinstance(cases, RunResult):
        if variant is not None:
            cases = cases[cases["variant"] == variant]
        return cases
    names = [v.name for v in cases.experiment.variants]
    variant = variant or cases.picked_variant
    if variant is None:
        if len(names) > 1:
            raise UsageError(
                f"the {what} run {cases.run_id or cases.name!r} ran variants {names}; say which with {what}_variant=..."
            )
        variant = names[0]
    if variant not in names:
        raise UsageError(
            f"the {what} run {cases.run_id or cases.name!r} has no variant {variant!r}; its variants: {names}"
        )
    where: dict[str, Any] = {col.VARIANT: variant}
    if model is not None:
        where[col.MODEL] = model
    return cases.read_cases(comparison_columns(cases.cases_file.columns), where=where)


def _pairing_notes(
    base: pd.DataFrame, cand: pd.DataFrame, baseline: pd.DataFrame | RunResult, candidate: pd.DataFrame | RunResult
) -> list[str]:
    """What a reader of a cross-run comparison must know: cases without a counterpart, datasets that differ."""
    notes = []
    base_ids, cand_ids = set(base[col.CASE_ID]), set(cand[col.CASE_ID])
    only_base, only_cand = len(base_ids - cand_ids), len(cand_ids - base_ids)
    if only_base or only_cand:
        notes.append(
            f"{len(base_ids & cand_ids)} cases are in both runs and compared; {only_base} baseline case(s) are not "
            f"in the candidate run and {only_cand} candidate case(s) are not in the baseline run."
        )
    if isinstance(baseline, RunResult) and isinstance(candidate, RunResult):
        old, new = baseline.experiment.dataset.content_hash, candidate.experiment.dataset.content_hash
        if old != new:
            notes.append(
                f"The two runs' datasets differ (hash {old} vs {new}): cases are paired by id, so a case whose "
                "text or expected value changed is compared as if it had not."
            )
    return notes


def _comparison(
    base: pd.DataFrame,
    cand: pd.DataFrame,
    blabel: str,
    clabel: str,
    model: str | None,
    scorers: Sequence[str] | None,
    options: _Options,
) -> Comparison:
    """Pair and test the two sides (:func:`workbench.analysis.pairing._build`), then wrap the result."""
    tested = _build(base, cand, blabel, clabel, scorers, options)
    return Comparison(
        baseline=blabel,
        candidate=clabel,
        model=model,
        results=tested.results,
        confidence=options.confidence,
        adjust=options.adjust,
        n_unpaired=len(base) + len(cand) - 2 * len(tested.pairs),
        n_errors_baseline=_n_errors(base),
        n_errors_candidate=_n_errors(cand),
        pairs=tested.pairs,
        baseline_rows=base,
        candidate_rows=cand,
    )


def compare_many(
    cases: pd.DataFrame,
    baseline: str,
    candidates: Sequence[str] | None = None,
    *,
    model: str | None = None,
    scorers: Sequence[str] | None = None,
    confidence: float = 0.95,
    adjust: Adjust = "holm",
    n_resamples: int = 10_000,
    seed: int = 0,
) -> list[Comparison]:
    """Compare several candidates with one baseline, adjusting p-values over *all* the tests.

    With three candidates and two scorers that is six tests, so each p-value is
    Holm-adjusted (or Benjamini-Hochberg) over six, not two: testing more
    variants must not make a lucky one look significant.

    Example:
        >>> for cmp in compare_many(cases, "zero_shot", ["few_shot", "cot"]):  # doctest: +SKIP
        ...     print(cmp.verdicts)
    """
    if candidates is None:
        candidates = [str(v) for v in dict.fromkeys(cases["variant"]) if v != baseline]
    raw = [
        compare(cases, baseline, c, model=model, scorers=scorers, confidence=confidence, adjust="none",
                n_resamples=n_resamples, seed=seed)
        for c in candidates
    ]  # fmt: skip
    options = _Options(confidence, adjust, n_resamples, seed)
    pooled = [r for cmp in raw for r in cmp.results]
    decided, note = _adjust_and_decide(pooled, options)
    if note:
        note = note.replace("-adjusted; ", f"-adjusted over {len(pooled)} tests; ")
    out, start = [], 0
    for cmp in raw:
        mine = decided[start : start + len(cmp.results)]
        start += len(cmp.results)
        mine = [replace(r, verdict=_verdict(r, cmp.baseline, cmp.candidate, options.alpha, note)) for r in mine]
        out.append(replace(cmp, results=mine, adjust=adjust if note else "none"))
    return out


def compare_run(
    result: RunResult,
    baseline: str | None = None,
    candidate: str | None = None,
    *,
    model: str | None = None,
    scorers: Sequence[str] | None = None,
    confidence: float = 0.95,
    adjust: Adjust = "holm",
    n_resamples: int = 10_000,
    seed: int = 0,
) -> Comparison:
    """Paired comparison of two variants of one run.

    Defaults: the first variant is the baseline; the candidate is the best other
    variant on the first scorer; the first model. Other arguments are as in :func:`compare`.
    Each side's rows are read from the run's file apart, with only the columns a
    comparison reads.
    """
    names = [v.name for v in result.experiment.variants]
    if len(names) < 2:
        raise UsageError(f"a comparison needs two variants; this result has {names}")
    model = model or result.experiment.models[0]
    baseline = baseline or names[0]
    if candidate is None:
        summary = result.summary
        others = summary[(summary[col.VARIANT] != baseline) & (summary[col.MODEL] == model)]
        if others.empty:
            raise UsageError(f"no variant other than {baseline!r} ran on {model!r}; nothing to compare")
        candidate = str(others.sort_values(result.scorer_names[0], ascending=False).iloc[0][col.VARIANT])
    for name in (baseline, candidate):
        if name not in names:
            raise UsageError(f"variant {name!r} is not in cases; variants: {sorted(names)!r}")
    if baseline == candidate:
        raise UsageError(f"baseline and candidate are both {baseline!r}; to compare two runs use compare_results")
    columns = comparison_columns(result.cases_file.columns)
    base = result.read_cases(columns, where={col.VARIANT: baseline, col.MODEL: model})
    cand = result.read_cases(columns, where={col.VARIANT: candidate, col.MODEL: model})
    if base.empty and cand.empty:
        models = sorted(map(str, result.experiment.models))
        raise UsageError(f"model {model!r} is not in cases for these variants; models: {models!r}")
    options = _Options(confidence, adjust, n_resamples, seed)
    return _comparison(base, cand, baseline, candidate, model, scorers, options)


def ranking(result: RunResult, metric: str) -> str:
    """One line naming the best variant on ``metric`` with its numbers (no test)."""
    ranked = result.summary.sort_values(metric, ascending=False, kind="stable")
    top = ranked.iloc[0]
    n_cases = result.read_cases([col.CASE_ID])[col.CASE_ID].nunique()
    if len(ranked) == 1:
        return f"{top['variant']} scored {top[metric]:.1%} on {metric} (n = {n_cases})"
    runner_up = ranked.iloc[1]
    return (
        f"{top['variant']} leads on {metric} with {top[metric]:.1%} vs "
        f"{runner_up['variant']} {runner_up[metric]:.1%} on {top['model']} (n = {n_cases} cases)"
    )
