"""The async engine behind :meth:`Experiment.run`.

Order of work, so that mistakes cost nothing:

1. validate the dataset against the variants, the models (provider known,
   credentials present) and the scorers against the expected values;
2. render every prompt (a missing variable fails here, before any call);
3. open the MLflow parent run, call the models concurrently (bounded per
   model), score each output as it arrives;
4. summarise, log, and close the run as FINISHED, or FAILED on any error.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import litellm
from tqdm.auto import tqdm

from workbench.exceptions import ModelError, ScorerError
from workbench.providers.local import LOCAL_MODELS, LOCAL_PROVIDER, register_local_provider
from workbench.result import ExperimentResult
from workbench.scorers.base import run_scorer
from workbench.variant import PromptVariant

if TYPE_CHECKING:
    from workbench.experiment import Experiment

#: Params that let a call go through without an API key in the environment.
_CREDENTIAL_PARAMS = ("api_key", "api_base", "base_url", "mock_response")


@dataclass(frozen=True)
class _Task:
    index: int
    variant: PromptVariant
    model: str
    case_id: str
    repeat: int
    inputs: Mapping[str, Any]
    expectations: Mapping[str, Any]
    messages: list[dict[str, str]]


def provider_of(model: str) -> str:
    """litellm's provider name for a model string.

    Raises:
        ModelError: litellm does not know the provider.
    """
    register_local_provider()
    try:
        return str(litellm.get_llm_provider(model)[1])
    except Exception as exc:  # litellm raises BadRequestError and others
        raise ModelError(
            f"unknown model {model!r}: litellm cannot tell its provider. Use a litellm model string "
            "such as 'openai/gpt-4o-mini', 'anthropic/claude-3-5-haiku-latest', 'ollama/llama3' "
            f"or a local model ({', '.join(sorted('local/' + m for m in LOCAL_MODELS))})"
        ) from exc


def check_model(model: str, params: Mapping[str, Any]) -> None:
    """Fail before any call if ``model`` cannot work: unknown provider or missing key."""
    provider = provider_of(model)
    if provider == LOCAL_PROVIDER:
        name = model.split("/", 1)[1]
        if name not in LOCAL_MODELS:
            raise ModelError(
                f"unknown local model {model!r}; available: {sorted('local/' + m for m in LOCAL_MODELS)}"
            )
        return
    if any(params.get(k) for k in _CREDENTIAL_PARAMS):
        return
    env = litellm.validate_environment(model=model)
    # Base URLs have defaults (ollama: localhost:11434); only missing secrets are fatal.
    missing_keys = [k for k in env.get("missing_keys") or [] if not k.endswith(("_API_BASE", "_BASE_URL"))]
    if missing_keys:
        missing = ", ".join(missing_keys)
        raise ModelError(
            f"model {model!r} needs {missing} in the environment; set it (for example in a "
            "git-ignored .env loaded before running) or pass `api_key`/`api_base` in the variant params"
        )


def cost_of(response: Any, model: str) -> float:
    """Cost in USD from litellm's price data; NaN when litellm has no price for the model."""
    hidden = getattr(response, "_hidden_params", None) or {}
    if hidden.get("response_cost") is not None:
        return float(hidden["response_cost"])
    try:
        return float(litellm.completion_cost(completion_response=response, model=model))
    except Exception:  # litellm raises for models missing from its price map
        return math.nan


def render_prompt(messages: Sequence[Mapping[str, str]]) -> str:
    """Readable text of a rendered conversation, stored per case."""
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)


def plan(experiment: Experiment) -> list[_Task]:
    """Render every call of the experiment, validating everything first."""
    experiment.dataset.validate(experiment.variants)
    for variant in experiment.variants:
        for model in experiment.models:
            check_model(model, variant.params)
    cases = list(experiment.dataset.cases())
    for scorer in experiment.scorers:
        check = getattr(scorer, "check", None)
        for case in cases:
            try:
                if check is not None:
                    check(case.expectations)
                elif hasattr(scorer, "_truth"):
                    scorer._truth(case.expectations)
            except ScorerError as exc:
                raise ScorerError(f"{case.where} (id {case.id!r}): {exc}") from exc
    tasks: list[_Task] = []
    for variant in experiment.variants:
        rendered = [(case, variant.render(case.inputs, where=case.where)) for case in cases]
        for model in experiment.models:
            for case, messages in rendered:
                for repeat in range(experiment.repeats):
                    tasks.append(
                        _Task(
                            len(tasks),
                            variant,
                            model,
                            case.id,
                            repeat,
                            case.inputs,
                            case.expectations,
                            messages,
                        )
                    )
    return tasks


async def _call(
    task: _Task,
    *,
    acompletion: Callable[..., Any],
    semaphore: asyncio.Semaphore,
    scorers: Sequence[Any],
    input_names: Sequence[str],
    timeout_s: float,
    num_retries: int,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "case_id": task.case_id,
        "variant": task.variant.name,
        "variant_version": task.variant.version,
        "model": task.model,
        "repeat": task.repeat,
    }
    for name in input_names:
        row[f"input.{name}"] = task.inputs.get(name)
    for name, value in task.expectations.items():
        row[f"expected.{name}"] = value
    row["prompt"] = render_prompt(task.messages)
    output, error = None, None
    prompt_tokens = completion_tokens = 0
    cost = math.nan
    async with semaphore:
        started = time.perf_counter()
        try:
            response = await acompletion(
                model=task.model,
                messages=task.messages,
                timeout=timeout_s,
                num_retries=num_retries,
                **task.variant.params,
            )
            output = response.choices[0].message.content or ""
            usage = getattr(response, "usage", None)
            prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
            completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
            cost = cost_of(response, task.model)
        except Exception as exc:  # every provider error is recorded, never raised mid-run
            error = f"{type(exc).__name__}: {exc}"
        latency = time.perf_counter() - started
    row.update(output=output, error=error)
    for scorer in scorers:
        value, reason = math.nan, error and "not scored: the call failed"
        if error is None:
            try:
                score = await run_scorer(
                    scorer, inputs=task.inputs, outputs=output or "", expectations=task.expectations
                )
                value, reason = score.value, score.reason
            except Exception as exc:  # a scorer crash on one output must not lose the run
                reason = f"scorer error: {type(exc).__name__}: {exc}"
        row[f"score.{scorer.name}"] = value
        row[f"reason.{scorer.name}"] = reason
    row.update(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=cost,
        latency_s=latency,
    )
    return row


async def execute(
    experiment: Experiment,
    *,
    log_to_mlflow: bool,
    tracking_uri: str | None,
    progress: bool,
    acompletion: Callable[..., Any] | None,
) -> ExperimentResult:
    """Validate, run, score, summarise and log one experiment."""
    tasks = plan(experiment)  # raises before any call or MLflow run
    call = acompletion or litellm.acompletion
    tracker = None
    if log_to_mlflow:
        from workbench.tracking import MlflowTracker

        tracker = MlflowTracker(tracking_uri=tracking_uri)
        tracker.start(experiment)
    try:
        settings = experiment.settings
        semaphores = {
            model: asyncio.Semaphore(
                settings.local_concurrency
                if provider_of(model) == LOCAL_PROVIDER
                else settings.max_concurrency
            )
            for model in experiment.models
        }
        input_names = sorted(set().union(*(v.variables() for v in experiment.variants)))
        pending = [
            asyncio.ensure_future(
                _call(
                    task,
                    acompletion=call,
                    semaphore=semaphores[task.model],
                    scorers=experiment.scorers,
                    input_names=input_names,
                    timeout_s=settings.timeout_s,
                    num_retries=settings.num_retries,
                )
            )
            for task in tasks
        ]
        rows: list[dict[str, Any]] = []
        with tqdm(total=len(pending), desc=experiment.name, unit="call", disable=not progress) as bar:
            for next_done in asyncio.as_completed(pending):
                rows.append(await next_done)
                bar.update(1)
        order = {(t.variant.name, t.model, t.case_id, t.repeat): t.index for t in tasks}
        rows.sort(key=lambda r: order[(r["variant"], r["model"], r["case_id"], r["repeat"])])
        result = ExperimentResult.from_rows(rows, experiment=experiment)
        if tracker is not None:
            tracker.log_result(result)
            tracker.finish("FINISHED")
            result.run_id, result.tracking_uri = tracker.parent_run_id, tracker.tracking_uri
        return result
    except BaseException:
        if tracker is not None:
            tracker.finish("FAILED")
        raise
