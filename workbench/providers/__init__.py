"""Reaching models: litellm does the providers; this adds the embedded local model, a lean
OpenAI-compatible HTTP transport, and the checks made before any call."""

from workbench.providers.local import DEFAULT_LOCAL_MODEL, LOCAL_PROVIDER, register_local_provider
from workbench.providers.models import check_model, check_params, cost_of, is_local, provider_of

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "LOCAL_PROVIDER",
    "check_model",
    "check_params",
    "cost_of",
    "is_local",
    "provider_of",
    "register_local_provider",
]
