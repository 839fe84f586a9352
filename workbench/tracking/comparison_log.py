"""A paired comparison on a parent run: its numbers as metrics, verdicts as tags, flips and plots.

:func:`record_comparison` logs a comparison's diff, CI, p-values and effect sizes
under a ``cmp.<candidate>_vs_<baseline>[.<model>]`` prefix, each scorer's verdict
as a tag and the flips table; :func:`comparison_sections` builds its plots (means,
diff, flips) as sections of a chart page, leaving a failing one out.
"""

from __future__ import annotations

from workbench.analysis.comparison import Comparison
from workbench.tracking.chart_page import ChartSection
from workbench.tracking.run_record import safe_key
from workbench.tracking.store import MlflowWriter
from workbench.views.comparison_plots import plot_diff, plot_flips, plot_means


def record_comparison(writer: MlflowWriter, parent: str, comparison: Comparison, *, model: str | None) -> str:
    """Log a comparison's numbers, verdicts and flips table; return its key prefix."""
    prefix = f"cmp.{safe_key(comparison.candidate)}_vs_{safe_key(comparison.baseline)}"
    if model is not None:
        prefix += f".{safe_key(model)}"
    metrics, tags = {}, {}
    for row in comparison.results:
        for field in ("diff", "ci_low", "ci_high", "p_value", "p_adjusted", "effect_size"):
            value = getattr(row, field)
            if value is not None:
                metrics[f"{prefix}.{row.scorer}.{field}"] = value
        tags[f"workbench.{prefix}.{row.scorer}.verdict"] = row.verdict
    tags["workbench.comparison.adjust"] = comparison.adjust
    writer.log(parent, metrics=metrics, tags=tags)
    flips = comparison.flips()
    if len(flips):
        writer.table(parent, flips, f"{prefix}/flips.json")
    return prefix


def comparison_sections(comparison: Comparison, prefix: str, failures: list[str]) -> list[ChartSection]:
    """The comparison's plots (means, diff, flips) as sections of ``charts.html``; a failing one
    is left out and added to ``failures``."""
    heading = str(comparison).splitlines()[0]
    sections: list[ChartSection] = []
    for name, plot in (("means", plot_means), ("diff", plot_diff), ("flips", plot_flips)):
        try:
            figure = plot(comparison)
        except Exception as exc:  # a chart is never worth failing the run
            failures.append(f"{prefix}.{name}: {exc!r}")
            continue
        sections.append(ChartSection(f"{prefix}.{name}", figure, None if sections else heading))
    return sections
