"""Running one candidate prompt on one split: through the engine, or (in simulations) without it.

The search only ever asks an :class:`Evaluator` four things: what would running this candidate
on these cases cost (calls, dollars; what the response cache holds is free), run it, what would
a proposer's :class:`Question` cost, and ask it. :class:`EngineEvaluator` answers all four with
:meth:`workbench.Experiment.estimate` and :meth:`workbench.Experiment.run`, so every call, the
proposer's included, goes through the one call path: the response cache (a restarted search pays
for no call twice), retries, the limiter, and the search's budget checked before each call.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import numpy as np
import pandas as pd

from workbench.core import schema as col
from workbench.core.dataset import Dataset
from workbench.core.exceptions import UsageError
from workbench.core.schema import SuccessRule
from workbench.core.variant import PromptVariant
from workbench.engine.cache import CacheOption
from workbench.experiment.experiment import Experiment

#: The columns of :attr:`Evaluation.rows`.
ROW_COLUMNS = ("case_id", "repeat", "score", "reason", "output")


@dataclass
class Evaluation:
    """One candidate's scores on one split.

    Attributes:
        rows: One row per call: ``case_id``, ``repeat``, ``score`` (NaN when the call failed or
            could not be scored), ``reason``, ``output``, and the case's ``input.*`` /
            ``expected.*`` columns when known.
        calls: Model calls paid for (cache hits are free and not counted).
        cost_usd: What those calls cost.
    """

    rows: pd.DataFrame
    calls: int = 0
    cost_usd: float = 0.0

    @cached_property
    def per_case(self) -> pd.Series:
        """Mean score per case (repeats averaged; unscored calls left out), indexed by case id.

        Computed once: an evaluation's rows do not change.
        """
        rows = self.rows
        if rows["repeat"].nunique() <= 1 and not rows["case_id"].duplicated().any():
            ids, scores = rows["case_id"].to_numpy(), rows["score"].to_numpy(dtype=float)
            order = np.argsort(ids, kind="stable")
            keep = order[~np.isnan(scores[order])]
            return pd.Series(scores[keep], index=ids[keep], name="score")
        scored = rows.dropna(subset=["score"])
        return scored.groupby("case_id", sort=True)["score"].mean()

    @property
    def mean(self) -> float:
        per_case = self.per_case
        return float(per_case.mean()) if len(per_case) else math.nan

    def failures(self, *, threshold: float = 0.5) -> pd.DataFrame:
        """Calls scored below ``threshold``, with their inputs, outputs and the scorer's reasons."""
        return self.rows[self.rows["score"] < threshold]

    def successes(self, *, threshold: float = 0.5) -> pd.DataFrame:
        """Calls scored at or above ``threshold``."""
        return self.rows[self.rows["score"] >= threshold]

    def to_json(self) -> dict[str, Any]:
        rows = self.rows.astype(object).where(self.rows.notna(), None)
        return {"rows": rows.to_dict(orient="list"), "calls": self.calls, "cost_usd": self.cost_usd}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Evaluation:
        rows = pd.DataFrame(data["rows"])
        rows["score"] = pd.to_numeric(rows["score"], errors="coerce").astype(float)
        return cls(rows=rows, calls=int(data["calls"]), cost_usd=float(data["cost_usd"]))


@dataclass(frozen=True)
class Cost:
    """What an evaluation is expected to cost: calls to make and dollars (an upper bound; NaN
    when a model to call has no known price)."""

    calls: int
    usd: float = 0.0


@dataclass(frozen=True)
class Question:
    """One question to a proposer model.

    Attributes:
        variant: The proposer's prompt: its system message, ``{{ request }}`` as the prompt, and
            the model params (``temperature``, ``max_tokens``...).
        model: The proposer model.
        request: The question's text (the current instruction and failing cases).
    """

    variant: PromptVariant
    model: str
    request: str

    @property
    def dataset(self) -> Dataset:
        return Dataset.from_records([{"id": "ask", "request": self.request}])


class Evaluator(Protocol):
    """What the search needs to run candidates. :class:`EngineEvaluator` is the real one."""

    def estimate(self, variant: PromptVariant, model: str, dataset: Dataset) -> Cost: ...

    def evaluate(self, variant: PromptVariant, model: str, dataset: Dataset) -> Evaluation: ...

    def estimate_ask(self, question: Question) -> Cost: ...

    def ask(self, question: Question) -> tuple[str, Cost]: ...


@dataclass
class EngineEvaluator:
    """Evaluate candidates with :meth:`workbench.Experiment.run` (cache, retries, budget).

    Args:
        experiment: The experiment the search starts from (its scorers, settings, repeats).
        objective: The scorer whose score is optimised (the only one candidates are scored with;
            an LLM judge's calls count as calls, ``samples`` per output judged).
        cache: As in :meth:`~workbench.Experiment.run`; the cache is what makes a restarted
            search free for the calls it already made.
        acompletion: The completion function (tests inject a fake).
    """

    experiment: Experiment
    objective: str
    cache: CacheOption = True
    acompletion: Callable[..., Any] | None = None
    log_to_mlflow: bool = False

    def __post_init__(self) -> None:
        if self.objective not in self.experiment.scorer_names:
            raise UsageError(
                f"objective {self.objective!r} is not a scorer of experiment {self.experiment.name!r}; "
                f"its scorers: {self.experiment.scorer_names}"
            )

    @property
    def scorer(self) -> Any:
        """The objective's scorer: the only one a candidate is scored with (others would cost calls for nothing)."""
        return next(s for s in self.experiment.scorers if s.name == self.objective)

    @property
    def judge_samples(self) -> int:
        """Model calls the objective makes per output: 0 for a plain scorer, ``samples`` for an LLM judge."""
        return int(getattr(self.scorer, "samples", 1)) if getattr(self.scorer, "calls_models", False) else 0

    def _experiment(self, variant: PromptVariant, model: str, dataset: Dataset) -> Experiment:
        return dataclasses.replace(
            self.experiment,
            name=f"{self.experiment.name}-optimize",
            variants=[variant],
            models=[model],
            dataset=dataset,
            scorers=[self.scorer],
            success=SuccessRule(),
        )

    def estimate(self, variant: PromptVariant, model: str, dataset: Dataset) -> Cost:
        """Calls not in the cache yet, and their cost at most (NaN for an unpriced model).

        An LLM-judge objective adds ``samples`` judge calls per task call to make (a cached task
        reply was judged, and cached, in the same run); their dollars are not bounded in advance
        (NaN), so a search with ``budget_usd`` refuses a judge objective up front.
        """
        task = _cost(self._experiment(variant, model, dataset), self.cache)
        if not self.judge_samples or not task.calls:
            return task
        return Cost(calls=task.calls * (1 + self.judge_samples), usd=math.nan)

    def evaluate(self, variant: PromptVariant, model: str, dataset: Dataset) -> Evaluation:
        """Run ``variant`` on ``dataset`` with ``model`` and read the objective's scores."""
        result = self._experiment(variant, model, dataset).run(
            log_to_mlflow=self.log_to_mlflow,
            progress=False,
            cache=self.cache,
            acompletion=self.acompletion,
            source="optimize",
        )
        score, reason = col.score_column(self.objective), col.reason_column(self.objective)
        cases = result.cases
        rows = pd.DataFrame(
            {
                "case_id": cases[col.CASE_ID].astype(str),
                "repeat": cases[col.REPEAT].astype(int),
                "score": pd.to_numeric(cases[score], errors="coerce").astype(float) if score in cases else np.nan,
                "reason": cases.get(reason),
                "output": cases[col.OUTPUT],
            }
        )
        extra = [c for c in cases.columns if str(c).startswith((col.INPUT, col.EXPECTED))]
        rows = pd.concat([rows, cases[extra].reset_index(drop=True)], axis=1)
        fresh = ~cases[col.CACHED].astype(bool) if col.CACHED in cases else pd.Series(True, index=cases.index)
        cost = float(pd.to_numeric(cases.loc[fresh, col.COST_USD], errors="coerce").fillna(0).sum())
        calls = int(result.calls_made)
        if self.judge_samples:  # the judge's calls are paid too: each output not judged from the cache
            judged = cases.get(col.judge_column(self.objective, "cached"), pd.Series(False, index=cases.index))
            calls += int((~judged.fillna(False).astype(bool)).sum()) * self.judge_samples
            spent = cases.get(col.judge_column(self.objective, "cost_usd"), pd.Series(0.0, index=cases.index))
            cost += float(pd.to_numeric(spent, errors="coerce").fillna(0).sum())
        return Evaluation(rows=rows, calls=calls, cost_usd=cost)

    def _question(self, question: Question) -> Experiment:
        spec = self._experiment(question.variant, question.model, question.dataset)
        return dataclasses.replace(spec, name=f"{self.experiment.name}-propose", scorers=[], success=SuccessRule())

    def estimate_ask(self, question: Question) -> Cost:
        """What asking ``question`` would cost: nothing when the cache holds the reply."""
        return _cost(self._question(question), self.cache)

    def ask(self, question: Question) -> tuple[str, Cost]:
        """One question to a proposer model, through the same engine and cache as every call."""
        result = self._question(question).run(
            log_to_mlflow=False, progress=False, cache=self.cache, acompletion=self.acompletion
        )
        cases = result.cases
        fresh = ~cases[col.CACHED].astype(bool) if col.CACHED in cases else pd.Series(True, index=cases.index)
        cost = float(pd.to_numeric(cases.loc[fresh, col.COST_USD], errors="coerce").fillna(0).sum())
        output = cases[col.OUTPUT].iloc[0]
        return ("" if output is None or output != output else str(output)), Cost(int(result.calls_made), cost)


def _cost(experiment: Experiment, cache: CacheOption) -> Cost:
    planned = experiment.estimate(cache=cache)
    return Cost(calls=planned.calls, usd=planned.cost_usd if planned.calls else 0.0)
