"""Logging a prompt search to MLflow: a parent run with the verdict, one child run per candidate
(its prompt version, parent, strategy, dev score and CI, and its diff against its parent).

Each candidate is also registered in MLflow's Prompt Registry as a version of
``<experiment>.<variant>`` (a new version only for new content, its commit message saying what
changed; see :mod:`workbench.tracking.genai`) and linked to its child run."""

from __future__ import annotations

import os
import warnings

from workbench.optimize.result import OptimizeResult
from workbench.tracking.genai import link_prompts, register_variant
from workbench.tracking.presentation import REPORT_ENV
from workbench.tracking.store import NOTE_TAG, MlflowWriter
from workbench.tracking.tracker import REPORT_TAG


def log_search(result: OptimizeResult, *, experiment: str, tracking_uri: str | None = None) -> str:
    """Log ``result`` under MLflow experiment ``experiment``; returns the parent run id.

    Everything goes through the workbench's one (redacting) MLflow writer.
    """
    writer = MlflowWriter(tracking_uri)
    experiment_id = writer.experiment_id(experiment)
    tags = {
        "workbench.source": "optimize",
        "workbench.kind": "experiment",
        NOTE_TAG: f"**Prompt search** on {result.objective}\n\n{result.verdict_text}",
    }
    if os.environ.get(REPORT_ENV):  # made inside `workbench report`: the report attaches itself to this run
        tags[REPORT_TAG] = os.environ[REPORT_ENV]
    parent = writer.create_run(experiment_id, f"{experiment} · optimize", tags)
    writer.log(
        parent,
        params={"objective": result.objective, **{f"split.{k}": v for k, v in result.splits.hashes.items()}},
        metrics={
            "calls": result.calls,
            "cost_usd": result.cost_usd,
            "proposer_calls": result.proposer_calls,
            "proposer_cost_usd": result.proposer_cost_usd,
            "candidates": len(result.candidates),
        },
    )
    for comparison in result.comparisons:
        row = comparison.results[0]
        writer.log(
            parent,
            metrics={
                f"test.diff.{comparison.candidate}": row.diff,
                f"test.p_adjusted.{comparison.candidate}": row.p_adjusted,
            },
        )
    writer.json(parent, result.to_json(), "optimize.json")
    for candidate in result.candidates:
        mean, low, high = result.dev_ci(candidate)
        child = writer.create_run(
            experiment_id,
            f"{candidate.id} · {candidate.strategy}",
            {"mlflow.parentRunId": parent, NOTE_TAG: candidate.note, "workbench.kind": "variant"},
        )
        writer.log(
            child,
            params={"candidate": candidate.id, "parent": candidate.parent or "", "strategy": candidate.strategy,
                    "version": candidate.variant.version, "model": candidate.model, "accepted": candidate.accepted},
            metrics={"dev": mean, "dev_ci_low": low, "dev_ci_high": high, "step": candidate.step},
        )  # fmt: skip
        writer.json(child, candidate.variant.to_dict(redacted=True), "variant.json")
        if candidate.parent:
            writer.text(child, result.diff(candidate.id), "diff.txt")
        try:  # a store without the prompt registry keeps the runs
            link_prompts(writer.client, child, [register_variant(writer.client, experiment, candidate.variant)])
        except Exception as exc:
            warnings.warn(
                f"candidate {candidate.id} was not registered as a prompt: {exc!r}", RuntimeWarning, stacklevel=2
            )
        writer.end_run(child, "FINISHED")
    writer.end_run(parent, "FINISHED")
    return parent
