"""Appending cases to a golden set file: the one writer for new test cases.

Used by the review widget (thumbs-down cases) and by the production loop (interactions
users corrected). CSV and JSONL; ids already in the file are skipped, so appending the
same cases twice adds nothing.

Example:
    >>> row = {"id": "p00042", "text": "Кроссовки Nike, синие", "expected": {"colour": "blue"}}
    >>> append_to_golden_set("data/listings_regressions.jsonl", [row])  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.core.dataset import read_table
from workbench.core.exceptions import UsageError
from workbench.util.paths import resolve

__all__ = ["append_to_golden_set", "read_golden_set"]


def append_to_golden_set(
    path: str | Path, rows: pd.DataFrame | Sequence[dict[str, Any]], *, id_column: str = "id"
) -> pd.DataFrame:
    """Append ``rows`` (each with an ``id_column``) to a CSV or JSONL golden set, skipping ids already there.

    A relative path is resolved against the project (as datasets are). A CSV file keeps its
    columns: every row must have them. JSONL keeps nested values (an ``expected`` object).

    Returns:
        The rows that were appended (none when all were there already).

    Raises:
        UsageError: another extension, or the file lacks the id column, or (CSV) a column.
    """
    target = resolve(path) if not Path(path).is_absolute() else Path(path)
    if target.suffix.lower() not in (".csv", ".jsonl"):
        raise UsageError(f"golden set {str(path)!r}: use a .csv or .jsonl file")
    new = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    existing = read_golden_set(target)
    if not existing.empty and not new.empty:
        if id_column not in existing:
            raise UsageError(f"golden set {str(target)!r} has no id column {id_column!r}")
        new = new[~new[id_column].astype(str).isin(existing[id_column].astype(str))]
    if new.empty:
        return new.reset_index(drop=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and target.stat().st_size and not target.read_bytes().endswith(b"\n"):
        with target.open("a", encoding="utf-8") as handle:  # a hand-edited file may lack the last newline
            handle.write("\n")
    if target.suffix.lower() == ".csv":
        columns = list(existing.columns) if not existing.empty else list(new.columns)
        missing = sorted(set(columns) - set(new.columns))
        if missing:
            raise UsageError(f"golden set {str(target)!r} needs column(s) {missing} that these cases lack")
        new[columns].to_csv(target, mode="a", header=existing.empty, index=False)
    else:
        with target.open("a", encoding="utf-8") as handle:
            for record in new.to_dict(orient="records"):
                handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    return new.reset_index(drop=True)


def read_golden_set(path: Path) -> pd.DataFrame:
    """An existing golden set, read as :class:`~workbench.core.dataset.Dataset` reads it (same NA rules)."""
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame()
    return read_table(path)
