"""The search: candidates proposed from the Pareto front, evaluated through the engine within a
budget, its state kept in a JSON file so a stopped search continues where it stopped, and the
winner's verdict read once on the test split.

See :func:`optimize`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.dataset import Dataset
from workbench.core.exceptions import ModelError, UsageError
from workbench.core.variant import PromptVariant
from workbench.engine.cache import CacheOption
from workbench.engine.estimate import call_cost_upper_bound
from workbench.experiment.experiment import Experiment
from workbench.optimize.candidates import Candidate, Proposal, choose_parent, dominated, pareto_front, score_matrix
from workbench.optimize.evaluate import Cost, EngineEvaluator, Evaluation, Evaluator, Question
from workbench.optimize.result import OptimizeResult
from workbench.optimize.splits import Splits, split_dataset
from workbench.optimize.strategies import Context, Strategy

STATE_VERSION = 1


@dataclass
class Budget:
    """Calls and dollars: the limits, what was spent (in all, and of it by the proposer), and
    what is held back for the test split."""

    max_calls: int | None
    budget_usd: float | None
    calls: int = 0
    cost_usd: float = 0.0
    proposer_calls: int = 0
    proposer_cost_usd: float = 0.0
    reserve: Cost = field(default_factory=lambda: Cost(0, 0.0))

    def affords(self, cost: Cost, *, reserved: bool = True, what: str = "") -> bool:
        if cost.calls == 0:  # all in the response cache: free
            return True
        held = self.reserve if reserved else Cost(0, 0.0)
        if self.max_calls is not None and self.calls + cost.calls + held.calls > self.max_calls:
            return False
        if self.budget_usd is None:
            return True
        if math.isnan(cost.usd):
            raise ModelError(
                f"budget_usd={self.budget_usd!r} is set but litellm has no price for {what}, so the budget "
                "cannot be enforced; register a price with litellm.register_model(...) or use max_calls"
            )
        return self.cost_usd + cost.usd + held.usd <= self.budget_usd

    def pay(self, calls: int, usd: float, *, proposer: bool = False) -> None:
        self.calls += calls
        self.cost_usd += usd
        if proposer:
            self.proposer_calls += calls
            self.proposer_cost_usd += usd


class _Stop(Exception):
    """The budget cannot pay for the next evaluation."""


@dataclass
class _Search:
    splits: Splits
    evaluator: Evaluator
    strategies: Sequence[Strategy]
    budget: Budget
    seed: int
    state_path: Path | None
    candidates: list[Candidate] = field(default_factory=list)
    step: int = 0
    stop_reason: str = ""
    tests: dict[str, Evaluation] = field(default_factory=dict)

    # -- state -------------------------------------------------------------------------
    def save(self) -> None:
        if self.state_path is None:
            return
        data = {
            "version": STATE_VERSION,
            "seed": self.seed,
            "splits": self.splits.hashes,
            "step": self.step,
            "spent": {
                "calls": self.budget.calls,
                "cost_usd": self.budget.cost_usd,
                "proposer_calls": self.budget.proposer_calls,
                "proposer_cost_usd": self.budget.proposer_cost_usd,
            },
            "stop_reason": self.stop_reason,
            "candidates": [c.to_json() for c in self.candidates],
            "tests": {k: v.to_json() for k, v in self.tests.items()},
        }
        tmp = self.state_path.with_suffix(".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, default=str))
        os.replace(tmp, self.state_path)  # a kill never leaves half a file

    def load(self, start: Candidate) -> None:
        if self.state_path is None or not self.state_path.exists():
            return
        data = json.loads(self.state_path.read_text())
        where = f"optimizer state {self.state_path}"
        if (
            data.get("version") != STATE_VERSION
            or data.get("splits") != self.splits.hashes
            or data.get("seed") != self.seed
        ):
            raise UsageError(
                f"{where} belongs to another search (its seed or its train/dev/test hashes differ: "
                f"{data.get('splits')} vs {self.splits.hashes}); delete it or pass another state_path"
            )
        first = data["candidates"][0] if data["candidates"] else None
        if first is not None and (first["version"], first["model"]) != (start.variant.version, start.model):
            raise UsageError(
                f"{where} started from prompt version {first['version']} on {first['model']}, not "
                f"{start.variant.version} on {start.model}; delete it or pass another state_path"
            )
        secrets = dict(start.variant.params)
        self.candidates = [Candidate.from_json(c, secrets=secrets) for c in data["candidates"]]
        self.tests = {k: Evaluation.from_json(v) for k, v in data["tests"].items()}
        self.step = int(data["step"])
        spent = data["spent"]
        self.budget.calls, self.budget.cost_usd = int(spent["calls"]), float(spent["cost_usd"])
        self.budget.proposer_calls = int(spent.get("proposer_calls", 0))
        self.budget.proposer_cost_usd = float(spent.get("proposer_cost_usd", 0.0))
        self.stop_reason = data.get("stop_reason", "")

    # -- evaluations ---------------------------------------------------------------------
    def _run(self, variant: PromptVariant, model: str, dataset: Dataset, *, reserved: bool = True) -> Evaluation:
        cost = self.evaluator.estimate(variant, model, dataset)
        if not self.budget.affords(cost, reserved=reserved, what=f"model {model!r}"):
            raise _Stop(f"the next evaluation ({cost.calls} calls) would pass the budget")
        evaluation = self.evaluator.evaluate(variant, model, dataset)
        self.budget.pay(evaluation.calls, evaluation.cost_usd)
        return evaluation

    def _ask(self, question: Question) -> str:
        """A proposer's question: costed before it is asked (a cached reply is free), counted after."""
        cost = self.evaluator.estimate_ask(question)
        if not self.budget.affords(cost, what=f"proposer model {question.model!r}"):
            raise _Stop(f"the proposer's next question ({cost.calls} call) would pass the budget")
        text, paid = self.evaluator.ask(question)
        self.budget.pay(paid.calls, paid.usd, proposer=True)
        if paid.calls:
            self.save()  # the spend is on disk before anything else can stop the search
        return text

    def add(self, proposal: Proposal, parent: Candidate | None, strategy: str) -> Candidate:
        variant = proposal.variant  # keeps the start's name: candidates are told apart by id and version
        candidate = Candidate(
            id=f"c{len(self.candidates)}", variant=variant, model=proposal.model,
            parent=None if parent is None else parent.id, strategy=strategy, note=proposal.note, step=self.step,
        )  # fmt: skip
        candidate.dev = self._run(variant, proposal.model, self.splits.dev)
        self.candidates.append(candidate)
        candidate.accepted = parent is None or not dominated(score_matrix(self.candidates), candidate.id)
        self.save()
        return candidate

    # -- the loop --------------------------------------------------------------------------
    def run(self, start: Proposal, max_steps: int) -> None:
        try:
            if not self.candidates:
                self.add(start, None, "start")
            while self.step < max_steps:
                self._one_step()
                self.step += 1
                self.save()
            self.stop_reason = self.stop_reason or f"{max_steps} steps done"
        except _Stop as stop:
            self.stop_reason = str(stop)
        self.save()

    def finish(self, finalists: int) -> list[Candidate]:
        """Run the start and the best ``finalists`` dev candidates that beat it once on test."""
        start = self.candidates[0]
        better = [c for c in self.candidates[1:] if c.dev_mean > start.dev_mean]
        chosen = sorted(better, key=lambda c: (-c.dev_mean, int(c.id[1:])))[:finalists]
        if not chosen:
            return []
        for candidate in [start, *chosen]:
            if candidate.id not in self.tests:
                try:
                    self.tests[candidate.id] = self._run(
                        candidate.variant, candidate.model, self.splits.test, reserved=False
                    )
                except _Stop as stop:
                    self.stop_reason += f"; the test split could not be run: {stop}"
                    return [c for c in chosen if c.id in self.tests]
                self.save()
        return chosen

    def _one_step(self) -> None:
        rng = np.random.default_rng([self.seed, self.step])
        strategy = self.strategies[self.step % len(self.strategies)]
        before = [c for c in self.candidates if c.step < self.step or c.parent is None]  # replayable on resume
        parent = choose_parent(pareto_front(before), rng)
        if strategy.needs_train and parent.train is None:
            parent.train = self._run(parent.variant, parent.model, self.splits.train)
            self.save()
        seen = {c.key for c in self.candidates}
        for proposal in strategy.propose(parent, Context(seen=seen, rng=rng, ask=self._ask)):
            if f"{proposal.variant.version}@{proposal.model}" not in {c.key for c in self.candidates}:
                self.add(proposal, parent, strategy.name)


def optimize(
    experiment: Experiment,
    *,
    variant: str | None = None,
    objective: str | Any | None = None,
    strategy: Strategy | Sequence[Strategy] | None = None,
    max_calls: int | None = None,
    budget_usd: float | None = None,
    max_steps: int = 8,
    seed: int = 0,
    splits: Splits | None = None,
    stratify: str | None = None,
    finalists: int = 1,
    state_path: str | Path | None = None,
    cache: CacheOption = True,
    acompletion: Callable[..., Any] | None = None,
    evaluator: Evaluator | None = None,
    log_to_mlflow: bool = False,
    tracking_uri: str | None = None,
    n_resamples: int = 10_000,
) -> OptimizeResult:
    """Search for a better prompt within a budget, and test the winner on cases the search never saw.

    The golden set is split once into train / dev / test (``splits``, or :func:`split_dataset` with
    ``stratify`` and ``seed``). Strategies take turns: each step draws a parent from the Pareto front
    of per-case dev scores, the strategy proposes candidates from it (reading only train), and each
    new candidate is evaluated on dev. At the end the ``finalists`` best on dev (that beat the start
    there) and the starting prompt run once on test; the paired verdict is the existing comparison
    (Holm-adjusted over the finalists when there are several).

    Args:
        experiment: The experiment whose golden set, scorers, settings and first model are used.
        variant: The starting prompt (a variant name); the experiment's first by default.
        objective: The scorer to maximise: a scorer's name, or a scorer object (added to the
            experiment's scorers when it is not one of them); the experiment's first by default.
            Candidates are scored with it alone; an LLM judge's calls count against ``max_calls``.
        strategy: One strategy or several (taking turns); default few-shot selection.
        max_calls: Most model calls the whole search may pay for: the candidates' (test split
            included), the proposer model's questions, and an LLM-judge objective's.
        budget_usd: Most dollars it may spend. Both are checked before each evaluation and each
            proposer question (calls the response cache holds are free); the test split's calls are
            held back. ``proposer_calls`` / ``proposer_cost_usd`` of the result say what the
            proposer's part was.
        max_steps: Strategy turns.
        seed: Seeds the split and every random choice, so a search replays exactly.
        finalists: How many of the best dev candidates are tested at the end.
        state_path: A JSON file; the search saves its state there after every evaluation and
            continues from it when started again.
        cache, acompletion: As in :meth:`workbench.Experiment.run`.
        evaluator: Runs candidates; by default an
            :class:`~workbench.optimize.evaluate.EngineEvaluator` (the engine). Simulations pass their own.
        log_to_mlflow, tracking_uri: Log the search as an MLflow parent run with one child run per candidate.
        n_resamples: Bootstrap resamples of the final comparison and of the dev CIs.

    Returns:
        An :class:`~workbench.optimize.result.OptimizeResult`.

    Example:
        >>> res = wb.optimize(exp, variant="zero_shot", objective="label_match",
        ...                   strategy=[wb.FewShot(), wb.ParamSweep({"temperature": [0.7]})],
        ...                   max_calls=400, state_path="reports/optimize_state.json")  # doctest: +SKIP
        >>> res.verdict_text  # doctest: +SKIP
    """
    if objective is not None and not isinstance(objective, str):  # a scorer object: scored with it
        scorer = objective
        objective = getattr(scorer, "name", None)
        if not isinstance(objective, str):
            raise UsageError(f"objective must be a scorer name or a scorer object with a name, got {scorer!r}")
        if objective not in experiment.scorer_names:
            experiment = dataclasses.replace(experiment, scorers=[*experiment.scorers, scorer])
        elif all(s != scorer for s in experiment.scorers):
            raise UsageError(
                f"objective scorer {objective!r} differs from experiment {experiment.name!r}'s scorer of that "
                "name; pass the name to use the experiment's, or give yours another `metric_name`"
            )
    objective = objective or (experiment.scorer_names[0] if experiment.scorer_names else None)
    if objective is None:
        raise UsageError(f"experiment {experiment.name!r} has no scorers; the search needs an objective")
    names = [v.name for v in experiment.variants]
    chosen = variant or names[0]
    if chosen not in names:
        raise UsageError(f"experiment {experiment.name!r} has no variant {chosen!r}; its variants: {names}")
    if finalists < 1:
        raise UsageError(f"finalists must be >= 1, got {finalists!r}")
    from workbench.optimize.strategies import FewShot

    strategies = list(strategy) if isinstance(strategy, Sequence) else [strategy or FewShot()]
    splits = splits or split_dataset(experiment.dataset, stratify=stratify, seed=seed)
    start = Proposal(
        next(v for v in experiment.variants if v.name == chosen), experiment.models[0], "the starting prompt"
    )
    evaluator = evaluator or EngineEvaluator(experiment, objective, cache=cache, acompletion=acompletion)
    if isinstance(evaluator, EngineEvaluator):  # simulations price nothing
        _check_priced([start.model, *(m for s in strategies for m in getattr(s, "models", []))], budget_usd)
        if budget_usd is not None and evaluator.judge_samples:
            raise UsageError(
                f"budget_usd={budget_usd!r} cannot be enforced with objective {objective!r}: an LLM judge's "
                "cost is not known before it judges; bound the search with max_calls (judge calls count)"
            )
    held = evaluator.estimate(start.variant, start.model, splits.test)
    per_test = len(splits.test) * experiment.repeats
    reserve = Cost(held.calls + finalists * per_test, held.usd * (1 + 2 * finalists))
    budget = Budget(max_calls=max_calls, budget_usd=budget_usd, reserve=reserve)
    first = evaluator.estimate(start.variant, start.model, splits.dev)
    if not budget.affords(
        Cost(first.calls + reserve.calls, first.usd + reserve.usd), reserved=False, what=f"{start.model!r}"
    ):
        raise UsageError(
            f"max_calls={max_calls!r} / budget_usd={budget_usd!r} cannot even pay for the starting prompt on dev "
            f"({first.calls} calls) and the final test ({reserve.calls} calls for the start and {finalists} "
            f"finalist(s) on {len(splits.test)} test cases); raise it"
        )
    search = _Search(splits, evaluator, strategies, budget, seed, None if state_path is None else Path(state_path))
    search.load(
        Candidate(id="c0", variant=start.variant, model=start.model, parent=None, strategy="start", note="", step=0)
    )
    search.run(start, max_steps)
    tested = search.finish(finalists)
    result = OptimizeResult(
        objective=objective,
        candidates=search.candidates,
        splits=splits,
        finalists=[c.id for c in tested],
        tests=search.tests,
        calls=budget.calls,
        cost_usd=budget.cost_usd,
        proposer_calls=budget.proposer_calls,
        proposer_cost_usd=budget.proposer_cost_usd,
        stop_reason=search.stop_reason,
        limits={"max_calls": max_calls, "budget_usd": budget_usd},
        n_resamples=n_resamples,
    )
    if log_to_mlflow:
        from workbench.optimize.tracking import log_search

        log_search(result, experiment=experiment.name, tracking_uri=tracking_uri)
    return result


def _check_priced(models: Sequence[str], budget_usd: float | None) -> None:
    """A dollar budget needs prices: fail before any call for a model litellm cannot price."""
    if budget_usd is None:
        return
    for model in dict.fromkeys(models):
        if math.isnan(call_cost_upper_bound(model, [{"role": "user", "content": "x"}], {"max_tokens": 1})):
            raise ModelError(
                f"budget_usd={budget_usd!r} is set but litellm has no price for {model!r} (a model the search "
                "calls), so the budget cannot be enforced; register a price with litellm.register_model(...) "
                "or use max_calls"
            )
