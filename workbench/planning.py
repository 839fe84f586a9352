"""Before the first call: what an experiment will call, and whether it can.

:func:`validate` checks everything that can be checked before money is spent
(dataset against variants, models and keys, scorers against expected values,
the transport); :func:`plan` yields the calls lazily, case by case. The
engine in :mod:`workbench.runner` runs them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import litellm

from workbench.cache import cache_key
from workbench.exceptions import ModelError, ScorerError
from workbench.providers.local import LOCAL_MODELS, LOCAL_PROVIDER, register_local_provider
from workbench.providers.openai_compatible import TRANSPORT, check_compatible
from workbench.variant import PromptVariant

if TYPE_CHECKING:
    from workbench.dataset import Case
    from workbench.experiment import Experiment

#: Params that let a call go through without an API key in the environment.
_CREDENTIAL_PARAMS = ("api_key", "api_base", "base_url", "mock_response")


@dataclass(frozen=True)
class Call:
    """One planned model call."""

    index: int
    variant: PromptVariant
    model: str
    case: Case
    repeat: int
    messages: list[dict[str, str]]

    @functools.cached_property
    def key(self) -> str:
        return cache_key(self.model, self.messages, self.variant.params, self.repeat)


def provider_of(model: str) -> str:
    """litellm's provider name for a model string.

    Raises:
        ModelError: litellm does not know the provider.
    """
    register_local_provider()
    try:
        return str(litellm.get_llm_provider(model)[1])
    except Exception as exc:  # litellm raises BadRequestError and others
        local = ", ".join(sorted("local/" + m for m in LOCAL_MODELS))
        raise ModelError(
            f"unknown model {model!r}: litellm cannot tell its provider. Use a litellm model string "
            f"such as 'openai/gpt-4o-mini', 'anthropic/claude-3-5-haiku-latest', 'ollama/llama3' or {local}"
        ) from exc


def is_local(model: str) -> bool:
    return provider_of(model) == LOCAL_PROVIDER


def check_model(model: str, params: Mapping[str, Any]) -> None:
    """Fail before any call if ``model`` cannot work: unknown provider or missing key."""
    if is_local(model):
        name = model.split("/", 1)[1]
        if name not in LOCAL_MODELS:
            available = sorted("local/" + m for m in LOCAL_MODELS)
            raise ModelError(f"unknown local model {model!r}; available: {available}")
        return
    if any(params.get(k) for k in _CREDENTIAL_PARAMS):
        return
    env = litellm.validate_environment(model=model)
    # Base URLs have defaults (ollama: localhost:11434); only missing secrets are fatal.
    missing = [k for k in env.get("missing_keys") or [] if not k.endswith(("_API_BASE", "_BASE_URL"))]
    if missing:
        raise ModelError(
            f"model {model!r} needs {', '.join(missing)} in the environment; set it (for example in a "
            "git-ignored .env loaded before running) or pass `api_key`/`api_base` in the variant params"
        )


def cost_of(response: Any, model: str) -> float:
    """Cost in USD from litellm's price data; NaN when litellm has no price for the model."""
    hidden = getattr(response, "_hidden_params", None) or {}
    if "response_cost" in hidden:  # litellm already priced it (None: it has no price)
        cost = hidden["response_cost"]
        return math.nan if cost is None else float(cost)
    try:
        return float(litellm.completion_cost(completion_response=response, model=model))
    except Exception:  # litellm raises for models missing from its price map
        return math.nan


def render_prompt(variant: PromptVariant, messages: Sequence[Mapping[str, str]]) -> str:
    """Readable text of what this case sent, without the few-shot turns (they are in the template)."""
    shown = [m for m in messages if m["role"] == "system"] + [messages[-1]]
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in shown)


def validate(experiment: Experiment) -> None:
    """Everything that can be checked before spending money."""
    experiment.dataset.validate(experiment.variants)
    for variant in experiment.variants:
        for model in experiment.models:
            check_model(model, variant.params)
            if experiment.settings.transport == TRANSPORT and not is_local(model):
                check_compatible(model, variant.params)
    for scorer in experiment.scorers:
        check = getattr(scorer, "check", None)
        if check is None:
            continue
        for case in experiment.dataset.cases():
            try:
                check(case.expectations)
            except ScorerError as exc:
                raise ScorerError(f"{case.where} (id {case.id!r}): {exc}") from exc


def plan(experiment: Experiment) -> Iterator[Call]:
    """Every call of the experiment, rendered lazily, case by case.

    Case-major order keeps all variants and models progressing together, so
    an interrupted run has comparable partial results.
    """
    index = 0
    for case in experiment.dataset.cases():
        for variant in experiment.variants:
            messages = variant.render(case.inputs, where=case.where)
            for model in experiment.models:
                for repeat in range(experiment.repeats):
                    yield Call(index, variant, model, case, repeat, messages)
                    index += 1
