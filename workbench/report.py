"""Reports: execute a canonical notebook with papermill, render it to HTML,
and attach both to the MLflow runs the notebook created."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.exceptions import WorkbenchError
from workbench.paths import project_root, resolve


@dataclass
class Report:
    """Where a report went and what it found."""

    notebook: Path
    html: Path
    run_ids: list[str] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    tracking_uri: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def render_html(notebook: Path, html: Path) -> None:
    """Render an executed notebook to a standalone HTML page (no kernel needed to read it)."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nbformat.read(notebook, as_version=4))
    html.write_text(body, encoding="utf-8")


def _parent_runs_since(tracking_uri: str, since_ms: int) -> list[Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    if not ids:
        return []
    return list(
        client.search_runs(
            ids,
            filter_string=f"attributes.start_time >= {since_ms} and tags.`workbench.kind` = 'experiment'",
            order_by=["attributes.start_time ASC"],
        )
    )


def run_report(
    notebook: str | Path,
    *,
    parameters: Mapping[str, Any] | None = None,
    output_dir: str | Path = "reports",
    tracking_uri: str | None = None,
    attach: bool = True,
) -> Report:
    """Execute ``notebook`` with papermill into ``output_dir`` (ipynb + HTML).

    The kernel runs from the project root. MLflow parent runs the notebook
    started get both files under ``report/`` and a ``workbench.report`` tag.
    A notebook that raises still produces its HTML; :attr:`Report.error` says why.

    Example:
        >>> report = run_report("notebooks/ab_test.ipynb", parameters={"limit": 20})  # doctest: +SKIP
        >>> report.html  # doctest: +SKIP
        PosixPath('reports/ab_test.html')
    """
    import papermill as pm

    from workbench.tracking import default_tracking_uri

    source = resolve(notebook)
    if not source.exists():
        raise WorkbenchError(f"notebook {str(notebook)!r} does not exist")
    root = project_root()
    out_dir = Path(output_dir) if Path(output_dir).is_absolute() else root / output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / source.name
    html = executed.with_suffix(".html")
    uri = tracking_uri or default_tracking_uri()
    started_ms = int(time.time() * 1000)
    error = None
    print(f"executing {source.name} with papermill (kernel cwd: {root}) ...", file=sys.stderr, flush=True)
    try:
        pm.execute_notebook(
            str(source),
            str(executed),
            parameters=dict(parameters or {}),
            cwd=str(root),
            kernel_name="python3",
            progress_bar=sys.stderr.isatty(),
        )
    except pm.PapermillExecutionError as exc:
        error = f"{exc.ename}: {exc.evalue}"
    render_html(executed, html)
    report = Report(notebook=executed, html=html, tracking_uri=uri, error=error)
    if attach:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        for run in _parent_runs_since(uri, started_ms):
            client.log_artifact(run.info.run_id, str(executed), "report")
            client.log_artifact(run.info.run_id, str(html), "report")
            client.set_tag(run.info.run_id, "workbench.report", str(html))
            report.run_ids.append(run.info.run_id)
            verdict = run.data.tags.get("workbench.verdict")
            if verdict:
                report.verdicts.append(verdict)
    return report
