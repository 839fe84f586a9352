"""A run's rows on disk: one Parquet file per run, written in row groups while the run goes.

**Where.** Each run gets a folder ``<runs>/<run key>/`` holding ``cases.parquet``, where
``<runs>`` is ``.cache/workbench/runs`` in the project (git-ignored) or ``$WORKBENCH_RUNS``,
and the run key is the UTC start time, the experiment's name and a random suffix
(``20250301T101502Z-sentiment-3f9c2a``), so runs sort by time. The file is written as
``cases.parquet.partial`` and renamed when the run ends: a ``cases.parquet`` is always complete.
Like the response cache, it is the process's own working data, stored as computed; what
goes to MLflow passes the redaction chain on the way.

**Order.** Rows finish out of plan order (calls run concurrently).
:class:`~workbench.engine.spool.CaseSpool` holds the few that finish early, so rows are
written in plan order, and the file says so (key ``workbench.sorted`` of its metadata). If
too many rows wait behind one slow call they are written as they are, the file says
``false``, and reads sort by the ``_order`` column.

**Reading.** :class:`CasesFile` reads back only the columns and rows asked for, one row
group at a time, in plan order. Strings come back Arrow-backed (pandas' ``str`` dtype),
as the results table always held them.

Example:
    >>> cases = CasesFile("runs/20250301T101502Z-sentiment-3f9c2a/cases.parquet")  # doctest: +SKIP
    >>> cases.read(columns=["case_id", "score.label_match"], where={"variant": "few_shot"})  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from workbench.core import schema as col
from workbench.core.exceptions import RunError, UsageError
from workbench.util.memory import release_unused
from workbench.util.paths import runs_dir

#: The file of a run's rows, inside its folder.
CASES_FILE = "cases.parquet"
#: Key of the file's metadata that says whether rows are in plan order.
SORTED_KEY = b"workbench.sorted"
#: Rows per batch when a run's rows are copied (redacted) to MLflow: a batch's text lives in
#: memory several times over (read, redacted, packed), so batches stay small.
_COPY_ROWS = 10_000
#: Key of the file's metadata that describes the run (JSON: experiment, variants and versions, models...).
ABOUT_KEY = b"workbench.run"

#: What ``where`` may be: a pyarrow compute expression, or ``{column: value or list of values}``.
Where: TypeAlias = "pc.Expression | Mapping[str, Any] | None"


def new_run_dir(experiment: str, *, root: Path | None = None) -> Path:
    """A fresh folder for one run's files, named ``<UTC time>-<experiment>-<random>``."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", experiment).strip("-.")[:60] or "run"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder = (root or runs_dir()) / f"{stamp}-{slug}-{secrets.token_hex(3)}"
    folder.mkdir(parents=True, exist_ok=False)
    return folder


class CaseWriter:
    """Writes result rows (dicts) to a Parquet file with a fixed schema, one row group per :meth:`write`.

    Args:
        path: The file to make (written as ``<path>.partial`` until :meth:`close`).
        schema: Every column and its type (:func:`workbench.core.schema.table_schema`).
        about: What the run was (plain JSON data, nothing secret), kept in the file's metadata
            so the file describes itself (:attr:`CasesFile.about`).
    """

    def __init__(self, path: Path, schema: pa.Schema, *, about: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.schema = schema
        self.about = dict(about or {})
        self.rows = 0
        self._partial = self.path.with_name(self.path.name + ".partial")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(self._partial, schema)

    def write(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """One row group of ``rows``; a column a row lacks is null, a key the schema lacks is an error."""
        if not rows or self._writer is None:
            return
        unknown = set().union(*rows) - set(self.schema.names)
        if unknown:
            raise RunError(f"result rows have columns the results table does not declare: {sorted(unknown)}")
        arrays = [_array([row.get(field.name) for row in rows], field) for field in self.schema]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema), row_group_size=len(rows))
        self.rows += len(rows)

    def close(self, *, in_order: bool) -> Path:
        """Finish the file (``in_order``: rows are in plan order) and give it its final name."""
        if self._writer is not None:
            self._writer.add_key_value_metadata(
                {SORTED_KEY.decode(): "true" if in_order else "false", ABOUT_KEY.decode(): json.dumps(self.about)}
            )
            self._writer.close()
            self._writer = None
            os.replace(self._partial, self.path)
        return self.path


def _array(values: list[Any], field: pa.Field) -> pa.Array:
    # Float columns keep NaN as NaN (a score that is "not scored"); elsewhere pandas' NaN is a missing value.
    try:
        return pa.array(values, type=field.type, from_pandas=not pa.types.is_floating(field.type))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        found = sorted({type(v).__name__ for v in values if v is not None})
        raise RunError(
            f"column {field.name!r} of the results table is {field.type} but holds {found}: {exc}; "
            "give that dataset column one type"
        ) from exc


class CasesFile:
    """A run's ``cases.parquet``: its columns, its size, and its rows read back by column and row.

    :meth:`frame` reads every row once and keeps it (what ``result.cases`` returns);
    :meth:`read` and :meth:`batches` read only what is asked, from that frame when it
    is already loaded, else from the file.

    Args:
        path: The file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._frame: pd.DataFrame | None = None
        self._footer: pq.FileMetaData | None = None

    def __repr__(self) -> str:
        return f"CasesFile({str(self.path)!r})"

    @property
    def metadata(self) -> pq.FileMetaData:
        """The file's footer (read once; the file is not kept open): row groups, schema, key-values."""
        if self._footer is None:
            self._footer = pq.read_metadata(self.path)
        return self._footer

    @property
    def schema(self) -> pa.Schema:
        """Every column of the file and its Arrow type (``_order`` included)."""
        return self.metadata.schema.to_arrow_schema()

    @property
    def num_rows(self) -> int:
        """Rows in the file (from its footer: nothing is read)."""
        return int(self.metadata.num_rows)

    @property
    def columns(self) -> list[str]:
        """The results table's columns (without the internal ``_order``)."""
        return [name for name in self.schema.names if name != col.ORDER]

    @property
    def in_order(self) -> bool:
        """Whether the rows are stored in plan order (else reads sort them by ``_order``)."""
        return (self.metadata.metadata or {}).get(SORTED_KEY) == b"true"

    @property
    def about(self) -> dict[str, Any]:
        """What the run was, as the engine wrote it: ``experiment``, ``variants`` (name -> version),
        ``models``, ``scorers``, ``repeats``, ``started`` (UTC, ISO 8601)."""
        about = (self.metadata.metadata or {}).get(ABOUT_KEY)
        return dict(json.loads(about)) if about else {}

    @property
    def loaded(self) -> bool:
        """Whether :meth:`frame` has read every row already."""
        return self._frame is not None

    def frame(self) -> pd.DataFrame:
        """Every row and column in plan order, read on the first call and kept."""
        if self._frame is None:
            self._frame = self._read_file(self.columns, None)
        return self._frame

    def read(self, columns: Sequence[str] | None = None, where: Where = None) -> pd.DataFrame:
        """The rows matching ``where`` (all by default), with ``columns`` only (all by default), in plan order.

        Args:
            columns: Column names; unknown ones raise :class:`UsageError` naming the others.
            where: A pyarrow compute expression (``pc.field("variant") == "few_shot"``), or a
                dict: ``{"variant": "few_shot"}`` keeps rows equal to a value, a list keeps
                rows equal to any of its values (``{"model": ["a", "b"]}``), ``None`` keeps
                missing values; several keys must all hold.
        """
        names = self._check(columns)
        if self._frame is not None:
            return _select(self._frame, names, where)
        return self._read_file(names, where)

    def batches(
        self, columns: Sequence[str] | None = None, where: Where = None, *, batch_rows: int = 50_000
    ) -> Iterator[pd.DataFrame]:
        """The same rows as :meth:`read`, as frames of at most about ``batch_rows`` rows each.

        Memory holds one row group (or batch) at a time when the file is in plan order,
        so a table of any size can be copied elsewhere (e.g. redacted into an MLflow artifact).
        """
        names = self._check(columns)
        if self._frame is not None or not self.in_order:
            whole = self.read(names, where)
            for start in range(0, len(whole), batch_rows):
                yield whole.iloc[start : start + batch_rows].reset_index(drop=True)
            return
        pending: list[pa.Table] = []
        size = 0
        for table in self._row_groups(names, where):
            pending.append(table)
            size += table.num_rows
            if size >= batch_rows:
                yield _to_frame(pa.concat_tables(pending))
                pending, size = [], 0
        if size:
            yield _to_frame(pa.concat_tables(pending))

    def copy_to(
        self,
        path: str | Path,
        *,
        columns: Sequence[str] | None = None,
        where: Where = None,
        transform: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    ) -> Path:
        """Write the rows (``columns`` and ``where`` as in :meth:`read`), in plan order, to a new
        Parquet file at ``path``, one batch at a time.

        ``transform`` is applied to each batch (the same columns and types must come back):
        the MLflow copy of a run's rows passes the redaction chain this way without the whole
        table in memory. The copy keeps the file's description (:attr:`about`).
        """
        target = Path(path)
        names = self._check(columns)
        schema = pa.schema([self.schema.field(name) for name in names])
        about = (self.metadata.metadata or {}).get(ABOUT_KEY, b"{}")
        schema = schema.with_metadata({SORTED_KEY: b"true", ABOUT_KEY: about})
        with pq.ParquetWriter(target, schema) as writer:
            for batch in self.batches(names, where, batch_rows=_COPY_ROWS):
                frame = transform(batch) if transform is not None else batch
                writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
        return target

    # -- internals ------------------------------------------------------------------------------
    def _check(self, columns: Sequence[str] | None) -> list[str]:
        known = self.columns
        if columns is None:
            return known
        if isinstance(columns, str):
            raise UsageError(f"columns must be a list of names, got the string {columns!r}; write [{columns!r}]")
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise UsageError(f"no column(s) {unknown!r} in the cases of this run; its columns are {known!r}")
        return list(dict.fromkeys(columns))

    def _row_groups(self, names: list[str], where: Where) -> Iterator[pa.Table]:
        """Each row group's matching rows, in file order."""
        condition = as_expression(where, self.columns)
        fragment = next(iter(pads.dataset(self.path, format="parquet").get_fragments()))
        for group in fragment.split_by_row_group():
            yield group.to_table(columns=names, filter=condition, use_threads=False)  # one thread: its heap is released

    def _read_file(self, names: list[str], where: Where) -> pd.DataFrame:
        wanted = names if self.in_order else [*names, col.ORDER]
        tables = list(self._row_groups(wanted, where))
        table = pa.concat_tables(tables) if tables else self.schema.empty_table().select(wanted)
        del tables
        if not self.in_order:
            table = _sorted(table)
        return _to_frame(table)


def as_expression(where: Where, columns: Sequence[str]) -> pc.Expression | None:
    """``where`` as a pyarrow compute expression (see :meth:`CasesFile.read`)."""
    if where is None or isinstance(where, pc.Expression):
        return where
    if not isinstance(where, Mapping):
        raise UsageError(
            f"where must be a dict like {{'variant': 'few_shot'}} or a pyarrow compute expression, got {where!r}"
        )
    condition: pc.Expression | None = None
    for name, value in where.items():
        if name not in columns:
            raise UsageError(f"where names no column of this run: {name!r}; its columns are {list(columns)!r}")
        field = pc.field(name)
        if value is None:
            term = field.is_null()
        elif isinstance(value, (list, tuple, set, frozenset)):
            term = field.isin(list(value))
        else:
            term = field == value
        condition = term if condition is None else condition & term
    return condition


def _select(frame: pd.DataFrame, names: list[str], where: Where) -> pd.DataFrame:
    """``read`` on the frame already in memory."""
    if where is None:
        return frame[names]
    if isinstance(where, pc.Expression):
        kept = pa.Table.from_pandas(frame, preserve_index=False).filter(where)
        return _to_frame(kept.select(names))
    as_expression(where, list(frame.columns))  # the same checks and messages as on the file
    mask = np.ones(len(frame), dtype=bool)
    for name, value in where.items():
        values = frame[name]
        if value is None:
            mask &= values.isna().to_numpy()
        elif isinstance(value, (list, tuple, set, frozenset)):
            mask &= values.isin(list(value)).to_numpy()
        else:
            mask &= (values == value).fillna(False).to_numpy(dtype=bool)
    return frame.loc[mask, names].reset_index(drop=True)


def _sorted(table: pa.Table) -> pa.Table:
    """``table`` sorted by ``_order`` (then dropped), one column at a time.

    Each column is reordered, then its unsorted chunks are let go, so the peak is
    the data plus one column, not two copies of it.
    """
    order = pc.sort_indices(table[col.ORDER])
    table = table.drop_columns([col.ORDER])
    names, columns = table.column_names, []
    for name in names:
        columns.append(table.column(name).take(order))
        table = table.drop_columns([name])  # the last reference to its unsorted chunks
        release_unused()
    return pa.Table.from_arrays(columns, names=names)


def _to_frame(table: pa.Table) -> pd.DataFrame:
    """A pandas frame of ``table``: strings stay Arrow-backed (the pandas 3 ``str`` dtype)."""
    frame = table.to_pandas(types_mapper=_string_as_arrow, self_destruct=True, split_blocks=True)
    del table
    release_unused()
    return frame


def _string_as_arrow(arrow_type: pa.DataType) -> object:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pd.StringDtype("pyarrow", na_value=np.nan)
    return None
