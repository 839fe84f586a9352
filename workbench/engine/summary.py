"""One row per variant x model: scores, errors, tokens, cost, latency; and the caveats to read."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.core import schema as col
from workbench.core.result import EarlyStop
from workbench.core.schema import SuccessRule
from workbench.scorers.base import BaseScorer


def summarize(cases: pd.DataFrame, scorers: Sequence[Any], *, success: SuccessRule | None = None) -> pd.DataFrame:
    """One row per variant x model: scores, errors, tokens, cost, latency.

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
    rows = []
    # Grouping copies every column it is given; prompts, inputs, reasons and messages are not read here.
    unread = {col.PROMPT, col.MESSAGE, col.TOOL_CALLS}
    grouped = cases[[c for c in cases.columns if c not in unread and not c.startswith((col.INPUT, col.REASON))]]
    for (variant, model), group in grouped.groupby([col.VARIANT, col.MODEL], sort=False):
        ok = group[col.ERROR].isna()
        row: dict[str, Any] = {
            "variant": variant,
            "model": model,
            "variant_version": group[col.VARIANT_VERSION].iloc[0],
            "n": len(group),
            "errors": int((~ok).sum()),
            "error_rate": float((~ok).mean()),
        }
        for scorer in scorers:
            row.update(_scorer_columns(scorer, group, ok))
        successes = int(success.successes(group, names).sum())
        tokens = group[col.PROMPT_TOKENS] + group[col.COMPLETION_TOKENS]
        cost_known = bool(group[col.COST_USD].notna().all())
        cost = float(group[col.COST_USD].sum()) if cost_known else math.nan
        cached = group[col.CACHED].astype(bool) if col.CACHED in group else pd.Series(False, index=group.index)
        row.update(
            cache_hits=int(cached.sum()),
            cost_saved_usd=float(group.loc[cached, col.COST_USD].sum()) if cost_known else math.nan,
            successes=successes,
            prompt_tokens_mean=float(group[col.PROMPT_TOKENS].mean()),
            completion_tokens_mean=float(group[col.COMPLETION_TOKENS].mean()),
            tokens_total=int(tokens.sum()),
            tokens_per_success=float(tokens.sum() / successes) if successes else math.nan,
            cost_usd=cost,
            cost_per_success=cost / successes if successes and cost_known else math.nan,
            latency_p50_s=float(np.percentile(group[col.LATENCY_S], 50)),
            latency_p95_s=float(np.percentile(group[col.LATENCY_S], 95)),
        )
        rows.append(row)
    return pd.DataFrame(rows)


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
    return [c for c in dict.fromkeys(wanted) if c in columns]


def _scorer_columns(scorer: Any, group: pd.DataFrame, ok: pd.Series) -> dict[str, Any]:
    """A scorer's mean, its group metrics (macro-F1...) and, for a judge, its own usage."""
    values = group[col.score_column(scorer.name)]
    out: dict[str, Any] = {scorer.name: float(values.mean()) if values.notna().any() else math.nan}
    if getattr(type(scorer), "aggregate", None) is not BaseScorer.aggregate:  # group metrics only
        for metric, value in scorer.aggregate(list(group.loc[ok, col.OUTPUT]), expectations(group[ok])).items():
            out[f"{scorer.name}.{metric}"] = value
    if col.judge_column(scorer.name, "cost_usd") not in group:
        return out
    judge_cost = group[col.judge_column(scorer.name, "cost_usd")]
    judge_tokens = (
        group[col.judge_column(scorer.name, "prompt_tokens")]
        + group[col.judge_column(scorer.name, "completion_tokens")]
    )
    out[f"{scorer.name}.judge_cost_usd"] = float(judge_cost.sum()) if judge_cost.notna().all() else math.nan
    out[f"{scorer.name}.judge_tokens"] = int(judge_tokens.sum())
    spread = group[col.judge_column(scorer.name, "spread")].dropna()
    if len(spread):
        out[f"{scorer.name}.judge_spread_mean"] = float(spread.mean())
        out[f"{scorer.name}.judge_self_agreement"] = float((spread == 0).mean())
    return out


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
