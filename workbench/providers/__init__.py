"""Model providers the workbench adds to litellm (today: the embedded local model)."""

from workbench.providers.local import LOCAL_PROVIDER, register_local_provider

__all__ = ["LOCAL_PROVIDER", "register_local_provider"]
