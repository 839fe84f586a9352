"""The result spool: rows arrive out of order, in small batches, and reach the run's file in plan order."""

from __future__ import annotations

import random

import pandas as pd
import pyarrow as pa
import pytest

from workbench.core.exceptions import RunError
from workbench.core.runstore import CasesFile
from workbench.engine.spool import CaseSpool

SCHEMA = pa.schema(
    [
        ("_order", pa.int64()),
        ("case_id", pa.string()),
        ("score", pa.float64()),
        ("cached", pa.bool_()),
        ("attempts", pa.int64()),
        ("reason", pa.string()),
        ("error", pa.string()),
        ("note", pa.string()),
    ]
)


def row(i: int) -> dict:
    out = {"_order": i, "case_id": f"c{i:04d}", "score": i / 10, "cached": i % 2 == 0, "reason": None}
    out["attempts"] = None if i % 7 == 0 else 1
    if i % 7 == 0:  # a column only some rows have: missing from many batches' rows
        out["error"] = f"boom {i}"
    if i % 300 == 0:  # ...and one missing from whole batches
        out["note"] = f"rare {i}"
    return out


def near_order(n: int, window: int, seed: int = 0) -> list[int]:
    """0..n-1 as concurrent calls finish them: each at most ``window`` places from its own."""
    rng = random.Random(seed)
    return [i for _, i in sorted((i + rng.uniform(0, window), i) for i in range(n))]


def check_frame(frame: pd.DataFrame, n: int) -> None:
    assert "_order" not in frame.columns
    assert list(frame["case_id"]) == [f"c{i:04d}" for i in range(n)]
    assert list(frame["score"]) == [i / 10 for i in range(n)]
    failed = frame["error"].notna()
    assert list(frame.index[failed]) == [i for i in range(n) if i % 7 == 0]
    assert frame.loc[7, "error"] == "boom 7"
    assert list(frame["note"].dropna()) == [f"rare {i}" for i in range(0, n, 300)]
    assert frame["cached"].dtype == bool and list(frame["cached"]) == [i % 2 == 0 for i in range(n)]
    assert frame["attempts"].dtype == "float64" and frame["attempts"].isna().sum() == len(range(0, n, 7))
    assert frame["reason"].isna().all()
    for column in ("case_id", "reason", "note"):  # Arrow-backed strings, as the table always held them
        assert isinstance(frame[column].dtype, pd.StringDtype) and frame[column].dtype.storage == "pyarrow"


def test_rows_finishing_out_of_order_reach_the_file_in_plan_order(tmp_path) -> None:
    spool = CaseSpool(tmp_path / "cases.parquet", SCHEMA, batch_rows=64)
    for i in near_order(1000, window=40):
        spool.append(row(i))
    assert len(spool._waiting) < 64  # only rows ahead of a call still running wait
    cases = CasesFile(spool.close())
    assert spool.rows == 1000 and cases.num_rows == 1000
    assert cases.in_order  # no sort needed to read it back
    assert cases.metadata.num_row_groups == 1000 // 64 + 1  # written as it went
    check_frame(cases.frame(), 1000)


def test_rows_stuck_behind_a_slow_call_are_written_anyway_and_sorted_when_read(tmp_path) -> None:
    spool = CaseSpool(tmp_path / "cases.parquet", SCHEMA, batch_rows=64, max_waiting=100)
    order = list(range(1, 1000))
    random.Random(1).shuffle(order)
    for i in [*order, 0]:  # call 0 is the last to finish
        spool.append(row(i))
        assert len(spool._waiting) <= 101
    cases = CasesFile(spool.close())
    assert not cases.in_order
    check_frame(cases.frame(), 1000)
    some = CasesFile(cases.path).read(["case_id", "score"], where={"cached": True})
    assert list(some["case_id"]) == [f"c{i:04d}" for i in range(0, 1000, 2)]
    batches = list(CasesFile(cases.path).batches(["case_id"], batch_rows=300))
    assert [len(b) for b in batches] == [300, 300, 300, 100]
    assert list(pd.concat(batches)["case_id"]) == [f"c{i:04d}" for i in range(1000)]


def test_a_run_with_no_rows_is_an_empty_table_with_every_column(tmp_path) -> None:
    cases = CasesFile(CaseSpool(tmp_path / "cases.parquet", SCHEMA).close())
    frame = cases.frame()
    assert frame.empty and list(frame.columns) == SCHEMA.names[1:]
    assert isinstance(frame["case_id"].dtype, pd.StringDtype) and frame["score"].dtype == "float64"


def test_a_row_with_a_column_the_table_does_not_declare_is_refused(tmp_path) -> None:
    spool = CaseSpool(tmp_path / "cases.parquet", SCHEMA, batch_rows=1)
    with pytest.raises(RunError, match=r"does not declare: \['surprise'\]"):
        spool.append({**row(0), "surprise": 1})


def test_a_failed_run_leaves_a_complete_file_of_what_was_written(tmp_path) -> None:
    spool = CaseSpool(tmp_path / "cases.parquet", SCHEMA, batch_rows=10)
    for i in range(25):
        spool.append(row(i))
    spool.abort()
    assert not (tmp_path / "cases.parquet.partial").exists()
    assert CasesFile(tmp_path / "cases.parquet").num_rows == 20  # the two full row groups
