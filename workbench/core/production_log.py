"""Production traffic as a validated table: what users sent, what the model said, what they did next.

:meth:`ProductionLog.load` reads a JSONL file (one interaction a line, the format of
``data/production_log.jsonl``, written by ``data/make_production_log.py``), a DataFrame of the
same records or MLflow traces (``mlflow.search_traces()``), checks every row with pydantic, and
adds the columns the drift report and the feedback ranking read:

==================  ====================================================================
column              meaning
==================  ====================================================================
``input_text``      the text the user sent (``inputs.text``, else ``inputs.question``, else
                    the string inputs joined)
``input_chars``     its length in characters
``lang``            ``"ru"`` when at least 30% of its letters are Cyrillic, else ``"en"``
``category``        the extracted ``category`` (JSON outputs), else ``inputs.section``
``json_valid``      the output parses as a JSON object (tasks in ``json_tasks``; else NA)
``null_rate``       the share of null fields in that object (NA when not valid JSON)
``refusal``         the output is a refusal (:data:`REFUSAL_PATTERN`)
``thumb_down``      explicit feedback: a thumbs-down
``explicit``        any explicit feedback (a thumb, a comment or a reported problem)
``implicit``        any implicit feedback (an edit, a retry, abandoned, escalated)
``judge``           ``scores.judge`` when an online judge scored the row
==================  ====================================================================

A bad row stops the load with a :class:`~workbench.core.exceptions.DatasetError` naming the
file, the line, the field and the fix, before anything is computed from it.

Example:
    >>> log = ProductionLog.load("data/production_log.jsonl")  # doctest: +SKIP
    >>> log.frame.groupby("task")["thumb_down"].mean()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from workbench.core.exceptions import DatasetError
from workbench.core.production_traces import is_traces_frame, records_from_traces
from workbench.util.paths import resolve

__all__ = ["REFUSAL_PATTERN", "Interaction", "ProductionLog", "language_of"]

#: What counts as a refusal (English and Russian), matched case-insensitively anywhere in the output.
REFUSAL_PATTERN = re.compile(
    r"\b(can't|cannot|can not|unable to) help\b|\bI'm not able to\b|не могу (с этим )?помочь|не могу ответить",
    re.IGNORECASE,
)
_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
_LETTER = re.compile(r"[^\W\d_]")

#: How to fix a bad value, by field.
_FIXES = {
    "timestamp": "write ISO 8601 with a time zone, e.g. '2026-10-05T08:12:33Z'",
    "latency_s": "give the call's duration in seconds, a number >= 0",
    "cost_usd": "give the cost in US dollars, a number >= 0 (or null)",
    "tokens": "write {'input': <int>, 'output': <int>} (or null)",
    "feedback": "write null or {'thumb': 'up'|'down'|null, 'comment': ..., 'problem': ...}",
    "implicit": "write {'edited': null or {field: value}, 'retried': bool, 'abandoned': ..., 'escalated': ...}",
    "inputs": "write the inputs as an object, e.g. {'text': '...'}",
    "scores": "write null or {name: number}",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Tokens(_Strict):
    """Tokens of one call."""

    input: int = Field(ge=0)
    output: int = Field(ge=0)


class Feedback(_Strict):
    """What the user said: a thumb, a comment, a reported problem (each optional)."""

    thumb: Literal["up", "down"] | None = None
    comment: str | None = None
    problem: str | None = None


class Implicit(_Strict):
    """What the user did: corrected fields (the corrected values), retried, abandoned, escalated."""

    edited: dict[str, Any] | None = None
    retried: bool = False
    abandoned: bool = False
    escalated: bool = False


class Interaction(_Strict):
    """One line of a production log (unknown fields are refused: a misspelt name is not silently lost)."""

    id: str = Field(min_length=1)
    timestamp: AwareDatetime
    task: str = Field(min_length=1)
    variant: str = Field(min_length=1)
    prompt_version: int | str | None = None
    model: str = Field(min_length=1)
    inputs: dict[str, Any]
    output: str | None
    latency_s: float = Field(ge=0)
    tokens: Tokens | None = None
    cost_usd: float | None = Field(default=None, ge=0)
    feedback: Feedback | None = None
    implicit: Implicit = Field(default_factory=Implicit)
    scores: dict[str, float] | None = None


@dataclass(frozen=True)
class ProductionLog:
    """Validated production interactions, one row each, in time order.

    Attributes:
        frame: The table: the log's fields (``tokens_in`` / ``tokens_out`` for ``tokens``,
            ``thumb`` / ``comment`` / ``problem`` for ``feedback``, ``edited`` / ``retried`` /
            ``abandoned`` / ``escalated`` for ``implicit``) plus the derived columns listed in the
            module docstring. ``timestamp`` is a UTC datetime.
        source: Where it was read from.
    """

    frame: pd.DataFrame
    source: str

    @classmethod
    def load(cls, data: str | Path | pd.DataFrame, *, json_tasks: Sequence[str] = ("extraction",)) -> ProductionLog:
        """Read and validate a production log.

        Args:
            data: A JSONL file (one interaction a line), a DataFrame of the same records, or
                the frame ``mlflow.search_traces()`` returns (:mod:`~workbench.core.production_traces`).
            json_tasks: Tasks whose outputs must be a JSON object (``json_valid``, ``null_rate``).

        Raises:
            DatasetError: the file is missing, a line is not JSON, or a row breaks the format
                (the message names the file, the line, the field and the fix).

        Example:
            >>> log = ProductionLog.load("data/production_log.jsonl")  # doctest: +SKIP
            >>> len(log)  # doctest: +SKIP
            4000
        """
        if isinstance(data, pd.DataFrame) and is_traces_frame(data):
            source = "MLflow traces"
            records = [(i + 1, r) for i, r in enumerate(records_from_traces(data))]
            where = "trace"
        elif isinstance(data, pd.DataFrame):
            source = "DataFrame"
            records = [(i + 1, _plain(r)) for i, r in enumerate(data.to_dict(orient="records"))]
            where = "row"
        else:
            path = resolve(data)  # as datasets: from the project or from notebooks/
            source = str(data)
            if not path.is_file():
                raise DatasetError(f"production log {source!r} does not exist; check the path")
            records = list(_read_jsonl(path))
            where = "line"
        rows = [_validated(record, source=source, where=f"{where} {number}") for number, record in records]
        if not rows:
            raise DatasetError(f"production log {source!r} has no interactions")
        frame = _table(rows, json_tasks=set(json_tasks))
        return cls(frame=frame, source=source)

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        start, end = self.frame["timestamp"].min(), self.frame["timestamp"].max()
        tasks = ", ".join(f"{t}: {n}" for t, n in self.frame["task"].value_counts().sort_index().items())
        return f"ProductionLog({self.source!r}, {len(self)} interactions ({tasks}), {start:%Y-%m-%d} .. {end:%Y-%m-%d})"

    def task(self, name: str) -> ProductionLog:
        """The interactions of one task."""
        frame = self.frame[self.frame["task"] == name].reset_index(drop=True)
        if frame.empty:
            raise DatasetError(
                f"production log {self.source!r} has no task {name!r}; it has {sorted(set(self.frame['task']))}"
            )
        return ProductionLog(frame=frame, source=self.source)

    def feedback_summary(self) -> pd.DataFrame:
        """Per task: interactions, and the share with explicit feedback, thumbs-down, implicit feedback, edits."""
        f = self.frame.assign(edited_any=self.frame["edited"].notna())
        grouped = f.groupby("task")
        return pd.DataFrame(
            {
                "interactions": grouped.size(),
                "explicit": grouped["explicit"].mean(),
                "thumb_down": grouped["thumb_down"].mean(),
                "implicit": grouped["implicit"].mean(),
                "edited": grouped["edited_any"].mean(),
                "escalated": grouped["escalated"].mean(),
            }
        )


def _read_jsonl(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(
                    f"production log {str(path)!r} line {number} is not JSON ({exc.msg} at column {exc.colno}); "
                    "fix: one JSON object per line"
                ) from exc
            if not isinstance(record, dict):
                raise DatasetError(
                    f"production log {str(path)!r} line {number} is not a JSON object; fix: one object per line"
                )
            yield number, record


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """A DataFrame row as the JSON record it came from (NaN -> None, Timestamps -> ISO text)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, float) and np.isnan(value):
            value = None
        elif isinstance(value, pd.Timestamp | datetime):
            value = value.isoformat()
        out[str(key)] = value
    return out


def _validated(record: dict[str, Any], *, source: str, where: str) -> Interaction:
    try:
        return Interaction.model_validate(record)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        top = str(error["loc"][0]) if error["loc"] else ""
        if error["type"] == "missing":
            problem, fix = "is missing", f"add {field!r} to every line"
        elif error["type"] == "extra_forbidden":
            problem, fix = (
                "is not a known field",
                f"remove or rename it (the fields: {', '.join(Interaction.model_fields)})",
            )
        else:
            problem = f"{error['msg']} (got {error.get('input')!r})"
            fix = _FIXES.get(top, "see ProductionLog's docstring for the format")
        more = f" ({len(exc.errors()) - 1} more problem(s) on this row)" if len(exc.errors()) > 1 else ""
        raise DatasetError(f"production log {source!r} {where}, field {field!r}: {problem}; fix: {fix}{more}") from None


def _input_text(inputs: dict[str, Any]) -> str:
    for key in ("text", "question", "input", "query"):
        if isinstance(inputs.get(key), str):
            return str(inputs[key])
    return "\n".join(str(v) for v in inputs.values() if isinstance(v, str))


def language_of(text: str) -> str:
    """``"ru"`` when at least 30% of the letters of ``text`` are Cyrillic, else ``"en"``."""
    letters = len(_LETTER.findall(text))
    return "ru" if letters and len(_CYRILLIC.findall(text)) / letters >= 0.3 else "en"


def _parsed(output: str | None) -> dict[str, Any] | None:
    try:
        value = json.loads(output or "")
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _table(rows: list[Interaction], *, json_tasks: set[str]) -> pd.DataFrame:
    records = []
    for row in rows:
        text = _input_text(row.inputs)
        fields = _parsed(row.output) if row.task in json_tasks else None
        feedback = row.feedback or Feedback()
        implicit = row.implicit
        category = fields.get("category") if fields else row.inputs.get("section")
        records.append(
            {
                "id": row.id,
                "timestamp": row.timestamp,
                "task": row.task,
                "variant": row.variant,
                "prompt_version": None if row.prompt_version is None else str(row.prompt_version),
                "model": row.model,
                "inputs": row.inputs,
                "output": row.output,
                "latency_s": row.latency_s,
                "tokens_in": row.tokens.input if row.tokens else np.nan,
                "tokens_out": row.tokens.output if row.tokens else np.nan,
                "cost_usd": np.nan if row.cost_usd is None else row.cost_usd,
                "thumb": feedback.thumb,
                "comment": feedback.comment,
                "problem": feedback.problem,
                "edited": implicit.edited or None,
                "retried": implicit.retried,
                "abandoned": implicit.abandoned,
                "escalated": implicit.escalated,
                "judge": (row.scores or {}).get("judge", np.nan),
                "input_text": text,
                "input_chars": len(text),
                "lang": language_of(text),
                "category": category if isinstance(category, str) else None,
                "json_valid": (fields is not None) if row.task in json_tasks else pd.NA,
                "null_rate": (sum(v is None for v in fields.values()) / len(fields)) if fields else np.nan,
                "refusal": bool(REFUSAL_PATTERN.search(row.output or "")),
                "thumb_down": feedback.thumb == "down",
                "explicit": bool(feedback.thumb or feedback.comment or feedback.problem),
                "implicit": bool(implicit.edited or implicit.retried or implicit.abandoned or implicit.escalated),
            }
        )
    frame = pd.DataFrame.from_records(records)
    for column in ("prompt_version", "output", "thumb", "comment", "problem", "category"):
        # object columns with None for missing, whatever the first rows hold (pandas would infer
        # a string dtype with NaN when every value is text, and object when every value is None)
        frame[column] = pd.Series([r[column] for r in records], dtype=object)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["json_valid"] = frame["json_valid"].astype("boolean")
    return frame.sort_values(["timestamp", "id"], kind="stable").reset_index(drop=True)
