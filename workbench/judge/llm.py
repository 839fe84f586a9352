"""LLM-as-judge: a scorer that asks a model to grade each output against a rubric."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from workbench.core.exceptions import ScorerError
from workbench.core.redaction import REDACTOR, redact
from workbench.judge.parsing import Scale, Verdict, parse_verdict
from workbench.judge.usage import Usage, judge_params, models_of
from workbench.providers.local import DEFAULT_LOCAL_MODEL
from workbench.providers.models import check_model, check_params
from workbench.scorers.base import BaseScorer, Score
from workbench.scorers.context import ScoringContext

_SYSTEM = (
    "You are a careful, impartial evaluator. Judge the response only against the rubric. "
    "Reply with one JSON object and nothing else, reason first: "
    '{{"reason": "<one or two sentences>", "score": {scale}}}'
)


def format_fields(values: Mapping[str, Any]) -> str:
    """``name: value`` lines, for showing inputs and expected values to a judge."""
    return "\n".join(f"{name}: {value}" for name, value in values.items())


@dataclass(frozen=True)
class LLMJudge(BaseScorer):
    """Grade each output with a judge model (any litellm model) against a rubric.

    The judge sees the rubric, the case's inputs, the output and (unless
    ``include_expected=False``) the expected values, and is asked for JSON
    ``{"reason": ..., "score": ...}``. The verdict is parsed robustly (JSON
    anywhere, fenced or not, ``Score: 4``, ``PASS``/``FAIL``, yes/no); an
    unparseable verdict scores NaN with a reason quoting what the judge wrote,
    never a silent 0. Scores are normalised to 0..1.

    Judge calls go through the run's response cache like the task's calls (a
    re-run makes no judge call) and their tokens and cost are reported in the
    ``judge.<name>.*`` columns, never in the task's ``cost_usd``.

    With ``samples=k`` each output is judged k times (repeat indexes 0..k-1
    in the cache key): the score is the mean, and ``judge.<name>.spread``
    (max - min) shows how much the judge disagrees with itself. Use a
    temperature above 0 in ``params`` for that to mean anything.

    Args:
        rubric: What a good output is, in words the judge can apply.
        model: litellm model string of the judge.
        scale: ``"pass_fail"`` or a range such as ``"1-5"``.
        samples: How many times each output is judged.
        params: litellm params of the judge calls (``temperature``, ``api_base``...),
            over the defaults ``temperature=0, max_tokens=256``.
        include_expected: Show the expected values to the judge.
        metric_name: Column and metric name (default ``llm_judge``).

    Example:
        >>> judge = LLMJudge(rubric="The reply is polite and answers the question.",
        ...                  model="openai/gpt-4o-mini", scale="1-5")
        >>> judge.spec()["type"]
        'llm_judge'
        >>> exp = Experiment(..., scorers=[judge])  # doctest: +SKIP
    """

    type_name = "llm_judge"
    #: Its score calls a model: the engine reports that usage in ``judge.<name>.*`` columns.
    calls_models: ClassVar[bool] = True

    rubric: str = ""
    model: str = DEFAULT_LOCAL_MODEL
    scale: str = "pass_fail"
    samples: int = 1
    params: Mapping[str, Any] = field(default_factory=dict, hash=False, repr=False)  # may hold a key
    include_expected: bool = True
    metric_name: str | None = None

    def __post_init__(self) -> None:
        if not str(self.rubric).strip():
            raise ScorerError("llm_judge needs a `rubric`: say in words what a good output is")
        if not isinstance(self.samples, int) or self.samples < 1:
            raise ScorerError(f"llm_judge `samples` must be a whole number >= 1, got {self.samples!r}")
        object.__setattr__(self, "params", dict(self.params or {}))
        REDACTOR.learn(self.params)  # a key in the judge's params is masked wherever it would leave
        object.__setattr__(self, "_scale", Scale.parse(self.scale))

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        spec["params"] = redact(self.params)  # logged to MLflow: never a key
        return spec

    def check(self, expectations: Mapping[str, Any]) -> None:
        """Fail before any call when the judge model cannot work (unknown, no key)."""
        if getattr(self, "_checked", False):
            return
        check_model(self.model, self.params)
        check_params(self.model, self.params, where=f"judge {self.name!r}")
        object.__setattr__(self, "_checked", True)

    def messages(
        self, *, inputs: Mapping[str, Any], outputs: str, expectations: Mapping[str, Any]
    ) -> list[dict[str, str]]:
        """The chat messages the judge receives for one output."""
        scale: Scale = self._scale  # type: ignore[attr-defined]
        parts = [f"Rubric:\n{self.rubric.strip()}"]
        if inputs:
            parts.append(f"Input:\n{format_fields(inputs)}")
        if self.include_expected and expectations:
            parts.append(f"Expected:\n{format_fields(expectations)}")
        parts.append(f'Response to judge:\n"""\n{outputs}\n"""')
        parts.append(f"Score on this scale: {scale.describe()}.\nVerdict (JSON):")
        return [
            {"role": "system", "content": _SYSTEM.format(scale=scale.describe())},
            {"role": "user", "content": "\n\n".join(parts)},
        ]

    async def score(  # type: ignore[override]  # scorers may be async (see run_scorer)
        self,
        *,
        inputs: Mapping[str, Any],
        outputs: str,
        expectations: Mapping[str, Any],
        context: ScoringContext | None = None,
    ) -> Score:
        """Judge one output ``samples`` times through the run's call path (``context.models``).

        Without a context (called by hand) the judge calls litellm directly, uncached.
        """
        models = models_of(context)
        messages = self.messages(inputs=inputs, outputs=outputs, expectations=expectations)
        params = judge_params(self.params)
        answers = await asyncio.gather(
            *(
                models.complete(model=self.model, messages=messages, params=params, repeat=k)
                for k in range(self.samples)
            ),
            return_exceptions=True,
        )
        usage, verdicts, failures = Usage(), [], []
        for answer in answers:
            if isinstance(answer, BaseException):
                if not isinstance(answer, Exception):
                    raise answer  # cancellation and interrupts are not judge failures
                failures.append(REDACTOR.text(f"{type(answer).__name__}: {answer}"))
                continue
            usage.add(answer)
            verdicts.append(parse_verdict(answer.reply.output, self._scale))  # type: ignore[attr-defined]
        value, spread = _combine(verdicts, self.samples)
        return Score(
            value,
            _reason(verdicts, failures, self.samples),
            cost_usd=usage.cost_usd,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached=usage.all_cached,
            spread=spread,
        )


def _combine(verdicts: list[Verdict], samples: int) -> tuple[float, float | None]:
    """Mean of the parsed verdicts, and their spread (None with one sample, NaN with fewer than 2 parsed)."""
    values = [v.value for v in verdicts if v.parsed]
    mean = sum(values) / len(values) if values else math.nan
    if samples == 1:
        return mean, None
    return mean, (max(values) - min(values)) if len(values) >= 2 else math.nan


def _reason(verdicts: list[Verdict], failures: list[str], samples: int) -> str:
    if samples == 1 and verdicts:
        return verdicts[0].reason
    parts = []
    if verdicts:
        shown = ", ".join("n/a" if not v.parsed else f"{v.value:g}" for v in verdicts)
        first = next((v for v in verdicts if v.parsed), verdicts[0])
        parts.append(f"{len(verdicts)} judgement(s) [{shown}]: {first.reason}")
    if failures:
        count = f" ({len(failures)} of {samples})" if samples > 1 else ""
        parts.append(f"judge call failed{count}: {failures[0]}")
    return "; ".join(parts)
