"""MLflow GenAI scorers as workbench scorers, and workbench scorers as MLflow GenAI scorers.

Both directions use the argument names the two share: a scorer reads ``inputs``
(the case's template variables), ``outputs`` (the reply's text) and
``expectations`` (the expected columns); an MLflow scorer may also read
``trace``, which it gets when the scoring context carries one.

* An MLflow scorer (a ``@mlflow.genai.scorer`` function or a built-in scorer
  object from ``mlflow.genai.scorers``) passed in ``Experiment(scorers=[...])``
  is wrapped by :class:`MlflowScorer` automatically; :func:`from_mlflow_scorer`
  does it explicitly, with options. Its return (bool, number, str,
  ``Feedback``, list of ``Feedback``) becomes a :class:`~workbench.scorers.base.Score`
  whose reason is the feedback's rationale.
* :func:`to_mlflow_scorer` turns a workbench scorer into an MLflow ``Scorer``
  for ``mlflow.genai.evaluate(data=..., scorers=[...])``; its score is the
  feedback's value and its reason the rationale.

MLflow's LLM judges (``Correctness``, ``Guidelines``, ``make_judge``...) call
their ``model`` (an MLflow model URI such as ``"openai:/gpt-4o-mini"``; MLflow's
default is ``"openai:/gpt-4.1-mini"``) through MLflow's own client, not through
the workbench's call path: those calls are not cached, retried by the workbench
or rate-limited with the task's. Their tokens (which MLflow reports on the
feedback) and cost (litellm's price for that model) do land in the run's
``judge.<name>.*`` columns like the workbench judges'. ``make_judge(...,
base_url=...)`` points a judge at any OpenAI-compatible server (a self-hosted
model). For judge calls that share the run's cache and limits, use
:class:`workbench.judge.LLMJudge`.

Example:
    >>> import mlflow.genai
    >>> @mlflow.genai.scorer
    ... def is_short(outputs) -> bool:
    ...     return len(outputs.split()) <= 3
    >>> wrapped = from_mlflow_scorer(is_short)
    >>> wrapped.name, run_sync(run_scorer(wrapped, outputs="positive")).value
    ('is_short', 1.0)
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import litellm
import pydantic
from mlflow.entities import Feedback
from mlflow.genai.judges.instructions_judge import InstructionsJudge
from mlflow.genai.scorers.base import Scorer
from mlflow.genai.scorers.builtin_scorers import BuiltInScorer

from workbench.core.exceptions import ScorerError
from workbench.scorers.base import BaseScorer, Score, normalize_score, run_scorer
from workbench.scorers.context import ModelCaller, ScoringContext
from workbench.util.aio import run_sync

#: The MLflow scorer parameters a workbench run can fill.
_MAPPED = ("inputs", "outputs", "expectations", "trace")

#: Where an MLflow judge's feedback says how many tokens its model call used.
_TOKENS = ("mlflow.assessment.judgeInputTokens", "mlflow.assessment.judgeOutputTokens")

#: Text values MLflow scorers return (``CategoricalRating`` is a ``str``), as numbers.
_TEXT_VALUES = {"yes": 1.0, "no": 0.0, "true": 1.0, "false": 0.0, "pass": 1.0, "fail": 0.0}


def is_mlflow_scorer(obj: Any) -> bool:
    """Whether ``obj`` is an MLflow GenAI scorer (``mlflow.genai.scorers.base.Scorer``)."""
    return isinstance(obj, Scorer)


def as_workbench_scorer(obj: Any) -> Any:
    """``obj`` itself, or an MLflow scorer wrapped in :class:`MlflowScorer`."""
    return MlflowScorer(scorer=obj) if is_mlflow_scorer(obj) else obj


@dataclass(frozen=True)
class MlflowScorer(BaseScorer):
    """An MLflow GenAI scorer used as a workbench scorer.

    Args:
        scorer: The MLflow scorer, or in YAML its import path (``"mypkg.scoring:polite"``,
            an object made with ``@mlflow.genai.scorer`` or a built-in scorer instance).
        feedback: For a scorer that returns a list of ``Feedback``: the name of the one
            this column holds (wrap the scorer once per name to keep several).
        labels: Numbers for text values other than yes/no, true/false, pass/fail and
            numbers written as text, e.g. ``{"good": 1, "ok": 0.5, "bad": 0}``.
        metric_name: Column name; the MLflow scorer's ``name`` by default.
        config: In YAML, when ``scorer`` names a built-in scorer class
            (``"mlflow.genai.scorers:RegexMatch"``): its arguments (``{pattern: "^Answer:"}``).

    Raises:
        ScorerError: the object is not an MLflow scorer, or it takes a parameter a
            workbench run cannot give (``session``, or a name other than
            ``inputs``, ``outputs``, ``expectations``, ``trace``).
    """

    type_name = "mlflow_scorer"

    scorer: Any = None
    feedback: str | None = None
    labels: Mapping[str, float] | None = None
    metric_name: str | None = None
    config: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        target = _import(self.scorer, self.config) if isinstance(self.scorer, str) else self.scorer
        if not is_mlflow_scorer(target):
            raise ScorerError(
                f"mlflow_scorer: {self.scorer!r} is not an MLflow GenAI scorer; give an object made with "
                "@mlflow.genai.scorer or a scorer from mlflow.genai.scorers (e.g. RegexMatch(pattern=...))"
            )
        wanted = _parameters(target)
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_wanted", wanted)

    @property
    def name(self) -> str:
        return self.metric_name or self.feedback or str(self._target.name)  # type: ignore[attr-defined]

    @property
    def mlflow_scorer(self) -> Scorer:
        """The wrapped MLflow scorer."""
        return self._target  # type: ignore[attr-defined, no-any-return]

    @property
    def calls_models(self) -> bool:
        """True for an MLflow LLM judge: its tokens and cost go to the run's ``judge.<name>.*`` columns."""
        return hasattr(self.mlflow_scorer, "model")

    @property
    def wants_context(self) -> bool:
        """True when the MLflow scorer reads ``trace``, which only the context can carry."""
        return "trace" in self._wanted  # type: ignore[attr-defined]

    def spec(self) -> dict[str, Any]:
        """``{"type": "mlflow_scorer", "scorer": <import path>, ...}``; a built-in scorer adds its ``config``."""
        spec = super().spec()
        target = self.mlflow_scorer
        if not isinstance(self.scorer, str):
            original = getattr(target, "_original_func", None)  # a @scorer function
            owner = original if original is not None else type(target)
            spec["scorer"] = f"{owner.__module__}:{owner.__qualname__}"
            if isinstance(target, BuiltInScorer):
                fields = pydantic.BaseModel.model_dump(target, mode="json", exclude_none=True)
                spec["config"] = {k: v for k, v in fields.items() if k in target.model_fields_set}
            elif isinstance(target, InstructionsJudge):  # made by make_judge
                spec["config"] = {"name": target.name, "instructions": target.instructions, "model": target.model}
        if self.labels is not None:
            spec["labels"] = dict(self.labels)
        return spec

    async def score(  # type: ignore[override]
        self,
        *,
        inputs: Mapping[str, Any],
        outputs: str,
        expectations: Mapping[str, Any],
        context: ScoringContext | None = None,
    ) -> Score:
        trace = getattr(context, "trace", None)
        if "trace" in self._wanted and trace is None and self._wanted["trace"]:  # type: ignore[attr-defined]
            return Score(float("nan"), f"not scored: MLflow scorer {self.name!r} needs a trace and this run has none")
        given = {"inputs": dict(inputs), "outputs": outputs, "expectations": dict(expectations), "trace": trace}
        # An MLflow judge calls its model synchronously: keep it off the event loop.
        result = await asyncio.to_thread(self.mlflow_scorer.run, **given)
        return self._to_score(result)

    def _to_score(self, result: Any) -> Score:
        if isinstance(result, list):
            result = self._pick(result)
        if isinstance(result, Feedback):
            if result.error is not None:
                message = getattr(result.error, "error_message", None) or str(result.error)
                return Score(float("nan"), f"MLflow scorer {self.name!r} failed: {message}")
            return self._with_usage(Score(self._number(result.value), result.rationale), result)
        if result is None:
            return Score(float("nan"), f"MLflow scorer {self.name!r} returned no value")
        return Score(self._number(result))

    def _with_usage(self, score: Score, feedback: Feedback) -> Score:
        """A judge's tokens (from the feedback's metadata) and their price, when litellm knows the model."""
        if not self.calls_models:
            return score
        meta = feedback.metadata or {}
        prompt, completion = (int(meta.get(key) or 0) for key in _TOKENS)
        model = str(getattr(self.mlflow_scorer, "model", None) or _default_judge_model())
        try:  # MLflow's "openai:/gpt-4o-mini" is litellm's "openai/gpt-4o-mini"
            costs = litellm.cost_per_token(
                model=model.replace(":/", "/", 1), prompt_tokens=prompt, completion_tokens=completion
            )
            cost: float | None = float(sum(costs))
        except Exception:  # litellm has no price for this model: cost unknown, not zero
            cost = None
        return dataclasses.replace(score, prompt_tokens=prompt, completion_tokens=completion, cost_usd=cost)

    def _pick(self, feedbacks: list[Any]) -> Any:
        names = [getattr(f, "name", None) for f in feedbacks]
        if self.feedback is not None:
            chosen = [f for f, n in zip(feedbacks, names, strict=True) if n == self.feedback]
            if not chosen:
                raise ScorerError(
                    f"MLflow scorer {self.mlflow_scorer.name!r} returned feedback {names}, none named "
                    f"{self.feedback!r}; pass one of those names as `feedback=`"
                )
            return chosen[0]
        if len(feedbacks) == 1:
            return feedbacks[0]
        raise ScorerError(
            f"MLflow scorer {self.mlflow_scorer.name!r} returned {len(feedbacks)} feedbacks {names}; a workbench "
            f"column holds one: use wb.from_mlflow_scorer(scorer, feedback=<name>) once per name you want"
        )

    def _number(self, value: Any) -> float:
        if isinstance(value, str):
            text = value.strip().lower()
            custom = {k.lower(): v for k, v in (self.labels or {}).items()}
            if text in custom:
                return float(custom[text])
            if text in _TEXT_VALUES:
                return _TEXT_VALUES[text]
            try:
                return float(text)
            except ValueError:
                raise ScorerError(
                    f"MLflow scorer {self.name!r} returned the label {value!r}, which is not a number; "
                    f"give its value with wb.from_mlflow_scorer(scorer, labels={{{value!r}: 1.0, ...}})"
                ) from None
        try:
            return normalize_score(value, self.name).value
        except ScorerError:
            raise ScorerError(
                f"MLflow scorer {self.name!r} returned {value!r} ({type(value).__name__}); "
                "a workbench score is a number, a bool or a yes/no label"
            ) from None


def from_mlflow_scorer(
    scorer: Any,
    *,
    feedback: str | None = None,
    labels: Mapping[str, float] | None = None,
    metric_name: str | None = None,
) -> MlflowScorer:
    """Use an MLflow GenAI scorer as a workbench scorer.

    ``Experiment(scorers=[...])`` does this by itself for MLflow scorer objects; call it to
    pick one ``feedback`` of a scorer that returns several, to give ``labels`` their numbers,
    or to rename the column. See :class:`MlflowScorer` for the arguments.

    Example:
        >>> from mlflow.genai.scorers import RegexMatch
        >>> s = from_mlflow_scorer(RegexMatch(pattern=r"^Answer:"), metric_name="answer_format")
        >>> s.name
        'answer_format'
    """
    return MlflowScorer(scorer=scorer, feedback=feedback, labels=labels, metric_name=metric_name)


class WorkbenchMlflowScorer(Scorer):
    """An MLflow ``Scorer`` that runs a workbench scorer; made by :func:`to_mlflow_scorer`."""

    _workbench: Any = pydantic.PrivateAttr(default=None)
    _models: Any = pydantic.PrivateAttr(default=None)

    # Narrower than Scorer.__call__ on purpose: MLflow passes only the parameters named here.
    def __call__(  # type: ignore[override]
        self,
        *,
        inputs: Any = None,
        outputs: Any = None,
        expectations: dict[str, Any] | None = None,
    ) -> Feedback:
        text = outputs if isinstance(outputs, str) else ("" if outputs is None else json.dumps(outputs, default=str))
        given = inputs if isinstance(inputs, Mapping) else ({} if inputs is None else {"inputs": inputs})
        context = ScoringContext(
            inputs=dict(given), output=text, expectations=dict(expectations or {}), models=self._models
        )
        score = run_sync(run_scorer(self._workbench, context))
        if math.isnan(score.value):
            return Feedback(name=self.name, error=score.reason or "not scored", rationale=score.reason)
        return Feedback(name=self.name, value=score.value, rationale=score.reason)


def to_mlflow_scorer(scorer: Any, *, name: str | None = None, models: ModelCaller | None = None) -> Scorer:
    """Wrap a workbench scorer for ``mlflow.genai.evaluate(data=..., scorers=[...])``.

    The MLflow scorer gets ``inputs`` (a dict: the template variables), ``outputs``
    (text; other values are scored as their JSON) and ``expectations``, and returns a
    ``Feedback`` with the workbench score as its value and the reason as its rationale
    (an error feedback when the workbench scorer could not score, NaN).

    Args:
        scorer: The workbench scorer.
        name: The feedback's name; the scorer's ``name`` by default.
        models: The call path a workbench LLM judge calls its model through (a
            :class:`workbench.engine.calls.CallPath`: cache, retries, limits). Without it a
            workbench judge calls litellm directly, uncached.

    Example:
        >>> from workbench.scorers import ExactMatch
        >>> mlflow_scorer = to_mlflow_scorer(ExactMatch(expected="label"))
        >>> mlflow_scorer(inputs={}, outputs="positive", expectations={"label": "positive"}).value
        1.0
    """
    if is_mlflow_scorer(scorer):
        raise ScorerError(f"{scorer.name!r} is already an MLflow scorer; pass it to mlflow.genai.evaluate as it is")
    if isinstance(scorer, MlflowScorer):
        return scorer.mlflow_scorer
    if not callable(getattr(scorer, "score", None)):
        raise ScorerError(
            f"to_mlflow_scorer: {scorer!r} has no `score` method; give a workbench scorer "
            "(a built-in one, or a function decorated with wb.scorer)"
        )
    wrapped = WorkbenchMlflowScorer(name=name or scorer.name, description=f"workbench scorer {scorer.name}")
    wrapped._workbench = scorer
    wrapped._models = models
    return wrapped


def _parameters(target: Scorer) -> dict[str, bool]:
    """The MLflow scorer's parameters a workbench run fills, each with whether it is required.

    Raises:
        ScorerError: a parameter no workbench run can fill, naming it and the fix.
    """
    if target.is_session_level_scorer:
        raise ScorerError(
            f"MLflow scorer {target.name!r} is session-level (it scores a whole conversation from its `session` "
            "of traces); a workbench scorer scores one reply: use a scorer that takes inputs/outputs/expectations"
        )
    call = getattr(target, "_original_func", None) or target.__call__
    wanted: dict[str, bool] = {}
    for param in inspect.signature(call).parameters.values():
        if param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL) or param.name == "self":
            continue
        required = param.default is param.empty
        if param.name in _MAPPED:
            wanted[param.name] = required
        elif required:
            raise ScorerError(
                f"MLflow scorer {target.name!r} takes parameter {param.name!r}, which a workbench run cannot give; "
                f"rename it to one of {list(_MAPPED)} (outputs: the reply text, inputs: the template variables, "
                "expectations: the expected columns) or give it a default"
            )
    if "trace" in wanted and wanted["trace"] and "trace" not in ScoringContext.__dataclass_fields__:
        raise ScorerError(
            f"MLflow scorer {target.name!r} needs `trace`, and workbench scorers get no trace yet; "
            "read `outputs` (the reply text) and `inputs` instead, or give `trace` a default of None"
        )
    return wanted


def _default_judge_model() -> str:
    """The model MLflow's judges use when given none (``openai:/gpt-4.1-mini`` outside Databricks)."""
    from mlflow.genai.judges.utils import get_default_model

    return str(get_default_model())


def _import(path: str, config: Mapping[str, Any] | None) -> Any:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ScorerError(f"mlflow_scorer: {path!r} must look like 'package.module:name'")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ScorerError(f"mlflow_scorer: cannot import {path!r}: {exc}") from exc
    if isinstance(target, type) and issubclass(target, Scorer):
        try:
            return target(**dict(config or {}))
        except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            raise ScorerError(f"mlflow_scorer: cannot build {path!r} from config {config!r}: {exc}") from exc
    if config is not None:
        raise ScorerError(f"mlflow_scorer: `config` is for a scorer class, and {path!r} is a ready scorer; drop it")
    return target
