"""The results table: one row per case x variant x model x repeat.

Every module that reads or writes that table names its columns through this
module, so a column is renamed in one place. The table is what
:attr:`~workbench.experiment.ExperimentResult.cases` returns and what MLflow
stores as ``cases.json``.

=====================  =====================================================
column                 holds
=====================  =====================================================
``case_id``            the dataset row's id
``variant``            the variant's name; ``variant_version`` its content hash
``model``, ``repeat``  the litellm model string (or router group name); the repeat index (0-based)
``deployment``         which deployment of a router group answered (only when a model is a router group)
``input.<name>``       a template variable's value
``expected.<name>``    an expected value (never shown to the model)
``prompt``             the rendered system + last user message, readable
``output``             the reply's text ("" when it is only tool calls)
``tool_calls``         the reply's tool calls as JSON (``[{"name", "arguments"}]``) or None
``retrieved``          the retrieved chunks the prompt was built with, as JSON (RAG; only when a variant retrieves)
``finish_reason``      why the model stopped (``stop``, ``length``, ``tool_calls``...)
``message``            the raw assistant message as JSON
``error``              ``Type: message`` of a call that failed after retries, else None
``score.<scorer>``     a score (NaN: not scored), ``reason.<scorer>`` why
``judge.<scorer>.*``   an LLM judge's own tokens, cost, cache hits and spread
tokens, cost, latency  ``prompt_tokens``, ``completion_tokens``, ``cost_usd``, ``latency_s``, ``cached``
=====================  =====================================================
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

CASE_ID = "case_id"
VARIANT = "variant"
VARIANT_VERSION = "variant_version"
MODEL = "model"
#: Which deployment of a router group answered (only in runs with a router group; see core.routing).
DEPLOYMENT = "deployment"
REPEAT = "repeat"
PROMPT = "prompt"
OUTPUT = "output"
TOOL_CALLS = "tool_calls"
RETRIEVED = "retrieved"
FINISH_REASON = "finish_reason"
MESSAGE = "message"
ERROR = "error"
ATTEMPTS = "attempts"
PROMPT_TOKENS = "prompt_tokens"
COMPLETION_TOKENS = "completion_tokens"
COST_USD = "cost_usd"
LATENCY_S = "latency_s"
CACHED = "cached"
#: Plan order of a row while a run streams (dropped from the final table).
ORDER = "_order"

INPUT = "input."
EXPECTED = "expected."
SCORE = "score."
REASON = "reason."
JUDGE = "judge."

#: Columns a paired comparison joins on (within one variant x model).
PAIR_KEY = (CASE_ID, REPEAT)


#: Arrow type of each column the engine fills itself, in the order a row is filled.
TYPES: dict[str, pa.DataType] = {
    ORDER: pa.int64(),
    CASE_ID: pa.string(),
    VARIANT: pa.string(),
    VARIANT_VERSION: pa.string(),
    MODEL: pa.string(),
    REPEAT: pa.int64(),
    DEPLOYMENT: pa.string(),
    PROMPT: pa.string(),
    ERROR: pa.string(),
    ATTEMPTS: pa.int64(),
    OUTPUT: pa.string(),
    TOOL_CALLS: pa.string(),
    RETRIEVED: pa.string(),
    FINISH_REASON: pa.string(),
    MESSAGE: pa.string(),
    PROMPT_TOKENS: pa.int64(),
    COMPLETION_TOKENS: pa.int64(),
    COST_USD: pa.float64(),
    LATENCY_S: pa.float64(),
    CACHED: pa.bool_(),
}
#: Arrow type of each of an LLM judge's own usage columns (``judge.<scorer>.<field>``).
JUDGE_TYPES: dict[str, pa.DataType] = {
    "prompt_tokens": pa.int64(),
    "completion_tokens": pa.int64(),
    "cost_usd": pa.float64(),
    "cached": pa.bool_(),
    "spread": pa.float64(),
}


def table_schema(
    *,
    inputs: Mapping[str, pa.DataType],
    expected: Mapping[str, pa.DataType],
    scorers: Sequence[str],
    judges: Collection[str] = (),
    retrieved: bool = False,
    routed: bool = False,
) -> pa.Schema:
    """The results table's columns and their Arrow types, in the order the engine fills a row.

    Args:
        inputs: Template variables and their types (the dataset's), in column order.
        expected: Expected-value columns and their types (the dataset's).
        scorers: Scorer names: a ``score.`` and a ``reason.`` column each.
        judges: The scorers that call models (LLM judges): their own usage columns too.
        retrieved: Whether some variant retrieves context: only then is there a ``retrieved`` column.
        routed: Whether some model is a router group: only then is there a ``deployment`` column.

    Example:
        >>> table_schema(inputs={"review": pa.string()}, expected={}, scorers=["label_match"]).names[:7]
        ['_order', 'case_id', 'variant', 'variant_version', 'model', 'repeat', 'input.review']
    """
    head = [ORDER, CASE_ID, VARIANT, VARIANT_VERSION, MODEL, REPEAT]
    fields = [pa.field(name, TYPES[name]) for name in head]
    fields += [pa.field(input_column(name), kind) for name, kind in inputs.items()]
    fields += [pa.field(expected_column(name), kind) for name, kind in expected.items()]
    skip = {*head, *(() if retrieved else (RETRIEVED,)), *(() if routed else (DEPLOYMENT,))}
    fields += [pa.field(name, kind) for name, kind in TYPES.items() if name not in skip]
    for scorer in scorers:
        fields += [pa.field(score_column(scorer), pa.float64()), pa.field(reason_column(scorer), pa.string())]
        if scorer in judges:
            fields += [pa.field(judge_column(scorer, name), kind) for name, kind in JUDGE_TYPES.items()]
    return pa.schema(fields)


def score_column(scorer: str) -> str:
    """``"label_match"`` -> ``"score.label_match"`` (an already prefixed name is kept)."""
    return scorer if scorer.startswith(SCORE) else SCORE + scorer


def reason_column(scorer: str) -> str:
    return REASON + scorer


def input_column(name: str) -> str:
    return INPUT + name


def expected_column(name: str) -> str:
    return EXPECTED + name


def judge_column(scorer: str, field: str) -> str:
    """A judge's own usage column, e.g. ``judge.llm_judge.cost_usd``."""
    return f"{JUDGE}{scorer}.{field}"


def scorer_name(column: str) -> str:
    """``"score.label_match"`` -> ``"label_match"``: both spellings name a scorer."""
    return column.removeprefix(SCORE)


def columns(names: Iterable[Any], *prefixes: str) -> list[str]:
    """The column names that start with any of ``prefixes``, in order."""
    return [str(c) for c in names if str(c).startswith(prefixes)]


@dataclass(frozen=True)
class SuccessRule:
    """When a case counts as a success: for "cost per successful case", "failures" and review filters.

    A row succeeds when its call did not fail and its ``scorer`` score is at
    least ``threshold``; it fails when its call failed or that score is below
    ``threshold``. A row that could not be scored (NaN) is neither.

    Args:
        scorer: The deciding scorer; ``None`` means the experiment's first scorer.
        threshold: The lowest passing score.

    Example:
        >>> rule = SuccessRule(threshold=0.8)
        >>> rule.describe(["llm_judge"])
        'a call succeeds when llm_judge >= 0.8'
    """

    scorer: str | None = None
    threshold: float = 0.5

    def deciding(self, scorers: Sequence[str]) -> str | None:
        """The scorer that decides, given the run's scorer names (None without scorers)."""
        if self.scorer is not None:
            return self.scorer
        return scorers[0] if scorers else None

    def describe(self, scorers: Sequence[str]) -> str:
        name = self.deciding(scorers)
        if name is None:
            return "a call succeeds when it returns (no scorer)"
        return f"a call succeeds when {name} >= {self.threshold:g}"

    def successes(self, rows: Any, scorers: Sequence[str]) -> Any:
        """Boolean Series over ``rows`` (a results-table frame): True where the row succeeded."""
        ok = rows[ERROR].isna()
        name = self.deciding(scorers)
        if name is None:
            return ok
        return ok & (rows[score_column(name)] >= self.threshold)

    def failures(self, rows: Any, scorers: Sequence[str]) -> Any:
        """Boolean Series over ``rows``: True where the call failed or the deciding score is below the bar."""
        failed = rows[ERROR].notna()
        name = self.deciding(scorers)
        if name is None:
            return failed
        return failed | (rows[score_column(name)] < self.threshold)

    def failed_score(self, value: float) -> bool:
        """Whether one score is below the bar (NaN is not)."""
        return value < self.threshold
