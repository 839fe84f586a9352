"""The result spool: rows arrive out of order, in small batches, and come back as one sorted frame."""

from __future__ import annotations

import random

import pandas as pd

from workbench.engine.spool import CaseSpool


def test_rows_come_back_in_plan_order_across_batches() -> None:
    order = list(range(1000))
    random.Random(0).shuffle(order)
    spool = CaseSpool(batch_rows=64)
    for i in order:
        row = {"_order": i, "case_id": f"c{i:04d}", "score": i / 10, "cached": i % 2 == 0, "reason": None}
        if i % 7 == 0:  # a column only some rows have: missing from many batches' first rows
            row["error"] = f"boom {i}"
        if i % 300 == 0:  # ...and one missing from whole batches
            row["note"] = f"rare {i}"
        spool.append(row)
    frame = spool.to_frame()
    assert "_order" not in frame.columns
    assert list(frame["case_id"]) == [f"c{i:04d}" for i in range(1000)]
    assert list(frame["score"]) == [i / 10 for i in range(1000)]
    failed = frame["error"].notna()
    assert list(frame.index[failed]) == [i for i in range(1000) if i % 7 == 0]
    assert frame.loc[7, "error"] == "boom 7"
    assert list(frame["note"].dropna()) == ["rare 0", "rare 300", "rare 600", "rare 900"]
    assert frame["cached"].dtype == bool and list(frame["cached"]) == [i % 2 == 0 for i in range(1000)]
    assert frame["reason"].isna().all()
    assert isinstance(frame["case_id"].dtype, pd.StringDtype) and frame["case_id"].dtype.storage == "pyarrow"
    assert spool.rows == 1000


def test_an_empty_spool_is_an_empty_frame() -> None:
    assert CaseSpool().to_frame().empty
