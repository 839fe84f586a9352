"""Conversation-level figures: which conversations pass at every turn, and where they first fail.

Each evaluated turn of a conversation is one dataset row, scored like any other row (see
:mod:`workbench.core.conversation`). :func:`conversation_report` groups the rows of each
variant x model x repeat by conversation: a conversation *passes* when every turn succeeded
(no error, deciding score at or above the threshold), *fails* at its first turn that failed,
and is *undecided* when no turn failed but one could not be scored.

The paired comparison of two variants at the conversation level is the workbench's usual one
(:func:`workbench.analysis.compare.compare`, exact McNemar on pass / fail), run on one row per
conversation whose score is ``all_turns_pass``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.analysis.compare import compare
from workbench.analysis.comparison import Comparison
from workbench.analysis.stats import wilson_ci
from workbench.core import schema as col
from workbench.core.dataset import Dataset
from workbench.core.exceptions import UsageError
from workbench.core.html import frame_html, render
from workbench.core.result import RunResult
from workbench.core.schema import SuccessRule

__all__ = ["ALL_TURNS_PASS", "ConversationReport", "conversation_report"]

#: The conversation-level score: 1 when every turn passed, 0 when one failed, NaN when undecided.
ALL_TURNS_PASS = "all_turns_pass"
_RUN = [col.VARIANT, col.MODEL]


@dataclass(frozen=True)
class ConversationReport:
    """Per-turn scores rolled up by conversation.

    Attributes:
        conversations: One row per variant x model x repeat x conversation: ``turns``,
            ``passed_turns``, ``all_turns_pass`` (1.0, 0.0, or NaN when a turn was unscored and
            none failed) and ``first_failing_turn`` (the turn number, or NA).
        summary: Per variant x model: ``conversations``, ``all_pass`` (how many passed at every
            turn), ``all_pass_rate`` with its Wilson interval (``ci_low``, ``ci_high``; over the
            decided conversations), ``undecided``, and ``median_first_failing_turn``.
        by_turn: Per variant x model x turn number: ``n`` (scored turns), ``passed``, ``pass_rate``.
        rule: The pass rule used (deciding scorer and threshold).
    """

    conversations: pd.DataFrame
    summary: pd.DataFrame
    by_turn: pd.DataFrame
    rule: SuccessRule

    def compare(self, baseline: str, candidate: str, *, model: str | None = None, **options: Any) -> Comparison:
        """Paired comparison of two variants on ``all_turns_pass``, one pair per conversation (x repeat).

        Args:
            baseline: The baseline variant.
            candidate: The candidate variant.
            model: The model to compare on (needed when the run has several).
            **options: Passed to :func:`workbench.analysis.compare.compare` (``confidence``, ``seed``...).

        Example:
            >>> report.compare("single_turn", "with_history").verdicts[0]  # doctest: +SKIP
        """
        return compare(self._as_cases(), baseline, candidate, model=model, scorers=[ALL_TURNS_PASS], **options)

    def _as_cases(self) -> pd.DataFrame:
        """The conversations as a results table compare() reads: a conversation is a case."""
        frame = self.conversations
        return pd.DataFrame(
            {
                col.CASE_ID: frame["conversation"].astype(str),
                col.VARIANT: frame[col.VARIANT],
                col.MODEL: frame[col.MODEL],
                col.REPEAT: frame[col.REPEAT],
                "output": "",
                col.ERROR: None,
                col.score_column(ALL_TURNS_PASS): frame[ALL_TURNS_PASS].astype(float),
            }
        )

    def _repr_html_(self) -> str:
        text = (
            f"Conversations where every turn passes (a turn passes when its call did not fail and "
            f"{self.rule.scorer} >= {self.rule.threshold:g}), then the pass rate by turn number."
        )
        return render("message.html.j2", text=text) + frame_html(self.summary) + frame_html(self.by_turn)


def conversation_report(
    result: RunResult | pd.DataFrame,
    *,
    scorer: str | None = None,
    by: str = "conversation_id",
    turn: str = "turn",
    threshold: float | None = None,
    confidence: float = 0.95,
    dataset: Dataset | None = None,
) -> ConversationReport:
    """Roll per-turn scores up into conversation-level figures.

    Args:
        result: A run (its dataset gives each case's conversation and turn when the results
            table does not hold them), or a results-table DataFrame holding ``by`` and ``turn``
            (as such, or as ``input.*`` / ``expected.*`` columns).
        scorer: The deciding scorer (default: the experiment's success rule's, else the first).
        by: The dataset column naming each row's conversation.
        turn: The dataset column with the turn number (1, 2, ...).
        threshold: The lowest passing score (default: the experiment's success threshold, else 0.5).
        confidence: Level of the Wilson intervals.
        dataset: Where to look ``by`` and ``turn`` up by case id (default: the run's dataset). A run
            reopened from MLflow keeps only the columns its variants used: pass the dataset file again.

    Returns:
        A :class:`ConversationReport`; in a notebook it shows as tables.

    Raises:
        UsageError: No such scorer, or the conversation / turn columns cannot be found.

    Example:
        >>> report = wb.conversation_report(result, scorer="answer_match", threshold=0.5)  # doctest: +SKIP
        >>> report.summary[["variant", "all_pass", "conversations", "first_failing_turn"]]  # doctest: +SKIP
    """
    rule = _rule(result, scorer, threshold)
    cases = result.cases if isinstance(result, RunResult) else result
    names = [col.scorer_name(c) for c in col.columns(cases.columns, col.SCORE)]
    deciding = rule.deciding(names)
    if deciding is None or deciding not in names:
        raise UsageError(f"no scorer {deciding!r} in these results; scored: {names}")
    rule = SuccessRule(deciding, rule.threshold)
    frame = cases[[col.CASE_ID, col.VARIANT, col.MODEL, col.REPEAT, col.ERROR, col.score_column(deciding)]].copy()
    if dataset is None and isinstance(result, RunResult):
        dataset = result.experiment.dataset
    frame["conversation"] = _column(dataset, cases, by)
    frame["turn"] = pd.to_numeric(_column(dataset, cases, turn), errors="raise")
    frame["passed"] = rule.successes(frame, [deciding])
    frame["failed"] = rule.failures(frame, [deciding])
    conversations = _per_conversation(frame)
    return ConversationReport(
        conversations=conversations,
        summary=_summary(conversations, confidence),
        by_turn=_by_turn(frame),
        rule=rule,
    )


def _rule(result: RunResult | pd.DataFrame, scorer: str | None, threshold: float | None) -> SuccessRule:
    base = result.experiment.success if isinstance(result, RunResult) else SuccessRule()
    chosen = scorer if scorer is not None else base.scorer
    return SuccessRule(chosen, base.threshold if threshold is None else threshold)


def _column(dataset: Dataset | None, cases: pd.DataFrame, name: str) -> pd.Series:
    """Column ``name`` per row: from the results table, else from ``dataset`` by case id."""
    for candidate in (name, col.input_column(name), col.expected_column(name)):
        if candidate in cases.columns:
            return cases[candidate]
    if dataset is not None and name in dataset.columns:
        lookup = dataset.frame.set_index(dataset.id_column)[name]
        lookup.index = lookup.index.astype(str)
        values = cases[col.CASE_ID].astype(str).map(lookup)
        if values.isna().any():
            missing = cases.loc[values.isna(), col.CASE_ID].iloc[0]
            raise UsageError(f"dataset {dataset.source} has no {name!r} for case {missing!r}; give every row one")
        return values
    where = f"the results nor dataset {dataset.source} (columns {dataset.columns})" if dataset else "the results"
    raise UsageError(
        f"neither {where} have a column {name!r}; name the conversation / turn columns with by= / turn=, "
        "or pass dataset=wb.Dataset.load(...) (a run reopened from MLflow keeps only the columns its variants used)"
    )


def _per_conversation(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    keys = [*_RUN, col.REPEAT, "conversation"]
    for key, turns in frame.sort_values("turn").groupby(keys, sort=False):
        failing = turns.loc[turns["failed"], "turn"]
        decided = bool(turns["passed"].all()) or not failing.empty
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "turns": len(turns),
                "passed_turns": int(turns["passed"].sum()),
                ALL_TURNS_PASS: float(failing.empty) if decided else np.nan,
                "first_failing_turn": int(failing.iloc[0]) if not failing.empty else pd.NA,
            }
        )
    columns = [*keys, "turns", "passed_turns", ALL_TURNS_PASS, "first_failing_turn"]
    out = pd.DataFrame(rows, columns=columns)
    out["first_failing_turn"] = out["first_failing_turn"].astype("Int64")
    return out


def _summary(conversations: pd.DataFrame, confidence: float) -> pd.DataFrame:
    rows = []
    for (variant, model), group in conversations.groupby(_RUN, sort=False):
        decided = group[ALL_TURNS_PASS].dropna()
        passed = int(decided.sum())
        ci = wilson_ci(passed, len(decided), confidence=confidence) if len(decided) else None
        first = group["first_failing_turn"].dropna()
        rows.append(
            {
                col.VARIANT: variant,
                col.MODEL: model,
                "conversations": len(group),
                "all_pass": passed,
                "all_pass_rate": ci.estimate if ci else np.nan,
                "ci_low": ci.low if ci else np.nan,
                "ci_high": ci.high if ci else np.nan,
                "undecided": len(group) - len(decided),
                "median_first_failing_turn": float(first.median()) if len(first) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def _by_turn(frame: pd.DataFrame) -> pd.DataFrame:
    decided = frame[frame["passed"] | frame["failed"]]
    grouped = decided.groupby([*_RUN, "turn"], sort=False)["passed"]
    out = grouped.agg(n="size", passed="sum").reset_index()
    out["passed"] = out["passed"].astype(int)
    out["pass_rate"] = out["passed"] / out["n"]
    order = list(dict.fromkeys(frame[col.VARIANT]))
    return out.sort_values([col.MODEL, col.VARIANT, "turn"], key=_order_key(order)).reset_index(drop=True)


def _order_key(order: Sequence[str]) -> Any:
    def key(series: pd.Series) -> pd.Series:
        return series.map(order.index) if series.name == col.VARIANT else series

    return key
