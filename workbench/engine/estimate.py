"""What a run will cost, before it runs.

Token counts come from litellm's token counter and prices from litellm's
price data. Completion tokens are unknown in advance: the estimate uses each
variant's ``max_tokens`` (an upper bound), or 256 when it has none. Calls the
response cache already holds cost nothing and are subtracted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import litellm
import pandas as pd

from workbench.core.exceptions import ModelError
from workbench.core.html import frame_html, render
from workbench.core.spec import ExperimentSpec
from workbench.engine.cache import ResponseCache
from workbench.engine.planning import plan

#: Completion tokens assumed for a variant without ``max_tokens``.
DEFAULT_COMPLETION_TOKENS = 256
#: Cases whose prompts are tokenised per variant; larger datasets are extrapolated.
SAMPLE_CASES = 500


def _completion_budget(params: Mapping[str, Any]) -> int:
    return int(params.get("max_tokens") or params.get("max_completion_tokens") or DEFAULT_COMPLETION_TOKENS)


def _price(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    """USD for these token counts; NaN when litellm has no price for ``model``."""
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
    except Exception:  # litellm raises for models missing from its price map
        return math.nan
    return float(prompt_cost + completion_cost)


def priced_as(experiment: ExperimentSpec, model: str) -> list[str]:
    """The litellm models whose prices bound a call to ``model``: a router group's deployments, else itself."""
    group = experiment.routers.get(model)
    return [d.model for d in group.deployments] if group is not None else [model]


def _most(models: Sequence[str], prompt_tokens: int, completion_tokens: int) -> float:
    """The highest price among ``models`` (any deployment may answer); NaN when one has none."""
    prices = [_price(m, prompt_tokens, completion_tokens) for m in models]
    return math.nan if any(math.isnan(p) for p in prices) else max(prices)


def count_tokens(model: str, messages: Sequence[Mapping[str, str]]) -> int:
    try:
        return int(litellm.token_counter(model=model, messages=list(messages)))
    except Exception:  # an unknown tokenizer: fall back to ~4 characters a token
        return sum(len(m.get("content") or "") for m in messages) // 4 + 4 * len(messages)


def call_cost_upper_bound(
    model: str, messages: Sequence[Mapping[str, str]], params: Mapping[str, Any], *, priced: Sequence[str] = ()
) -> float:
    """Most one call can cost: its prompt plus ``max_tokens`` of completion.

    ``priced``: the models to price it as (a router group's deployments: the dearest counts).
    """
    models = list(priced) or [model]
    return _most(models, count_tokens(models[0], messages), _completion_budget(params))


def check_prices_known(experiment: ExperimentSpec) -> None:
    """A budget needs prices: fail before any call for a model litellm cannot price."""
    for model in [m for name in experiment.models for m in priced_as(experiment, name)]:
        if math.isnan(_price(model, 1, 1)):
            raise ModelError(
                f"budget_usd is set but litellm has no price for {model!r}, so the budget cannot be "
                "enforced; register a price with litellm.register_model(...) or drop the budget"
            )


@dataclass
class Estimate:
    """Expected calls, tokens and cost of a run.

    Attributes:
        table: One row per variant x model: ``calls``, ``cached``, ``to_call``,
            ``prompt_tokens``, ``completion_tokens_max``, ``cost_usd_max``.
        sampled: True when prompt tokens were extrapolated from a sample of cases.
    """

    table: pd.DataFrame
    sampled: bool

    @property
    def calls(self) -> int:
        return int(self.table["to_call"].sum())

    @property
    def cached(self) -> int:
        return int(self.table["cached"].sum())

    @property
    def cost_usd(self) -> float:
        """Upper bound in USD (NaN when a model has no price)."""
        return float(self.table["cost_usd_max"].sum(skipna=False))

    def __str__(self) -> str:
        cost = "unknown (no litellm price)" if math.isnan(self.cost_usd) else f"<= ${self.cost_usd:.4f}"
        return (
            f"{self.calls} calls to make ({self.cached} already cached), "
            f"{int(self.table['prompt_tokens'].sum()):,} prompt tokens"
            f"{' (extrapolated from a sample)' if self.sampled else ''}, expected cost {cost}"
        )

    def _repr_html_(self) -> str:
        return render("message.html.j2", text=str(self)) + frame_html(self.table)


def estimate(experiment: ExperimentSpec, *, cache: ResponseCache | None = None) -> Estimate:
    """Count the calls, tokens and cost of ``experiment`` without calling any model."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    sampled_cases: dict[tuple[str, str], set[str]] = {}
    keys: dict[tuple[str, str], list[str]] = {}
    for call in plan(experiment):
        group = (call.variant.name, call.model)
        row = rows.setdefault(group, {"variant": group[0], "model": group[1], "calls": 0, "tokens": 0})
        row["calls"] += 1
        seen = sampled_cases.setdefault(group, set())
        if len(seen) < SAMPLE_CASES or call.case.id in seen:
            seen.add(call.case.id)
            row["tokens"] += count_tokens(priced_as(experiment, call.model)[0], call.messages)
            row["tokenised"] = row.get("tokenised", 0) + 1
        keys.setdefault(group, []).append(call.key)
    out, sampled = [], False
    for group, row in rows.items():
        cached = len(cache.contains(keys[group])) if cache is not None else 0
        to_call = row["calls"] - cached
        per_call = row["tokens"] / max(row.get("tokenised", 1), 1)
        sampled |= row.get("tokenised", 0) < row["calls"]
        params = next(v.params for v in experiment.variants if v.name == group[0])
        prompt_tokens = int(round(per_call * to_call))
        completion = _completion_budget(params) * to_call
        out.append(
            {
                "variant": group[0],
                "model": group[1],
                "calls": row["calls"],
                "cached": cached,
                "to_call": to_call,
                "prompt_tokens": prompt_tokens,
                "completion_tokens_max": completion,
                "cost_usd_max": _most(priced_as(experiment, group[1]), prompt_tokens, completion) if to_call else 0.0,
            }
        )
    return Estimate(pd.DataFrame(out), sampled)
