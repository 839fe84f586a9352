"""Reports: execute a canonical notebook with papermill, render it to HTML,
and attach both to the MLflow runs the notebook created.

The executed notebook keeps the code; the HTML page is for readers: outputs and
markdown only (code cells hidden unless asked for), so a notebook that opens
with its verdict opens the page with it. Charts carry plotly.js once per page
(:mod:`workbench.views.plotly_html`) and open offline.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.exceptions import WorkbenchError
from workbench.core.redaction import REDACTOR
from workbench.tracking.store import MlflowWriter, default_tracking_uri
from workbench.tracking.tracker import REPORT_ENV, REPORT_TAG
from workbench.util.paths import project_root, resolve


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


def render_html(notebook: Path, html: Path, *, code: bool = False) -> None:
    """Render an executed notebook to a standalone HTML page (no kernel needed to read it).

    Args:
        notebook: The executed ``.ipynb``.
        html: Where to write the page.
        code: Show the code cells and their ``In [n]:`` prompts. By default the page
            has the outputs and the markdown only, for readers; the notebook keeps the code.
    """
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab", exclude_input=not code, exclude_input_prompt=not code, exclude_output_prompt=not code
    )
    resources = {"metadata": {"name": notebook.stem}}  # the page's title
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4), resources=resources)
    html.write_text(body, encoding="utf-8")


def _runs_of_report(writer: MlflowWriter, report_id: str) -> list[Any]:
    """The parent runs the report's own kernel made (tagged with its id), oldest first."""
    client = writer.client
    ids = [e.experiment_id for e in client.search_experiments()]
    if not ids:
        return []
    return list(
        client.search_runs(
            ids,
            filter_string=f"tags.`{REPORT_TAG}` = '{report_id}' and tags.`workbench.kind` = 'experiment'",
            order_by=["attributes.start_time ASC"],
        )
    )


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """``os.environ[name] = value`` while the kernel starts and runs (it inherits the environment)."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def run_report(
    notebook: str | Path,
    *,
    parameters: Mapping[str, Any] | None = None,
    output_dir: str | Path = "reports",
    tracking_uri: str | None = None,
    attach: bool = True,
    code: bool = False,
) -> Report:
    """Execute ``notebook`` with papermill into ``output_dir`` (ipynb + HTML).

    The kernel starts in the notebook's own folder, as JupyterLab starts it. The
    executed notebook keeps the code; the HTML page shows outputs and markdown only
    unless ``code=True``. MLflow parent runs the notebook started get both files
    under ``report/`` and a ``workbench.report`` tag (the HTML path). A notebook that
    raises still produces its HTML; :attr:`Report.error` says why.

    Example:
        >>> report = run_report("notebooks/ab_test.ipynb", parameters={"limit": 20})  # doctest: +SKIP
        >>> report.html  # doctest: +SKIP
        PosixPath('reports/ab_test.html')
    """
    import papermill as pm

    source = resolve(notebook)
    if not source.exists():
        raise WorkbenchError(f"notebook {str(notebook)!r} does not exist")
    root = project_root()
    out_dir = Path(output_dir) if Path(output_dir).is_absolute() else root / output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / source.name
    html = executed.with_suffix(".html")
    uri = tracking_uri or default_tracking_uri()
    report_id = uuid.uuid4().hex
    error = None
    kernel_cwd = source.resolve().parent
    print(f"executing {source.name} with papermill (kernel cwd: {kernel_cwd}) ...", file=sys.stderr, flush=True)
    try:
        with _environment(REPORT_ENV, report_id):
            pm.execute_notebook(
                str(source),
                str(executed),
                parameters=dict(parameters or {}),
                cwd=str(kernel_cwd),
                kernel_name="python3",
                progress_bar=sys.stderr.isatty(),
            )
    except pm.PapermillExecutionError as exc:
        error = f"{exc.ename}: {exc.evalue}"
    render_html(executed, html, code=code)
    for written in (executed, html):  # a report is a file that leaves the process: redacted
        written.write_text(REDACTOR.text(written.read_text(encoding="utf-8")), encoding="utf-8")
    report = Report(notebook=executed, html=html, tracking_uri=uri, error=error)
    if attach:
        writer = MlflowWriter(uri)
        for run in _runs_of_report(writer, report_id):
            writer.file(run.info.run_id, executed, "report")
            writer.file(run.info.run_id, html, "report")
            writer.log(run.info.run_id, tags={"workbench.report": str(html)})
            report.run_ids.append(run.info.run_id)
            verdict = run.data.tags.get("workbench.verdict")
            if verdict:
                report.verdicts.append(verdict)
    return report
