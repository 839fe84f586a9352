"""Review labels on disk: an append-only JSONL file, one line per click.

A label is keyed by case id + variant version + a hash of the output, so it
stays attached to the exact output it judged; the latest record for a key
wins. The file leaves the process (it is shared, committed, attached to runs),
so its text passes the redaction chain: the comment, the case id, every extra
field. A case id holding PII is keyed by its redacted form (:func:`stored_case_id`).
Used by :mod:`workbench.notebook.review` and :func:`workbench.judge_agreement`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from workbench.core.exceptions import UsageError
from workbench.core.redaction import REDACTOR
from workbench.util.paths import project_root

Label = Literal["up", "down"]
LABELS: tuple[str, ...] = ("up", "down")
KEY = ("case_id", "variant_version", "output_hash")


def output_hash(text: Any) -> str:
    """Short content hash of an output (what a label is attached to)."""
    return hashlib.sha256(("" if text is None else str(text)).encode()).hexdigest()[:16]


def stored_case_id(case_id: Any) -> str:
    """A case id as the label file keeps it: through the redaction chain (unchanged unless it holds PII)."""
    return REDACTOR.text(str(case_id))


def default_labels_path(experiment_name: str) -> Path:
    """``data/labels/<experiment>.jsonl`` under the project root."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in experiment_name)
    return project_root() / "data" / "labels" / f"{safe}.jsonl"


@dataclass(frozen=True)
class ReviewItem:
    """One output to judge: a case x variant x model x repeat."""

    case_id: str
    variant: str
    variant_version: str
    model: str
    repeat: int
    inputs: dict[str, Any]
    expected: dict[str, Any]
    output: str
    error: str | None
    scores: dict[str, float]

    @property
    def output_hash(self) -> str:
        return output_hash(self.output)

    @property
    def key(self) -> tuple[str, str, str]:
        """What the label file keys this output by (the case id as :func:`stored_case_id` keeps it)."""
        return (stored_case_id(self.case_id), self.variant_version, self.output_hash)


class LabelStore:
    """An append-only JSONL file of labels; the latest record per key wins.

    Args:
        path: The ``.jsonl`` file (created with its folder on first write).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def add(self, item: ReviewItem, label: Label, *, comment: str = "", **extra: Any) -> dict[str, Any]:
        """Append one label and make it durable before returning."""
        if label not in LABELS:
            raise UsageError(f"label must be one of {LABELS}, got {label!r}")
        record = {
            "case_id": stored_case_id(item.case_id),
            "variant": REDACTOR.text(item.variant),
            "variant_version": item.variant_version,
            "model": REDACTOR.text(item.model),
            "repeat": item.repeat,
            "output_hash": item.output_hash,
            "label": label,
            "comment": REDACTOR.text(comment),
            "ts": time.time(),
            **REDACTOR.data(extra),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return record

    def records(self) -> list[dict[str, Any]]:
        """Every record in file order. A torn last line (a kill mid-write) is skipped with a warning."""
        if not self.path.exists():
            return []
        records = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                warnings.warn(f"{self.path} line {number} is not valid JSON; skipped", stacklevel=2)
        return records

    def latest(self) -> pd.DataFrame:
        """One row per key: the most recent label."""
        frame = pd.DataFrame(self.records())
        if frame.empty:
            return pd.DataFrame(columns=[*KEY, "variant", "model", "repeat", "label", "comment", "ts"])
        return frame.drop_duplicates(list(KEY), keep="last").reset_index(drop=True)

    def latest_for(self, keys: set[tuple[str, str, str]]) -> pd.DataFrame:
        """The latest label of each of these (case id, variant version, output hash) keys that has one."""
        latest = self.latest()
        if latest.empty:
            return latest
        mask = [tuple(r) in keys for r in latest[list(KEY)].itertuples(index=False)]
        return latest[mask].reset_index(drop=True)

    def lookup(self) -> dict[tuple[str, str, str], dict[str, Any]]:
        return {tuple(r[k] for k in KEY): r for r in self.records()}  # type: ignore[misc]
