"""Adjusting p-values when several scorers (or candidates) are tested at once.

Testing more things must not make a lucky one look significant: Holm's step-down
controls the family-wise error rate, Benjamini-Hochberg the false discovery rate.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from workbench.core.exceptions import UsageError

__all__ = ["adjust_pvalues"]


def adjust_pvalues(pvalues: ArrayLike, method: Literal["holm", "bh", "none"] = "holm") -> np.ndarray:
    """Adjust p-values for multiple comparisons (NaN entries are ignored and kept).

    Args:
        pvalues: Raw p-values.
        method: ``"holm"`` (Holm-Bonferroni step-down, controls the family-wise error rate),
            ``"bh"`` (Benjamini-Hochberg, controls the false discovery rate) or ``"none"``.

    Returns:
        Adjusted p-values in the original order, capped at 1.

    Example:
        >>> adjust_pvalues([0.01, 0.04, 0.03, 0.005]).round(3).tolist()
        [0.03, 0.06, 0.06, 0.02]
    """
    p = np.asarray(pvalues, dtype=float).ravel()
    out = p.copy()
    ok = ~np.isnan(p)
    if ((p[ok] < 0) | (p[ok] > 1)).any():
        raise UsageError(f"p-values must be in [0, 1], got {p.tolist()!r}")
    if method == "none" or not ok.any():
        return out
    if method == "holm":
        out[ok] = _holm(p[ok])
    elif method == "bh":
        from scipy import stats

        out[ok] = stats.false_discovery_control(p[ok], method="bh")
    else:
        raise UsageError(f"unknown adjustment method {method!r}; use 'holm', 'bh' or 'none'")
    return out


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (no NaN), in the original order."""
    m = p.size
    order = np.argsort(p, kind="stable")
    # p_(i) * (m - i + 1) for sorted i = 1..m, made monotone by a running maximum.
    stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted
