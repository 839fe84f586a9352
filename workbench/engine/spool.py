"""Stream result rows to the run's Parquet file, in plan order, a row group at a time.

Python dicts cost about a kilobyte per row; a 100,000-case A/B run makes 200,000
of them, and a million-case run does not fit. The spool keeps only a small buffer
of dicts and writes each full buffer as one row group of the run's file
(:class:`~workbench.core.runstore.CaseWriter`), so memory stays flat however long the run.

Rows finish out of plan order. A row that finishes before an earlier one waits
(it is at most a few windows of concurrency ahead), so the file is in plan order
and reads need not sort. If more than ``max_waiting`` rows wait behind one slow
call, they are written as they are and the file is marked unsorted: reads then
sort by ``_order`` (see :mod:`workbench.core.runstore`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from workbench.core import schema as col
from workbench.core.runstore import CaseWriter

#: Rows per row group (written together).
BATCH_ROWS = 5_000


class CaseSpool:
    """Append rows (dicts with an ``_order``) in any order; they reach ``path`` in plan order.

    Args:
        path: The run's ``cases.parquet``.
        schema: Every column and its type (:func:`workbench.core.schema.table_schema`).
        about: What the run is, kept in the file's metadata (see :class:`~workbench.core.runstore.CaseWriter`).
        batch_rows: Rows per row group.
        max_waiting: Rows allowed to wait for an earlier one before they are written out of order.
    """

    def __init__(
        self,
        path: Path,
        schema: pa.Schema,
        *,
        about: Mapping[str, Any] | None = None,
        batch_rows: int = BATCH_ROWS,
        max_waiting: int | None = None,
    ) -> None:
        self.batch_rows = batch_rows
        self.max_waiting = max_waiting if max_waiting is not None else 4 * batch_rows
        self.writer = CaseWriter(path, schema, about=about)
        self.rows = 0
        self.in_order = True
        self._buffer: list[dict[str, Any]] = []
        self._waiting: dict[int, dict[str, Any]] = {}
        self._next = 0

    @property
    def path(self) -> Path:
        return self.writer.path

    def append(self, row: dict[str, Any]) -> None:
        self.rows += 1
        order = row[col.ORDER]
        if order > self._next:  # an earlier call is still running
            self._waiting[order] = row
            if len(self._waiting) > self.max_waiting:
                self._give_up_order()
            return
        self._add(row)
        while self._next in self._waiting:
            self._add(self._waiting.pop(self._next))

    def _add(self, row: dict[str, Any]) -> None:
        self._buffer.append(row)
        self._next = max(self._next, row[col.ORDER] + 1)
        if len(self._buffer) >= self.batch_rows:
            self._flush()

    def _give_up_order(self) -> None:
        """Too many rows wait behind a slow call: write them now, and let reads sort."""
        self.in_order = False
        for order in sorted(self._waiting):
            self._add(self._waiting.pop(order))

    def _flush(self) -> None:
        rows, self._buffer = self._buffer, []
        self.writer.write(rows)

    def abort(self) -> None:
        """The run failed before its result: finish the file with what was written, nothing more."""
        self._buffer, self._waiting = [], {}
        self.writer.close(in_order=self.in_order)

    def close(self) -> Path:
        """Write what is left (rows after a gap left by calls never started, in order) and finish the file."""
        for order in sorted(self._waiting):
            self._add(self._waiting.pop(order))
        self._flush()
        return self.writer.close(in_order=self.in_order)
