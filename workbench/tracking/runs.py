"""Past runs in the MLflow store: list them, name one with an alias, read one back.

Every parent run keeps what is needed to reopen it: ``run/cases.parquet`` (every row,
redacted, see :meth:`~workbench.tracking.store.MlflowWriter.cases`), ``summary.csv`` and
``manifest.json`` (variants, models, scorers, the dataset's hash). :func:`read_run`
downloads them once into ``<runs>/mlflow/<run id>/`` (``$WORKBENCH_RUNS``, see
:func:`workbench.util.paths.runs_dir`) and rebuilds the run's result from them, from a
local SQLite store or a remote ``mlflow server`` alike.

An **alias** names a run for people and CI: ``production`` is the run (and variant) that
is live. It is an experiment tag, ``workbench.alias.<name>``, so moving it is one write
and rolling back is moving it back; the run carries ``workbench.alias`` for the UI.

Example:
    >>> set_alias("3f9c...", "production", variant="few_shot")  # doctest: +SKIP
    >>> ref = resolve_run("production", experiment="sentiment")  # doctest: +SKIP
    >>> ref.run_id, ref.variant  # doctest: +SKIP
    ('3f9c...', 'few_shot')
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from workbench.core.exceptions import UsageError
from workbench.core.registry import prompt_name
from workbench.core.result import RunResult
from workbench.core.runstore import CasesFile
from workbench.tracking.run_spec import spec_from_manifest
from workbench.tracking.store import CASES_ARTIFACT, MlflowWriter
from workbench.util.paths import runs_dir

#: Experiment tag prefix of an alias: ``workbench.alias.production`` -> ``{"run_id": ..., "variant": ...}``.
ALIAS_PREFIX = "workbench.alias."
#: Run tag listing the aliases that name the run (comma-separated), shown in the UI.
RUN_ALIAS_TAG = "workbench.alias"
#: MLflow's run tag listing the registered prompt versions a run used (see :mod:`workbench.tracking.genai`).
LINKED_PROMPTS_TAG = "mlflow.linkedPrompts"
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_FILES = (CASES_ARTIFACT, "manifest.json", "summary.csv")


@dataclass(frozen=True)
class RunRef:
    """A parent run, and the variant an alias or a child run pointed at (None: not said)."""

    run_id: str
    variant: str | None = None


def resolve_run(ref: str, *, experiment: str | None = None, tracking_uri: str | None = None) -> RunRef:
    """The parent run ``ref`` names: a run id, ``runs:/<id>``, an alias (``production``, with
    ``experiment``) or ``<experiment>@<alias>``. A child (variant) run's id names its parent
    and its variant.

    Raises:
        UsageError: no such run or alias, saying where it looked and how to list runs.
    """
    client = MlflowWriter(tracking_uri).client
    text = str(ref).strip()
    if text.startswith("runs:/"):
        text = text.removeprefix("runs:/").split("/", 1)[0]
    if _RUN_ID.match(text):
        return _parent(client, _get_run(client, text, tracking_uri))
    name, alias = text.rsplit("@", 1) if "@" in text else (experiment, text)
    if not name:
        raise UsageError(
            f"{ref!r} is not a run id; to use it as an alias say which experiment: "
            f"'<experiment>@{text}' or experiment=... (list runs with wb.runs() or `workbench runs`)"
        )
    found = client.get_experiment_by_name(name)
    value = found.tags.get(ALIAS_PREFIX + alias) if found is not None else None
    if value is None:
        known = sorted(
            k.removeprefix(ALIAS_PREFIX) for k in (found.tags if found else {}) if k.startswith(ALIAS_PREFIX)
        )
        raise UsageError(
            f"no run is aliased {alias!r} in experiment {name!r} of {MlflowWriter(tracking_uri).tracking_uri}; "
            f"aliases there: {known or 'none'}. Set one with wb.set_alias(run_id, {alias!r}) or "
            f"`workbench alias <run_id> {alias}`"
        )
    data = json.loads(value)
    return RunRef(str(data["run_id"]), data.get("variant"))


def set_alias(run_id: str, alias: str, *, variant: str | None = None, tracking_uri: str | None = None) -> RunRef:
    """Point ``alias`` (e.g. ``production``) of the run's experiment at ``run_id`` (and ``variant``).

    The alias moves: the run it named before loses it. Rolling back is setting it again on
    the old run. With a variant, the registered prompt version that run used (MLflow's Prompt
    Registry, ``<experiment>.<variant>``) gets the same alias, so ``prompts:/...@production``
    and the ``production`` run name the same prompt.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", alias):
        raise UsageError(f"alias {alias!r} may hold only letters, digits, '_', '.' and '-'")
    client = MlflowWriter(tracking_uri).client
    target = _parent(client, _get_run(client, run_id, tracking_uri))
    run = client.get_run(target.run_id)
    variant = variant or target.variant
    variants = _variants(run)
    if variant is not None and variants and variant not in variants:
        raise UsageError(f"run {target.run_id} has no variant {variant!r}; its variants are {variants}")
    experiment_id = run.info.experiment_id
    old = client.get_experiment(experiment_id).tags.get(ALIAS_PREFIX + alias)
    if old:
        _drop_run_alias(client, json.loads(old)["run_id"], alias)
    client.set_experiment_tag(
        experiment_id, ALIAS_PREFIX + alias, json.dumps({"run_id": target.run_id, "variant": variant})
    )
    names = [a for a in run.data.tags.get(RUN_ALIAS_TAG, "").split(",") if a and a != alias]
    client.set_tag(target.run_id, RUN_ALIAS_TAG, ",".join([*names, alias]))
    if variant is not None:  # the registered prompt that run used gets the same alias: one "production"
        registered = prompt_name(client.get_experiment(experiment_id).name, variant)
        for linked in json.loads(run.data.tags.get(LINKED_PROMPTS_TAG, "[]")):
            if linked["name"] == registered:
                client.set_prompt_alias(registered, alias, int(linked["version"]))
    return RunRef(target.run_id, variant)


def list_runs(
    *,
    experiment: str | Sequence[str] | None = None,
    variant: str | None = None,
    since: str | datetime | date | timedelta | None = None,
    tracking_uri: str | None = None,
    max_results: int = 1000,
) -> pd.DataFrame:
    """The workbench's experiment runs in the store, newest first, one row per parent run.

    Args:
        experiment: Only this experiment (or these); all by default.
        variant: Only runs that ran a variant of this name.
        since: Only runs started at or after this time: a datetime or date, a string pandas
            reads (``"2026-11-30"``), a timedelta, or ``"7d"`` / ``"12h"`` (that long ago).
        tracking_uri: The store (``MLFLOW_TRACKING_URI`` or the project's by default).
        max_results: At most this many runs.

    Returns:
        Columns ``run_id``, ``experiment``, ``run_name``, ``status``, ``start_time`` (UTC),
        ``source``, ``variants`` (name -> version), ``models``, ``n_cases``, ``dataset_hash``,
        ``aliases``, ``verdict``.
    """
    client = MlflowWriter(tracking_uri).client
    names = [experiment] if isinstance(experiment, str) else experiment
    if names is None:
        found = list(client.search_experiments())
    else:
        found = [e for e in (client.get_experiment_by_name(n) for n in names) if e is not None]
    where = "tags.`workbench.kind` = 'experiment'"
    start = _since_ms(since)
    if start is not None:
        where += f" and attributes.start_time >= {start}"
    by_id = {e.experiment_id: e.name for e in found}
    runs = client.search_runs(list(by_id), filter_string=where, max_results=max_results) if by_id else []
    rows = []
    for run in runs:
        variants = _variants(run)
        if variant is not None and variant not in variants:
            continue
        params, tags = run.data.params, run.data.tags
        rows.append(
            {
                "run_id": run.info.run_id,
                "experiment": by_id.get(run.info.experiment_id),
                "run_name": run.info.run_name,
                "status": run.info.status,
                "start_time": pd.Timestamp(run.info.start_time, unit="ms", tz="UTC"),
                "source": tags.get("workbench.source"),
                "variants": variants,
                "models": json.loads(params.get("models", "[]")),
                "n_cases": int(params["n_cases"]) if params.get("n_cases", "").isdigit() else None,
                "dataset_hash": params.get("dataset_hash"),
                "aliases": tags.get(RUN_ALIAS_TAG, ""),
                "verdict": tags.get("workbench.verdict", ""),
            }
        )
    columns = ["run_id", "experiment", "run_name", "status", "start_time", "source", "variants", "models",
               "n_cases", "dataset_hash", "aliases", "verdict"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def read_run(ref: str, *, experiment: str | None = None, tracking_uri: str | None = None) -> tuple[RunResult, RunRef]:
    """A past run's result, rebuilt from its MLflow artifacts (downloaded once, then reused).

    Returns the result and the reference it was found by (an alias's variant included).

    Raises:
        UsageError: no such run, or a run logged before runs kept their cases.
    """
    writer = MlflowWriter(tracking_uri)
    target = resolve_run(ref, experiment=experiment, tracking_uri=writer.tracking_uri)
    run = writer.client.get_run(target.run_id)
    folder = _download(writer, run)
    cases = CasesFile(folder / Path(CASES_ARTIFACT).name)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    spec = spec_from_manifest(manifest, cases, run.info.run_id)
    summary = pd.read_csv(folder / "summary.csv")
    note = run.data.tags.get("workbench.note", "")
    metrics = run.data.metrics
    result = RunResult(
        name=spec.name,
        cases_file=cases,
        summary=summary,
        experiment=spec,
        run_id=target.run_id,
        tracking_uri=writer.tracking_uri,
        notes=[n for n in note.split("; ") if n],
        calls_made=int(metrics.get("calls_made", 0)),
        picked_variant=target.variant,
    )
    return result, target


# -- internals ---------------------------------------------------------------------------------
def _get_run(client: Any, run_id: str, tracking_uri: str | None) -> Run:
    try:
        return client.get_run(run_id)
    except MlflowException:
        raise UsageError(
            f"no run {run_id!r} in {MlflowWriter(tracking_uri).tracking_uri}; list runs with wb.runs() or "
            "`workbench runs`, or set MLFLOW_TRACKING_URI to the store that has it"
        ) from None


def _parent(client: Any, run: Run) -> RunRef:
    """The parent run of a workbench run (itself when it is one); a child names its variant."""
    tags = run.data.tags
    if tags.get("workbench.kind") == "variant" and tags.get("mlflow.parentRunId"):
        return RunRef(tags["mlflow.parentRunId"], run.data.params.get("variant"))
    if tags.get("workbench.kind") != "experiment":
        raise UsageError(f"run {run.info.run_id} was not logged by the workbench (no workbench.kind tag)")
    return RunRef(run.info.run_id)


def _variants(run: Run) -> dict[str, str]:
    try:
        return dict(json.loads(run.data.params.get("variants", "{}")))
    except (ValueError, TypeError):
        return {}


def _drop_run_alias(client: Any, run_id: str, alias: str) -> None:
    try:
        tags = client.get_run(run_id).data.tags
    except MlflowException:
        return  # the run was deleted: nothing to take the alias from
    names = [a for a in tags.get(RUN_ALIAS_TAG, "").split(",") if a and a != alias]
    client.set_tag(run_id, RUN_ALIAS_TAG, ",".join(names))


def _since_ms(since: str | datetime | date | timedelta | None) -> int | None:
    if since is None:
        return None
    now = datetime.now(UTC)
    if isinstance(since, str) and re.fullmatch(r"\d+\s*[dhm]", since.strip()):
        amount, unit = int(since.strip()[:-1]), since.strip()[-1]
        unit_name = {"d": "days", "h": "hours", "m": "minutes"}[unit]
        since = timedelta(**{unit_name: amount})
    if isinstance(since, timedelta):
        stamp = pd.Timestamp(now - since)
    else:
        try:
            stamp = pd.Timestamp(since)
        except (ValueError, TypeError):
            raise UsageError(f"since={since!r}: give a date ('2026-11-30'), a datetime, a timedelta or '7d'") from None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.timestamp() * 1000)


def _download(writer: MlflowWriter, run: Run) -> Path:
    """The run's files in ``<runs>/mlflow/<run id>/``, downloaded on first use (all or none)."""
    run_id = run.info.run_id
    folder = runs_dir() / "mlflow" / run_id
    if all((folder / Path(name).name).exists() for name in _FILES):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        staged = Path(tmp) / "staged"
        staged.mkdir()
        for name in _FILES:
            try:
                local = writer.client.download_artifacts(run_id, name, tmp)
            except (MlflowException, OSError):
                if name == CASES_ARTIFACT:
                    raise UsageError(
                        f"run {run_id} has no {CASES_ARTIFACT}: it was logged before runs kept their cases "
                        "in MLflow, or it failed before any case finished; run the experiment again"
                    ) from None
                raise UsageError(f"run {run_id} has no {name} artifact, so it cannot be reopened") from None
            shutil.move(local, staged / Path(name).name)
        shutil.rmtree(folder, ignore_errors=True)
        staged.rename(folder)
    return folder
