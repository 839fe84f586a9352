"""Pairwise preference: a judge model picks the better of two variants' outputs, case by case.

Judges favour whichever answer they read first (or second) more often than
chance, so every pair is judged twice, once in each order. When the two
orders disagree the case is a *tie*: a preference that flips with the order
is position bias, not a preference.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from workbench.core import schema as col
from workbench.core.exceptions import UsageError
from workbench.core.html import frame_html, render
from workbench.core.redaction import REDACTOR, redact
from workbench.core.result import RunResult
from workbench.engine.cache import CacheOption
from workbench.engine.cache_choice import resolve_cache
from workbench.engine.calls import CallPath
from workbench.judge.llm import format_fields
from workbench.judge.parsing import json_objects, pick, quote
from workbench.judge.usage import Usage, judge_params
from workbench.providers.local import DEFAULT_LOCAL_MODEL
from workbench.providers.models import check_model, check_params
from workbench.scorers.context import ModelCaller
from workbench.util.aio import run_sync

_SYSTEM = (
    "You are a careful, impartial evaluator. Compare two responses to the same input and decide "
    "which one is better by the criteria. Ignore their order and length. Reply with one JSON object "
    'and nothing else, reason first: {"reason": "<one or two sentences>", "winner": "A" or "B" or "tie"}'
)
_WINNER_KEYS = ("winner", "preference", "better", "choice", "verdict", "answer")
_LABELLED = re.compile(
    r"\b(?:winner|preference|better|choice|verdict)\b(?:\s+(?:is|was))?\s*\**\s*[:=\-]?\s*\**\s*"
    r"(?:response\s+|output\s+)?(?P<choice>(?-i:[AB])|tie)\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"\b(?:response|output)\s+(?P<choice>(?-i:[AB]))\s+is\s+better\b", re.IGNORECASE)
_CHOICES = {"a": "A", "1": "A", "first": "A", "b": "B", "2": "B", "second": "B"}
_TIES = {"tie", "equal", "both", "neither", "draw", "same"}


def parse_choice(text: str | None) -> str | None:
    """``"A"``, ``"B"`` or ``"tie"`` from a pairwise judge's reply; None when it names none.

    Example:
        >>> parse_choice('{"reason": "B is wrong", "winner": "A"}'), parse_choice("Response B is better.")
        ('A', 'B')
    """
    raw = "" if text is None else str(text)
    for obj in json_objects(raw):
        found, value = pick(obj, _WINNER_KEYS)
        if found:
            return _choice(value)
    for pattern in (_LABELLED, _SENTENCE):
        match = pattern.search(raw)
        if match:
            return _choice(match["choice"])
    return _choice(raw)


def _choice(value: Any) -> str | None:
    word = re.sub(r"^(?:response|output|answer)\s+", "", str(value).strip().strip("\"'*.!").strip().lower())
    if word in _TIES:
        return "tie"
    return _CHOICES.get(word)


@dataclass(frozen=True)
class PairwiseJudge:
    """A judge model that says which of two outputs for the same case is better.

    Not a per-output scorer (it needs two outputs), so it is used on a result
    through :func:`pairwise_preference`.

    Args:
        criteria: What "better" means here.
        model: litellm model string of the judge.
        params: litellm params of the judge calls, over ``temperature=0, max_tokens=256``.
        include_expected: Show the expected values to the judge.

    Example:
        >>> judge = PairwiseJudge(criteria="More accurate and more concise.", model="openai/gpt-4o-mini")
        >>> judge.spec()["type"]
        'pairwise_judge'
    """

    criteria: str = "Which response follows the instructions better: correct, complete and concise?"
    model: str = DEFAULT_LOCAL_MODEL
    params: Mapping[str, Any] = field(default_factory=dict, hash=False, repr=False)  # may hold a key
    include_expected: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", dict(self.params or {}))

    def spec(self) -> dict[str, Any]:
        """The configuration as plain data, credentials masked."""
        return {
            "type": "pairwise_judge",
            "criteria": self.criteria,
            "model": self.model,
            "params": redact(self.params),
            "include_expected": self.include_expected,
        }

    def messages(
        self, *, inputs: Mapping[str, Any], first: str, second: str, expectations: Mapping[str, Any]
    ) -> list[dict[str, str]]:
        """The chat messages comparing ``first`` (shown as A) with ``second`` (shown as B)."""
        parts = [f"Criteria:\n{self.criteria.strip()}"]
        if inputs:
            parts.append(f"Input:\n{format_fields(inputs)}")
        if self.include_expected and expectations:
            parts.append(f"Expected:\n{format_fields(expectations)}")
        parts.append(f'Response A:\n"""\n{first}\n"""')
        parts.append(f'Response B:\n"""\n{second}\n"""')
        parts.append("Verdict (JSON):")
        return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]

    async def prefer(
        self,
        *,
        inputs: Mapping[str, Any],
        baseline: str,
        candidate: str,
        expectations: Mapping[str, Any],
        models: ModelCaller,
    ) -> dict[str, Any]:
        """Judge one pair in both orders: ``winner`` is ``"baseline"``, ``"candidate"``, ``"tie"`` or None."""
        params = judge_params(self.params)
        shown = ((baseline, candidate), (candidate, baseline))
        answers = await asyncio.gather(
            *(
                models.complete(
                    model=self.model,
                    messages=self.messages(inputs=inputs, first=a, second=b, expectations=expectations),
                    params=params,
                    repeat=0,
                )
                for a, b in shown
            ),
            return_exceptions=True,
        )
        usage, sides, reasons = Usage(), list[str | None](), list[str]()
        for answer, names in zip(answers, (("baseline", "candidate"), ("candidate", "baseline")), strict=True):
            if isinstance(answer, BaseException):
                if not isinstance(answer, Exception):
                    raise answer  # cancellation and interrupts are not judge failures
                sides.append(None)
                reasons.append(f"judge call failed: {REDACTOR.text(f'{type(answer).__name__}: {answer}')}")
                continue
            usage.add(answer)
            text = answer.reply.output
            choice = parse_choice(text)
            sides.append({"A": names[0], "B": names[1], "tie": "tie"}.get(choice or ""))
            reasons.append(f"unparseable verdict {quote(text, 200)}" if choice is None else _reason(text))
        first_side, second_side = sides
        if first_side is None or second_side is None:
            winner = None
        else:
            winner = first_side if first_side == second_side else "tie"
        return {
            "winner": winner,
            "baseline_first": first_side,
            "candidate_first": second_side,
            "consistent": first_side is not None and first_side == second_side,
            "reason": f"baseline shown first: {reasons[0]} | candidate shown first: {reasons[1]}",
            "judge_prompt_tokens": usage.prompt_tokens,
            "judge_completion_tokens": usage.completion_tokens,
            "judge_cost_usd": usage.cost_usd,
            "judge_cached": usage.all_cached,
        }


def _reason(text: str) -> str:
    for obj in json_objects(text):
        found, reason = pick(obj, ("reason", "reasoning", "explanation", "rationale"))
        if found:
            return str(reason)
    return " ".join(text.split())[:200]


@dataclass
class PairwisePreference:
    """Which of two variants a judge prefers, case by case, judged in both orders.

    Attributes:
        baseline: The baseline variant.
        candidate: The candidate variant.
        model: The task model whose outputs were compared.
        judge: The judge's spec.
        table: One row per pair: ``case_id``, ``repeat``, ``winner`` (a variant
            name, ``"tie"`` or None when unjudged), what the judge chose with
            each variant shown first, ``consistent``, ``reason`` and the judge's
            tokens and cost.
        wins: Pairs the candidate won.
        ties: Ties, including every pair whose verdict flipped with the order.
        losses: Pairs the baseline won.
        unjudged: Pairs without a verdict (a judge call failed or was unparseable).
        skipped: Pairs left out because either task call failed.
    """

    baseline: str
    candidate: str
    model: str
    judge: dict[str, Any]
    table: pd.DataFrame
    skipped: int = 0
    wins: int = field(init=False)
    ties: int = field(init=False)
    losses: int = field(init=False)
    unjudged: int = field(init=False)

    def __post_init__(self) -> None:
        winners = self.table["winner"] if len(self.table) else pd.Series(dtype=object)
        self.wins = int((winners == self.candidate).sum())
        self.losses = int((winners == self.baseline).sum())
        self.ties = int((winners == "tie").sum())
        self.unjudged = int(winners.isna().sum())

    @property
    def order_flips(self) -> int:
        """Ties caused by the two orders disagreeing (position bias or noise)."""
        judged = self.table.dropna(subset=["baseline_first", "candidate_first"]) if len(self.table) else self.table
        return int((~judged["consistent"].astype(bool)).sum()) if len(judged) else 0

    @property
    def win_rate(self) -> float:
        """Candidate wins over judged pairs, a tie counting half."""
        judged = self.wins + self.ties + self.losses
        return (self.wins + 0.5 * self.ties) / judged if judged else math.nan

    @property
    def cost_usd(self) -> float:
        """What the judge calls cost (NaN: litellm has no price for the judge)."""
        return float(self.table["judge_cost_usd"].sum(skipna=False)) if len(self.table) else 0.0

    def __str__(self) -> str:
        text = (
            f"{self.candidate} vs {self.baseline} on {self.model}, judged by {self.judge['model']} in both orders: "
            f"{self.wins} win(s), {self.ties} tie(s), {self.losses} loss(es)"
        )
        if self.unjudged:
            text += f", {self.unjudged} unjudged"
        text += f" (win rate {self.win_rate:.0%}, a tie counting half)."
        if self.order_flips:
            text += f" {self.order_flips} tie(s) are pairs whose verdict flipped with the order (position bias)."
        if self.skipped:
            text += f" {self.skipped} pair(s) with a failed call were skipped."
        return text

    def _repr_html_(self) -> str:
        return render("message.html.j2", text=str(self)) + frame_html(self.table, max_rows=50)


async def pairwise_preference_async(
    result: RunResult,
    *,
    baseline: str | None = None,
    candidate: str | None = None,
    judge: PairwiseJudge | None = None,
    model: str | None = None,
    cache: CacheOption = True,
    acompletion: Callable[..., Any] | None = None,
) -> PairwisePreference:
    """The async core of :func:`pairwise_preference`."""
    judge = judge or PairwiseJudge()
    names = [v.name for v in result.experiment.variants]
    baseline = baseline or names[0]
    candidate = candidate or next((n for n in names if n != baseline), None)
    for role, name in (("baseline", baseline), ("candidate", candidate)):
        if name not in names:
            raise UsageError(f"{role} {name!r} is not a variant of this result; its variants are {names}")
    if baseline == candidate:
        raise UsageError(f"baseline and candidate are both {baseline!r}; pick two different variants")
    model = model or result.experiment.models[0]
    check_model(judge.model, judge.params)
    check_params(judge.model, judge.params, where="pairwise judge")
    store, read = resolve_cache(cache)
    models = CallPath(result.experiment.settings, acompletion=acompletion, cache=store, read_cache=read)
    cases = result.read_cases(where={col.MODEL: model})
    keys = list(col.PAIR_KEY)
    base = cases[cases[col.VARIANT] == baseline].set_index(keys)
    cand = cases[cases[col.VARIANT] == candidate].set_index(keys)
    pairs = base.join(cand[[col.OUTPUT, col.ERROR]], rsuffix="_candidate", how="inner")
    ok = pairs[col.ERROR].isna() & pairs[col.ERROR + "_candidate"].isna()
    inputs = col.columns(cases.columns, col.INPUT)
    expected = col.columns(cases.columns, col.EXPECTED)

    async def one(row: pd.Series) -> dict[str, Any]:
        verdict = await judge.prefer(
            inputs=_fields(row, inputs, col.INPUT),
            baseline=str(row[col.OUTPUT]),
            candidate=str(row[col.OUTPUT + "_candidate"]),
            expectations=_fields(row, expected, col.EXPECTED),
            models=models,
        )
        for column in ("winner", "baseline_first", "candidate_first"):
            verdict[column] = {"baseline": baseline, "candidate": candidate}.get(verdict[column], verdict[column])
        return {"case_id": row.name[0], "repeat": row.name[1], **verdict}

    try:
        rows = await asyncio.gather(*(one(row) for _, row in pairs[ok].iterrows()))
    finally:
        await models.aclose()
    columns = ["case_id", "repeat", "winner", "baseline_first", "candidate_first", "consistent", "reason",
               "judge_prompt_tokens", "judge_completion_tokens", "judge_cost_usd", "judge_cached"]  # fmt: skip
    table = pd.DataFrame(rows, columns=columns)
    return PairwisePreference(baseline, str(candidate), model, judge.spec(), table, skipped=int((~ok).sum()))


def pairwise_preference(
    result: RunResult,
    *,
    baseline: str | None = None,
    candidate: str | None = None,
    judge: PairwiseJudge | None = None,
    model: str | None = None,
    cache: CacheOption = True,
    acompletion: Callable[..., Any] | None = None,
) -> PairwisePreference:
    """Ask a judge which of two variants' outputs is better, for every case both answered.

    Each pair is judged with the baseline shown first and again with the
    candidate shown first; when the two verdicts differ the pair is a tie.
    Judge calls are cached like the task's (a re-run makes none).

    Args:
        result: A run with both variants.
        baseline: Baseline variant (default: the first).
        candidate: Candidate variant (default: the next one).
        judge: The pairwise judge (default: the local model with generic criteria).
        model: Task model whose outputs are compared (default: the first).
        cache: As in :meth:`Experiment.run`: True, False, ``"refresh"`` or a ResponseCache.
        acompletion: Completion function; ``litellm.acompletion`` by default.

    Example:
        >>> pref = wb.pairwise_preference(result, baseline="zero_shot", candidate="few_shot",  # doctest: +SKIP
        ...                               judge=wb.PairwiseJudge(model="openai/gpt-4o-mini"))
        >>> print(pref)  # doctest: +SKIP
        few_shot vs zero_shot on local/gemma-3-270m, judged by openai/gpt-4o-mini in both orders: 7 win(s), ...
        >>> pref.table  # doctest: +SKIP
    """
    return run_sync(
        pairwise_preference_async(
            result,
            baseline=baseline,
            candidate=candidate,
            judge=judge,
            model=model,
            cache=cache,
            acompletion=acompletion,
        )
    )


def _fields(row: pd.Series, columns: list[str], prefix: str) -> dict[str, Any]:
    values = {c.removeprefix(prefix): row[c] for c in columns}
    return {k: v for k, v in values.items() if not (v is None or (isinstance(v, float) and math.isnan(v)))}
