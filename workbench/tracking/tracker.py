"""MLflow logging as a run observer: one parent run per experiment, one child run per variant x model.

:class:`MlflowObserver` follows a run through the engine's events: the parent
run opens when the run starts (definition, dataset hash, a ``manifest.json``
with package versions and git commit), and when it finishes every variant x
model gets a child run (its params, the summary as metrics, the per-case table)
and the parent gets the summary, the charts, the paired comparisons and the
verdict. A run that fails ends FAILED, with whatever partial result it had
logged. Everything is written through :class:`~workbench.tracking.store.MlflowWriter`
(redacted, batched, explicit run ids: no global "active run").

How the runs read in the UI (names, the verdict as the parent's description) is
:mod:`workbench.tracking.presentation`; the charts page is
:mod:`workbench.tracking.chart_page`.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Sequence
from typing import Any

from workbench.analysis.compare import compare_run
from workbench.analysis.comparison import Comparison
from workbench.analysis.redteam import redteam_report
from workbench.core import schema as col
from workbench.core.exceptions import RunError, TrackingError, TrackingUnreachableError, UsageError, WorkbenchError
from workbench.core.result import RunResult
from workbench.core.spec import ExperimentSpec
from workbench.engine.observers import RunObserver, RunStart
from workbench.tracking.chart_page import ChartSection, log_chart_page
from workbench.tracking.comparison_log import comparison_sections, record_comparison
from workbench.tracking.genai import link_prompts, log_run_inputs
from workbench.tracking.pending import write_pending
from workbench.tracking.presentation import (
    REPORT_ENV,
    SOURCE_TAG,
    child_note,
    child_run_name,
    comparison_markdown,
    detect_source,
    early_stop_fields,
    experiment_note,
    parent_note,
    parent_run_name,
    primary_first,
    readable_columns,
)
from workbench.tracking.run_record import manifest, parent_metrics, verdict_line
from workbench.tracking.store import CASES_ARTIFACT, NOTE_TAG, MlflowWriter, metric_items, owner_tags
from workbench.tracking.traces import TraceWriter
from workbench.util.memory import release_unused
from workbench.views.warm_up import WarmUp

#: Larger per-case tables are logged as Parquet instead of the UI's JSON table.
TABLE_ROWS_MAX = 20_000
#: Parent runs made inside ``workbench report``'s kernel (:data:`REPORT_ENV` set) carry its id as
#: this tag, so the report attaches itself to those runs and no others.
REPORT_TAG = "workbench.report_id"
#: Seconds between heartbeats of a running parent run (see :meth:`MlflowWriter.close_orphans`).
_HEARTBEAT_S = 60.0


class MlflowObserver(RunObserver):
    """Logs one experiment run to MLflow.

    Args:
        tracking_uri: The store; ``MLFLOW_TRACKING_URI`` or the project's ``mlruns/`` by default.
        charts: Also log the result's charts (:func:`workbench.charts_for`) and each
            paired comparison's plots to the parent run as one self-contained HTML page,
            ``charts.html`` (under 2 MB: see :mod:`workbench.tracking.chart_page`).
        source: How the run was started: ``"notebook"``, ``"playground"``, ``"report"``,
            ``"cli"``, ``"script"`` or a word of your own. Tagged ``workbench.source`` and
            part of the parent run's name (``sentiment · notebook``); :func:`detect_source`
            by default.
        traces: Write every call as a trace (scores as assessments, see
            :mod:`workbench.tracking.traces`); None: as the experiment's
            ``settings.traces`` says.

    Example:
        >>> exp.run(observers=[MlflowObserver(tracking_uri="sqlite:///other.db")])  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        tracking_uri: str | None = None,
        charts: bool = True,
        source: str | None = None,
        traces: bool | None = None,
    ) -> None:
        self.writer = MlflowWriter(tracking_uri)
        self.traces = traces
        self._tracer: TraceWriter | None = None
        self.tracking_uri = self.writer.tracking_uri
        self.charts = charts
        self.source = source or detect_source()
        self.parent_run_id: str | None = None
        self.parent_run_name: str | None = None
        self._experiment_id: str | None = None
        self._children: list[str] = []
        self._prompts: dict[str, Any] = {}  # variant name -> its registered prompt version
        self._error: str | None = None
        self._finished = False
        self._warm_up = WarmUp()
        self._last_beat = 0.0
        self._unreachable = False

    # -- the run's events ---------------------------------------------------------------
    def run_started(self, start: RunStart) -> None:
        self.start(start.experiment)

    def case_done(self, row: Any) -> None:
        if self._tracer is not None:
            self._tracer.add(row)
        now = time.monotonic()
        if self.parent_run_id is not None and now - self._last_beat > _HEARTBEAT_S:
            self._last_beat = now
            try:
                self.writer.log(self.parent_run_id, tags=owner_tags())
            except Exception as exc:  # a missed heartbeat must not stop the calls (the server may be back later)
                warnings.warn(f"MLflow heartbeat not logged: {exc}", RuntimeWarning, stacklevel=2)

    def run_finished(self, result: RunResult) -> None:
        """Log the result and end FINISHED. When MLflow cannot take it (the server is down past
        MLflow's own retries), the run's folder gets a note of what to upload and the run fails
        with :class:`~workbench.core.exceptions.TrackingUnreachableError`: ``workbench sync <folder>``."""
        logged = time.perf_counter()
        try:
            self.log_result(result)
            result.run_id, result.tracking_uri = self.parent_run_id, self.tracking_uri
            result.timings["mlflow_s"] = time.perf_counter() - logged
            self.finish("FINISHED")
        except WorkbenchError:
            raise
        except Exception as exc:
            self._unreachable = True
            folder = result.cases_path.parent
            write_pending(
                folder,
                tracking_uri=self.tracking_uri,
                parent_run_id=self.parent_run_id,
                source=self.source,
                manifest=manifest(result.experiment),
                error=f"{type(exc).__name__}: {exc}",
            )
            raise TrackingUnreachableError(
                f"the run finished but MLflow at {self.tracking_uri} did not take its results "
                f"({type(exc).__name__}: {exc}). Nothing is lost: every row is in {result.cases_path}; "
                f"upload the run when the server is back with: workbench sync {folder}",
                result=result,
            ) from exc

    def run_failed(self, error: BaseException, result: RunResult | None) -> None:
        """Log the partial result (when there is one) and the error, then end FAILED."""
        if self._unreachable:  # the server is gone: the run's folder says what to upload later
            return
        try:
            if self.parent_run_id is not None:
                message = f"{type(error).__name__}: {error}"
                self._error = message  # the description of the partial result says so first
                self.writer.log(
                    self.parent_run_id, tags={"workbench.error": message, NOTE_TAG: f"**The run failed:** {message}"}
                )
                if result is not None and result.n_rows:
                    self.log_result(result, compare_variants=not isinstance(error, RunError))
                    result.run_id, result.tracking_uri = self.parent_run_id, self.tracking_uri
        finally:
            self.finish("FAILED")

    # -- the building blocks --------------------------------------------------------------
    def start(self, experiment: ExperimentSpec) -> str:
        """Create the parent run and log the experiment's definition."""
        orphans = self.writer.close_orphans()
        self._experiment_id = self.writer.experiment_id(experiment.name, description=experiment_note(experiment))
        tags = {
            "workbench.kind": "experiment",
            SOURCE_TAG: self.source,
            NOTE_TAG: experiment.description or "",  # until the verdict is known
            **owner_tags(),
        }
        if orphans:
            # The response cache holds their completed calls: this run resumes them.
            tags["workbench.resumes"] = ",".join(orphans)
        if os.environ.get(REPORT_ENV):
            tags[REPORT_TAG] = os.environ[REPORT_ENV]
        self.parent_run_name = parent_run_name(experiment.name, self.source)
        self.parent_run_id = self.writer.create_run(self._experiment_id, self.parent_run_name, tags)
        dataset = experiment.dataset
        self.writer.log(
            self.parent_run_id,
            params={
                "dataset_source": dataset.source,
                "dataset_hash": dataset.content_hash,
                "n_cases": len(dataset),
                "repeats": experiment.repeats,
                "models": list(experiment.models),
                "variants": {v.name: v.version for v in experiment.variants},
                "scorers": [s.spec() for s in experiment.scorers],
                "success_rule": experiment.success.describe(experiment.scorer_names),
            },
        )
        self.writer.json(self.parent_run_id, manifest(experiment), "manifest.json")
        self._prompts = log_run_inputs(self.writer.client, self.parent_run_id, experiment)
        if experiment.settings.traces if self.traces is None else self.traces:
            calls = len(dataset) * len(experiment.variants) * len(experiment.models) * experiment.repeats
            self._tracer = TraceWriter(
                self.tracking_uri, self._experiment_id, self.parent_run_id, experiment, planned=calls
            )
        if self.charts:
            self._warm_up.start()
        return self.parent_run_id

    def attach(self, parent_run_id: str, experiment_id: str) -> None:
        """Log into a parent run opened earlier (``workbench sync`` finishing a run whose upload failed)."""
        self.parent_run_id, self._experiment_id = parent_run_id, experiment_id

    def _require_started(self) -> str:
        if self.parent_run_id is None:
            raise TrackingError("MlflowObserver: call start() (or run the experiment) before logging a result")
        return self.parent_run_id

    def log_result(self, result: RunResult, *, verdict: str | None = None, compare_variants: bool = True) -> None:
        """Log one child run per variant x model, the summary, charts and comparisons on the parent.

        ``verdict``: the ``workbench.verdict`` tag when the caller has one; else it is
        the first model's comparison verdict, or a ranking. The verdict, each comparison
        as a table and the variants become the parent run's description.
        """
        parent = self._require_started()
        traced = time.perf_counter()
        if self._tracer is not None:
            self._tracer.flush()  # every trace written before the child runs link them
            result.timings["traces_flush_s"] = time.perf_counter() - traced
            if self._tracer.skipped and not any(n.startswith("traces:") for n in result.notes):
                result.notes.append(
                    f"traces: the first {self._tracer.limit:,} calls were traced, "
                    f"{self._tracer.skipped:,} more were not"
                )
        try:
            # The primary metric first: MLflow's compare view plots the runs' first shared metric.
            primary, metrics = parent_metrics(result)
            self.writer.log(parent, metrics=primary)
            # Comparisons next, each logged and let go: at 100k cases one holds tens of MB.
            logged = self._log_comparisons(result) if compare_variants else _Logged()
            release_unused()  # each phase's transients go back to the OS, so the peak is one phase's
            for _, row in result.summary.iterrows():
                self._log_child(result, row, logged.verdicts.get(row["model"]))
                release_unused()
            self.writer.text(parent, result.summary.to_csv(index=False), "summary.csv")
            self.writer.cases(parent, result.cases_file, CASES_ARTIFACT)  # what load_run reopens
            tags = self._log_charts(result, logged.sections, logged.failures) if self.charts else {}
            if "attack_resisted" in result.scorer_names:  # a red-team run (wb.redteam)
                metrics.update(self._log_redteam(parent, result))
            metrics.update(calls_made=float(result.calls_made), cache_hits=float(result.summary["cache_hits"].sum()))
            tags["workbench.verdict"] = verdict or logged.first or verdict_line(result, None)
            if result.notes:
                tags["workbench.note"] = "; ".join(result.notes)
            if result.early_stop is not None:
                stop_tags, stop_metrics = early_stop_fields(result.early_stop)
                tags.update(stop_tags)
                metrics.update(stop_metrics)
            tags[NOTE_TAG] = parent_note(
                result,
                verdict=tags["workbench.verdict"],
                comparisons=logged.tables,
                source=self.source,
                error=self._error,
            )
            self.writer.log(parent, metrics=metrics, tags=tags)
        finally:
            self._warm_up.wait()  # never leave a thread importing behind (it could hang the exit)

    def _log_redteam(self, parent: str, result: RunResult) -> dict[str, float]:
        """A red-team run's rates: the table ``redteam_rates.json`` and their metrics (see
        :meth:`~workbench.analysis.redteam.RedTeamReport.metrics`). A failure here warns; the run is still logged."""
        try:
            report = redteam_report(result, n_resamples=1000)
            self.writer.table(parent, report.rates_table(), "redteam_rates.json")
            return report.metrics(per_model=len(result.experiment.models) > 1)
        except Exception as exc:  # the run itself is logged whatever happens here
            warnings.warn(f"the red-team rates were not logged to MLflow: {exc!r}", RuntimeWarning, stacklevel=3)
            return {}

    def _log_comparisons(self, result: RunResult) -> _Logged:
        """Log the paired comparison (best other variant vs the first) of every model.

        Returns what the rest of the logging needs of them: the first model's verdict on
        the first scorer, each model's verdict, each comparison as a Markdown table, and
        the comparison plots (built now, so the comparison itself can be let go).
        """
        experiment, logged = result.experiment, _Logged()
        if len(experiment.variants) < 2 or not experiment.scorers:
            return logged
        several = len(experiment.models) > 1
        for model in experiment.models:
            try:
                comparison = compare_run(result, model=model)
            except (UsageError, KeyError, IndexError):  # e.g. nothing paired: the verdict is a ranking
                continue
            logged.verdicts[model] = verdict_line(result, comparison)
            if model == experiment.models[0]:
                logged.first = logged.verdicts[model]
            prefix = self._record_comparison(comparison, model=model if several else None)
            logged.tables.append(comparison_markdown(comparison))
            if self.charts:
                logged.sections += self._comparison_sections(comparison, prefix, logged.failures)
        return logged

    def _log_child(self, result: RunResult, row: Any, verdict: str | None) -> None:
        experiment = result.experiment
        variant = next(v for v in experiment.variants if v.name == row["variant"])
        tags = {
            "mlflow.parentRunId": self._require_started(),
            "workbench.kind": "variant",
            SOURCE_TAG: self.source,
            NOTE_TAG: child_note(result, variant, row, parent=self.parent_run_name or experiment.name, verdict=verdict),
        }
        if verdict:
            tags["workbench.verdict"] = verdict  # shown when the children are compared side by side
        run_id = self.writer.create_run(self._experiment_id or "0", child_run_name(variant, row["model"]), tags)
        self._children.append(run_id)
        template = variant.to_dict(redacted=True)
        params = {
            "variant": variant.name,
            "variant_version": variant.version,
            "model": row["model"],
            "dataset_hash": experiment.dataset.content_hash,
            "scorers": [s.spec() for s in experiment.scorers],
            "system": variant.system or "",
            "prompt": variant.prompt,
            "n_examples": len(variant.examples),
            **({"images": list(variant.images)} if variant.images else {}),
            **{f"param.{k}": v for k, v in (template.get("params") or {}).items()},
            **{f"retrieval.{k}": v for k, v in (template.get("retrieval") or {}).items()},  # k, retriever, chunking
        }
        self.writer.log(run_id, params=params, metrics=primary_first(metric_items(row.items()), result.scorer_names))
        self.writer.json(run_id, template, "prompt_template.json")
        if variant.name in self._prompts:
            link_prompts(self.writer.client, run_id, [self._prompts[variant.name]])
        if self._tracer is not None:
            self._tracer.link(run_id, variant.name, row["model"])
        # Only this child's rows, read from the run's file; a large table is copied a batch at a time.
        columns = readable_columns(result.cases_file.columns, repeated=experiment.repeats > 1)
        where = {col.VARIANT: variant.name, col.MODEL: row["model"]}
        if int(row["n"]) <= TABLE_ROWS_MAX:
            self.writer.table(run_id, result.read_cases(columns, where=where), "cases.json")
        else:
            self.writer.cases(run_id, result.cases_file, "cases.parquet", columns=columns, where=where)
        self.writer.end_run(run_id, "FINISHED")

    def _log_charts(
        self, result: RunResult, comparisons: Sequence[ChartSection] = (), failed: Sequence[str] = ()
    ) -> dict[str, str]:
        """Every chart of the result, then the comparisons' plots, as the parent's ``charts.html``
        (see :func:`~workbench.tracking.chart_page.log_chart_page`)."""
        self._warm_up.wait()
        return log_chart_page(self.writer, self._require_started(), result, comparisons, failed)

    def _comparison_sections(self, comparison: Comparison, prefix: str, failures: list[str]) -> list[ChartSection]:
        self._warm_up.wait()
        return comparison_sections(comparison, prefix, failures)

    def _record_comparison(self, comparison: Comparison, *, model: str | None) -> str:
        return record_comparison(self.writer, self._require_started(), comparison, model=model)

    def finish(self, status: str) -> None:
        """End the parent run (and any child still open) as FINISHED or FAILED."""
        self._warm_up.wait()
        if self._tracer is not None:
            self._tracer.flush()  # a failed run's traces too; a no-op once flushed
        if self._finished or self.parent_run_id is None:
            return
        for run_id in self._children:
            if self.writer.status(run_id) == "RUNNING":
                self.writer.end_run(run_id, status)
        self.writer.end_run(self.parent_run_id, status)
        self._finished = True


#: The name older code and tests use.
MlflowTracker = MlflowObserver


@dataclasses.dataclass
class _Logged:
    """What logging the comparisons hands to the rest of :meth:`MlflowObserver.log_result`:
    the first model's verdict, each model's, each comparison as Markdown, its plots and the
    plots that failed."""

    first: str | None = None
    verdicts: dict[str, str] = dataclasses.field(default_factory=dict)
    tables: list[str] = dataclasses.field(default_factory=list)
    sections: list[ChartSection] = dataclasses.field(default_factory=list)
    failures: list[str] = dataclasses.field(default_factory=list)
