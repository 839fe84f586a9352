"""Flaky cases: how reliably a variant passes a case it was run on several times.

From a case's n scored repeats with c passes, the unbiased estimators (Chen et al.
2021, "Evaluating Large Language Models Trained on Code", the HumanEval paper) are

- ``pass@k = 1 - C(n - c, k) / C(n, k)``: the chance that at least one of k fresh
  attempts passes (the share of the k-subsets of the repeats with a pass);
- ``pass^k = C(c, k) / C(n, k)``: the chance that all k attempts pass.

Both need ``k <= n``. :meth:`workbench.analysis.compare.Comparison.flaky` is the user-facing table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from workbench.core import schema as col
from workbench.core.exceptions import UsageError

__all__ = ["flaky_cases", "pass_at_k", "pass_hat_k"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from c passes in n attempts, k <= n.

    Example:
        >>> pass_at_k(4, 1, 2)
        0.5
    """
    return 1 - math.comb(n - c, k) / math.comb(n, k)  # comb(m, k) is 0 when k > m


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Unbiased pass^k (all k attempts pass) from c passes in n attempts, k <= n.

    Example:
        >>> pass_hat_k(4, 3, 2)
        0.5
    """
    return math.comb(c, k) / math.comb(n, k)


def flaky_cases(
    label: str, rows: pd.DataFrame, scorers: Sequence[str], inputs: list[str], k: int | None
) -> list[pd.DataFrame]:
    """The flaky cases of one variant's ``rows``, one frame per pass/fail scorer in ``scorers``.

    A case is flaky when it passed some of its scored repeats and failed others. ``k``
    defaults to each case's number of scored repeats.

    Raises:
        ValueError: ``k`` is above the scored repeats of a flaky case.
    """
    first = rows.drop_duplicates("case_id").set_index("case_id")[inputs]
    frames = []
    for name in scorers:
        grouped = rows.dropna(subset=[col.score_column(name)]).groupby("case_id")[col.score_column(name)]
        per = pd.DataFrame({"repeats": grouped.size(), "passes": grouped.sum().astype(int)})
        per = per[(per["passes"] > 0) & (per["passes"] < per["repeats"])]
        per = per.assign(variant=label, scorer=name, pass_rate=per["passes"] / per["repeats"])
        per["k"] = per["repeats"] if k is None else k
        short = per[per["k"] > per["repeats"]]
        if len(short):
            case, n = short.index[0], int(short["repeats"].iloc[0])
            raise UsageError(
                f"k={k!r} is more than the {n} scored repeats of case {case!r} ({label!r}, "
                f"scorer {name!r}): pass@k and pass^k need k <= {n} for this case "
                "(errored or unscored repeats do not count)"
            )
        counts = list(zip(per["repeats"], per["passes"], per["k"], strict=True))
        per["pass@k"] = np.array([pass_at_k(n, c, kk) for n, c, kk in counts], dtype=float)
        per["pass^k"] = np.array([pass_hat_k(n, c, kk) for n, c, kk in counts], dtype=float)
        frames.append(per.join(first).reset_index())
    return frames
