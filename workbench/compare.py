"""Compare a candidate prompt variant with a baseline on a cases DataFrame.

Rows of the two variants are paired by ``(case_id, repeat)`` for one model. For each scorer,
repeats are averaged within a case (the case is the unit of evidence), then:

- pass/fail scorer with one call per case: exact McNemar test;
- otherwise: paired sign-flip permutation test on per-case means;
- the CI of the difference is a cluster bootstrap over cases;
- p-values are adjusted across scorers (Holm by default) when there is more than one.

Scores are assumed to be "higher is better". Pairs where either side has no score (the call
errored or the scorer could not score) are dropped for that scorer and counted.

Deciding whether a candidate may ship is :func:`workbench.gate.gate`. The pairing and the
per-scorer tests live in :mod:`workbench._pairing` (which also defines
:class:`ScorerComparison`, re-exported here); the sentences are written by
:mod:`workbench._verdict`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from workbench._pairing import (
    Adjust,
    ScorerComparison,
    _adjust_and_decide,
    _build,
    _n_errors,
    _one_run,
    _Options,
    _pick_model,
    _require_columns,
    _scorer_name,
    _slim,
)
from workbench._verdict import _html, _notes, _text, _verdict
from workbench.passk import flaky_cases

__all__ = ["Comparison", "ScorerComparison", "compare", "compare_results"]


@dataclass(eq=False)
class Comparison:
    """Result of :func:`compare`: one :class:`ScorerComparison` per scorer, plus the pairs.

    ``pairs`` has one row per paired call: ``case_id``, ``repeat``, the ``input.*`` and
    ``expected.*`` columns, then ``baseline.output``, ``baseline.error``,
    ``baseline.score.<name>`` and the same for ``candidate.``. ``baseline_rows`` and
    ``candidate_rows`` are each side's rows with the columns a comparison reads (ids,
    variant, model, repeat, output, error, scores, inputs, expected values).

    Example:
        >>> cmp = compare(cases, "zero_shot", "few_shot")  # doctest: +SKIP
        >>> cmp["label_match"].p_adjusted, cmp.verdicts  # doctest: +SKIP
    """

    baseline: str
    candidate: str
    model: str | None
    results: list[ScorerComparison]
    confidence: float
    adjust: Adjust
    n_unpaired: int
    n_errors_baseline: int
    n_errors_candidate: int
    pairs: pd.DataFrame = field(repr=False)
    baseline_rows: pd.DataFrame = field(repr=False)
    candidate_rows: pd.DataFrame = field(repr=False)

    def __getitem__(self, scorer: str) -> ScorerComparison:
        for row in self.results:
            if row.scorer == _scorer_name(scorer):
                return row
        raise KeyError(f"no scorer {scorer!r} in this comparison; scorers: {self.scorers!r}")

    @property
    def scorers(self) -> list[str]:
        """Scorer names, in order."""
        return [r.scorer for r in self.results]

    @property
    def verdicts(self) -> list[str]:
        """One plain-words verdict per scorer."""
        return [r.verdict for r in self.results]

    @property
    def notes(self) -> list[str]:
        """What else a reader must know: adjustment, unpaired rows, errored calls."""
        return _notes(self)

    def to_frame(self) -> pd.DataFrame:
        """One row per scorer, one column per :class:`ScorerComparison` field.

        Example:
            >>> cmp.to_frame()[["scorer", "diff", "p_adjusted"]]  # doctest: +SKIP
        """
        return pd.DataFrame([asdict(r) for r in self.results])

    def case_scores(self, scorer: str) -> pd.DataFrame:
        """Per-case mean scores for one scorer: the units the tests and CIs use.

        Returns:
            Columns ``case_id``, ``repeats``, ``baseline``, ``candidate``, ``diff``.

        Example:
            >>> cmp.case_scores("label_match").sort_values("diff").head()  # doctest: +SKIP
        """
        name = self[scorer].scorer
        bcol, ccol = f"baseline.score.{name}", f"candidate.score.{name}"
        kept = self.pairs.dropna(subset=[bcol, ccol])
        per = kept.groupby("case_id", sort=True).agg(
            repeats=(bcol, "size"), baseline=(bcol, "mean"), candidate=(ccol, "mean")
        )
        return per.assign(diff=per["candidate"] - per["baseline"]).reset_index()

    def flips(self, scorer: str | None = None) -> pd.DataFrame:
        """Cases whose pass/fail outcome changed, regressions (pass->fail) first.

        With repeats, a case passes when more than half of its repeats pass. A tie is a
        fail: with an even number of repeats, a case that passes exactly half of them (2 of
        4) counts as failing, as it does in ``n_fixed`` and ``n_regressed``. Each output
        shown comes from a repeat whose outcome is the case's outcome on that side, so that
        it shows the flip.

        Returns:
            Columns ``scorer``, ``case_id``, ``change`` ("regression" or "fix"),
            ``baseline_score``, ``candidate_score``, the ``input.*`` and ``expected.*``
            columns, ``baseline_output``, ``candidate_output``.

        Example:
            >>> cmp.flips("label_match").query("change == 'regression'")  # doctest: +SKIP
        """
        if scorer is not None and self[scorer].kind != "binary":
            raise ValueError(f"flips need a pass/fail scorer; {scorer!r} is continuous")
        binary = [r.scorer for r in self.results if r.kind == "binary"]
        names = [n for n in binary if scorer in (None, n, f"score.{n}")]
        ctx = [c for c in self.pairs.columns if c.startswith(("input.", "expected."))]
        columns = ["scorer", "case_id", "change", "baseline_score", "candidate_score", *ctx]
        columns += ["baseline_output", "candidate_output"]
        frames = [self._flips_of(name, ctx) for name in names]
        if not frames:
            return pd.DataFrame(columns=columns)
        out = pd.concat(frames).reset_index()
        # Regressions first, then scorers in comparison order, then cases.
        out = out.assign(
            _change=(out["change"] != "regression").astype(int),
            _scorer=out["scorer"].map(names.index),
        )
        return out.sort_values(["_change", "_scorer", "case_id"])[columns].reset_index(drop=True)

    def _flips_of(self, name: str, ctx: list[str]) -> pd.DataFrame:
        """The flipped cases of one pass/fail scorer, indexed by case_id."""
        per = self.case_scores(name).set_index("case_id")
        passed = {"baseline": per["baseline"] > 0.5, "candidate": per["candidate"] > 0.5}
        was, now = passed["baseline"], passed["candidate"]
        change = np.select([was & ~now, ~was & now], ["regression", "fix"], default="")
        per = per.assign(change=change, scorer=name)[change != ""]
        rows = self.pairs[self.pairs["case_id"].isin(per.index)]
        for side in ("baseline", "candidate"):
            # Show an output whose outcome is the case's outcome on this side (ties fail).
            typical = rows[(rows[f"{side}.score.{name}"] > 0.5) == rows["case_id"].map(passed[side])]
            outputs = typical.drop_duplicates("case_id").set_index("case_id")
            per[f"{side}_output"] = outputs[f"{side}.output"]
        per = per.join(rows.drop_duplicates("case_id").set_index("case_id")[ctx])
        return per.rename(columns={"baseline": "baseline_score", "candidate": "candidate_score"})

    def flaky(self, variant: str | None = None, *, k: int | None = None) -> pd.DataFrame:
        """Cases whose pass/fail score varies across repeats, least reliable first.

        ``pass@k`` and ``pass^k`` estimate the chance that at least one / all of k fresh
        attempts at a case pass (unbiased estimators from the repeats, see
        :mod:`workbench.passk`); they need ``k <= n``, the case's scored repeats. At the
        default ``k = n`` every flaky case has pass@k = 1 and pass^k = 0, since it passed at
        least once and failed at least once; a smaller k tells cases apart.
        Empty when nothing was repeated.

        Args:
            variant: The baseline or the candidate label; None for both.
            k: Attempts for pass@k and pass^k, from 1 to the number of repeats. Defaults to
                each case's number of scored repeats (errored or unscored repeats do not
                count, so a case with an errored repeat gets a smaller k).

        Returns:
            Columns ``variant``, ``scorer``, ``case_id``, ``repeats`` (scored repeats),
            ``passes``, ``pass_rate``, ``k``, ``pass@k``, ``pass^k`` and the ``input.*``
            columns.

        Raises:
            ValueError: ``variant`` is neither label, or ``k`` is below 1 or above the
                scored repeats of a case listed.

        Example:
            >>> cmp.flaky("few_shot", k=3).head()  # doctest: +SKIP
        """
        sides = {self.baseline: self.baseline_rows, self.candidate: self.candidate_rows}
        if variant is not None and variant not in sides:
            raise ValueError(f"unknown variant {variant!r}; use one of {list(sides)!r}")
        repeats = max(int(rows.groupby("case_id").size().max()) for rows in sides.values())
        if k is not None and not 1 <= k <= repeats:
            raise ValueError(
                f"k must be from 1 to the {repeats} repeat(s) per case, got k={k!r}: pass@k and "
                "pass^k are estimated from the repeats, so k cannot exceed them"
            )
        inputs = [c for c in self.pairs.columns if c.startswith("input.")]
        binary = [r.scorer for r in self.results if r.kind == "binary"]
        columns = ["variant", "scorer", "case_id", "repeats", "passes", "pass_rate", "k"]
        columns += ["pass@k", "pass^k", *inputs]
        frames = []
        for label, rows in sides.items():
            if variant in (None, label):
                frames += flaky_cases(label, rows, binary, inputs, k)
        if not frames:
            return pd.DataFrame(columns=columns)
        out = pd.concat(frames, ignore_index=True)
        out = out.sort_values(["variant", "scorer", "pass_rate", "case_id"])
        return out[columns].reset_index(drop=True)

    def __str__(self) -> str:
        return _text(self)

    def _repr_html_(self) -> str:
        return _html(self)


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
            raise ValueError(f"variant {name!r} is not in cases; variants: {variants!r}")
    if baseline == candidate:
        raise ValueError(f"baseline and candidate are both {baseline!r}; to compare two runs use compare_results")
    wanted = cases["variant"].isin([baseline, candidate])
    model = _pick_model(cases.loc[wanted, ["model"]], model, baseline, candidate)
    on_model, rows = cases["model"] == model, _slim(cases)  # one copy per side, of what is read
    base, cand = rows[on_model & (cases["variant"] == baseline)], rows[on_model & (cases["variant"] == candidate)]
    options = _Options(confidence, adjust, n_resamples, seed)
    return _comparison(base, cand, baseline, candidate, model, scorers, options)


def compare_results(
    baseline_cases: pd.DataFrame,
    candidate_cases: pd.DataFrame,
    *,
    baseline_label: str | None = None,
    candidate_label: str | None = None,
    model: str | None = None,
    scorers: Sequence[str] | None = None,
    confidence: float = 0.95,
    adjust: Adjust = "holm",
    n_resamples: int = 10_000,
    seed: int = 0,
) -> Comparison:
    """Compare two runs (e.g. last week's against today's), each one variant on one model.

    Labels default to the variant names, with " (baseline)" / " (candidate)" appended when
    both runs used the same name. The two models may differ (a model A/B test). ``model``
    filters both frames; other arguments are as in :func:`compare`.

    Example:
        >>> cmp = compare_results(old_cases, new_cases, baseline_label="v1.2")  # doctest: +SKIP
    """
    base = _one_run(baseline_cases, "baseline_cases", model)
    cand = _one_run(candidate_cases, "candidate_cases", model)
    same = base.variant == cand.variant
    blabel = baseline_label or (f"{base.variant} (baseline)" if same else base.variant)
    clabel = candidate_label or (f"{cand.variant} (candidate)" if same else cand.variant)
    shown = base.model if base.model == cand.model else f"{base.model} vs {cand.model}"
    options = _Options(confidence, adjust, n_resamples, seed)
    return _comparison(base.rows, cand.rows, blabel, clabel, shown, scorers, options)


def _comparison(
    base: pd.DataFrame,
    cand: pd.DataFrame,
    blabel: str,
    clabel: str,
    model: str | None,
    scorers: Sequence[str] | None,
    options: _Options,
) -> Comparison:
    """Pair and test the two sides (:func:`workbench._pairing._build`), then wrap the result."""
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
