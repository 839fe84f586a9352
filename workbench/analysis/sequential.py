"""Stop a run early when its answer is known: ``exp.run(stop_early=Sequential(...))``.

:class:`Sequential` is the rule a user passes; :class:`SequentialMonitor` watches one run's
finished rows (the engine's stop monitor), takes each planned look when enough cases are
complete, and decides by a :class:`~workbench.analysis.group_sequential.SequentialDesign`:
a two-sided group-sequential test with Lan-DeMets O'Brien-Fleming alpha spending and
non-binding futility by repeated confidence intervals (the method and its references are in
:mod:`workbench.analysis.group_sequential`). :func:`early_stop_sentence` writes what it decided.

Pairs without a score on either side (the call failed, the scorer could not score) are
left out of the statistic but not of the schedule. With several models only ``model``
(the first by default) is analysed; with more than two variants, a decision on the two
compared stops the whole run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from workbench.analysis.group_sequential import BENEFIT, FUTILITY, HARM, MIN_CASES, Assessment, SequentialDesign
from workbench.analysis.wording import _diff, _num, _size
from workbench.core import schema as col
from workbench.core.exceptions import UnknownNameError, UsageError
from workbench.core.result import EarlyStop
from workbench.core.spec import ExperimentSpec

__all__ = ["Sequential", "SequentialMonitor", "early_stop_sentence"]

Decision = Literal["benefit", "harm", "futility"]
_NAMES: dict[int, Decision] = {BENEFIT: "benefit", HARM: "harm", FUTILITY: "futility"}
METHOD = "group-sequential, Lan-DeMets O'Brien-Fleming alpha spending; futility by repeated CIs"


# --- the user's object and the live monitor -----------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Sequential:
    """Stop a run early when its verdict is decided: ``exp.run(stop_early=Sequential(...))``.

    A two-sided group-sequential test of the paired difference ``candidate - baseline`` on
    one scorer, at ``looks`` planned numbers of complete cases: O'Brien-Fleming-type
    boundaries from the Lan-DeMets alpha-spending function (Lan & DeMets 1983, Biometrika
    70:659; O'Brien & Fleming 1979, Biometrics 35:549), so the false-positive rate stays
    ``alpha`` however often it looks, and non-binding futility by repeated confidence
    intervals (Jennison & Turnbull 2000, *Group Sequential Methods with Applications to
    Clinical Trials*, ch. 9); details in :mod:`workbench.analysis.group_sequential`. When a
    boundary is crossed no new call starts; calls in flight finish and the result is built
    from the completed rows, with ``result.early_stop`` (and the first of ``result.notes``)
    saying why.

    Args:
        alpha: Overall two-sided false-positive rate, in (0, 1).
        min_cases: Complete cases at the first look (at least 10); default: the dataset's
            size over ``looks``.
        looks: Number of looks, the last at the full dataset (1: a fixed-sample test).
        metric: Scorer to decide on; default the experiment's first scorer.
        min_detectable_diff: Stop for futility once a difference this large (in the
            scorer's units: 0.10 is 10 points on pass/fail) is ruled out; None: never.
        baseline: Baseline variant; default the experiment's first variant.
        candidate: Candidate variant; default the experiment's second variant.
        model: Model to decide on; default the experiment's first model.

    Example:
        >>> rule = Sequential(alpha=0.05, looks=5, min_detectable_diff=0.10)
        >>> result = exp.run(stop_early=rule)  # doctest: +SKIP
        >>> result.early_stop.note  # doctest: +SKIP
        'stopped early for benefit at look 1 of 5 (n = 32 of 160 cases): few_shot beats zero_shot ...'
    """

    alpha: float = 0.05
    min_cases: int | None = None
    looks: int = 5
    metric: str | None = None
    min_detectable_diff: float | None = None
    baseline: str | None = None
    candidate: str | None = None
    model: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, int | float) or not 0 < self.alpha < 1:
            raise UsageError(f"Sequential: alpha must be a number in (0, 1), got {self.alpha!r}; e.g. alpha=0.05")
        if not _whole(self.looks) or self.looks < 1:
            raise UsageError(f"Sequential: looks must be a whole number >= 1, got {self.looks!r}; e.g. looks=5")
        if self.min_cases is not None and (not _whole(self.min_cases) or self.min_cases < MIN_CASES):
            raise UsageError(
                f"Sequential: min_cases must be a whole number >= {MIN_CASES}, got {self.min_cases!r}; "
                "leave it out to space the looks evenly"
            )
        mdd = self.min_detectable_diff
        if mdd is not None and (isinstance(mdd, bool) or not isinstance(mdd, int | float) or not mdd > 0):
            raise UsageError(
                f"Sequential: min_detectable_diff must be a number > 0, got {mdd!r}; e.g. 0.10 for 10 points "
                "on a pass/fail scorer, or None for no futility stop"
            )

    def monitor(self, experiment: ExperimentSpec) -> SequentialMonitor:
        """A fresh monitor for one run of ``experiment``; checks the names before any call.

        Raises:
            UsageError: fewer than two variants, no scorer, or a schedule that does not fit the dataset.
            UnknownNameError: ``metric``, ``baseline``, ``candidate`` or ``model`` is not in the experiment.
        """
        variants = [v.name for v in experiment.variants]
        if len(variants) < 2:
            raise UsageError(
                f"stop_early compares two variants, but experiment {experiment.name!r} has {variants!r}; "
                "add a variant or run without stop_early"
            )
        baseline = _known(self.baseline or variants[0], variants, "baseline", "variant")
        candidate = _known(self.candidate or variants[1], variants, "candidate", "variant")
        if baseline == candidate:
            raise UsageError(f"Sequential: baseline and candidate are both {baseline!r}; name two different variants")
        if not experiment.scorer_names:
            raise UsageError(
                f"stop_early needs a scorer to decide on; experiment {experiment.name!r} has none: add one"
            )
        metric = col.scorer_name(self.metric) if self.metric else experiment.scorer_names[0]
        metric = _known(metric, experiment.scorer_names, "metric", "scorer")
        model = _known(self.model or experiment.models[0], list(experiment.models), "model", "model")
        design = SequentialDesign.plan(
            len(experiment.dataset),
            alpha=float(self.alpha),
            looks=self.looks,
            min_cases=self.min_cases,
            min_detectable_diff=None if self.min_detectable_diff is None else float(self.min_detectable_diff),
        )
        order = list(experiment.dataset.ids())
        return SequentialMonitor(design, metric, baseline, candidate, model, experiment.repeats, order)


def _whole(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _known(name: str, names: Sequence[str], fld: str, what: str) -> str:
    if name not in names:
        raise UnknownNameError(
            f"Sequential: {fld}={name!r} is not a {what} of the experiment; choose from {list(names)!r}"
        )
    return name


@dataclass
class _Pair:
    """Scores seen so far of one case on the two compared variants."""

    rows: int = 0
    sums: list[float] = field(default_factory=lambda: [0.0, 0.0])
    counts: list[int] = field(default_factory=lambda: [0, 0])


class SequentialMonitor:
    """Watches finished rows during one run and decides at each look (the engine's stop rule)."""

    def __init__(
        self,
        design: SequentialDesign,
        metric: str,
        baseline: str,
        candidate: str,
        model: str,
        repeats: int,
        order: Sequence[Any],
    ) -> None:
        self.design = design
        self.metric, self.baseline, self.candidate, self.model = metric, baseline, candidate, model
        self.rows_per_case = 2 * repeats
        self.position = {case_id: i for i, case_id in enumerate(order)}  # the dataset's (and the plan's) order
        self.pairs: dict[Any, _Pair] = {}
        self.finished: dict[int, float] = {}  # complete cases past the prefix, by position
        # One per complete case in dataset order: a look reads the first n cases of the
        # dataset, whatever order calls finish in, so the decision never depends on timing.
        self.differences: list[float] = []
        self.binary = True
        self.last: Assessment | None = None
        self.look = -1  # the last look taken (0-based)
        self.decision: Decision | None = None

    @property
    def decided(self) -> bool:
        """True once a look crossed a boundary: start no new call."""
        return self.decision is not None

    def row_done(self, row: Mapping[str, Any]) -> None:
        """Count one finished row; take the next look when enough cases are complete."""
        if self.decided or row[col.MODEL] != self.model or row[col.VARIANT] not in (self.baseline, self.candidate):
            return
        pair = self.pairs.setdefault(row[col.CASE_ID], _Pair())
        pair.rows += 1
        score = row.get(col.score_column(self.metric))
        if score is not None and not math.isnan(score):
            side = int(row[col.VARIANT] == self.candidate)
            pair.sums[side] += float(score)
            pair.counts[side] += 1
            self.binary = self.binary and score in (0.0, 1.0)
        if pair.rows < self.rows_per_case:
            return
        del self.pairs[row[col.CASE_ID]]
        missing = min(pair.counts) == 0
        diff = math.nan if missing else pair.sums[1] / pair.counts[1] - pair.sums[0] / pair.counts[0]
        self.finished[self.position[row[col.CASE_ID]]] = diff
        while len(self.differences) in self.finished:  # extend the complete prefix
            self.differences.append(self.finished.pop(len(self.differences)))
        while self.decision is None and self.look + 1 < self.design.looks:
            n = self.design.schedule[self.look + 1]
            if len(self.differences) < n:
                break
            self.look += 1
            self.last = self.design.assess(self.look, np.array(self.differences[:n]))
            self.decision = _NAMES.get(int(self.last.decision))

    def outcome(self, *, calls_planned: int, calls_run: int) -> EarlyStop:
        """What the monitoring decided, with its sentence, once the run is over."""
        design, look = self.design, self.look
        diff = z = low = high = boundary = math.nan
        n_cases = n_scored = 0
        spent = 0.0
        if self.last is not None:  # else the run ended before the first look
            n_cases, n_scored, boundary, spent = (
                design.schedule[look],
                int(self.last.n),
                design.boundaries[look],
                design.spent[look],
            )
            diff, z, low, high = (float(x) for x in (self.last.diff, self.last.z, self.last.ci_low, self.last.ci_high))
        outcome = EarlyStop(
            stopped=self.decided and look < design.looks - 1,
            decision=self.decision,
            look=look + 1,
            looks=design.looks,
            n_cases=n_cases,
            n_scored=n_scored,
            n_planned_cases=design.n_planned,
            metric=self.metric,
            baseline=self.baseline,
            candidate=self.candidate,
            model=self.model,
            diff=diff,
            z=z,
            boundary=boundary,
            ci_low=low,
            ci_high=high,
            alpha=design.alpha,
            alpha_spent=spent,
            min_detectable_diff=design.min_detectable_diff,
            calls_planned=calls_planned,
            calls_run=calls_run,
            calls_saved=calls_planned - calls_run,
            method=METHOD,
            note="",
        )
        return replace(outcome, note=early_stop_sentence(outcome, "binary" if self.binary else "continuous"))


# --- the sentence -------------------------------------------------------------------------


def early_stop_sentence(o: EarlyStop, kind: str = "binary") -> str:
    """One sentence saying whether, when and why the run stopped early, and the calls it saved.

    Args:
        o: The outcome.
        kind: ``"binary"`` (pass/fail: points) or ``"continuous"``, as in comparisons.
    """
    if o.look == 0:
        return (
            f"sequential monitoring took no look: the run ended ({o.calls_run} of {o.calls_planned} "
            "planned calls) before the first look's number of complete cases"
        )
    where = f"look {o.look} of {o.looks} (n = {o.n_cases} of {o.n_planned_cases} cases"
    where += f", {o.n_scored} scored)" if o.n_scored != o.n_cases else ")"
    level, low, high = f"{1 - o.alpha:.0%} repeated CI", _num(o.ci_low, kind), _num(o.ci_high, kind)
    boundary = f"+/-{o.boundary:.2f} (O'Brien-Fleming boundary, Lan-DeMets spending, alpha {o.alpha:g})"
    calls = f"{o.calls_saved} of {o.calls_planned} planned calls saved" if o.calls_saved else "no calls saved"
    pair = f"{o.candidate} vs {o.baseline} on {o.metric}"
    if o.decision in ("benefit", "harm"):
        verb = "beats" if o.decision == "benefit" else "is worse than"
        found = f"{o.candidate} {verb} {o.baseline} on {o.metric} by {_diff(o.diff, kind)} [{level} {low}, {high}]"
        head = f"stopped early for {o.decision} at" if o.stopped else "no early stop; at the last look,"
        return f"{head} {where}: {found}; z = {o.z:.2f} beyond {boundary}; {calls}"
    if o.decision == "futility":
        mdd = _size(o.min_detectable_diff or math.nan, kind)
        return (
            f"stopped early for futility at {where}: {pair} is {_diff(o.diff, kind)} and its {level} "
            f"[{low}, {high}] lies within +/-{mdd} (min_detectable_diff), so a difference that large is ruled out; "
            f"z = {o.z:.2f} inside {boundary}; {calls}"
        )
    ran = "did not stop the run" if o.look == o.looks else "was cut short before its last look"
    return (
        f"sequential monitoring {ran}: at {where} {pair} is {_diff(o.diff, kind)}, z = {o.z:.2f} "
        f"inside {boundary}; {calls}"
    )
