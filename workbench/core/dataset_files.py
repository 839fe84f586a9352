"""Reading dataset files (CSV, JSONL, JSON, Parquet), whole or in chunks that agree with the whole.

A file read in chunks gives the same columns, dtypes and values as the file read
whole (the whole read *is* its chunks put together), so a dataset streamed from
its file renders the same prompts and has the same hash as one held in memory.

- CSV: every cell is a string (ids like ``007`` keep their zeros); only an empty
  cell is missing (``"NA"`` and ``"null"`` stay text).
- JSONL: one object per line; a broken line is reported by its number. pandas
  gives a column the dtype of all its values (ints with one missing value become
  floats), so chunks are cast to the dtypes :class:`Layout` found over the whole file.
- Parquet: read a batch at a time.
- JSON (one array): read whole; it cannot be streamed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from workbench.core.exceptions import DatasetError

#: Rows per chunk when a file is streamed.
CHUNK_ROWS = 10_000
#: Extensions that can be streamed in chunks.
STREAMABLE = frozenset({".csv", ".jsonl", ".parquet"})
_SUPPORTED = sorted(STREAMABLE | {".json"})


@dataclass(frozen=True)
class Layout:
    """The columns (in order of first appearance) and dtypes of a whole JSONL file."""

    columns: tuple[str, ...]
    dtypes: dict[str, Any]


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV, JSONL, JSON or Parquet file whole, as datasets read it.

    Raises:
        DatasetError: unsupported extension, missing file, or unreadable content.
    """
    path = Path(path)
    if _suffix(path) == ".json":
        try:
            return pd.read_json(path, dtype=False)
        except Exception as exc:  # pandas raises many different types
            raise DatasetError(f"could not read dataset {str(path)!r}: {exc}") from exc
    layout = jsonl_layout(path) if _suffix(path) == ".jsonl" else None
    chunks = list(read_chunks(path, layout=layout))
    if not chunks:
        return pd.DataFrame(columns=list(layout.columns) if layout else [])
    return pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]


def read_chunks(path: str | Path, *, rows: int | None = None, layout: Layout | None = None) -> Iterator[pd.DataFrame]:
    """The rows of a CSV, JSONL or Parquet file, ``rows`` (:data:`CHUNK_ROWS`) at a time, each indexed from 0.

    A JSONL file's chunks are cast to ``layout`` (:func:`jsonl_layout`); without it each chunk
    has the dtypes of its own values.

    Raises:
        DatasetError: unsupported extension, missing file, or unreadable content.
    """
    path, rows = Path(path), rows or CHUNK_ROWS
    suffix = _suffix(path)
    if suffix not in STREAMABLE:
        raise DatasetError(f"dataset {str(path)!r} cannot be read in chunks; use one of {sorted(STREAMABLE)}")
    try:
        if suffix == ".csv":
            with pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], chunksize=rows) as reader:
                yield from reader
        elif suffix == ".parquet":
            for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
                yield batch.to_pandas().reset_index(drop=True)
        else:
            for chunk in _jsonl_chunks(path, rows):
                yield chunk if layout is None else _cast(chunk, layout)
    except DatasetError:
        raise
    except Exception as exc:  # the readers raise many different types
        raise DatasetError(f"could not read dataset {str(path)!r}: {exc}") from exc


def jsonl_layout(path: Path, *, rows: int | None = None) -> Layout:
    """One pass over a JSONL file: its columns and the dtype pandas gives each over all rows."""
    rows = rows or CHUNK_ROWS
    columns: dict[str, Any] = {}
    first = True
    try:
        for chunk in _jsonl_chunks(path, rows):
            for name in columns.keys() - set(chunk.columns):
                columns[name] = _merge(columns[name], _MISSING)
            for name in chunk.columns:
                seen = _MISSING if chunk[name].isna().all() else chunk[name].dtype
                # A column new in a later chunk was missing from every row before it.
                columns[name] = _merge(columns.get(name, None if first else _MISSING), seen)
            first = False
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(f"could not read dataset {str(path)!r}: {exc}") from exc
    # Identity, not ==: numpy takes None for float64 (np.dtype(None) is float64).
    dtypes = {name: np.dtype(object) if kind is None or kind is _MISSING else kind for name, kind in columns.items()}
    return Layout(tuple(columns), dtypes)


def _suffix(path: Path) -> str:
    """The file's lower-case extension, once it is known to be readable."""
    check = path.suffix.lower()
    if check not in _SUPPORTED:
        raise DatasetError(
            f"dataset {str(path)!r} has an unsupported extension {path.suffix!r}; use one of {_SUPPORTED}"
        )
    if not path.exists():
        raise DatasetError(f"dataset file {str(path)!r} does not exist")
    return check


def _jsonl_chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    """Chunks of a JSONL file with the dtypes of their own values; a broken line names its number."""
    records: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(
                    f"dataset {str(path)!r} line {number} is not valid JSON ({exc.msg} at column {exc.colno}); "
                    "fix that line: each line must be one JSON object"
                ) from None
            if not isinstance(record, dict):
                raise DatasetError(
                    f"dataset {str(path)!r} line {number} is a JSON {type(record).__name__}, not an object; "
                    'write each case as {"id": ..., "column": ...}'
                )
            records.append(record)
            if len(records) >= rows:
                yield pd.DataFrame.from_records(records)
                records = []
    if records:
        yield pd.DataFrame.from_records(records)


#: A column with no value in a chunk: it makes ints floats and booleans objects, as one missing value does.
_MISSING = "missing"


def _merge(whole: Any, part: Any) -> Any:
    """The dtype pandas gives a column made of two parts of these dtypes (``None``: no part yet)."""
    if whole is None:
        return part
    if part is _MISSING:
        return whole if whole is _MISSING else _with_missing(whole)
    if whole is _MISSING:
        return _with_missing(part)
    if whole == part:
        return whole
    if _numeric(whole) and _numeric(part):
        return np.result_type(whole, part)
    return np.dtype(object)


def _numeric(dtype: Any) -> bool:
    return isinstance(dtype, np.dtype) and dtype.kind in "iuf"


def _with_missing(dtype: Any) -> Any:
    """The dtype of a column of ``dtype`` once it holds a missing value."""
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        return np.dtype("float64")
    if isinstance(dtype, np.dtype) and dtype.kind == "b":
        return np.dtype(object)
    return dtype


def _cast(chunk: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """``chunk`` with the whole file's columns, in its order, with its dtypes."""
    out = {}
    for name in layout.columns:
        dtype = layout.dtypes[name]
        if name not in chunk:
            out[name] = pd.Series(np.nan, index=chunk.index, dtype=dtype)
        elif chunk[name].dtype != dtype:
            out[name] = chunk[name].astype(dtype)
        else:
            out[name] = chunk[name]
    return pd.DataFrame(out, index=chunk.index)
