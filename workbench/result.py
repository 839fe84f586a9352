"""What an experiment run returns: every case, and a summary per variant x model."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workbench.scorers.base import BaseScorer

if TYPE_CHECKING:
    from workbench.compare import Comparison
    from workbench.experiment import Experiment
    from workbench.side_by_side import SideBySide

#: A case counts as a success when its primary score is at least this.
SUCCESS_THRESHOLD = 0.5


def summarize(cases: pd.DataFrame, scorers: Sequence[Any]) -> pd.DataFrame:
    """One row per variant x model: scores, errors, tokens, cost, latency.

    Score means exclude failed calls (they are counted in ``error_rate``
    instead, never scored 0). A case is *successful* when its call succeeded
    and the first scorer gave at least ``SUCCESS_THRESHOLD``; cost and tokens
    per successful case divide by that count. ``cost_usd`` is what the calls
    cost at list price (cache hits included, so variants compare fairly);
    ``cost_saved_usd`` is the part the response cache did not pay again. Both
    are NaN when litellm has no price for the model ("unknown", not 0).

    An LLM judge's own calls are not in those task columns: ``<judge>.judge_cost_usd``
    and ``<judge>.judge_tokens`` count them apart; with ``samples`` > 1,
    ``<judge>.judge_spread_mean`` is the mean spread (max - min) of its repeated
    verdicts on one output, and ``<judge>.judge_self_agreement`` the share of
    outputs on which all its verdicts agreed.
    """
    rows = []
    primary = f"score.{scorers[0].name}" if scorers else None
    # Grouping copies every column it is given; prompts, inputs and reasons are not read here.
    grouped = cases[[c for c in cases.columns if c != "prompt" and not c.startswith(("input.", "reason."))]]
    for (variant, model), group in grouped.groupby(["variant", "model"], sort=False):
        ok = group["error"].isna()
        row: dict[str, Any] = {
            "variant": variant,
            "model": model,
            "variant_version": group["variant_version"].iloc[0],
            "n": len(group),
            "errors": int((~ok).sum()),
            "error_rate": float((~ok).mean()),
        }
        for scorer in scorers:
            column = group[f"score.{scorer.name}"]
            row[scorer.name] = float(column.mean()) if column.notna().any() else math.nan
            if getattr(type(scorer), "aggregate", None) is not BaseScorer.aggregate:  # group metrics only
                extra = scorer.aggregate(list(group.loc[ok, "output"]), _expectations(group[ok]))
                for metric, value in extra.items():
                    row[f"{scorer.name}.{metric}"] = value
            judge = f"judge.{scorer.name}."
            if judge + "cost_usd" in group:  # a scorer that calls a model: its usage, apart from the task's
                judge_cost = group[judge + "cost_usd"]
                judge_tokens = group[judge + "prompt_tokens"] + group[judge + "completion_tokens"]
                row[f"{scorer.name}.judge_cost_usd"] = float(judge_cost.sum()) if judge_cost.notna().all() else math.nan
                row[f"{scorer.name}.judge_tokens"] = int(judge_tokens.sum())
                spread = group[judge + "spread"].dropna()
                if len(spread):
                    row[f"{scorer.name}.judge_spread_mean"] = float(spread.mean())
                    row[f"{scorer.name}.judge_self_agreement"] = float((spread == 0).mean())
        successes = int((group[primary] >= SUCCESS_THRESHOLD).sum()) if primary else int(ok.sum())
        tokens = group["prompt_tokens"] + group["completion_tokens"]
        cost_known = bool(group["cost_usd"].notna().all())
        cost = float(group["cost_usd"].sum()) if cost_known else math.nan
        cached = group["cached"].astype(bool) if "cached" in group else pd.Series(False, index=group.index)
        saved = float(group.loc[cached, "cost_usd"].sum()) if cost_known else math.nan
        row.update(
            cache_hits=int(cached.sum()),
            cost_saved_usd=saved,
        )
        row.update(
            successes=successes,
            prompt_tokens_mean=float(group["prompt_tokens"].mean()),
            completion_tokens_mean=float(group["completion_tokens"].mean()),
            tokens_total=int(tokens.sum()),
            tokens_per_success=float(tokens.sum() / successes) if successes else math.nan,
            cost_usd=cost,
            cost_per_success=cost / successes if successes and cost_known else math.nan,
            latency_p50_s=float(np.percentile(group["latency_s"], 50)),
            latency_p95_s=float(np.percentile(group["latency_s"], 95)),
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _expectations(cases: pd.DataFrame) -> list[dict[str, Any]]:
    """The expected values of each row, as scorers receive them."""
    columns = [c for c in cases.columns if str(c).startswith("expected.")]
    renamed = cases[columns].rename(columns=lambda c: c.removeprefix("expected."))
    return renamed.to_dict(orient="records")  # type: ignore[return-value]


@dataclass
class ExperimentResult:
    """Everything one run produced.

    Attributes:
        name: The experiment's name.
        cases: One row per case x variant x model x repeat: inputs
            (``input.*``), expected values (``expected.*``), rendered
            ``prompt``, ``output``, ``error``, each ``score.*`` and
            ``reason.*``, tokens, ``cost_usd`` and ``latency_s``.
        summary: One row per variant x model (see :func:`summarize`).
        experiment: The definition that was run.
        run_id: MLflow parent run id, when logged.
        tracking_uri: Where that run lives.
        notes: Caveats worth reading (unknown prices, errors...).
        calls_made: Model calls this run actually made (cache hits excluded).
        timings: Wall-clock seconds of the run's phases (``calls_s``, ``mlflow_s``).
    """

    name: str
    cases: pd.DataFrame
    summary: pd.DataFrame
    experiment: Experiment
    run_id: str | None = None
    tracking_uri: str | None = None
    notes: list[str] = field(default_factory=list)
    calls_made: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_cases(cls, cases: pd.DataFrame, *, experiment: Experiment) -> ExperimentResult:
        """Summarise a cases frame (as the runner produces) into a result."""
        summary = summarize(cases, experiment.scorers)
        notes = []
        for _, row in summary.iterrows():
            if math.isnan(row["cost_usd"]):
                notes.append(
                    f"cost unknown for {row['model']!r}: litellm has no price for it (cost columns are NaN, not 0)"
                )
            if row["errors"]:
                notes.append(
                    f"{row['variant']} on {row['model']}: {row['errors']} of {row['n']} calls failed; "
                    "they are excluded from score means and counted in error_rate"
                )
        return cls(experiment.name, cases, summary, experiment, notes=sorted(set(notes)))

    @property
    def scorer_names(self) -> list[str]:
        return [s.name for s in self.experiment.scorers]

    def best(self, scorer: str | None = None) -> pd.Series:
        """The summary row with the highest mean for ``scorer`` (the first scorer by default)."""
        metric = scorer or self.scorer_names[0]
        return self.summary.sort_values(metric, ascending=False, kind="stable").iloc[0]

    def disagreements(self, scorer: str | None = None) -> pd.DataFrame:
        """Cases whose score differs between variants (same model and repeat), side by side.

        Columns: ``case_id``, ``model``, ``repeat``, the inputs, and per variant
        its output and score.
        """
        metric = f"score.{scorer or self.scorer_names[0]}"
        keys = ["case_id", "model", "repeat"]
        inputs = [c for c in self.cases.columns if c.startswith(("input.", "expected."))]
        wide = self.cases.pivot_table(index=keys, columns="variant", values=["output", metric], aggfunc="first")
        wide.columns = [f"{variant}:{'score' if value == metric else value}" for value, variant in wide.columns]
        score_cols = [c for c in wide.columns if c.endswith(":score")]
        differ = wide[score_cols].nunique(axis=1, dropna=False) > 1
        first = self.cases.drop_duplicates(keys).set_index(keys)[inputs]
        return first.join(wide[differ], how="inner").reset_index()

    def side_by_side(self, variants: Sequence[str] | None = None, **options: Any) -> SideBySide:
        """Outputs of two or more variants next to each other, with a word-level diff.

        ``options``: ``model``, ``scorer``, ``only`` (``"disagreements"`` or
        ``"failures"``), ``limit``, ``diff``; see :func:`workbench.side_by_side.side_by_side`.

        Example:
            >>> result.side_by_side(["zero_shot", "few_shot"], only="disagreements")  # doctest: +SKIP
        """
        from workbench.side_by_side import side_by_side

        return side_by_side(self, variants, **options)

    def confusion_matrix(self, *, variant: str, model: str | None = None, scorer: str | None = None) -> pd.DataFrame:
        """Confusion matrix of a classification scorer for one variant (and model)."""
        target = next(s for s in self.experiment.scorers if s.name == (scorer or self.scorer_names[0]))
        group = self.cases[(self.cases["variant"] == variant) & self.cases["error"].isna()]
        if model is not None:
            group = group[group["model"] == model]
        return target.confusion(list(group["output"]), _expectations(group))  # type: ignore[no-any-return]

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
        :func:`workbench.compare.compare` (``scorers``, ``adjust``, ``confidence``...).

        Example:
            >>> cmp = result.compare(baseline="zero_shot", candidate="few_shot")  # doctest: +SKIP
            >>> print(cmp.verdicts[0])  # doctest: +SKIP
        """
        from workbench.compare import compare

        names = [v.name for v in self.experiment.variants]
        if len(names) < 2:
            raise ValueError(f"a comparison needs two variants; this result has {names}")
        model = model or self.experiment.models[0]
        baseline = baseline or names[0]
        if candidate is None:
            others = self.summary[(self.summary["variant"] != baseline) & (self.summary["model"] == model)]
            candidate = str(others.sort_values(self.scorer_names[0], ascending=False).iloc[0]["variant"])
        return compare(self.cases, baseline, candidate, model=model, **options)

    def compare_all(self, baseline: str | None = None, *, model: str | None = None, **options: Any) -> list[Comparison]:
        """Every other variant against ``baseline`` (default: the first), p-values adjusted over all tests."""
        from workbench.compare import compare_many

        baseline = baseline or self.experiment.variants[0].name
        model = model or self.experiment.models[0]
        return compare_many(self.cases, baseline, model=model, **options)

    def verdict(self, scorer: str | None = None, *, comparison: Comparison | None = None) -> str:
        """One line naming the best variant on ``scorer`` with its numbers.

        With two or more variants it is the paired comparison's verdict (best
        other variant vs the first one, on the first model). Pass that
        ``comparison`` when it is already computed (``self.compare()``).
        """
        if scorer is None and not self.scorer_names:
            return f"{len(self.cases)} calls, no scorers: nothing to compare"
        metric = scorer or self.scorer_names[0]
        if len(self.experiment.variants) > 1 and self.cases[f"score.{metric}"].notna().any():
            try:
                return (comparison or self.compare())[metric].verdict
            except (ValueError, KeyError):
                pass  # e.g. nothing paired; fall back to the plain ranking below
        ranked = self.summary.sort_values(metric, ascending=False, kind="stable")
        top = ranked.iloc[0]
        n_cases = self.cases["case_id"].nunique()
        if len(ranked) == 1:
            return f"{top['variant']} scored {top[metric]:.1%} on {metric} (n = {n_cases})"
        runner_up = ranked.iloc[1]
        return (
            f"{top['variant']} leads on {metric} with {top[metric]:.1%} vs "
            f"{runner_up['variant']} {runner_up[metric]:.1%} on {top['model']} (n = {n_cases} cases)"
        )

    def _repr_html_(self) -> str:
        notes = "".join(f"<li>{n}</li>" for n in self.notes)
        return (
            f"<h4>{self.name}: {len(self.cases)} calls</h4>"
            + self.summary.to_html(index=False, float_format=lambda x: f"{x:.3g}")
            + (f"<ul>{notes}</ul>" if notes else "")
        )
