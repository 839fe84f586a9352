"""Datasets: the golden set an experiment runs on.

A :class:`Dataset` wraps a pandas DataFrame with an id column, the columns
holding expected values, and where it came from. It is validated against the
variants *before* any model is called, so a typo costs nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.core.exceptions import DatasetError
from workbench.core.variant import PromptVariant, _is_missing
from workbench.util.paths import project_root, resolve


def _read_jsonl(path: Path) -> pd.DataFrame:
    """One JSON object per line; a broken line is reported by its line number (not a byte offset)."""
    records = []
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
    return pd.DataFrame.from_records(records)


_READERS = {
    ".csv": lambda p: pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""]),
    ".jsonl": _read_jsonl,
    ".json": lambda p: pd.read_json(p, dtype=False),
    ".parquet": pd.read_parquet,
}


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV, JSONL, JSON or Parquet file as datasets read it.

    CSV cells are read as strings (ids like ``007`` keep their zeros) and only an
    empty cell is missing (``"NA"`` and ``"null"`` stay text).

    Raises:
        DatasetError: unsupported extension, missing file, or unreadable content.
    """
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DatasetError(
            f"dataset {str(path)!r} has an unsupported extension {path.suffix!r}; use one of {sorted(_READERS)}"
        )
    if not path.exists():
        raise DatasetError(f"dataset file {str(path)!r} does not exist")
    try:
        return reader(path)
    except DatasetError:
        raise
    except Exception as exc:  # the readers raise many different types
        raise DatasetError(f"could not read dataset {str(path)!r}: {exc}") from exc


#: How many problems a validation error lists before summarising the rest.
_MAX_LISTED = 10


@dataclass(frozen=True)
class Case:
    """One dataset row, split into what the model sees and what it should answer."""

    id: str
    inputs: dict[str, Any]
    expectations: dict[str, Any]
    where: str


@dataclass
class Dataset:
    """A table of cases with an id column and expected-value columns.

    Args:
        frame: One row per case.
        id_column: Column with a unique id per case.
        expected: Columns holding expected values (used by scorers, never
            shown to the model unless a template names them).
        source: Where the data came from, used in error messages.

    Example:
        >>> ds = Dataset.load("data/sentiment.csv", expected=["label"])  # doctest: +SKIP
        >>> ds = Dataset(pd.DataFrame({"id": ["a"], "review": ["ok"], "label": ["positive"]}),
        ...              expected=["label"])
        >>> len(ds), ds.expected
        (1, ('label',))
    """

    frame: pd.DataFrame
    id_column: str = "id"
    expected: Sequence[str] = ()
    source: str = "<DataFrame>"
    _hash: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.expected = tuple(self.expected)
        self.frame = self.frame.reset_index(drop=True)
        columns = list(self.frame.columns)
        for column in (self.id_column, *self.expected):
            if column not in self.frame.columns:
                role = "id" if column == self.id_column else "expected-value"
                raise DatasetError(f"dataset {self.source} has no {role} column {column!r}; its columns are {columns}")
        ids = self.frame[self.id_column]
        for i, value in enumerate(ids):
            if _is_missing(value):
                raise DatasetError(
                    f"dataset {self.source} {self.row_label(i)} has an empty id in column "
                    f"{self.id_column!r}; give every row a unique id"
                )
        self.frame[self.id_column] = ids.astype(str)
        duplicated = self.frame[self.id_column][self.frame[self.id_column].duplicated()]
        if not duplicated.empty:
            first = duplicated.index[0]
            raise DatasetError(
                f"dataset {self.source} {self.row_label(first)} repeats id "
                f"{duplicated.iloc[0]!r} in column {self.id_column!r}; ids must be unique"
            )

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        id_column: str = "id",
        expected: Sequence[str] = (),
    ) -> Dataset:
        """Read a CSV, JSONL, JSON or Parquet file.

        A relative path is found from the working directory or, failing that, from the
        project root, so ``"data/sentiment.csv"`` works from a notebook in ``notebooks/``
        (JupyterLab starts the kernel in the notebook's folder). CSV cells are read as
        strings, so ids like ``007`` keep their zeros.
        """
        found = resolve(path)
        if not found.exists() and not Path(path).is_absolute():
            raise DatasetError(
                f"dataset file {str(path)!r} does not exist: looked in the working directory {str(Path.cwd())!r} "
                f"and in the project root {str(project_root())!r}; check the name, or give a path from either"
            )
        return cls(read_table(found), id_column=id_column, expected=expected, source=str(path))

    @classmethod
    def from_records(
        cls, records: Sequence[Mapping[str, Any]], *, id_column: str = "id", expected: Sequence[str] = ()
    ) -> Dataset:
        """Build a dataset from a list of dicts (handy in notebooks and tests)."""
        return cls(pd.DataFrame(list(records)), id_column=id_column, expected=expected, source="<records>")

    def __len__(self) -> int:
        return len(self.frame)

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
        """Hash of the data itself (not the file name): changes when any cell changes."""
        if self._hash is None:
            body = self.frame.to_json(orient="split", index=False, date_format="iso")
            key = f"{self.id_column}|{','.join(self.expected)}|{body}"
            self._hash = hashlib.sha256(key.encode()).hexdigest()[:12]
        return self._hash

    def head(self, n: int) -> Dataset:
        """The first ``n`` cases (same source, for error messages)."""
        return self._subset(self.frame.head(n))

    def sample(self, n: int, *, seed: int = 0) -> Dataset:
        """``n`` cases drawn at random, reproducibly, in their original order."""
        if n >= len(self):
            return self
        return self._subset(self.frame.sample(n=n, random_state=seed).sort_index())

    def _subset(self, frame: pd.DataFrame) -> Dataset:
        return Dataset(frame.copy(), id_column=self.id_column, expected=self.expected, source=self.source)

    def cases(self) -> Iterator[Case]:
        """Iterate over the rows as :class:`Case` objects."""
        expected = set(self.expected)
        for i, record in enumerate(self.frame.to_dict(orient="records")):
            yield Case(
                id=str(record[self.id_column]),
                inputs={k: v for k, v in record.items() if k not in expected and k != self.id_column},
                expectations={k: record[k] for k in self.expected},
                where=f"dataset {self.source} {self.row_label(i)}",
            )

    def validate(self, variants: Sequence[PromptVariant]) -> None:
        """Check that every row gives every variable every variant needs.

        Raises:
            DatasetError: Lists each missing column, and each row (with its
                file, row number and id) that leaves a needed column empty.
        """
        problems: list[str] = []
        columns = set(self.frame.columns)
        for variant in variants:
            for name in sorted(variant.variables()):
                if name not in columns:
                    problems.append(
                        f"dataset {self.source} has no column {name!r} used by variant "
                        f"{variant.name!r}; its columns are {sorted(columns)}"
                    )
                    continue
                if name in self.expected:
                    problems.append(
                        f"variant {variant.name!r} shows the expected-value column {name!r} "
                        "to the model; remove it from the template or from `expected`"
                    )
                empty = [i for i, v in enumerate(self.frame[name]) if _is_missing(v)]
                for i in empty:
                    case_id = self.frame[self.id_column].iloc[i]
                    problems.append(
                        f"dataset {self.source} {self.row_label(i)} (id {case_id!r}) has no value "
                        f"in column {name!r} used by variant {variant.name!r}; fill it in or drop the row"
                    )
        if problems:
            listed = problems[:_MAX_LISTED]
            more = len(problems) - len(listed)
            tail = f"\n... and {more} more problem(s)" if more else ""
            raise DatasetError("\n".join(listed) + tail)
