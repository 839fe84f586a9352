"""A drift report as an MLflow run: counts as metrics, the table and the charts as artifacts.

Example:
    >>> run_id = wb.log_drift_report(report, experiment="monitoring")  # doctest: +SKIP
"""

from __future__ import annotations

from workbench.analysis.drift import DriftReport
from workbench.tracking.chart_page import ChartSection, chart_page
from workbench.tracking.store import MlflowWriter
from workbench.views.drift import plot_drift, plot_drift_metric

__all__ = ["log_drift_report"]

TABLE_ARTIFACT = "drift/drift_report.json"
CHARTS_ARTIFACT = "drift/charts.html"


def log_drift_report(
    report: DriftReport,
    *,
    experiment: str = "monitoring",
    run_name: str | None = None,
    tracking_uri: str | None = None,
    charts: bool = True,
) -> str:
    """Log ``report`` as one finished MLflow run and return its id.

    Metrics: ``drift.tests``, ``drift.flagged``, ``drift.significant``, and per task and metric
    ``drift.<task>.<metric>.flagged_windows`` (windows judged moderate or significant) and
    ``...max_effect``. Params: the reference, the window, alpha and the adjustment. Artifacts:
    the whole table (``drift/drift_report.json``, a table in the MLflow UI), the summary text and,
    with ``charts``, the verdict grid and each flagged metric's chart on one offline page.
    """
    writer = MlflowWriter(tracking_uri)
    experiment_id = writer.experiment_id(experiment, description="Production monitoring: drift reports.")
    name = run_name or f"drift {report.reference.split(' (')[0]} / {report.window}"
    run_id = writer.create_run(experiment_id, name, {"workbench.kind": "drift_report"})
    try:
        table = report.table
        metrics: dict[str, float] = {
            "drift.tests": float(table["p_value"].notna().sum()),
            "drift.flagged": float(len(report.flagged)),
            "drift.significant": float((table["verdict"] == "significant").sum()),
        }
        for (task, metric), group in table.groupby(["task", "metric"]):
            key = f"drift.{task}.{metric}"
            metrics[f"{key}.flagged_windows"] = float(group["verdict"].isin(["moderate", "significant"]).sum())
            metrics[f"{key}.max_effect"] = float(group["effect"].abs().max())
        params = {
            "reference": report.reference,
            "window": report.window,
            "alpha": report.alpha,
            "adjust": report.adjust,
        }
        writer.log(run_id, params=params, metrics=metrics)
        shown = table.assign(
            window_start=table["window_start"].astype(str),
            window_end=table["window_end"].astype(str),
            reference=table["reference"].astype(str),
            current=table["current"].astype(str),
        )
        writer.table(run_id, shown, TABLE_ARTIFACT)
        writer.text(run_id, report.summary(), "drift/summary.txt")
        if charts:
            sections = [ChartSection("verdicts", plot_drift(report))]
            for task, metric in report.flagged[["task", "metric"]].drop_duplicates().itertuples(index=False):
                sections.append(ChartSection(f"{task}-{metric}", plot_drift_metric(report, metric, task=task)))
            writer.text(
                run_id, chart_page(f"Drift against {report.reference}", sections), CHARTS_ARTIFACT, redacted=True
            )
    except BaseException:
        writer.end_run(run_id, "FAILED")
        raise
    writer.end_run(run_id, "FINISHED")
    return run_id
