"""Group-sequential designs for a paired difference: looks, boundaries, and what a look decides.

:class:`SequentialDesign` is the maths behind :class:`workbench.analysis.sequential.Sequential`
(which watches a live run); :meth:`SequentialDesign.replay` runs thousands of simulated
experiments through the same :meth:`SequentialDesign.assess` at once.

- **Statistic.** At a look, each complete case gives one paired difference
  ``d = candidate - baseline`` (repeats averaged within the case, as
  :mod:`workbench.analysis.stats` does). The statistic is the paired ``t = mean(d) / se``,
  ``se = sd(d) / sqrt(n)``, put on the normal scale through its tail probability
  (``z = Phi^-1(T_{n-1}(t))``; Jennison & Turnbull 2000, section 11.5), so that small early
  looks are not anti-conservative.
- **Efficacy boundaries.** Two-sided symmetric group-sequential test; each side spends its
  ``alpha / 2`` by the Lan-DeMets O'Brien-Fleming-type function
  ``a(t) = 2 - 2 Phi(z_{alpha/4} / sqrt(t))`` (Lan & DeMets 1983, Biometrika 70:659-663;
  O'Brien & Fleming 1979, Biometrics 35:549-556), as gsDesign, rpact and ldbounds do: five
  equally spaced looks at alpha 0.05 give 4.88, 3.36, 2.68, 2.29, 2.03. The information
  fraction ``t`` of a look is its planned number of complete cases over the dataset's size;
  the last look spends what is left, so the overall false-positive rate is ``alpha`` however
  many looks there are. Each look's boundary solves
  ``P(first crossing at look k) = spent(t_k) - spent(t_{k-1})`` under the joint normal of the
  look statistics (``corr(Z_i, Z_j) = sqrt(t_i / t_j)``), by the recursive numerical
  integration of Armitage, McPherson & Rowe (1969, JRSS A 132:235-244) laid out in Jennison
  & Turnbull (2000, *Group Sequential Methods with Applications to Clinical Trials*,
  chapter 19), and ``brentq``: deterministic, no random integration.
- **Futility** (only with ``min_detectable_diff``, never at the last look): the look's
  repeated confidence interval, ``mean(d) +/- c_k se`` with its boundary ``c_k`` (Jennison &
  Turnbull 2000, chapter 9), lies inside ``(-mdd, +mdd)``. It is non-binding: the efficacy
  boundaries do not count on it, so stopping for futility can only lower the false-positive
  rate.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.core.exceptions import UsageError

__all__ = [
    "BENEFIT",
    "CONTINUE",
    "FUTILITY",
    "HARM",
    "Assessment",
    "Replay",
    "SequentialDesign",
    "look_statistics",
    "obf_boundaries",
    "obf_spending",
]

#: Decision codes of a look (arrays of them when many experiments are assessed at once).
CONTINUE, BENEFIT, HARM, FUTILITY = 0, 1, -1, 2
#: Fewest complete cases at the first look: below this a standard error means little.
MIN_CASES = 10
_MAX_BOUNDARY = 40.0  # a z this large has probability ~1e-350: "never crossed"
_TAIL_SDS = 10.0  # the integration ignores mass beyond 10 SDs (~1e-23)
_MAX_GRID = 4001


# --- boundaries ---------------------------------------------------------------------------


def obf_spending(fractions: Sequence[float] | np.ndarray, alpha: float) -> np.ndarray:
    """Cumulative two-sided alpha spent at information ``fractions`` (Lan-DeMets O'Brien-Fleming type).

    Each side spends ``alpha / 2`` by ``a(t) = 2 - 2 Phi(z_{alpha/4} / sqrt(t))``, so the
    total is ``2 a(t)`` and ``2 a(1) = alpha`` (the convention of gsDesign, rpact, ldbounds).

    Example:
        >>> round(float(obf_spending([1.0], 0.05)[0]), 6)
        0.05
    """
    t = np.asarray(fractions, dtype=float)
    return np.asarray(4.0 * _upper(_upper_inverse(alpha / 4) / np.sqrt(t)))


def obf_boundaries(fractions: Sequence[float], *, alpha: float = 0.05) -> np.ndarray:
    """Two-sided z boundaries of the looks at information ``fractions`` (increasing, last 1).

    Args:
        fractions: Information fraction of each look, in (0, 1], strictly increasing.
            The last look spends whatever alpha is left.
        alpha: Overall two-sided false-positive rate.

    Returns:
        One boundary per look: reject when ``|z| > boundary``.

    Example:
        >>> [round(float(c), 2) for c in obf_boundaries([0.5, 1.0])]
        [2.96, 1.97]
    """
    t = tuple(float(x) for x in fractions)
    if not t or any(not 0 < x <= 1 for x in t) or any(b <= a for a, b in zip(t, t[1:], strict=False)):
        raise UsageError(f"fractions must increase strictly within (0, 1], got {list(t)!r}")
    if not 0 < alpha < 1:
        raise UsageError(f"alpha must be in (0, 1), got {alpha!r}")
    return np.array(_boundaries(t, float(alpha)))


@functools.lru_cache(maxsize=64)
def _boundaries(t: tuple[float, ...], alpha: float) -> tuple[float, ...]:
    """Solve the boundaries look by look (Armitage, McPherson & Rowe's recursion).

    Works on the score scale ``S_k = Z_k sqrt(t_k)``, whose increments are independent
    ``N(0, t_k - t_{k-1})`` under the null. ``grid`` and ``weights`` hold the sub-density
    of ``S_{k-1}`` on the continuation region (Simpson weights times density): the
    probability of having reached look ``k`` without crossing.
    """
    spent = obf_spending(t, alpha)
    spent[-1] = alpha  # the last look spends the rest
    increments = np.diff(spent, prepend=0.0)
    from scipy.optimize import brentq

    bounds = [min(float(_upper_inverse(increments[0] / 2)), _MAX_BOUNDARY)]
    if len(t) == 1:
        return tuple(bounds)
    grid, weights = _continuation(bounds[0], t[0], t[1] - t[0], None)
    for k in range(1, len(t)):
        sd = math.sqrt(t[k] - t[k - 1])
        args = (grid, weights, sd, math.sqrt(t[k]), float(increments[k]))
        if _excess_crossing(_MAX_BOUNDARY, *args) >= 0:
            bound = _MAX_BOUNDARY
        else:
            bound = float(brentq(_excess_crossing, 0.0, _MAX_BOUNDARY, args=args, xtol=1e-12, rtol=1e-12))
        bounds.append(bound)
        if k < len(t) - 1:
            grid, weights = _continuation(bound, t[k], t[k + 1] - t[k], (grid, weights, sd))
    return tuple(bounds)


def _excess_crossing(c: float, grid: np.ndarray, weights: np.ndarray, sd: float, root_t: float, target: float) -> float:
    """P(first crossing of ``|Z| > c`` at this look) minus the alpha this look may spend."""
    edge = c * root_t
    tails = _upper((edge - grid) / sd) + _upper((edge + grid) / sd)
    return float(weights @ tails) - target


def _continuation(
    bound: float, t: float, next_var: float, previous: tuple[np.ndarray, np.ndarray, float] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Grid and Simpson-weighted sub-density of ``S`` on ``|S| < bound sqrt(t)``.

    Without ``previous`` it is the first look's ``N(0, t)`` density; otherwise the
    convolution of the previous sub-density with the increment ``N(0, sd**2)``.
    """
    edge = min(bound * math.sqrt(t), _TAIL_SDS * math.sqrt(t))
    # Spacing well under the next increment's SD, so the next convolution is accurate.
    points = min(_MAX_GRID, max(201, math.ceil(2 * edge / (math.sqrt(next_var) / 8))))
    points += 1 - points % 2  # Simpson needs an odd count
    grid = np.linspace(-edge, edge, points)
    simpson = np.ones(points)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    simpson *= (grid[1] - grid[0]) / 3
    if previous is None:
        density = _density(grid / math.sqrt(t)) / math.sqrt(t)
    else:
        old_grid, old_weights, sd = previous
        density = old_weights @ _density((grid[None, :] - old_grid[:, None]) / sd) / sd
    return grid, simpson * density


# --- distributions ------------------------------------------------------------------------
# From scipy.special, imported when first needed: scipy.stats costs ~1 s and ~50 MB at import,
# and `import workbench` must not pay it (see workbench.analysis.stats.mcnemar_exact).


def _upper(x: Any) -> Any:
    """``P(N(0, 1) > x)``, accurate far into the tail."""
    from scipy.special import ndtr

    return ndtr(-np.asarray(x))


def _upper_inverse(p: Any) -> Any:
    """The ``x`` with ``P(N(0, 1) > x) = p``."""
    from scipy.special import ndtri

    return -ndtri(p)


def _density(x: Any) -> Any:
    """The standard normal density."""
    return np.exp(-0.5 * np.square(x)) / math.sqrt(2 * math.pi)


def _t_upper(x: Any, df: Any) -> Any:
    """``P(T_df > x)`` for Student's t."""
    from scipy.special import stdtr

    return stdtr(df, -np.asarray(x))


def _t_upper_inverse(p: Any, df: Any) -> Any:
    """The ``x`` with ``P(T_df > x) = p``."""
    from scipy.special import stdtrit

    return -stdtrit(df, p)


# --- the statistic at a look --------------------------------------------------------------


@dataclass(frozen=True)
class Assessment:
    """The statistic at one look, and what it decides; arrays when many experiments are assessed at once.

    Attributes:
        n: Scored pairs (cases).
        diff: Mean paired difference, candidate minus baseline.
        se: Its standard error.
        z: The t statistic on the normal scale (0 when every difference is 0).
        boundary: The look's two-sided z boundary.
        ci_low: Low end of the look's repeated confidence interval.
        ci_high: High end.
        decision: Decision code: ``CONTINUE``, ``BENEFIT``, ``HARM`` or ``FUTILITY``.
    """

    n: Any
    diff: Any
    se: Any
    z: Any
    boundary: float
    ci_low: Any
    ci_high: Any
    decision: Any


def look_statistics(differences: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(n, mean, se, z)`` of paired differences along the last axis (NaN = no score, left out).

    ``z`` is the paired t statistic put on the normal scale through its tail probability;
    it is NaN with fewer than two differences, 0 when they are all 0, and infinite when they
    are all equal and not 0.

    Example:
        >>> n, mean, se, z = look_statistics(np.array([0.0, 1.0, 1.0, 0.0, 1.0, 1.0]))
        >>> int(n), round(float(mean), 3), round(float(z), 2)
        (6, 0.667, 2.24)
    """
    d = np.asarray(differences, dtype=float)
    scored = ~np.isnan(d)
    n = scored.sum(axis=-1)
    filled = np.where(scored, d, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = filled.sum(axis=-1) / n
        squares = np.where(scored, (d - mean[..., None]) ** 2, 0.0).sum(axis=-1)
        se = np.sqrt(squares / (n - 1) / n)
        t = np.where(se > 0, mean / se, np.sign(mean) * np.inf)
        t = np.where(mean == 0, 0.0, t)
        z = np.sign(t) * _upper_inverse(_t_upper(np.abs(t), np.maximum(n - 1, 1)))
    z = np.where(n >= 2, z, np.nan)
    return n, mean, np.where(n >= 2, se, np.nan), z


# --- the design ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Replay:
    """Many simulated experiments run through a design at once (see :meth:`SequentialDesign.replay`).

    Attributes:
        look: 0-based look at which each experiment stopped (the last look if it never did).
        decision: Its decision code there (``CONTINUE``: no difference found at the last look).
        cases_used: Complete cases when it stopped.
        n_planned: The dataset's size.
    """

    look: np.ndarray
    decision: np.ndarray
    cases_used: np.ndarray
    n_planned: int

    @property
    def false_positive_rate(self) -> float:
        """Share of experiments that declared benefit or harm (the error rate under A/A)."""
        return float(np.isin(self.decision, [BENEFIT, HARM]).mean())

    def rate(self, code: int) -> float:
        """Share of experiments that ended with decision ``code``."""
        return float((self.decision == code).mean())

    @property
    def early_stop_rate(self) -> float:
        """Share of experiments that stopped before the last look (any reason)."""
        return float((self.cases_used < self.n_planned).mean())

    @property
    def saved_fraction(self) -> float:
        """Mean share of the planned cases (so of calls) not run."""
        return float(1 - self.cases_used.mean() / self.n_planned)


@dataclass(frozen=True)
class SequentialDesign:
    """The looks of one run: when they happen, their boundaries, and how a look decides.

    Attributes:
        alpha: Overall two-sided false-positive rate.
        schedule: Complete cases at each look (increasing; the last is ``n_planned``).
        n_planned: Cases in the dataset.
        boundaries: Two-sided z boundary of each look.
        spent: Cumulative alpha spent at each look.
        min_detectable_diff: Futility margin, or None for no futility stop.
    """

    alpha: float
    schedule: tuple[int, ...]
    n_planned: int
    boundaries: tuple[float, ...]
    spent: tuple[float, ...]
    min_detectable_diff: float | None = None

    @classmethod
    def plan(
        cls, n_cases: int, *, alpha: float, looks: int, min_cases: int | None, min_detectable_diff: float | None
    ) -> SequentialDesign:
        """Looks evenly spaced from ``min_cases`` (default ``n_cases / looks``) to ``n_cases``."""
        first = max(MIN_CASES, math.ceil(n_cases / looks)) if min_cases is None else min_cases
        if n_cases < first:
            raise UsageError(
                f"stop_early: min_cases={first} but the dataset has {n_cases} cases; lower min_cases "
                f"(at least {MIN_CASES}), add cases, or run without stop_early"
            )
        marks = [n_cases] if looks == 1 else [round(x) for x in np.linspace(first, n_cases, looks)]
        if any(b <= a for a, b in zip(marks, marks[1:], strict=False)):
            raise UsageError(
                f"stop_early: looks={looks} between min_cases={first} and {n_cases} cases leaves two looks "
                "at the same case count; use fewer looks or a smaller min_cases"
            )
        fractions = [m / n_cases for m in marks]
        spent = obf_spending(fractions, alpha)
        spent[-1] = alpha
        return cls(
            alpha=alpha,
            schedule=tuple(marks),
            n_planned=n_cases,
            boundaries=tuple(float(c) for c in obf_boundaries(fractions, alpha=alpha)),
            spent=tuple(float(s) for s in spent),
            min_detectable_diff=min_detectable_diff,
        )

    @property
    def looks(self) -> int:
        return len(self.schedule)

    def assess(self, look: int, differences: np.ndarray) -> Assessment:
        """Decide at 0-based ``look`` from the paired differences of its complete cases.

        ``differences`` is one experiment's 1-D array, or a 2-D array of many (one per row).
        """
        n, mean, se, z = look_statistics(differences)
        c = self.boundaries[look]
        with np.errstate(invalid="ignore"):
            # The repeated CI at this look: the t quantile with the boundary's tail probability.
            half = _t_upper_inverse(_upper(c), np.maximum(n - 1, 1)) * se
            decision = np.where(z > c, BENEFIT, np.where(z < -c, HARM, CONTINUE))
            mdd = self.min_detectable_diff
            if mdd is not None and look < self.looks - 1:
                # An interval of width 0 (every difference equal) is no evidence of futility.
                futile = (se > 0) & (np.abs(mean) + half < mdd)
                decision = np.where((decision == CONTINUE) & futile, FUTILITY, decision)
        return Assessment(n, mean, se, z, c, mean - half, mean + half, decision)

    def replay(self, differences: np.ndarray) -> Replay:
        """Run many experiments through the looks at once (simulation).

        Args:
            differences: Shape ``(experiments, n_planned)``: each row one experiment's paired
                differences in the order its cases complete.

        Returns:
            Where each stopped and why, by the same :meth:`assess` a live run uses.
        """
        d = np.asarray(differences, dtype=float)
        if d.ndim != 2 or d.shape[1] != self.n_planned:
            raise UsageError(f"differences must have shape (experiments, {self.n_planned}), got {d.shape}")
        look = np.full(d.shape[0], self.looks - 1)
        decision = np.zeros(d.shape[0], dtype=int)
        running = np.ones(d.shape[0], dtype=bool)
        for k, n in enumerate(self.schedule):
            codes = self.assess(k, d[running, :n]).decision
            stops = np.flatnonzero(running)[codes != CONTINUE]
            look[stops], decision[stops] = k, codes[codes != CONTINUE]
            running[stops] = False
        return Replay(look, decision, np.array(self.schedule)[look], self.n_planned)
