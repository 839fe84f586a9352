"""Model strings: which provider litellm routes one to, whether it can run here, what a reply cost.

Everything here is checked before the first call of a run, so a typo in a
model name, a missing API key or a param the provider cannot take costs nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import litellm

from workbench.core.exceptions import ModelError
from workbench.core.redaction import REDACTOR
from workbench.providers.local import LOCAL_MODELS, LOCAL_PROVIDER, register_local_provider

#: Params that let a call go through without an API key in the environment (``api_base`` alone
#: does not: see :func:`check_model`).
_CREDENTIAL_PARAMS = ("api_key", "mock_response")


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
    """Whether ``model`` is the embedded model (runs in-process, one call at a time)."""
    return provider_of(model) == LOCAL_PROVIDER


def check_params(model: str, params: Mapping[str, Any], *, where: str) -> None:
    """Fail before any call when ``params`` cannot be sent: every value must be plain JSON.

    A set (``stop={"\\n", "."}``, YAML ``!!set``) or another Python object fails deep
    inside the provider's client, looks like a server error and is retried for nothing.

    Raises:
        ModelError: naming ``where``, the param and the fix.
    """
    for key, value in params.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            shown = REDACTOR.data({key: value}) if isinstance(value, (Mapping, list, tuple)) else value
            raise ModelError(
                f"{where}: param {key!r} of model {model!r} is not plain JSON ({type(value).__name__} "
                f"{REDACTOR.text(repr(shown))}: {exc}); write it as a string, number, list or mapping "
                "(e.g. stop: ['\\n', '.'] rather than a set)"
            ) from exc


def check_model(model: str, params: Mapping[str, Any], *, needs_key_with_base: bool = True) -> None:
    """Fail before any call if ``model`` cannot work: unknown provider or missing key.

    Args:
        model: The litellm model string.
        params: The variant's (or judge's) params.
        needs_key_with_base: Whether an ``api_base`` still needs a key. Through litellm an
            OpenAI-style provider refuses to call without one, even a self-hosted server that
            checks none (pass any placeholder, ``api_key: none``); the openai-compatible
            transport sends no key when there is none.
    """
    if is_local(model):
        name = model.split("/", 1)[1]
        if name not in LOCAL_MODELS:
            available = sorted("local/" + m for m in LOCAL_MODELS)
            raise ModelError(f"unknown local model {model!r}; available: {available}")
        return
    if any(params.get(k) for k in _CREDENTIAL_PARAMS):
        return
    env = litellm.validate_environment(model=model, api_base=params.get("api_base") or params.get("base_url"))
    # Base URLs have defaults (ollama: localhost:11434); only missing secrets are fatal.
    missing = [k for k in env.get("missing_keys") or [] if not k.endswith(("_API_BASE", "_BASE_URL"))]
    has_base = bool(params.get("api_base") or params.get("base_url"))
    if missing and has_base and not needs_key_with_base:
        return
    if missing:
        fix = (
            "pass `api_key` in the variant params (any placeholder such as 'none' for a server that checks none)"
            if has_base
            else "pass `api_key`/`api_base` in the variant params"
        )
        raise ModelError(
            f"model {model!r} needs {', '.join(missing)} in the environment; set it (for example in a "
            f"git-ignored .env loaded before running) or {fix}"
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
