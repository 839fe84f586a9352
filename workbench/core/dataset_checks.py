"""A dataset checked against the variants that will read it, before any model is called.

:func:`check_variants` walks the table once (in chunks, so a streamed file stays on disk)
and lists every problem a run would hit: a column a template names that the dataset lacks,
an expected-value column shown to the model, a row that leaves a needed column empty, a
conversation history that does not parse. Each message names the file, the row and its id,
the column and the fix; after :data:`MAX_LISTED` of them the rest are counted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import pandas as pd

from workbench.core.conversation import history_turns
from workbench.core.exceptions import DatasetError
from workbench.core.variant import PromptVariant, _is_missing

__all__ = ["MAX_LISTED", "check_variants"]

#: How many problems a validation error lists before summarising the rest.
MAX_LISTED = 10


class Table(Protocol):
    """What the check reads of a :class:`~workbench.core.dataset.Dataset`."""

    source: str
    id_column: str
    expected: tuple[str, ...]

    @property
    def columns(self) -> list[str]: ...

    def row_label(self, index: int) -> str: ...

    def chunks(self) -> Iterator[tuple[int, pd.DataFrame]]: ...


def check_variants(table: Table, variants: Sequence[PromptVariant]) -> None:
    """Check that every row of ``table`` gives every variable every variant needs.

    Raises:
        DatasetError: Lists each missing column, and each row (with its file, row
            number and id) that leaves a needed column empty.
    """
    columns = table.columns
    found: dict[tuple[str, str], list[str]] = {}  # (variant, column) -> its first problems, in order
    counts: dict[tuple[str, str], int] = {}  # ... and how many there are
    for variant in variants:
        for name in sorted(variant.variables()):
            key = (variant.name, name)
            if name not in columns:
                found[key] = [
                    f"dataset {table.source} has no column {name!r} used by variant "
                    f"{variant.name!r}; its columns are {sorted(columns)}"
                ]
                counts[key] = 1
                continue
            found[key] = []
            if name in table.expected:
                found[key].append(
                    f"variant {variant.name!r} shows the expected-value column {name!r} "
                    "to the model; remove it from the template or from `expected`"
                )
            counts[key] = len(found[key])
    histories = {(v.name, v.history) for v in variants if v.history and v.history in columns}
    checked = [key for key in found if key[1] in columns and key not in histories]
    history_columns = sorted({history for _, history in histories})
    bad_histories: list[str] = []
    n_bad = 0
    if checked or history_columns:
        for start, chunk in table.chunks():
            n_bad += _history_problems(table, chunk, start, history_columns, bad_histories)
            for key in checked:
                variant_name, name = key
                empty = chunk[name].map(_is_missing).to_numpy(dtype=bool).nonzero()[0]
                counts[key] += len(empty)
                for offset in empty[: MAX_LISTED - len(found[key])]:
                    case_id = chunk[table.id_column].iloc[offset]
                    found[key].append(
                        f"dataset {table.source} {table.row_label(start + int(offset))} (id {case_id!r}) "
                        f"has no value in column {name!r} used by variant {variant_name!r}; "
                        "fill it in or drop the row"
                    )
    problems = [message for messages in found.values() for message in messages]
    problems += bad_histories
    if problems:
        listed = problems[:MAX_LISTED]
        more = sum(counts.values()) + n_bad - len(listed)
        tail = f"\n... and {more} more problem(s)" if more else ""
        raise DatasetError("\n".join(listed) + tail)


def _history_problems(table: Table, chunk: pd.DataFrame, start: int, columns: Sequence[str], found: list[str]) -> int:
    """How many bad histories ``chunk`` has in ``columns`` (see :mod:`workbench.core.conversation`);
    the first ones' messages are appended to ``found``."""
    count = 0
    for name in columns:
        for offset, value in enumerate(chunk[name]):
            try:
                history_turns(value, column=name)
            except DatasetError:
                count += 1
                if len(found) < MAX_LISTED:
                    case_id = chunk[table.id_column].iloc[offset]
                    where = f"dataset {table.source} {table.row_label(start + offset)} (id {case_id!r})"
                    try:
                        history_turns(value, where=where, column=name)
                    except DatasetError as exc:
                        found.append(str(exc))
    return count
