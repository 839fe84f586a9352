"""Collect result rows compactly while a run streams.

Python dicts cost about a kilobyte per row; a 100,000-case A/B run makes
200,000 of them. The spool keeps a small buffer of dicts and turns each full
buffer into an Arrow record batch (columnar, a few dozen bytes per value), so
memory grows with the data, not with Python object overhead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

#: Rows buffered as dicts before they are packed into a record batch.
BATCH_ROWS = 5_000


class CaseSpool:
    """Append rows (dicts), get one DataFrame sorted by ``_order`` at the end."""

    def __init__(self, batch_rows: int = BATCH_ROWS) -> None:
        self.batch_rows = batch_rows
        self._buffer: list[dict[str, Any]] = []
        self._tables: list[pa.Table] = []
        self.rows = 0

    def append(self, row: dict[str, Any]) -> None:
        self._buffer.append(row)
        self.rows += 1
        if len(self._buffer) >= self.batch_rows:
            self._pack()

    def _pack(self) -> None:
        if self._buffer:
            self._tables.append(pa.Table.from_pylist(self._buffer))
            self._buffer = []

    def to_frame(self) -> pd.DataFrame:
        """All rows in plan order, without the ``_order`` column.

        Sorting happens in Arrow, and strings stay Arrow-backed in pandas (the
        pandas 3 default ``str`` dtype), so the frame costs about what the data does.
        """
        self._pack()
        if not self._tables:
            return pd.DataFrame()
        table = pa.concat_tables(self._tables, promote_options="permissive")
        self._tables = []
        table = table.sort_by("_order").drop_columns(["_order"])
        frame = table.to_pandas(types_mapper=_string_as_arrow, self_destruct=True, split_blocks=True)
        del table
        # Arrow's allocator keeps freed pages for reuse; the unsorted batches are gone for good.
        pa.default_memory_pool().release_unused()
        return frame


def _string_as_arrow(arrow_type: pa.DataType) -> object:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pd.StringDtype("pyarrow", na_value=np.nan)
    return None
