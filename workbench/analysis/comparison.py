"""The result of a paired comparison, and how it reads: per-scorer results, flips, flaky cases, text, HTML.

Built by :func:`workbench.analysis.compare.compare` (and ``compare_results``,
``compare_many``); :func:`workbench.analysis.gate.gate` decides on it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from workbench.analysis.outcome import Adjust, ScorerComparison
from workbench.analysis.passk import flaky_cases
from workbench.analysis.wording import ADJUST_NAMES, RESULT_WORDS, _diff, _fmt_p, _mean, _num
from workbench.core import schema as col
from workbench.core.exceptions import UnknownNameError, UsageError
from workbench.core.html import frame_html, render

__all__ = ["Comparison", "ScorerComparison"]


@dataclass(eq=False)
class Comparison:
    """Result of :func:`compare`: one :class:`ScorerComparison` per scorer, plus the pairs.

    ``pairs`` has one row per paired call: ``case_id``, ``repeat``, the ``input.*`` and
    ``expected.*`` columns, then ``baseline.output``, ``baseline.error``,
    ``baseline.score.<name>`` and the same for ``candidate.``. ``baseline_rows`` and
    ``candidate_rows`` are each side's rows with the columns a comparison reads (ids,
    variant, model, repeat, output, error, scores, inputs, expected values). ``run_notes``:
    what a comparison across runs adds to :attr:`notes` (cases without a counterpart,
    datasets that differ).

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
    run_notes: list[str] = field(default_factory=list, repr=False)

    def __getitem__(self, scorer: str) -> ScorerComparison:
        for row in self.results:
            if row.scorer == col.scorer_name(scorer):
                return row
        raise UnknownNameError(f"no scorer {scorer!r} in this comparison; scorers: {self.scorers!r}")

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
            raise UsageError(f"flips need a pass/fail scorer; {scorer!r} is continuous")
        binary = [r.scorer for r in self.results if r.kind == "binary"]
        names = [n for n in binary if scorer in (None, n, col.score_column(n))]
        ctx = [c for c in self.pairs.columns if c.startswith((col.INPUT, col.EXPECTED))]
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
        :mod:`workbench.analysis.passk`); they need ``k <= n``, the case's scored repeats. At the
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
            raise UsageError(f"unknown variant {variant!r}; use one of {list(sides)!r}")
        repeats = max(int(rows.groupby("case_id").size().max()) for rows in sides.values())
        if k is not None and not 1 <= k <= repeats:
            raise UsageError(
                f"k must be from 1 to the {repeats} repeat(s) per case, got k={k!r}: pass@k and "
                "pass^k are estimated from the repeats, so k cannot exceed them"
            )
        inputs = [c for c in self.pairs.columns if c.startswith(col.INPUT)]
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


# --- a whole comparison --------------------------------------------------------------------


def _notes(c: Comparison) -> list[str]:
    """What else a reader must know: adjustment, unpaired rows, errored calls."""
    notes = []
    if is_adjusted(c):
        notes.append(
            f"p-values are {ADJUST_NAMES[c.adjust]}-adjusted across {_n_tested(c)} "
            "scorers; confidence intervals are not adjusted."
        )
    if c.n_unpaired:
        notes.append(f"{c.n_unpaired} rows had no counterpart (case_id, repeat) and were ignored.")
    if c.n_errors_baseline or c.n_errors_candidate:
        notes.append(
            f"Errored calls: {c.baseline} {c.n_errors_baseline}, {c.candidate} "
            f"{c.n_errors_candidate}; they have no score and are left out of the tests."
        )
    return [*notes, *c.run_notes]


def _text(c: Comparison) -> str:
    """Plain text: a title line, one bullet per verdict, then the notes."""
    head = f"{c.candidate} (candidate) vs {c.baseline} (baseline)" + _on_model(c)
    return "\n".join([head, *(f"- {v}" for v in c.verdicts), *c.notes])


def _html(c: Comparison) -> str:
    """The notebook view: title, one table row per scorer, verdicts, notes (inline HTML, no scripts)."""
    adjusted = is_adjusted(c)
    columns = ["scorer", "n", c.baseline, c.candidate, "diff", f"{c.confidence:.0%} CI", "p"]
    if adjusted:
        columns.append(f"p ({ADJUST_NAMES[c.adjust]})")
    columns += ["effect size", "result"]
    rows = [table_row(r, adjusted) for r in c.results]
    table = frame_html(pd.DataFrame(rows, columns=columns))
    return render("comparison.html.j2", c=c, on_model=_on_model(c), table=table)


def table_row(r: ScorerComparison, adjusted: bool) -> list[str]:
    """The table cells of one scorer."""
    n = f"{r.n_cases}" + (f" x {r.n_repeats}" if r.n_repeats > 1 else "")
    ci = f"[{_num(r.ci_low, r.kind)}, {_num(r.ci_high, r.kind)}]"
    row = [r.scorer, n, _mean(r.mean_baseline, r.kind), _mean(r.mean_candidate, r.kind)]
    row += [_diff(r.diff, r.kind), ci, _fmt_p(r.p_value, bare=True)]
    if adjusted:
        row.append(_fmt_p(r.p_adjusted, bare=True))
    row += [f"{r.effect_size_name} {r.effect_size:+.2f}", RESULT_WORDS[r.direction]]
    return row


def _on_model(c: Comparison) -> str:
    return f", model {c.model}" if c.model else ""


def _n_tested(c: Comparison) -> int:
    return sum(not math.isnan(r.p_value) for r in c.results)


def is_adjusted(c: Comparison) -> bool:
    # compare never adjusts a single test, whatever ``adjust`` says: neither do the notes.
    return c.adjust != "none" and _n_tested(c) > 1
