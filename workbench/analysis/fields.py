"""Per-field tables of a run: a scorer's ``<scorer>.<field>.<metric>`` summary columns, one row per field."""

from __future__ import annotations

from typing import Any

import pandas as pd

from workbench.core.exceptions import UsageError


def field_report(result: Any, *, scorer: str = "field_match") -> pd.DataFrame:
    """The per-field metrics of ``scorer`` as a table: one row per variant x model x field.

    Reads the run's summary, where per-field scorers
    (:class:`~workbench.scorers.FieldMatch`: ``tp``, ``fp``, ``fn``, ``precision``,
    ``recall``, ``f1``; :class:`~workbench.scorers.Hallucination` as ``grounded``:
    ``hallucination_rate``, ``unsupported``) put columns named ``<scorer>.<field>.<metric>``.

    Args:
        result: A run result (anything with a ``summary`` frame), or the summary itself.
        scorer: The scorer's column name, e.g. ``"field_match"`` or ``"grounded"``.

    Raises:
        UsageError: the summary has no per-field columns of ``scorer``.

    Example:
        >>> report = wb.field_report(result, scorer="field_match")  # doctest: +SKIP
        >>> report.loc[("few_shot", "local/gemma", "brand"), "f1"]  # doctest: +SKIP
    """
    summary = result if isinstance(result, pd.DataFrame) else result.summary
    prefix = f"{scorer}."
    columns = [c for c in summary.columns if str(c).startswith(prefix) and "." in str(c)[len(prefix) :]]
    if not columns:
        known = sorted({str(c).split(".")[0] for c in summary.columns if str(c).count(".") >= 2})
        raise UsageError(f"the summary has no per-field columns of scorer {scorer!r}; scorers that have them: {known}")
    records = []
    for _, row in summary.iterrows():
        fields: dict[str, dict[str, Any]] = {}
        for column in columns:
            name, metric = str(column)[len(prefix) :].rsplit(".", 1)
            fields.setdefault(name, {})[metric] = row[column]
        for name, metrics in fields.items():
            records.append({"variant": row["variant"], "model": row["model"], "field": name, **metrics})
    return pd.DataFrame(records).set_index(["variant", "model", "field"])
