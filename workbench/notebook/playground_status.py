"""What the playground shows in one line: its status after a run, and its refusals.

:func:`status_line` sums a run up (cases, calls new and cached, tokens, cost,
p50 latency, failures, the first scorer's rate per variant);
:func:`check_columns` refuses a template variable the dataset lacks, naming
the closest column.
"""

from __future__ import annotations

import difflib
import math
import os
from pathlib import Path

from workbench.core import schema as col
from workbench.core.dataset import Dataset
from workbench.core.exceptions import TemplateError
from workbench.core.variant import PromptVariant
from workbench.experiment.result import ExperimentResult
from workbench.notebook.playground_widget import one_line
from workbench.util.paths import project_root


def dataset_file(dataset: Dataset) -> str:
    """The dataset's file as short as it stays clear (from the project root when inside it):
    the widget shows an error on one line."""
    path = Path(os.path.normpath(dataset.source))
    if not path.is_absolute():  # "<records>", or already relative
        return dataset.source
    try:
        return str(path.relative_to(project_root()))
    except ValueError:
        return str(path)


def check_columns(variant: PromptVariant, dataset: Dataset) -> None:
    """Refuse a template variable the dataset has no column for, naming the columns and the closest."""
    unknown = sorted(variant.variables() - set(dataset.frame.columns))
    if not unknown:
        return
    columns = [str(c) for c in dataset.frame.columns if c not in dataset.expected]
    problems = []
    for name in unknown:
        close = difflib.get_close_matches(name, columns, n=1)
        hint = f" (did you mean {{{{ {close[0]} }}}}?)" if close else ""
        problems.append(f"{{{{ {name} }}}}{hint}")
    raise TemplateError(
        f"variant {variant.name!r} uses {', '.join(problems)}, not a column of dataset {dataset_file(dataset)}; "
        f"its columns are {', '.join(repr(c) for c in columns)}"
    )


def _calls(made: int, cached: int) -> str:
    """``6 calls, all from cache`` / ``6 calls: 2 new, 4 from cache`` / ``6 calls, all new``."""
    total = made + cached
    calls = f"{total} call{'' if total == 1 else 's'}"
    if not cached:
        return f"{calls}, all new"
    if not made:
        return f"{calls}, all from cache"
    return f"{calls}: {made} new, {cached} from cache"


def status_line(result: ExperimentResult, label: str) -> str:
    summary = result.summary
    tokens = int(summary["tokens_total"].sum())
    cost = summary["cost_usd"].sum(min_count=1)
    cost_text = "cost unknown" if math.isnan(cost) else f"${cost:.4f}"
    hits = int(summary["cache_hits"].sum())
    latency = result.cases.loc[~result.cases["cached"].astype(bool), "latency_s"]
    parts = [
        f"{result.cases['case_id'].nunique()} cases",
        _calls(result.calls_made, hits),
        f"{tokens} tokens",
        cost_text,
    ]
    if len(latency):
        parts.append(f"p50 {latency.median():.2f} s")
    errors = result.cases[col.ERROR].dropna()
    if len(errors):
        parts.append(f"{len(errors)} failed ({one_line(str(errors.iloc[0]), limit=120)})")
    if result.scorer_names:
        metric = result.scorer_names[0]
        scores = ", ".join(f"{row.variant} {row[metric]:.0%}" for _, row in summary.iterrows())
        parts.append(f"{metric}: {scores}")
    return " · ".join(parts)
