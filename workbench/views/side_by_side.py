"""Outputs of several variants next to each other, with a word-level diff.

Prompt engineers read outputs, not only means. :func:`side_by_side` builds a
static HTML table (inline styles, no JavaScript) so it looks the same in
JupyterLab, in a papermill-executed notebook and in its nbconvert HTML export:
one row per case, its inputs and expected values, then each variant's output
and score. Every variant after the first is diffed word by word against the
first: words it dropped are struck through in red, words it added are green.

Example:
    >>> table = result.side_by_side(only="disagreements")  # doctest: +SKIP
    >>> table  # doctest: +SKIP
    >>> table.to_frame().head()  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from workbench.core import schema as col
from workbench.core.exceptions import UsageError
from workbench.core.html import render
from workbench.core.redaction import REDACTOR
from workbench.core.result import RunResult
from workbench.views.conversation import conversation_html, history_columns
from workbench.views.thumbnails import with_thumbnails

Only = Literal["disagreements", "failures"] | None

_TOKENS = re.compile(r"\s+|[^\s]+")


def word_diff(before: str, after: str) -> list[tuple[str, str]]:
    """``after`` as ``(kind, text)`` pieces against ``before``: ``"same"``, ``"del"`` (dropped) or ``"ins"`` (added).

    Example:
        >>> word_diff("the cat sat", "the dog sat")
        [('same', 'the '), ('del', 'cat'), ('ins', 'dog'), ('same', ' sat')]
    """
    old, new = _TOKENS.findall(before or ""), _TOKENS.findall(after or "")
    pieces = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            pieces.append(("same", "".join(new[j1:j2])))
            continue
        if op in ("delete", "replace"):
            pieces.append(("del", "".join(old[i1:i2])))
        if op in ("insert", "replace"):
            pieces.append(("ins", "".join(new[j1:j2])))
    return pieces


def word_diff_html(before: str, after: str) -> str:
    """``after`` as HTML, with the words not in ``before`` green and the dropped ones struck red.

    Example:
        >>> word_diff_html("the cat sat", "the dog sat").count("<span")
        2
    """
    return render("word_diff.html.j2", pieces=word_diff(before, after))


@dataclass
class SideBySide:
    """A side-by-side table; renders as HTML in a notebook.

    Attributes:
        frame: One row per case x model x repeat: ``case_id``, ``model``,
            ``repeat``, ``input.*``, ``expected.*``, and per variant
            ``<variant>:output``, ``<variant>:score``, ``<variant>:error`` (and
            ``<variant>:deployment`` when a model is a router group).
        variants: The variants shown, the first being the diff baseline.
        scorer: The score shown next to each output.
        total: Rows before ``limit`` was applied.
        history: ``input.*`` columns holding a conversation's earlier turns: shown as turns
            in a row above the case, not as a cell.
        experiment: The run's experiment; its variants' image variables are shown as thumbnails.
    """

    frame: pd.DataFrame
    variants: list[str]
    scorer: str | None
    total: int
    diff: bool = True
    history: tuple[str, ...] = ()
    experiment: Any = field(default=None, repr=False)  # its image variables are shown as thumbnails

    def to_frame(self) -> pd.DataFrame:
        """The table as a DataFrame (plain text, no HTML)."""
        return self.frame.copy()

    def to_html(self) -> str:
        """Self-contained HTML: inline styles, no scripts; every value escaped and redacted."""
        inputs = [c for c in col.columns(self.frame.columns, col.INPUT) if c not in self.history]
        expected = col.columns(self.frame.columns, col.EXPECTED)
        head = ["case"] + [c.removeprefix(col.INPUT) for c in inputs] + expected
        head += [f"{v} (diff vs {self.variants[0]})" if self.diff and i else v for i, v in enumerate(self.variants)]
        rows = []
        for record in self.frame.to_dict(orient="records"):
            # Redacted before the diff: a phone number cut into diff pieces is no longer one
            # the redaction chain can recognise (the template redacts each piece again).
            baseline = REDACTOR.text(_text(record.get(f"{self.variants[0]}:output")))
            outputs = []
            for i, variant in enumerate(self.variants):
                text = REDACTOR.text(_text(record.get(f"{variant}:output")))
                pieces = word_diff(baseline, text) if self.diff and i else [("same", text)]
                error = record.get(f"{variant}:error")
                outputs.append(
                    {
                        "pieces": pieces,
                        "score": record.get(f"{variant}:score"),
                        "error": error if _is_text(error) else None,
                        "deployment": _text(record.get(f"{variant}:deployment")) or None,
                    }
                )
            rows.append(
                {
                    "case": record[col.CASE_ID],
                    "model": record[col.MODEL],
                    "repeat": record[col.REPEAT],
                    "values": list(
                        with_thumbnails(
                            {c: _text(record[c]) for c in inputs + expected}, self.experiment, prefix=col.INPUT
                        ).values()
                    ),
                    "outputs": outputs,
                    "conversation": [conversation_html(record[c]) for c in self.history],
                }
            )
        caption = f"{len(self.frame)} of {self.total} rows"
        if self.scorer:
            caption += f"; score: {self.scorer}"
        if len(self.frame) < self.total:
            caption += " (pass limit=None to see all)"
        return render(
            "side_by_side.html.j2",
            head=head,
            rows=rows,
            caption=caption,
            several_models=self.frame[col.MODEL].nunique() > 1,
            several_repeats=self.frame[col.REPEAT].nunique() > 1,
        )

    def _repr_html_(self) -> str:
        return self.to_html()

    def __len__(self) -> int:
        return len(self.frame)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def side_by_side(
    result: RunResult,
    variants: Sequence[str] | None = None,
    *,
    model: str | None = None,
    scorer: str | None = None,
    only: Only = None,
    limit: int | None = 50,
    diff: bool = True,
) -> SideBySide:
    """Outputs of two or more variants next to each other, per case.

    Args:
        result: An experiment result.
        variants: Which variants, in order; the first is the diff baseline.
            Default: all, in the experiment's order.
        model: Only this model's rows (default: all models).
        scorer: The score shown under each output (default: the first scorer).
        only: ``"disagreements"`` keeps the rows whose scores differ between
            the variants; ``"failures"`` the rows where any variant failed (the
            shown score below the experiment's success threshold, 0.5 by default, or an error).
        limit: At most this many rows (``None``: all).
        diff: Highlight word-level differences against the first variant.

    Example:
        >>> side_by_side(result, ["zero_shot", "few_shot"], only="failures")  # doctest: +SKIP
    """
    known = list(dict.fromkeys(result.summary["variant"].astype(str))) if len(result.summary) else []
    chosen = list(variants) if variants else known
    unknown = [v for v in chosen if v not in known]
    if unknown:
        raise UsageError(f"no variant(s) {unknown} in this result; its variants are {known}")
    if only not in (None, "disagreements", "failures"):
        raise UsageError(f"only must be None, 'disagreements' or 'failures', got {only!r}")
    metric = scorer or (result.scorer_names[0] if result.scorer_names else None)
    columns = result.cases_file.columns
    if metric is not None and col.score_column(metric) not in columns:
        raise UsageError(f"no scorer {metric!r} in this result; its scorers are {result.scorer_names}")
    keys = ["case_id", "model", "repeat"]
    fields = {"output": "output", "error": "error"}
    if metric is not None:
        fields["score"] = col.score_column(metric)
    if col.DEPLOYMENT in columns:  # a router group's rows: which deployment answered each output
        fields["deployment"] = col.DEPLOYMENT
    inputs = [c for c in columns if c.startswith((col.INPUT, col.EXPECTED))]
    # Only the chosen variants' rows, and only the columns shown.
    where: dict[str, Any] = {col.VARIANT: chosen, **({col.MODEL: model} if model is not None else {})}
    subset = result.read_cases([*keys, col.VARIANT, *fields.values(), *inputs], where=where)
    wide = subset.pivot_table(
        index=keys, columns="variant", values=list(fields.values()), aggfunc="first", dropna=False
    )
    renamed = {column: name for name, column in fields.items()}
    wide.columns = [f"{variant}:{renamed[value]}" for value, variant in wide.columns]
    frame = subset.drop_duplicates(keys).set_index(keys)[inputs].join(wide, how="inner")
    for variant in chosen:  # pivot_table drops all-NaN columns; keep every variant's columns
        for name in fields:
            if f"{variant}:{name}" not in frame:
                frame[f"{variant}:{name}"] = None
    frame = frame.reset_index()
    order = {case: i for i, case in enumerate(dict.fromkeys(subset["case_id"]))}
    frame = frame.sort_values(["case_id", "model", "repeat"], key=lambda s: s.map(order) if s.name == "case_id" else s)
    if only is not None and metric is not None:
        scores = frame[[f"{v}:score" for v in chosen]].astype(float)
        errors = frame[[f"{v}:error" for v in chosen]].notna().to_numpy().any(axis=1)
        if only == "disagreements":
            keep = (scores.nunique(axis=1, dropna=False) > 1).to_numpy() | errors
        else:
            keep = scores.map(result.experiment.success.failed_score).to_numpy().any(axis=1) | errors
        frame = frame[keep]
    total = len(frame)
    if limit is not None:
        frame = frame.head(limit)
    columns = keys + inputs + [f"{v}:{name}" for v in chosen for name in fields]
    history = tuple(c for c in map(col.input_column, history_columns(result.experiment.variants)) if c in columns)
    frame = frame[columns].reset_index(drop=True)
    return SideBySide(frame, chosen, metric, total, diff, history, result.experiment)
