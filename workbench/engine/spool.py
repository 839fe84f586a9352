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
import pyarrow.compute as pc

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
            # Every key of every row (Table.from_pylist would keep only the first row's keys).
            names = dict.fromkeys(key for row in self._buffer for key in row)
            self._tables.append(pa.table({name: [row.get(name) for row in self._buffer] for name in names}))
            self._buffer = []

    def to_frame(self) -> pd.DataFrame:
        """All rows in plan order, without the ``_order`` column.

        Rows are sorted one column at a time: each column is reordered, then its
        unsorted chunks are let go, so the peak is the data plus one column, not
        two copies of it. Strings stay Arrow-backed in pandas (the pandas 3 default
        ``str`` dtype), so the frame costs about what the data does.
        """
        self._pack()
        if not self._tables:
            return pd.DataFrame()
        table = pa.concat_tables(self._tables, promote_options="permissive")
        self._tables = []
        order = pc.sort_indices(table["_order"])
        table = table.drop_columns(["_order"])
        names, columns = table.column_names, []
        for name in names:
            columns.append(table.column(name).take(order))
            table = table.drop_columns([name])  # the last reference to its unsorted chunks
            release_unused()
        sorted_table = pa.Table.from_arrays(columns, names=names)
        del table, columns
        frame = sorted_table.to_pandas(types_mapper=_string_as_arrow, self_destruct=True, split_blocks=True)
        del sorted_table
        release_unused()
        return frame


def release_unused() -> None:
    """Give the pages Arrow's allocator freed back to the OS.

    The allocator keeps freed pages for reuse, so without this every large
    transient (a sorted column, a grouped copy) stays in RSS after it is gone.
    """
    pa.default_memory_pool().release_unused()


def _string_as_arrow(arrow_type: pa.DataType) -> object:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pd.StringDtype("pyarrow", na_value=np.nan)
    return None
