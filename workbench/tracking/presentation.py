"""How runs read in the MLflow UI: names, descriptions, the per-case table's and the metrics' order.

MLflow shows a run's name in every list and renders its ``mlflow.note.content`` tag as
Markdown (GitHub flavour: tables, no raw HTML) in the run's **Description**; an
experiment's own ``mlflow.note.content`` heads its overview page. So:

- a parent run is named ``<experiment> · <source>`` (``sentiment · notebook``), the
  source being how the run was started: ``notebook``, ``playground``, ``report``,
  ``cli`` or ``script``;
- a child run is named ``<variant>@<version> · <model>``
  (``few_shot@6ed7cc2 · local/gemma-3-270m``): two versions of one variant stay apart;
- the parent's description starts with the verdict, then the paired comparison as a
  table (the notebook's columns), a table of the variants, where the run came from,
  and the experiment's own description;
- a child's description is its variant's description and its headline number;
- the experiment's description says where the verdict is, then gives the experiment's
  (YAML) description;
- the per-case table (``cases.json``, shown by the UI as a table) starts with the
  columns a reader looks for: case, inputs, expected, output, scores, reasons, error;
- the first scorer's metric is logged first: MLflow's compare view (parallel
  coordinates) plots the runs' first shared metric by default.

Every text here is a tag value, so it reaches MLflow through the redacting
:class:`~workbench.tracking.store.MlflowWriter`, and is kept under its
:data:`~workbench.tracking.store.TAG_MAX` characters: what does not fit is left out,
and the description says where the rest is.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from workbench.analysis.comparison import Comparison, is_adjusted, table_row
from workbench.analysis.wording import ADJUST_NAMES
from workbench.core import schema as col
from workbench.core.result import EarlyStop, RunResult
from workbench.core.spec import ExperimentSpec
from workbench.core.variant import PromptVariant
from workbench.tracking.store import TAG_MAX

#: Tagged on every run: how it was started; also the second half of the parent run's name.
SOURCE_TAG = "workbench.source"
#: Set by ``workbench report`` for the kernel it starts (a run made there is a "report" run).
REPORT_ENV = "WORKBENCH_REPORT_ID"
#: Characters of a variant's version in run names (a git-style short hash).
SHORT_VERSION = 7
_SEP = " · "


# -- names --------------------------------------------------------------------------------------
def parent_run_name(experiment: str, source: str) -> str:
    """``sentiment · notebook``."""
    return f"{experiment}{_SEP}{source}"


def variant_label(variant: PromptVariant) -> str:
    """``few_shot@6ed7cc2``: the variant's name and the start of its content hash."""
    return f"{variant.name}@{variant.version[:SHORT_VERSION]}"


def child_run_name(variant: PromptVariant, model: str) -> str:
    """``few_shot@6ed7cc2 · local/gemma-3-270m``."""
    return f"{variant_label(variant)}{_SEP}{model}"


def detect_source() -> str:
    """How this process started the run: ``"report"`` inside ``workbench report``'s kernel,
    ``"notebook"`` in any other Jupyter (IPython) kernel, else ``"script"``. The CLI and the
    playground say so themselves (``source="cli"`` / ``"playground"``)."""
    if os.environ.get(REPORT_ENV):
        return "report"
    ipython = sys.modules.get("IPython")  # never imported here: a script has no kernel to find
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    if shell is not None and getattr(shell, "kernel", None) is not None:
        return "notebook"
    return "script"


# -- descriptions -------------------------------------------------------------------------------
def experiment_note(experiment: ExperimentSpec) -> str:
    """The MLflow experiment's description: one line on where the verdict is, then the experiment's own.

    The line comes first: MLflow 3 opens an experiment on its GenAI overview (traces, "No data")
    and shows only the first line of the description until it is expanded.
    """
    where = (
        f"**Verdict:** open **Evaluation runs** (left), then a run `{parent_run_name(experiment.name, '…')}`; "
        "its description starts with the verdict."
    )
    return _join([where, experiment.description.strip()])


def child_note(
    result: RunResult, variant: PromptVariant, summary_row: Any, *, parent: str, verdict: str | None = None
) -> str:
    """A child run's description: its variant's description, its headline number, the verdict of its
    model's comparison (when there is one) and where the whole comparison is."""
    model = summary_row["model"]
    headline = f"`{variant_label(variant)}` on `{_cell(model)}`"
    scorer = result.scorer_names[0] if result.scorer_names else None
    if scorer is not None and scorer in summary_row:
        score = _mean(summary_row[scorer], _kind(result, scorer))
        headline += f": {scorer} {score} over {_int(summary_row.get('n'))} calls"
    where = f"The comparison is in the description of the parent run **{_cell(parent)}**."
    said = f"**Verdict:** {_cell(verdict)}" if verdict else ""
    return _join([variant.description.strip(), headline + ".", said, where])


def parent_note(
    result: RunResult,
    *,
    verdict: str,
    comparisons: Sequence[str],
    source: str,
    error: str | None = None,
) -> str:
    """The parent run's description: verdict, comparison tables, variants, provenance, description.

    ``comparisons``: each model's comparison as :func:`comparison_markdown` wrote it.

    Example:
        >>> note = parent_note(result, verdict=result.verdict(), comparisons=[md], source="cli")  # doctest: +SKIP
        >>> print(note)  # doctest: +SKIP
        **Verdict:** few_shot beats zero_shot on label_match by +49.4 pts [95% CI +41.9, +57.5], ...
    """
    experiment = result.experiment
    parts = [f"**The run failed:** {_cell(error)}"] if error else []
    parts.append(f"**Verdict:** {_cell(verdict)}")
    if result.early_stop is not None:  # the fixed-sample table below does not allow for the looks
        parts.append(f"**Sequential monitoring:** {_cell(result.early_stop.note)}")
    parts += comparisons
    parts.append(variants_markdown(result))
    dataset = experiment.dataset
    repeats = f" × {experiment.repeats} repeats" if experiment.repeats > 1 else ""
    parts.append(
        f"Started from **{_cell(source)}**: {len(dataset)} cases{repeats} × {len(experiment.variants)} variants "
        f"× {len(experiment.models)} model(s), dataset `{_cell(dataset.source)}` (hash `{dataset.content_hash}`). "
        "Charts: `charts.html` under Artifacts; every case: the child runs' `cases.json`."
    )
    if experiment.description.strip():
        parts.append("---\n\n" + experiment.description.strip())
    return _fit(parts)


def comparison_markdown(comparison: Comparison) -> str:
    """The notebook's comparison table (:meth:`Comparison._repr_html_`'s columns) as Markdown, with a title,
    every scorer's verdict when there are several, and the comparison's notes."""
    c = comparison
    adjusted = is_adjusted(c)
    columns = ["scorer", "n", c.baseline, c.candidate, "diff", f"{c.confidence:.0%} CI", "p"]
    if adjusted:
        columns.append(f"p ({ADJUST_NAMES[c.adjust]})")
    columns += ["effect size", "result"]
    title = f"**{_cell(c.candidate)}** (candidate) vs **{_cell(c.baseline)}** (baseline)"
    if c.model:
        title += f", model `{_cell(c.model)}`"
    lines = [title + ":", "", *_table(columns, [table_row(r, adjusted) for r in c.results])]
    if len(c.results) > 1:
        lines += ["", *(f"- {_cell(v)}" for v in c.verdicts)]
    if c.notes:
        lines += ["", *(_cell(note) for note in c.notes)]
    return "\n".join(lines)


def variants_markdown(result: RunResult) -> str:
    """One row per variant x model: version, calls, each scorer's mean, errors, cost, median latency."""
    variants = {v.name: v for v in result.experiment.variants}
    scorers = [s for s in result.scorer_names if s in result.summary.columns]
    columns = ["variant", "model", "calls", *scorers, "errors", "cost (USD)", "latency p50 (s)"]
    kinds = {s: _kind(result, s) for s in scorers}
    rows = []
    for _, row in result.summary.iterrows():
        variant = variants.get(row["variant"])
        name = variant_label(variant) if variant is not None else str(row["variant"])
        means = [_mean(row[s], kinds[s]) for s in scorers]
        rows.append(
            [
                name,
                row["model"],
                _int(row.get("n")),
                *means,
                _int(row.get("errors")),
                _num(row.get("cost_usd"), ".4g"),
                _num(row.get("latency_p50_s"), ".2f"),
            ]
        )
    return "\n".join(["**Variants** (mean scores, calls, errors, cost, median latency):", "", *_table(columns, rows)])


# -- the per-case table and the metrics ------------------------------------------------------
def readable_columns(names: Sequence[str], *, repeated: bool) -> list[str]:
    """The per-case table's columns in the order a reader looks for them: the case (and its
    repeat, when something was ``repeated``), its inputs, what was expected, the output, the
    scores and why, the error; then everything else as it was."""
    names = [str(c) for c in names]
    first = [col.CASE_ID, *([col.REPEAT] if repeated else [])]
    first += col.columns(names, col.INPUT) + col.columns(names, col.EXPECTED) + [col.OUTPUT]
    first += col.columns(names, col.SCORE) + col.columns(names, col.REASON) + [col.ERROR]
    first = [c for c in dict.fromkeys(first) if c in names]
    return first + [c for c in names if c not in first]


def primary_first(metrics: dict[str, float], scorers: list[str]) -> dict[str, float]:
    """``metrics`` with the first scorer's key first: MLflow's compare view defaults to the first metric."""
    if not scorers or scorers[0] not in metrics:
        return metrics
    return {scorers[0]: metrics[scorers[0]], **metrics}


# -- Markdown helpers ---------------------------------------------------------------------------
def _table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(c) for c in columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _cell(value: Any) -> str:
    """Text safe in a Markdown table cell or line: no pipe ends a cell, no newline ends a row."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _kind(result: RunResult, scorer: str) -> str:
    """``"binary"`` when every score of ``scorer`` is 0 or 1 (read from the run's file: one column)."""
    column = col.score_column(scorer)
    if column not in result.cases_file.columns:
        return "continuous"
    values = result.read_cases([column])[column].dropna()
    return "binary" if len(values) and values.isin([0, 1]).all() else "continuous"


def _mean(value: Any, kind: str | None) -> str:
    if not _finite(value):
        return "n/a"
    return f"{float(value):.1%}" if kind == "binary" else f"{float(value):.3g}"


def _num(value: Any, spec: str) -> str:
    return format(float(value), spec) if _finite(value) else "n/a"


def _int(value: Any) -> str:
    return str(int(value)) if _finite(value) else "n/a"


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _join(parts: Iterable[str]) -> str:
    return "\n\n".join(p for p in parts if p)


def _fit(parts: Sequence[str], limit: int = TAG_MAX) -> str:
    """Join ``parts`` in order, leaving out those that would pass ``limit`` characters (and saying so)."""
    cut = "_(Shortened to fit MLflow: the full tables are `summary.csv` and the `cmp.*` metrics.)_"
    kept: list[str] = []
    for part in parts:
        if len(_join([*kept, part, cut])) <= limit:
            kept.append(part)
    return _join(kept if len(kept) == len(parts) else [*kept, cut])


def early_stop_fields(stop: EarlyStop) -> tuple[dict[str, str], dict[str, float]]:
    """Sequential monitoring's outcome as ``workbench.early_stop.*`` tags (words) and
    ``early_stop.*`` metrics (numbers; NaN ones, from a run that took no look, left out)."""
    tags: dict[str, str] = {}
    metrics: dict[str, float] = {}
    for key, value in stop.to_dict().items():
        if key == "note":
            continue
        if isinstance(value, bool) or value is None or isinstance(value, str):
            tags[f"workbench.early_stop.{key}"] = str(value).lower() if isinstance(value, bool) else str(value)
        elif not math.isnan(float(value)):
            metrics[f"early_stop.{key}"] = float(value)
    return tags, metrics
