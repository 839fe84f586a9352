"""MLflow logging: one parent run per experiment, one child run per variant x model.

The default store is ``sqlite:///<project>/mlruns/mlflow.db`` with artifacts in
``<project>/mlruns/artifacts``; ``MLFLOW_TRACKING_URI`` overrides it. Everything
is logged through :class:`mlflow.MlflowClient` with explicit run ids (no global
"active run"), in batches.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from workbench._env import ui_environment
from workbench._secrets import redact
from workbench._warm_up import WarmUp
from workbench.paths import project_root

if TYPE_CHECKING:
    from workbench.experiment import Experiment
    from workbench.result import ExperimentResult

_PARAM_MAX = 6000
#: Larger per-case tables are logged as Parquet instead of the UI's JSON table.
TABLE_ROWS_MAX = 20_000  # MLflow's limit on a param value's length
_PACKAGES = ("prompt-workbench", "litellm", "mlflow", "pandas", "scikit-learn", "llama-cpp-python")


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the project's ``mlruns/mlflow.db``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    store = project_root() / "mlruns"
    store.mkdir(exist_ok=True)
    return f"sqlite:///{store / 'mlflow.db'}"


def ui_command(tracking_uri: str | None = None, *, port: int = 5000) -> str:
    """The shell command that opens the MLflow UI on this store, bound to 127.0.0.1.

    It sets ``LITELLM_LOCAL_MODEL_COST_MAP=True``: with litellm installed,
    ``mlflow ui`` otherwise hangs offline while importing it.
    """
    uri = tracking_uri or default_tracking_uri()
    env = " ".join(f"{k}={v}" for k, v in ui_environment().items())
    server = f"ui --backend-store-uri {shlex.quote(uri)} --host 127.0.0.1 --port {port}"
    return f"{env} {_mlflow_executable()} {server}"


def _mlflow_executable() -> str:
    """``mlflow`` of this environment; relative (``.venv/bin/mlflow``) when inside the project."""
    exe = Path(sys.executable).parent / "mlflow"
    if not exe.exists():
        return "mlflow"
    try:
        return str(exe.relative_to(project_root()))
    except ValueError:
        return str(exe)


def _param(key: str, value: Any) -> Param:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    if len(text) > _PARAM_MAX:
        text = text[: _PARAM_MAX - 20] + "...[truncated]"
    return Param(key, text)


def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _log_batch(client: MlflowClient, run_id: str, *, params=(), metrics=(), tags=()) -> None:  # type: ignore[no-untyped-def]
    params, metrics, tags = list(params), list(metrics), list(tags)
    # MLflow accepts at most 100 params and 1000 metrics per batch.
    for i in range(0, max(len(params), len(metrics), len(tags), 1), 100):
        client.log_batch(run_id, params=params[i : i + 100], metrics=metrics[i : i + 100], tags=tags[i : i + 100])


class MlflowTracker:
    """Logs one experiment run to MLflow.

    Args:
        tracking_uri: The store; :func:`default_tracking_uri` by default.
        charts: Also log the result's charts (:func:`workbench.charts_for`) to
            the parent run as one self-contained HTML page, ``charts.html``.

    Example:
        >>> tracker = MlflowTracker()  # doctest: +SKIP
        >>> tracker.start(experiment)  # doctest: +SKIP
        >>> tracker.log_result(result)  # doctest: +SKIP
        >>> tracker.finish("FINISHED")  # doctest: +SKIP
    """

    def __init__(self, *, tracking_uri: str | None = None, charts: bool = True) -> None:
        self.tracking_uri = tracking_uri or default_tracking_uri()
        self.charts = charts
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        self.parent_run_id: str | None = None
        self._children: list[str] = []
        self._finished = False
        self._warm_up = WarmUp()

    def _experiment_id(self, name: str) -> str:
        existing = self.client.get_experiment_by_name(name)
        if existing is not None:
            return str(existing.experiment_id)
        artifact_location = None
        if self.tracking_uri.startswith("sqlite:///"):
            db = Path(self.tracking_uri.removeprefix("sqlite:///"))
            artifact_location = (db.parent / "artifacts").resolve().as_uri()
        return str(self.client.create_experiment(name, artifact_location=artifact_location))

    def _close_orphans(self, experiment_id: str) -> list[str]:
        """Mark as KILLED the parent runs left RUNNING by a process that died (kill -9, crash).

        Only runs started on this host by a process that no longer exists are touched.
        """
        closed = []
        runs = self.client.search_runs(
            [experiment_id],
            filter_string="attributes.status = 'RUNNING' and tags.`workbench.kind` = 'experiment'",
        )
        for run in runs:
            tags = run.data.tags
            if tags.get("workbench.host") != socket.gethostname() or not tags.get("workbench.pid", "").isdigit():
                continue
            if _pid_alive(int(tags["workbench.pid"])):
                continue
            for child in self.client.search_runs(
                [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'"
            ):
                if child.info.status == "RUNNING":
                    self.client.set_terminated(child.info.run_id, "KILLED")
            self.client.set_terminated(run.info.run_id, "KILLED")
            closed.append(run.info.run_id)
        return closed

    def start(self, experiment: Experiment) -> str:
        """Create the parent run and log the experiment's definition."""
        experiment_id = self._experiment_id(experiment.name)
        orphans = self._close_orphans(experiment_id)
        tags = {
            "workbench.kind": "experiment",
            "workbench.pid": str(os.getpid()),
            "workbench.host": socket.gethostname(),
            "mlflow.note.content": experiment.description or "",
        }
        if orphans:
            # The response cache holds their completed calls: this run resumes them.
            tags["workbench.resumes"] = ",".join(orphans)
        run = self.client.create_run(experiment_id, run_name=f"{experiment.name}", tags=tags)
        self.parent_run_id = run.info.run_id
        dataset = experiment.dataset
        _log_batch(
            self.client,
            self.parent_run_id,
            params=[
                _param("dataset_source", dataset.source),
                _param("dataset_hash", dataset.content_hash),
                _param("n_cases", len(dataset)),
                _param("repeats", experiment.repeats),
                _param("models", list(experiment.models)),
                _param("variants", {v.name: v.version for v in experiment.variants}),
                _param("scorers", [s.spec() for s in experiment.scorers]),
            ],
        )
        root = project_root()
        manifest = {
            "experiment": experiment.name,
            "dataset": {"source": dataset.source, "hash": dataset.content_hash, "n_cases": len(dataset)},
            "variants": {v.name: {"version": v.version, **_redacted_variant(v)} for v in experiment.variants},
            "models": list(experiment.models),
            "scorers": [s.spec() for s in experiment.scorers],
            "repeats": experiment.repeats,
            "settings": vars(experiment.settings) if hasattr(experiment.settings, "__dict__") else {},
            "packages": _versions(),
            "git_commit": _git_commit(root),
        }
        self.client.log_dict(self.parent_run_id, manifest, "manifest.json")
        if self.charts:
            self._warm_up.start()
        return self.parent_run_id

    def log_result(self, result: ExperimentResult, *, verdict: str | None = None) -> None:
        """Log one child run per variant x model, and the overall summary on the parent.

        ``verdict``: ``result.verdict()`` when the caller already has it (the ``workbench.verdict`` tag).
        """
        assert self.parent_run_id is not None, "call start() first"
        experiment = result.experiment
        experiment_id = self.client.get_run(self.parent_run_id).info.experiment_id
        variants = {v.name: v for v in experiment.variants}
        for _, row in result.summary.iterrows():
            variant = variants[row["variant"]]
            child = self.client.create_run(
                experiment_id,
                run_name=f"{variant.name} @ {row['model']}",
                tags={"mlflow.parentRunId": self.parent_run_id, "workbench.kind": "variant"},
            )
            run_id = child.info.run_id
            self._children.append(run_id)
            params = {
                "variant": variant.name,
                "variant_version": variant.version,
                "model": row["model"],
                "dataset_hash": experiment.dataset.content_hash,
                "scorers": [s.spec() for s in experiment.scorers],
                "system": variant.system or "",
                "prompt": variant.prompt,
                "n_examples": len(variant.examples),
                **{f"param.{k}": v for k, v in redact(dict(variant.params)).items()},
            }
            _log_batch(
                self.client,
                run_id,
                params=[_param(k, v) for k, v in params.items()],
                metrics=_metrics(row),
            )
            self.client.log_dict(run_id, _redacted_variant(variant), "prompt_template.json")
            mask = (result.cases["variant"] == variant.name) & (result.cases["model"] == row["model"])
            self._log_cases(run_id, result.cases[mask.to_numpy()])
            self.client.set_terminated(run_id, "FINISHED")
        self.client.log_text(self.parent_run_id, result.summary.to_csv(index=False), "summary.csv")
        chart_tags = self._log_charts(result) if self.charts else []
        _log_batch(
            self.client,
            self.parent_run_id,
            metrics=[
                Metric(f"{r['variant']}.{key}", value, 0, 0)
                for _, r in result.summary.iterrows()
                for key, value in _metric_items(r)
            ]
            + [
                Metric("calls_made", float(result.calls_made), 0, 0),
                Metric("cache_hits", float(result.summary["cache_hits"].sum()), 0, 0),
            ],
            tags=[RunTag("workbench.verdict", verdict if verdict is not None else result.verdict())]
            + [RunTag("workbench.note", "; ".join(result.notes))] * bool(result.notes)
            + chart_tags,
        )

    def _log_charts(self, result: ExperimentResult) -> list[RunTag]:
        """Log every chart of the result to the parent run as one page, ``charts.html``.

        One self-contained page: plotly.js (~5 MB) is inlined once, so it opens
        offline and in the MLflow UI, and a run costs ~5 MB of charts however
        many variants, models or scorers it has. Charts are a view of numbers
        logged elsewhere, so no chart error may fail the run: a failing chart is
        left out, with a warning and a ``workbench.charts_error`` tag.
        """
        from workbench.charts import chart_builders

        assert self.parent_run_id is not None
        self._warm_up.wait()
        failures: list[str] = []
        figures: list[tuple[str, Any]] = []
        try:
            builders = chart_builders(result)
        except Exception as exc:  # a chart is never worth failing the run
            builders, failures = {}, [f"charts: {exc!r}"]
        for name, build in builders.items():
            try:
                figures.append((name, build()))
            except Exception as exc:  # one broken chart must not cost the others
                failures.append(f"{name}: {exc!r}")
        if figures:
            try:
                body = "".join(
                    f'<section id="{name}">{figure.to_html(full_html=False, include_plotlyjs=i == 0)}</section>'
                    for i, (name, figure) in enumerate(figures)
                )
                title = f"{result.name}: charts"
                page = f'<html><head><meta charset="utf-8"><title>{title}</title></head><body>{body}</body></html>'
                self.client.log_text(self.parent_run_id, page, "charts.html")
            except Exception as exc:  # e.g. the artifact store refused the file
                failures.append(f"charts.html: {exc!r}")
        if not failures:
            return []
        message = "; ".join(failures)
        warnings.warn(f"some charts were not logged to MLflow: {message}", RuntimeWarning, stacklevel=3)
        return [RunTag("workbench.charts_error", message[:5000])]

    def _log_cases(self, run_id: str, cases: Any) -> None:
        """The per-case table: JSON the MLflow UI shows, or Parquet when it is too big to browse."""
        if len(cases) <= TABLE_ROWS_MAX:
            self.client.log_table(run_id, data=cases.reset_index(drop=True), artifact_file="cases.json")
            return
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "cases.parquet"
            cases.to_parquet(path, index=False)  # index=False: no copy to reset the index first
            self.client.log_artifact(run_id, str(path))

    def log_comparison(self, comparison: Any) -> None:
        """Log a paired comparison to the parent run: numbers as metrics, verdicts as tags,
        the flips table and the plots as artifacts."""
        from workbench.plots_compare import plot_diff, plot_flips, plot_means

        assert self.parent_run_id is not None, "call start() first"
        self._warm_up.wait()
        prefix = f"cmp.{_safe(comparison.candidate)}_vs_{_safe(comparison.baseline)}"
        metrics, tags = [], []
        for row in comparison.results:
            for field in ("diff", "ci_low", "ci_high", "p_value", "p_adjusted", "effect_size"):
                value = getattr(row, field)
                if value is not None and not math.isnan(value):
                    metrics.append(Metric(f"{prefix}.{row.scorer}.{field}", float(value), 0, 0))
            tags.append(RunTag(f"workbench.{prefix}.{row.scorer}.verdict", row.verdict[:5000]))
        tags.append(RunTag("workbench.comparison.adjust", comparison.adjust))
        _log_batch(self.client, self.parent_run_id, metrics=metrics, tags=tags)
        flips = comparison.flips()
        if len(flips):
            self.client.log_table(self.parent_run_id, data=flips, artifact_file=f"{prefix}/flips.json")
        figures = [plot_means(comparison), plot_diff(comparison), plot_flips(comparison)]
        page = "".join(fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figures))
        self.client.log_text(self.parent_run_id, f"<html><body>{page}</body></html>", f"{prefix}/plots.html")

    def finish(self, status: str) -> None:
        """End the parent run (and any child still open) as FINISHED or FAILED."""
        if self._finished or self.parent_run_id is None:
            return
        for run_id in self._children:
            if self.client.get_run(run_id).info.status == "RUNNING":
                self.client.set_terminated(run_id, status)
        self.client.set_terminated(self.parent_run_id, status)
        self._finished = True


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _redacted_variant(variant: Any) -> dict[str, Any]:
    data = variant.to_dict()
    if "params" in data:
        data["params"] = redact(data["params"])
    return data


def _metric_items(row: Any) -> list[tuple[str, float]]:
    skip = {"variant", "model", "variant_version"}
    items = []
    for key, value in row.items():
        if key in skip or not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
            continue
        if isinstance(value, float) and math.isnan(value):
            continue
        items.append((str(key), float(value)))
    return items


def _metrics(row: Any) -> list[Metric]:
    now = int(time.time() * 1000)
    return [Metric(key, value, now, 0) for key, value in _metric_items(row)]
