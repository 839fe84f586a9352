"""Cost vs quality: which variants are worth their price.

:func:`pareto_frontier` keeps the variants nothing else beats on both cost and
quality; :func:`cheapest_meeting` picks the cheapest one that reaches a quality
bar. :func:`workbench.views.charts.plot_cost_quality` draws both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["cheapest_meeting", "pareto_frontier"]


def pareto_frontier(frame: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """The rows no other row dominates: lower ``x`` (cost) and higher ``y`` (quality) win.

    A row is dominated when another one is cheaper-or-equal *and* better-or-equal,
    strictly so in at least one of the two. Identical rows do not dominate each
    other, so ties are all kept. Rows with NaN in ``x`` or ``y`` are left out.

    Returns:
        The frontier rows (original index kept), sorted by ``x`` then ``y``.

    Example:
        >>> points = pd.DataFrame({"cost": [1, 2, 3], "score": [0.5, 0.4, 0.9]})
        >>> list(pareto_frontier(points, "cost", "score").index)
        [0, 2]
    """
    data = frame.dropna(subset=[x, y])
    xs, ys = data[x].to_numpy(dtype=float), data[y].to_numpy(dtype=float)
    dominated = [bool(((xs <= xi) & (ys >= yi) & ((xs < xi) | (ys > yi))).any()) for xi, yi in zip(xs, ys, strict=True)]
    return data.loc[~np.array(dominated, dtype=bool)].sort_values([x, y], kind="stable")


def cheapest_meeting(frame: pd.DataFrame, bar: float, *, x: str = "cost", y: str = "score") -> pd.Series | None:
    """The cheapest row whose ``y`` reaches ``bar`` (the better one on equal cost), or None.

    Rows with NaN in ``x`` or ``y`` never qualify. The row found is always on the
    :func:`pareto_frontier`.

    Example:
        >>> points = pd.DataFrame({"cost": [1, 2, 3], "score": [0.5, 0.8, 0.9]})
        >>> cheapest_meeting(points, 0.75)["score"]
        np.float64(0.8)
        >>> cheapest_meeting(points, 0.95) is None
        True
    """
    data = frame.dropna(subset=[x, y])
    meets = data[data[y] >= bar]
    if meets.empty:
        return None
    return meets.sort_values([x, y], ascending=[True, False], kind="stable").iloc[0]
