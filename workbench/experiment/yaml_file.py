"""Writing a prompt variant back into an experiment YAML file (the playground's Save).

An existing file keeps everything but that variant's entry (and its leading
comment block); a new file gets a complete definition. Credentials are never
written: keys such as ``api_key`` are dropped at any depth.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from workbench.core.exceptions import ConfigError
from workbench.core.redaction import without_secrets
from workbench.core.spec import ExperimentSpec
from workbench.core.variant import PromptVariant


def write_variant(
    target: Path, variant: PromptVariant, *, experiment: ExperimentSpec, variants: Sequence[PromptVariant]
) -> None:
    """Put ``variant`` into the experiment file ``target`` (created from ``experiment`` and
    ``variants`` when missing), replacing the entry of the same name."""
    header, data = _read_yaml(target)
    if data is None:
        data = _experiment_dict(experiment, target, variants)
    entries = data.setdefault("variants", [])
    entry = without_secrets(variant.to_dict())
    names = [e.get("name") for e in entries]
    if variant.name in names:
        entries[names.index(variant.name)] = entry
    else:
        entries.append(entry)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120))


def default_yaml(name: str) -> Path:
    return Path("experiments") / f"{name}.yaml"


def _read_yaml(path: Path) -> tuple[str, dict[str, Any] | None]:
    if not path.exists():
        return "", None
    text = path.read_text()
    lines = []
    for line in text.splitlines():  # the leading comment block only
        if not line.startswith("#"):
            break
        lines.append(line)
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ConfigError(f"{path} does not hold an experiment definition; pass another path to save()")
    return ("\n".join(lines) + "\n") if lines else "", data


def _experiment_dict(experiment: ExperimentSpec, target: Path, variants: Sequence[PromptVariant]) -> dict[str, Any]:
    """A fresh YAML definition for an experiment built in Python (credentials left out)."""
    source = Path(experiment.dataset.source)
    if not source.exists():
        raise ConfigError(
            f"cannot write {target}: the dataset was not loaded from a file ({experiment.dataset.source}); "
            "save it as CSV/JSONL under data/ and load it with Dataset.load first"
        )
    data_path = os.path.relpath(source.resolve(), target.parent.resolve())
    return {
        "name": experiment.name,
        "description": experiment.description,
        "dataset": {
            "path": data_path,
            "id_column": experiment.dataset.id_column,
            "expected": list(experiment.dataset.expected),
        },
        "models": list(experiment.models),
        "scorers": [without_secrets(s.spec()) for s in experiment.scorers],
        "repeats": experiment.repeats,
        "settings": {
            "max_concurrency": experiment.settings.max_concurrency,
            "local_concurrency": experiment.settings.local_concurrency,
            "timeout_s": experiment.settings.timeout_s,
            "max_attempts": experiment.settings.retry.max_attempts,
            "transport": experiment.settings.transport,
            "max_error_rate": experiment.settings.max_error_rate,
        },
        "variants": [without_secrets(v.to_dict()) for v in variants],
    }
