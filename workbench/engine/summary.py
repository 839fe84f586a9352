"""One row per variant x model: scores, errors, tokens, cost, latency; and the caveats to read."""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.core import schema as col
from workbench.core.outputs import tool_calls_from_json
from workbench.core.result import EarlyStop
from workbench.core.schema import SuccessRule
from workbench.scorers.base import BaseScorer


def summarize(
    cases: pd.DataFrame | Iterable[pd.DataFrame], scorers: Sequence[Any], *, success: SuccessRule | None = None
) -> pd.DataFrame:
    """One row per variant x model: scores, errors, tokens, cost, latency.

    ``cases`` is a results table, or the same table as consecutive frames (e.g.
    :meth:`~workbench.core.result.RunResult.iter_cases`): the figures are tallied a
    frame at a time, so a million-row run is summarised without holding it.

    Score means exclude failed calls (they are counted in ``error_rate``
    instead, never scored 0). A case is *successful* by the run's
    :class:`~workbench.core.schema.SuccessRule` (by default: its call succeeded
    and the first scorer gave at least 0.5); cost and tokens per successful
    case divide by that count. ``cost_usd`` is what the calls cost at list
    price (cache hits included, so variants compare fairly); ``cost_saved_usd``
    is the part the response cache did not pay again. Both are NaN when litellm
    has no price for the model ("unknown", not 0).

    An LLM judge's own calls are not in those task columns: ``<judge>.judge_cost_usd``
    and ``<judge>.judge_tokens`` count them apart; with ``samples`` > 1,
    ``<judge>.judge_spread_mean`` is the mean spread (max - min) of its repeated
    verdicts on one output, and ``<judge>.judge_self_agreement`` the share of
    outputs on which all its verdicts agreed.
    """
    success = success or SuccessRule()
    names = [s.name for s in scorers]
    tallies: dict[tuple[Any, Any], _Tally] = {}
    # Grouping copies every column it is given; prompts, reasons and messages are not read here,
    # inputs only for group metrics that read them (a hallucination rate reads the source texts).
    unread = {col.PROMPT, col.MESSAGE} | (set() if any(map(wants_tool_calls, scorers)) else {col.TOOL_CALLS})
    skipped = (col.REASON,) if any(map(wants_inputs, scorers)) else (col.INPUT, col.REASON)
    for frame in [cases] if isinstance(cases, pd.DataFrame) else cases:
        kept = frame[[c for c in frame.columns if c not in unread and not str(c).startswith(skipped)]]
        for key, group in kept.groupby([col.VARIANT, col.MODEL], sort=False):
            tally = tallies.get(key)
            if tally is None:
                tally = tallies[key] = _Tally(scorers, str(group[col.VARIANT_VERSION].iloc[0]))
            tally.add(group, success.successes(group, names))
    return pd.DataFrame([tally.row(variant, model) for (variant, model), tally in tallies.items()])


class _Tally:
    """What :func:`summarize` keeps of one variant x model while frames go by: sums, counts, latencies."""

    def __init__(self, scorers: Sequence[Any], version: str) -> None:
        self.scorers = scorers
        self.version = version
        self.n = self.errors = self.successes = self.cache_hits = 0
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.cost_known = True
        self.latencies: list[np.ndarray] = []
        # Scorers with group metrics (macro-F1...) see every output of the group at the end.
        self.grouped = {s.name for s in scorers if getattr(type(s), "aggregate", None) is not BaseScorer.aggregate}
        self.outputs: dict[str, list[Any]] = {name: [] for name in self.grouped}
        self.expected: dict[str, list[dict[str, Any]]] = {name: [] for name in self.grouped}
        self.inputs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in scorers if wants_inputs(s)}
        self.tool_calls: dict[str, list[Any]] = {s.name: [] for s in scorers if wants_tool_calls(s)}

    def _add(self, name: str, values: pd.Series) -> None:
        """Sum and count of the known values (a mean skips NaN, as pandas' does)."""
        self.sums[name] = self.sums.get(name, 0.0) + float(values.sum())
        self.counts[name] = self.counts.get(name, 0) + int(values.notna().sum())

    def add(self, group: pd.DataFrame, successes: pd.Series) -> None:
        ok = group[col.ERROR].isna()
        self.n += len(group)
        self.errors += int((~ok).sum())
        self.successes += int(successes.sum())
        for scorer in self.scorers:
            self._add(scorer.name, group[col.score_column(scorer.name)])
            if scorer.name in self.grouped:
                self.outputs[scorer.name] += list(group.loc[ok, col.OUTPUT])
                self.expected[scorer.name] += expectations(group[ok])
            if scorer.name in self.inputs:
                self.inputs[scorer.name] += inputs(group[ok])
            if scorer.name in self.tool_calls:
                cells = group.loc[ok, col.TOOL_CALLS] if col.TOOL_CALLS in group else [None] * int(ok.sum())
                self.tool_calls[scorer.name] += [tool_calls_from_json(c) for c in cells]
            if col.judge_column(scorer.name, "cost_usd") in group:
                judge_cost = group[col.judge_column(scorer.name, "cost_usd")]
                self._known(f"judge:{scorer.name}", bool(judge_cost.notna().all()))
                self._add(f"judge_cost:{scorer.name}", judge_cost)
                tokens = (
                    group[col.judge_column(scorer.name, "prompt_tokens")]
                    + group[col.judge_column(scorer.name, "completion_tokens")]
                )
                self._add(f"judge_tokens:{scorer.name}", tokens)
                spread = group[col.judge_column(scorer.name, "spread")]
                self._add(f"spread:{scorer.name}", spread)
                self._add(f"agreed:{scorer.name}", (spread == 0).astype(float).where(spread.notna()))
        self._add(col.PROMPT_TOKENS, group[col.PROMPT_TOKENS])
        self._add(col.COMPLETION_TOKENS, group[col.COMPLETION_TOKENS])
        self._add("tokens", group[col.PROMPT_TOKENS] + group[col.COMPLETION_TOKENS])
        self._known("task", bool(group[col.COST_USD].notna().all()))
        self._add(col.COST_USD, group[col.COST_USD])
        cached = group[col.CACHED].astype(bool) if col.CACHED in group else pd.Series(False, index=group.index)
        self.cache_hits += int(cached.sum())
        self._add("saved", group.loc[cached, col.COST_USD])
        self.latencies.append(group[col.LATENCY_S].to_numpy(dtype=float))

    def _known(self, what: str, known: bool) -> None:
        """Whether every cost seen so far of ``what`` (the task, or a judge) was known."""
        key = f"known:{what}"
        self.counts[key] = self.counts.get(key, 1) & int(known)

    def _mean(self, name: str) -> float:
        return self.sums[name] / self.counts[name] if self.counts.get(name) else math.nan

    def row(self, variant: Any, model: Any) -> dict[str, Any]:
        row: dict[str, Any] = {
            "variant": variant,
            "model": model,
            "variant_version": self.version,
            "n": self.n,
            "errors": self.errors,
            "error_rate": self.errors / self.n,
        }
        for scorer in self.scorers:
            row[scorer.name] = self._mean(scorer.name)
            if scorer.name in self.grouped:
                extra: dict[str, Any] = {"inputs": self.inputs[scorer.name]} if scorer.name in self.inputs else {}
                if scorer.name in self.tool_calls:
                    extra["tool_calls"] = self.tool_calls[scorer.name]
                group_metrics = scorer.aggregate(self.outputs[scorer.name], self.expected[scorer.name], **extra)
                for metric, value in group_metrics.items():
                    row[f"{scorer.name}.{metric}"] = value
            if f"judge_cost:{scorer.name}" in self.sums:
                known = self.counts[f"known:judge:{scorer.name}"]
                row[f"{scorer.name}.judge_cost_usd"] = self.sums[f"judge_cost:{scorer.name}"] if known else math.nan
                row[f"{scorer.name}.judge_tokens"] = int(self.sums[f"judge_tokens:{scorer.name}"])
                if self.counts[f"spread:{scorer.name}"]:
                    row[f"{scorer.name}.judge_spread_mean"] = self._mean(f"spread:{scorer.name}")
                    row[f"{scorer.name}.judge_self_agreement"] = self._mean(f"agreed:{scorer.name}")
        tokens = self.sums["tokens"]
        cost_known = bool(self.counts["known:task"])
        cost = self.sums[col.COST_USD] if cost_known else math.nan
        latency = np.concatenate(self.latencies)
        successes = self.successes
        row.update(
            cache_hits=self.cache_hits,
            cost_saved_usd=self.sums["saved"] if cost_known else math.nan,
            successes=successes,
            prompt_tokens_mean=self._mean(col.PROMPT_TOKENS),
            completion_tokens_mean=self._mean(col.COMPLETION_TOKENS),
            tokens_total=int(tokens),
            tokens_per_success=float(tokens / successes) if successes else math.nan,
            cost_usd=cost,
            cost_per_success=cost / successes if successes and cost_known else math.nan,
            latency_p50_s=float(np.percentile(latency, 50)),
            latency_p95_s=float(np.percentile(latency, 95)),
        )
        return row


def summary_columns(scorers: Sequence[Any], columns: Sequence[str]) -> list[str]:
    """The columns of the results table :func:`summarize` reads (of ``columns``, those there are).

    Outputs and expected values only when a scorer has group metrics (macro-F1...).
    """
    wanted = [col.VARIANT, col.MODEL, col.VARIANT_VERSION, col.ERROR, col.PROMPT_TOKENS, col.COMPLETION_TOKENS]
    wanted += [col.COST_USD, col.CACHED, col.LATENCY_S]
    for scorer in scorers:
        wanted += [col.score_column(scorer.name), *(col.judge_column(scorer.name, f) for f in col.JUDGE_TYPES)]
    if any(getattr(type(s), "aggregate", None) is not BaseScorer.aggregate for s in scorers):
        wanted += [col.OUTPUT, *col.columns(columns, col.EXPECTED)]
    if any(map(wants_inputs, scorers)):
        wanted += col.columns(columns, col.INPUT)
    if any(map(wants_tool_calls, scorers)):
        wanted.append(col.TOOL_CALLS)
    return [c for c in dict.fromkeys(wanted) if c in columns]


def wants_inputs(scorer: Any) -> bool:
    """Whether a scorer's group metrics read the cases' inputs (its ``aggregate`` takes ``inputs``)."""
    aggregate = getattr(type(scorer), "aggregate", None)
    if aggregate is None or aggregate is BaseScorer.aggregate:
        return False
    return "inputs" in inspect.signature(aggregate).parameters


def wants_tool_calls(scorer: Any) -> bool:
    """Whether a scorer's group metrics read the rows' tool calls (its ``aggregate`` takes ``tool_calls``)."""
    aggregate = getattr(type(scorer), "aggregate", None)
    if aggregate is None or aggregate is BaseScorer.aggregate:
        return False
    return "tool_calls" in inspect.signature(aggregate).parameters


def inputs(cases: pd.DataFrame) -> list[dict[str, Any]]:
    """The inputs (template variables) of each row, as scorers receive them."""
    columns = col.columns(cases.columns, col.INPUT)
    renamed = cases[columns].rename(columns=lambda c: c.removeprefix(col.INPUT))
    return renamed.to_dict(orient="records")  # type: ignore[return-value]


def expectations(cases: pd.DataFrame) -> list[dict[str, Any]]:
    """The expected values of each row, as scorers receive them."""
    columns = col.columns(cases.columns, col.EXPECTED)
    renamed = cases[columns].rename(columns=lambda c: c.removeprefix(col.EXPECTED))
    return renamed.to_dict(orient="records")  # type: ignore[return-value]


def notes_for(summary: pd.DataFrame, *, early_stop: EarlyStop | None = None) -> list[str]:
    """Caveats a reader of the summary must see: an early stop (first), unknown prices, failed calls."""
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
    first = [early_stop.note] if early_stop is not None else []
    return first + sorted(set(notes))
