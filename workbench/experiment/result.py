"""What an experiment run returns: every case, a summary per variant x model, and ways to read them.

:class:`ExperimentResult` is a :class:`~workbench.core.result.RunResult` (the
data) with the questions a notebook asks of it: which variant is best, is the
difference real (:meth:`~ExperimentResult.compare`), what do the outputs look
like next to each other (:meth:`~ExperimentResult.side_by_side`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import pandas as pd

from workbench.analysis.compare import Comparison, compare_many, compare_run, ranking
from workbench.analysis.pairing import comparison_columns
from workbench.core import schema as col
from workbench.core.exceptions import UsageError
from workbench.core.html import frame_html, render
from workbench.core.result import RunResult
from workbench.views.charts import confusion_matrix
from workbench.views.side_by_side import SideBySide, side_by_side


@dataclass
class ExperimentResult(RunResult):
    """Everything one run produced, and the questions a notebook asks of it.

    The data are :class:`~workbench.core.result.RunResult`'s: ``cases`` (one row
    per case x variant x model x repeat; the columns are listed in
    :mod:`workbench.core.schema`), ``summary`` (one row per variant x model),
    ``experiment``, ``run_id`` and ``tracking_uri``, ``notes``, ``calls_made``,
    ``timings``. The methods compare variants, show outputs side by side and
    say which variant wins.

    Example:
        >>> result = exp.run()  # doctest: +SKIP
        >>> result.compare().verdicts  # doctest: +SKIP
    """

    @classmethod
    def of(cls, result: RunResult) -> ExperimentResult:
        """The same result with the notebook methods (a no-op for an ExperimentResult)."""
        if isinstance(result, cls):
            return result
        return cls(**{f.name: getattr(result, f.name) for f in fields(RunResult)})

    def best(self, scorer: str | None = None) -> pd.Series:
        """The summary row with the highest mean for ``scorer`` (the first scorer by default)."""
        metric = scorer or self.scorer_names[0]
        return self.summary.sort_values(metric, ascending=False, kind="stable").iloc[0]

    def disagreements(self, scorer: str | None = None) -> pd.DataFrame:
        """Cases whose score differs between variants (same model and repeat), side by side.

        Columns: ``case_id``, ``model``, ``repeat``, the inputs, and per variant
        its output and score.
        """
        metric = col.score_column(scorer or self.scorer_names[0])
        keys = [col.CASE_ID, col.MODEL, col.REPEAT]
        inputs = col.columns(self.cases_file.columns, col.INPUT, col.EXPECTED)
        cases = self.read_cases([*keys, col.VARIANT, col.OUTPUT, metric, *inputs])
        wide = cases.pivot_table(index=keys, columns=col.VARIANT, values=[col.OUTPUT, metric], aggfunc="first")
        wide.columns = [f"{variant}:{'score' if value == metric else value}" for value, variant in wide.columns]
        score_cols = [c for c in wide.columns if c.endswith(":score")]
        differ = wide[score_cols].nunique(axis=1, dropna=False) > 1
        first = cases.drop_duplicates(keys).set_index(keys)[inputs]
        return first.join(wide[differ], how="inner").reset_index()

    def side_by_side(self, variants: Sequence[str] | None = None, **options: Any) -> SideBySide:
        """Outputs of two or more variants next to each other, with a word-level diff.

        ``options``: ``model``, ``scorer``, ``only`` (``"disagreements"`` or
        ``"failures"``), ``limit``, ``diff``; see :func:`workbench.views.side_by_side.side_by_side`.

        Example:
            >>> result.side_by_side(["zero_shot", "few_shot"], only="disagreements")  # doctest: +SKIP
        """
        return side_by_side(self, variants, **options)

    def confusion_matrix(self, *, variant: str, model: str | None = None, scorer: str | None = None) -> pd.DataFrame:
        """Confusion matrix of a classification scorer for one variant (and model)."""
        return confusion_matrix(self, variant=variant, model=model, scorer=scorer)

    def compare(
        self,
        baseline: str | None = None,
        candidate: str | None = None,
        *,
        model: str | None = None,
        **options: Any,
    ) -> Comparison:
        """Paired comparison of two variants: CIs, the right paired test, verdicts.

        Defaults: the first variant is the baseline and the best other variant
        (on the first scorer) the candidate; the first model. ``options`` go to
        :func:`workbench.analysis.compare.compare` (``scorers``, ``adjust``, ``confidence``...).

        Example:
            >>> cmp = result.compare(baseline="zero_shot", candidate="few_shot")  # doctest: +SKIP
            >>> print(cmp.verdicts[0])  # doctest: +SKIP
        """
        return compare_run(self, baseline, candidate, model=model, **options)

    def compare_all(self, baseline: str | None = None, *, model: str | None = None, **options: Any) -> list[Comparison]:
        """Every other variant against ``baseline`` (default: the first), p-values adjusted over all tests."""
        baseline = baseline or self.experiment.variants[0].name
        model = model or self.experiment.models[0]
        where = {col.MODEL: model} if model in self.experiment.models else None
        cases = self.read_cases(comparison_columns(self.cases_file.columns), where=where)
        return compare_many(cases, baseline, model=model, **options)

    def verdict(self, scorer: str | None = None, *, comparison: Comparison | None = None) -> str:
        """One line naming the best variant on ``scorer`` with its numbers.

        With two or more variants it is the paired comparison's verdict (best
        other variant vs the first one, on the first model). Pass that
        ``comparison`` when it is already computed (``self.compare()``).
        """
        if scorer is None and not self.scorer_names:
            return f"{self.n_rows} calls, no scorers: nothing to compare"
        metric = scorer or self.scorer_names[0]
        if len(self.experiment.variants) > 1 and _scored(self.summary, metric):
            try:
                return (comparison or self.compare())[metric].verdict
            except (UsageError, KeyError, IndexError):
                pass  # e.g. nothing paired; fall back to the plain ranking below
        return ranking(self, metric)

    def _repr_html_(self) -> str:
        table = frame_html(self.summary, float_format=lambda x: f"{x:.3g}")
        return render("result.html.j2", name=self.name, calls=self.n_rows, table=table, notes=self.notes)


def _scored(summary: pd.DataFrame, metric: str) -> bool:
    """Whether any variant x model has a score for ``metric`` (its mean is NaN otherwise)."""
    name = col.scorer_name(metric)
    return name in summary and bool(summary[name].notna().any())
