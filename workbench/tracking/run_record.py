"""What a run's MLflow record says beyond its rows: the manifest, the parent's metrics, the verdict.

:func:`manifest` is the run's definition as logged (dataset hash, variants with
credentials masked, models, scorers, settings, package versions, git commit);
:func:`parent_metrics` splits the per-variant summary into each variant's primary
metric and the rest; :func:`verdict_line` is the sentence a parent run carries.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from workbench.analysis.compare import ranking
from workbench.analysis.comparison import Comparison
from workbench.core.result import RunResult
from workbench.core.spec import ExperimentSpec
from workbench.tracking.store import metric_items
from workbench.util.paths import project_root

_PACKAGES = ("prompt-workbench", "litellm", "mlflow", "pandas", "scikit-learn", "llama-cpp-python")


def parent_metrics(result: RunResult) -> tuple[dict[str, float], dict[str, float]]:
    """The parent's per-variant summary metrics: each variant's primary (first scorer's) metric,
    and the rest.

    With several models each model's summary gets its own keys, or the last would overwrite the rest.
    """
    several = len(result.experiment.models) > 1
    primary = result.scorer_names[0] if result.scorer_names else None
    first: dict[str, float] = {}
    rest: dict[str, float] = {}
    for _, row in result.summary.iterrows():
        prefix = f"{row['variant']}.{safe_key(row['model']) + '.' if several else ''}"
        for key, value in metric_items(row.items()).items():
            (first if key == primary else rest)[prefix + key] = value
    return first, rest


def verdict_line(result: RunResult, comparison: Comparison | None) -> str:
    """The first scorer's verdict of the comparison, else a plain ranking."""
    names = result.scorer_names
    if not names:
        return f"{result.n_rows} calls, no scorers: nothing to compare"
    if comparison is not None:
        try:
            return comparison[names[0]].verdict
        except KeyError:
            pass
    return ranking(result, names[0])


def manifest(experiment: ExperimentSpec) -> dict[str, Any]:
    dataset = experiment.dataset
    return {
        "experiment": experiment.name,
        "dataset": {"source": dataset.source, "hash": dataset.content_hash, "n_cases": len(dataset)},
        "variants": {v.name: {"version": v.version, **v.to_dict(redacted=True)} for v in experiment.variants},
        "models": list(experiment.models),
        **({"routers": experiment.model_entries()} if experiment.routers else {}),
        "scorers": [s.spec() for s in experiment.scorers],
        "repeats": experiment.repeats,
        "settings": dataclasses.asdict(experiment.settings),
        "success_rule": dataclasses.asdict(experiment.success),
        "packages": package_versions(),
        "git_commit": git_commit(project_root()),
    }


def safe_key(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions
