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
import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from workbench.core.exceptions import UsageError
from workbench.core.result import RunResult

Only = Literal["disagreements", "failures"] | None

_TOKENS = re.compile(r"\s+|[^\s]+")
_DEL = "background:#fde2e1;color:#a40e26;text-decoration:line-through"
_INS = "background:#dafbe1;color:#116329"
_CELL = "text-align:left;vertical-align:top;padding:4px 8px;border-bottom:1px solid #ddd;white-space:pre-wrap"
_HEAD = "text-align:left;padding:4px 8px;border-bottom:2px solid #999;background:#f6f8fa"


def word_diff_html(before: str, after: str) -> str:
    """``after`` as HTML, with the words not in ``before`` green and the dropped ones struck red.

    Example:
        >>> word_diff_html("the cat sat", "the dog sat").count("<span")
        2
    """
    old, new = _TOKENS.findall(before or ""), _TOKENS.findall(after or "")
    parts = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            parts.append(html.escape("".join(new[j1:j2])))
            continue
        if op in ("delete", "replace"):
            parts.append(f'<span style="{_DEL}">{html.escape("".join(old[i1:i2]))}</span>')
        if op in ("insert", "replace"):
            parts.append(f'<span style="{_INS}">{html.escape("".join(new[j1:j2]))}</span>')
    return "".join(parts)


def _score_html(value: Any, error: Any) -> str:
    if isinstance(error, str) and error:
        return f'<span style="color:#a40e26" title="{html.escape(error)}">error</span>'
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    if value in (0.0, 1.0):
        return '<span style="color:#116329">✓ pass</span>' if value else '<span style="color:#a40e26">✗ fail</span>'
    return f"{value:.3g}"


@dataclass
class SideBySide:
    """A side-by-side table; renders as HTML in a notebook.

    Attributes:
        frame: One row per case x model x repeat: ``case_id``, ``model``,
            ``repeat``, ``input.*``, ``expected.*``, and per variant
            ``<variant>:output``, ``<variant>:score``, ``<variant>:error``.
        variants: The variants shown, the first being the diff baseline.
        scorer: The score shown next to each output.
        total: Rows before ``limit`` was applied.
    """

    frame: pd.DataFrame
    variants: list[str]
    scorer: str | None
    total: int
    diff: bool = True

    def to_frame(self) -> pd.DataFrame:
        """The table as a DataFrame (plain text, no HTML)."""
        return self.frame.copy()

    def to_html(self) -> str:
        """Self-contained HTML: inline styles, no scripts."""
        inputs = [c for c in self.frame.columns if c.startswith("input.")]
        expected = [c for c in self.frame.columns if c.startswith("expected.")]
        several_models = self.frame["model"].nunique() > 1
        several_repeats = self.frame["repeat"].nunique() > 1
        head = ["case"] + [c.removeprefix("input.") for c in inputs] + [c for c in expected]
        head += [
            f"{v} {'(diff vs ' + self.variants[0] + ')' if self.diff and i else ''}".strip()
            for i, v in enumerate(self.variants)
        ]
        rows = []
        for record in self.frame.to_dict(orient="records"):
            label = html.escape(str(record["case_id"]))
            if several_models:
                label += f"<br><small>{html.escape(str(record['model']))}</small>"
            if several_repeats:
                label += f"<br><small>repeat {record['repeat']}</small>"
            cells = [label] + [html.escape(_text(record[c])) for c in inputs + expected]
            baseline = _text(record.get(f"{self.variants[0]}:output"))
            for i, variant in enumerate(self.variants):
                output = _text(record.get(f"{variant}:output"))
                body = word_diff_html(baseline, output) if self.diff and i else html.escape(output)
                score = _score_html(record.get(f"{variant}:score"), record.get(f"{variant}:error"))
                cells.append(f"{body}<div style='font-size:85%;margin-top:2px'>{score}</div>")
            rows.append("<tr>" + "".join(f'<td style="{_CELL}">{c}</td>' for c in cells) + "</tr>")
        header = "<tr>" + "".join(f'<th style="{_HEAD}">{html.escape(h)}</th>' for h in head) + "</tr>"
        caption = f"{len(self.frame)} of {self.total} rows"
        if self.scorer:
            caption += f"; score: {self.scorer}"
        if len(self.frame) < self.total:
            caption += " (pass limit=None to see all)"
        return (
            f'<table class="wb-side-by-side" style="border-collapse:collapse;font-size:90%">'
            f'<caption style="caption-side:top;text-align:left;color:#555">{html.escape(caption)}</caption>'
            f"<thead>{header}</thead><tbody>{''.join(rows)}</tbody></table>"
        )

    def _repr_html_(self) -> str:
        return self.to_html()

    def __len__(self) -> int:
        return len(self.frame)


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
    cases = result.cases
    known = list(dict.fromkeys(cases["variant"]))
    chosen = list(variants) if variants else known
    unknown = [v for v in chosen if v not in known]
    if unknown:
        raise UsageError(f"no variant(s) {unknown} in this result; its variants are {known}")
    if only not in (None, "disagreements", "failures"):
        raise UsageError(f"only must be None, 'disagreements' or 'failures', got {only!r}")
    metric = scorer or (result.scorer_names[0] if result.scorer_names else None)
    if metric is not None and f"score.{metric}" not in cases:
        raise UsageError(f"no scorer {metric!r} in this result; its scorers are {result.scorer_names}")
    subset = cases[cases["variant"].isin(chosen)]
    if model is not None:
        subset = subset[subset["model"] == model]
    keys = ["case_id", "model", "repeat"]
    fields = {"output": "output", "error": "error"}
    if metric is not None:
        fields["score"] = f"score.{metric}"
    wide = subset.pivot_table(
        index=keys, columns="variant", values=list(fields.values()), aggfunc="first", dropna=False
    )
    renamed = {column: name for name, column in fields.items()}
    wide.columns = [f"{variant}:{renamed[value]}" for value, variant in wide.columns]
    inputs = [c for c in cases.columns if c.startswith(("input.", "expected."))]
    frame = subset.drop_duplicates(keys).set_index(keys)[inputs].join(wide, how="inner")
    for variant in chosen:  # pivot_table drops all-NaN columns; keep every variant's columns
        for name in fields:
            if f"{variant}:{name}" not in frame:
                frame[f"{variant}:{name}"] = None
    frame = frame.reset_index()
    order = {case: i for i, case in enumerate(dict.fromkeys(cases["case_id"]))}
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
    return SideBySide(frame[columns].reset_index(drop=True), chosen, metric, total, diff)
