"""Datasets: the golden set an experiment runs on.

A :class:`Dataset` is a table of cases with an id column, the columns holding
expected values, and where it came from. It is validated against the variants
*before* any model is called, so a typo costs nothing.

A dataset loaded from a CSV, JSONL or Parquet file is *streamed*: every walk
over it (validation, hashing, the engine's walk of cases) reads the file in
chunks, so a million-case file never sits in memory. Its ``frame`` reads the
whole file on first use. A dataset made from a DataFrame holds it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from workbench.core import dataset_files
from workbench.core.dataset_checks import check_variants
from workbench.core.dataset_files import STREAMABLE, Layout, jsonl_layout, read_chunks, read_table
from workbench.core.exceptions import DatasetError
from workbench.core.variant import PromptVariant, _is_missing
from workbench.util.memory import release_unused
from workbench.util.paths import project_root, resolve

__all__ = ["Case", "Dataset", "read_table"]


@dataclass(frozen=True)
class Case:
    """One dataset row, split into what the model sees and what it should answer."""

    id: str
    inputs: dict[str, Any]
    expectations: dict[str, Any]
    where: str


class Dataset:
    """A table of cases with an id column and expected-value columns.

    Args:
        frame: One row per case.
        id_column: Column with a unique id per case.
        expected: Columns holding expected values (used by scorers, never
            shown to the model unless a template names them).
        source: Where the data came from, used in error messages.
        content_hash: The hash the data had when first loaded (a run reopened from MLflow
            keeps the one it was run on); computed from the data by default.

    Example:
        >>> ds = Dataset.load("data/sentiment.csv", expected=["label"])  # doctest: +SKIP
        >>> ds = Dataset(pd.DataFrame({"id": ["a"], "review": ["ok"], "label": ["positive"]}),
        ...              expected=["label"])
        >>> len(ds), ds.expected
        (1, ('label',))
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        id_column: str = "id",
        expected: Sequence[str] = (),
        source: str = "<DataFrame>",
        *,
        content_hash: str | None = None,
    ) -> None:
        self.id_column = id_column
        self.expected: tuple[str, ...] = tuple(expected)
        self.source = source
        self._path: Path | None = None
        self._layout: Layout | None = None
        self._stamp: tuple[int, int] | None = None
        self._hash: str | None = content_hash
        self._types: dict[str, pa.DataType | str] | None = None
        frame = frame.reset_index(drop=True)
        self._columns = [str(c) for c in frame.columns]
        self._check_columns()
        frame[id_column] = self._checked_ids(frame[id_column], start=0)
        self._check_unique(pa.array(frame[id_column], type=pa.string()))
        self._frame: pd.DataFrame | None = frame
        self._rows = len(frame)

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        id_column: str = "id",
        expected: Sequence[str] = (),
        stream: bool = True,
    ) -> Dataset:
        """Read a CSV, JSONL, JSON or Parquet file.

        A relative path is found from the working directory or, failing that, from the
        project root, so ``"data/sentiment.csv"`` works from a notebook in ``notebooks/``
        (JupyterLab starts the kernel in the notebook's folder). CSV cells are read as
        strings, so ids like ``007`` keep their zeros.

        Args:
            path: The file.
            id_column: Column with a unique id per case.
            expected: Columns holding expected values.
            stream: Read a CSV, JSONL or Parquet file in chunks each time the dataset is
                walked instead of holding it (the file is read once here, to check its ids);
                ``False`` reads it whole now. A JSON array is always read whole.
        """
        found = resolve(path)
        if not found.exists() and not Path(path).is_absolute():
            raise DatasetError(
                f"dataset file {str(path)!r} does not exist: looked in the working directory {str(Path.cwd())!r} "
                f"and in the project root {str(project_root())!r}; check the name, or give a path from either"
            )
        if not stream or found.suffix.lower() not in STREAMABLE or not found.exists():  # read_table says why
            return cls(read_table(found), id_column=id_column, expected=expected, source=str(path))
        return cls._streamed(found, id_column=id_column, expected=expected, source=str(path))

    @classmethod
    def _streamed(cls, path: Path, *, id_column: str, expected: Sequence[str], source: str) -> Dataset:
        """A dataset that reads ``path`` in chunks; one pass now checks its columns and ids."""
        self = cls.__new__(cls)
        self.id_column, self.expected, self.source = id_column, tuple(expected), source
        self._path, self._frame, self._hash = path, None, None
        self._layout = jsonl_layout(path) if path.suffix.lower() == ".jsonl" else None
        stat = path.stat()
        self._stamp = (stat.st_size, stat.st_mtime_ns)
        self._columns, self._rows = [], 0
        ids: list[pa.Array] = []
        types: dict[str, list[pa.Field]] = {}
        for chunk in read_chunks(path, layout=self._layout):
            if not self._columns:
                self._columns = [str(c) for c in chunk.columns]
                self._check_columns()
            chunk[id_column] = self._checked_ids(chunk[id_column], start=self._rows)
            ids.append(pa.array(chunk[id_column], type=pa.string()))
            for name in self._columns:
                types.setdefault(name, []).append(_arrow_field(chunk, name))
            self._rows += len(chunk)
        if not self._columns:  # no row: the columns come from the header alone
            self._columns = [str(c) for c in read_table(path).columns]
            self._check_columns()
        self._check_unique(pa.chunked_array(ids, type=pa.string()))
        self._types = {name: _unify(fields) for name, fields in types.items()}
        del ids
        release_unused()
        return self

    @classmethod
    def from_records(
        cls, records: Sequence[Mapping[str, Any]], *, id_column: str = "id", expected: Sequence[str] = ()
    ) -> Dataset:
        """Build a dataset from a list of dicts (handy in notebooks and tests)."""
        return cls(pd.DataFrame(list(records)), id_column=id_column, expected=expected, source="<records>")

    def __repr__(self) -> str:
        held = "streamed from its file" if self._frame is None else "in memory"
        return (
            f"Dataset(source={self.source!r}, rows={self._rows}, id_column={self.id_column!r}, "
            f"expected={self.expected!r}, {held})"
        )

    def __len__(self) -> int:
        return len(self._frame) if self._frame is not None else self._rows

    @property
    def columns(self) -> list[str]:
        """The column names, in file order."""
        return [str(c) for c in self._frame.columns] if self._frame is not None else list(self._columns)

    @property
    def frame(self) -> pd.DataFrame:
        """The whole table (one row per case); a streamed dataset reads its file on first use."""
        if self._frame is None:
            chunks = [chunk for _, chunk in self.chunks()]
            frame = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=self._columns)
            self._frame = frame
        return self._frame

    def row_label(self, index: int) -> str:
        """Human position of row ``index`` (0-based), e.g. ``"row 17 (line 18)"`` for CSV."""
        label = f"row {index + 1}"
        if self.source.endswith(".csv"):
            label += f" (line {index + 2})"  # the header is line 1
        elif self.source.endswith(".jsonl"):
            label += f" (line {index + 1})"
        return label

    @property
    def content_hash(self) -> str:
        """Hash of the data itself (not the file name): changes when any cell changes.

        It is the hash of the table's JSON (pandas' ``split`` layout), computed a chunk at
        a time, so a streamed dataset and the same data in memory hash the same.
        """
        if self._hash is None:
            digest = hashlib.sha256(f"{self.id_column}|{','.join(self.expected)}|".encode())
            started = False
            for _, chunk in self.chunks():
                if chunk.empty:
                    continue
                text = chunk.to_json(orient="split", index=False, date_format="iso")
                cut = text.index(',"data":[') + len(',"data":[')
                digest.update(b"," if started else text[:cut].encode())  # the columns once
                digest.update(text[cut:-2].encode())  # the rows, without the closing "]}"
                started = True
            if not started:
                empty = pd.DataFrame(columns=self.columns).to_json(orient="split", index=False)
                digest.update(empty[: -len("]}")].encode())
            digest.update(b"]}")
            self._hash = digest.hexdigest()[:12]
        return self._hash

    def head(self, n: int) -> Dataset:
        """The first ``n`` cases (same source, for error messages)."""
        if self._frame is not None:
            return self._subset(self._frame.head(n))
        parts, kept = [], 0
        for _, chunk in self.chunks():
            parts.append(chunk.head(n - kept))
            kept += len(parts[-1])
            if kept >= n:
                break
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=self._columns)
        return self._subset(frame)

    def sample(self, n: int, *, seed: int = 0) -> Dataset:
        """``n`` cases drawn at random, reproducibly, in their original order."""
        if n >= len(self):
            return self
        return self._subset(self.frame.sample(n=n, random_state=seed).sort_index())

    def _subset(self, frame: pd.DataFrame) -> Dataset:
        return Dataset(frame.copy(), id_column=self.id_column, expected=self.expected, source=self.source)

    def cases(self) -> Iterator[Case]:
        """Iterate over the rows as :class:`Case` objects (a streamed dataset reads its file in chunks)."""
        expected = set(self.expected)
        for start, chunk in self.chunks():
            for offset, record in enumerate(chunk.to_dict(orient="records")):
                yield Case(
                    id=str(record[self.id_column]),
                    inputs={k: v for k, v in record.items() if k not in expected and k != self.id_column},
                    expectations={k: record[k] for k in self.expected},
                    where=f"dataset {self.source} {self.row_label(start + offset)}",
                )

    def ids(self) -> Iterator[str]:
        """The case ids, in order."""
        for _, chunk in self.chunks():
            yield from chunk[self.id_column].tolist()

    def arrow_types(self, columns: Sequence[str] | None = None) -> dict[str, pa.DataType]:
        """The Arrow type of each column (all by default), as the results table stores its values.

        Raises:
            DatasetError: a column mixes values Arrow cannot hold together (e.g. numbers and text).
        """
        if self._types is None:
            frame = self.frame
            self._types = {name: _unify([_arrow_field(frame, name)]) for name in self.columns}
        out = {}
        for name in self.columns if columns is None else columns:
            kind = self._types[name]
            if isinstance(kind, str):
                raise DatasetError(
                    f"dataset {self.source} column {name!r} mixes values of different types ({kind}); "
                    "give every value of the column one type (e.g. all text)"
                )
            out[name] = kind
        return out

    def validate(self, variants: Sequence[PromptVariant]) -> None:
        """Check that every row gives every variable every variant needs.

        Raises:
            DatasetError: Lists each missing column, and each row (with its
                file, row number and id) that leaves a needed column empty
                (see :func:`workbench.core.dataset_checks.check_variants`).
        """
        check_variants(self, variants)

    def chunks(self) -> Iterator[tuple[int, pd.DataFrame]]:
        """``(first row, rows)`` pieces of the table: slices of the frame, or chunks of the file
        (every id as text)."""
        if self._frame is not None:
            step = dataset_files.CHUNK_ROWS
            for start in range(0, len(self._frame), step):
                yield start, self._frame.iloc[start : start + step]
            return
        if self._path is None:
            raise DatasetError(f"dataset {self.source} holds neither a table nor a file")
        stat = self._path.stat() if self._path.exists() else None
        if stat is None or (stat.st_size, stat.st_mtime_ns) != self._stamp:
            raise DatasetError(
                f"dataset file {self.source!r} changed or went away since it was loaded; "
                "load it again with Dataset.load"
            )
        start = 0
        for chunk in read_chunks(self._path, layout=self._layout):
            chunk[self.id_column] = chunk[self.id_column].astype(str)
            yield start, chunk
            start += len(chunk)
        release_unused()  # the chunks' text lives in Arrow's allocator, which keeps freed pages

    # -- internals ----------------------------------------------------------------------------
    def _check_columns(self) -> None:
        for column in (self.id_column, *self.expected):
            if column not in self._columns:
                role = "id" if column == self.id_column else "expected-value"
                raise DatasetError(
                    f"dataset {self.source} has no {role} column {column!r}; its columns are {self._columns}"
                )

    def _checked_ids(self, ids: pd.Series, *, start: int) -> pd.Series:
        """``ids`` as text; an empty one is an error naming its row."""
        for offset, value in enumerate(ids):
            if _is_missing(value):
                raise DatasetError(
                    f"dataset {self.source} {self.row_label(start + offset)} has an empty id in column "
                    f"{self.id_column!r}; give every row a unique id"
                )
        return ids.astype(str)

    def _check_unique(self, ids: pa.Array | pa.ChunkedArray) -> None:
        """Every id once; else an error naming the first row that repeats one."""
        if len(ids) < 2:
            return
        # Sorted, a repeated id sits next to itself: lighter than a hash table of a million ids.
        ordered = ids.take(pc.sort_indices(ids))
        same = pc.equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1))
        if not pc.any(same).as_py():
            return
        repeated = pc.unique(ordered.slice(1).filter(same))
        del ordered, same
        seen: set[str] = set()
        candidates = pc.is_in(ids, value_set=repeated)
        for i, (value, candidate) in enumerate(zip(ids.to_pylist(), candidates.to_pylist(), strict=True)):
            if not candidate:
                continue
            if value in seen:
                raise DatasetError(
                    f"dataset {self.source} {self.row_label(i)} repeats id "
                    f"{value!r} in column {self.id_column!r}; ids must be unique"
                )
            seen.add(value)


def _arrow_field(frame: pd.DataFrame, name: str) -> pa.Field | str:
    """The Arrow type pandas' values of column ``name`` convert to, or why they do not."""
    try:
        kind = pa.Schema.from_pandas(frame[[name]], preserve_index=False).field(name).type
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        return str(exc)
    return pa.field(name, pa.string() if pa.types.is_large_string(kind) else kind)


def _unify(fields: list[pa.Field | str]) -> pa.DataType | str:
    """One type for a column read in chunks (nulls and ints give way), or why there is none."""
    errors = [f for f in fields if isinstance(f, str)]
    if errors:
        return errors[0]
    try:
        return pa.unify_schemas([pa.schema([f]) for f in fields], promote_options="permissive").field(0).type
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        return str(exc)
