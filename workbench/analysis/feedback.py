"""Production feedback becomes test cases: rank the interactions worth a test, drop near duplicates.

:func:`feedback_cases` scores every interaction of a
:class:`~workbench.core.production_log.ProductionLog` by the evidence that it went wrong
(:data:`WEIGHTS`: a thumbs-down or a corrected field counts most), ranks them, and keeps one
interaction per group of near-identical inputs (rapidfuzz's ``ratio`` on the lower-cased,
whitespace-collapsed text, >= ``similarity``): the highest-ranked one, with the number of
duplicates it stands for. :meth:`FeedbackCases.add_to_golden_set` appends the chosen ones to a
golden set through the project's one writer (:func:`workbench.core.golden.append_to_golden_set`),
with **the user's correction as the expected value**: the model's parsed output with the
edited fields replaced (the fields the user left alone are taken as right). Interactions with
no correction have no expected value; they are written only with ``labelled_only=False``, for
someone to label.

Example:
    >>> cases = wb.feedback_cases(log.task("extraction"))  # doctest: +SKIP
    >>> cases.candidates.head()  # doctest: +SKIP
    >>> cases.add_to_golden_set("data/listings_from_production.jsonl", limit=20)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from workbench.core.exceptions import UsageError
from workbench.core.golden import append_to_golden_set, read_golden_set
from workbench.core.production_log import ProductionLog
from workbench.util.paths import resolve

__all__ = ["WEIGHTS", "FeedbackCases", "feedback_cases"]

#: Evidence that an interaction deserves a test, and its weight in the ranking.
WEIGHTS = {
    "thumbs_down": 3.0,  # the user said so
    "edited": 3.0,  # the user fixed the output: a labelled failure
    "reported_problem": 2.0,
    "escalated": 2.0,  # the user went to a human
    "low_judge": 2.0,  # an online judge scored it below `judge_below`
    "disagreement": 1.0,  # the user and the judge disagree (thumb up and a low score, or the reverse)
    "retried": 1.0,
    "abandoned": 1.0,
    "comment": 0.5,  # a comment says what was wrong
}
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class FeedbackCases:
    """Ranked, deduplicated interactions worth a test.

    Attributes:
        candidates: One row per kept interaction, best first: ``id``, ``timestamp``, ``task``,
            ``priority`` (the sum of the :data:`WEIGHTS` that apply), ``reasons``, ``input_text``,
            ``output``, ``expected`` (the corrected fields, or None), ``comment``, ``duplicates``
            (how many near-identical interactions it stands for) and ``duplicate_ids``, ``inputs``.
        considered: How many interactions had any evidence before deduplication.
        similarity: The rapidfuzz ratio (0-100) at or above which two inputs are the same case.
    """

    candidates: pd.DataFrame
    considered: int
    similarity: float

    def __repr__(self) -> str:
        labelled = int(self.candidates["expected"].notna().sum())
        return (
            f"FeedbackCases({len(self.candidates)} cases from {self.considered} interactions with feedback, "
            f"{labelled} with the user's correction as the expected value; near duplicates at ratio >= "
            f"{self.similarity:g} merged)"
        )

    def add_to_golden_set(
        self,
        path: str | Path,
        *,
        limit: int | None = None,
        labelled_only: bool = True,
        expected_column: str = "expected",
        id_column: str = "id",
    ) -> pd.DataFrame:
        """Append the best ``limit`` cases to a golden set (CSV or JSONL), the correction as expected.

        Each row is ``{id, **inputs, expected, lang, reasons}``. Ids already in the file are
        skipped, and so are inputs near-identical (same ``similarity``) to one already there, so
        ``limit`` counts new cases: calling it again appends the next best ones.

        Returns:
            The rows appended.
        """
        chosen = self.candidates
        if labelled_only:
            chosen = chosen[chosen["expected"].notna()]
        target = resolve(path) if not Path(path).is_absolute() else Path(path)
        existing = read_golden_set(target)
        if not existing.empty and len(chosen):
            texts = _existing_texts(existing, chosen["inputs"].iloc[0])
            keep = [
                process.extractOne(_norm(t), texts, scorer=fuzz.ratio, score_cutoff=self.similarity) is None
                for t in chosen["input_text"]
            ]
            chosen = chosen[keep]
        if limit is not None:
            chosen = chosen.head(limit)
        rows = [
            {
                id_column: row.id,
                **row.inputs,
                expected_column: row.expected,
                "lang": row.lang,
                "reasons": row.reasons,
            }
            for row in chosen.itertuples()
        ]
        return append_to_golden_set(target, rows, id_column=id_column)


def _existing_texts(existing: pd.DataFrame, inputs: dict[str, Any]) -> list[str]:
    keys = [k for k, v in inputs.items() if isinstance(v, str) and k in existing]
    if not keys:
        return []
    return [_norm(str(v)) for v in existing[keys[0]].dropna()]


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def _reasons(row: Any, judge_below: float) -> list[str]:
    judge = row.judge
    low = bool(np.isfinite(judge) and judge < judge_below)
    found = {
        "thumbs_down": row.thumb == "down",
        "edited": isinstance(row.edited, dict),
        "reported_problem": _said(row.problem),
        "escalated": row.escalated,
        "low_judge": low,
        "disagreement": bool(
            np.isfinite(judge) and ((row.thumb == "up" and low) or (row.thumb == "down" and judge >= 0.8))
        ),
        "retried": row.retried,
        "abandoned": row.abandoned,
        "comment": _said(row.comment),
    }
    return [name for name, hit in found.items() if hit]


def _said(value: Any) -> bool:
    """A non-empty text (a missing one may be None or NaN, and NaN is truthy)."""
    return isinstance(value, str) and bool(value.strip())


def _expected(row: Any) -> dict[str, Any] | None:
    """The model's fields with the user's edits applied; None when the user corrected nothing."""
    if not isinstance(row.edited, dict):
        return None
    try:
        parsed = json.loads(row.output or "")
    except json.JSONDecodeError:
        parsed = None
    base = parsed if isinstance(parsed, dict) else {}
    return {**base, **row.edited}


def feedback_cases(log: ProductionLog, *, similarity: float = 90.0, judge_below: float = 0.5) -> FeedbackCases:
    """Rank the interactions of ``log`` worth a test and merge near-identical inputs.

    Args:
        log: A production log (one task, say ``log.task("extraction")``, or all of them).
        similarity: rapidfuzz ``ratio`` (0-100) at or above which two inputs count as one case.
        judge_below: A judge score below this is evidence of a failure.

    Returns:
        :class:`FeedbackCases`, best first (priority, then the latest).
    """
    if not 0 < similarity <= 100:
        raise UsageError(f"similarity={similarity!r}: give a rapidfuzz ratio in (0, 100]")
    records = []
    for row in log.frame.itertuples():
        reasons = _reasons(row, judge_below)
        if not reasons:
            continue
        records.append(
            {
                "id": row.id,
                "timestamp": row.timestamp,
                "task": row.task,
                "priority": sum(WEIGHTS[r] for r in reasons),
                "reasons": ", ".join(reasons),
                "input_text": row.input_text,
                "output": row.output,
                "expected": _expected(row),
                "comment": row.comment,
                "lang": row.lang,
                "inputs": row.inputs,
            }
        )
    ranked = pd.DataFrame.from_records(records)
    if ranked.empty:
        return FeedbackCases(candidates=ranked, considered=0, similarity=similarity)
    ranked = ranked.sort_values(["priority", "timestamp"], ascending=[False, False], kind="stable").reset_index(
        drop=True
    )
    kept: list[int] = []
    kept_texts: list[str] = []
    merged: dict[int, list[str]] = {}
    for index, (task, text, case_id) in enumerate(zip(ranked["task"], ranked["input_text"], ranked["id"], strict=True)):
        key = f"{task}\n{_norm(text)}"  # the same text in two tasks is two cases
        match = process.extractOne(key, kept_texts, scorer=fuzz.ratio, score_cutoff=similarity) if kept_texts else None
        if match is None:
            kept.append(index)
            kept_texts.append(key)
            merged[index] = []
        else:
            merged[kept[match[2]]].append(case_id)
    candidates = ranked.loc[kept].copy()
    candidates["duplicates"] = [len(merged[i]) for i in kept]
    candidates["duplicate_ids"] = [merged[i] for i in kept]
    return FeedbackCases(candidates=candidates.reset_index(drop=True), considered=len(ranked), similarity=similarity)
