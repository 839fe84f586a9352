"""How a run makes its calls: concurrency, timeout, retries, transport, error tolerance.

Plain configuration, shared by the experiment definition (YAML ``settings:``)
and the engine that honours it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from workbench.core.exceptions import ConfigError

#: How remote models are called: through litellm, or straight to an OpenAI-compatible server.
Transport = Literal["litellm", "openai-compatible"]
TRANSPORTS: tuple[str, ...] = get_args(Transport)
#: Where a run's calls are made: in this process, or sharded across a Ray cluster.
Executor = Literal["local", "ray"]
EXECUTORS: tuple[str, ...] = get_args(Executor)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before recording a call as failed.

    Args:
        max_attempts: Attempts per call, the first included.
        initial_wait_s: Scale of the exponential backoff.
        max_wait_s: Cap on one wait (a longer ``Retry-After`` is still honoured).
    """

    max_attempts: int = 6
    initial_wait_s: float = 0.25
    max_wait_s: float = 20.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"RetryPolicy.max_attempts must be at least 1, got {self.max_attempts!r}")


@dataclass(frozen=True)
class RunSettings:
    """How calls are made.

    Args:
        max_concurrency: Calls in flight at once per remote model.
        local_concurrency: Calls in flight at once per local model (a
            llama.cpp context runs one call at a time).
        timeout_s: Per-call timeout, in seconds.
        retry: Retries on rate limits, server errors, timeouts and dropped connections.
        transport: ``"litellm"`` (any provider) or ``"openai-compatible"``: remote
            models go straight to their ``api_base`` over pooled HTTP, for
            self-hosted OpenAI-compatible servers (vLLM, llama.cpp server) fast
            enough that litellm's ~6 ms of CPU per call would be the bottleneck.
            LLM judges still go through litellm. See
            :mod:`workbench.providers.openai_compatible`.
        max_error_rate: A run whose share of failed calls is above this ends
            FAILED (MLflow) and raises :class:`~workbench.core.exceptions.TooManyErrorsError`
            with the partial result. A run in which every call failed always
            fails, whatever this says (so the default, 1.0, fails only that one).
        traces: Write every call as an MLflow trace, its scores as assessments
            (see :mod:`workbench.tracking.traces`). ``False`` logs the run without them.
        executor: ``"local"`` (this process) or ``"ray"``: shard the cases across a Ray
            cluster (``$RAY_ADDRESS``, else a local one; needs ``pip install -e ".[scale]"``).
            See :mod:`workbench.engine.ray_executor`.

    Example:
        >>> RunSettings(max_concurrency=4, max_error_rate=0.05).max_error_rate
        0.05
    """

    max_concurrency: int = 16
    local_concurrency: int = 1
    timeout_s: float = 120.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    transport: str = "litellm"
    max_error_rate: float = 1.0
    traces: bool = True
    executor: str = "local"

    def __post_init__(self) -> None:
        if self.max_concurrency < 1 or self.local_concurrency < 1:
            raise ConfigError("concurrency settings must be at least 1")
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"transport must be one of {TRANSPORTS}, got {self.transport!r}")
        if self.executor not in EXECUTORS:
            raise ConfigError(f"executor must be one of {EXECUTORS}, got {self.executor!r}")
        if not 0 <= self.max_error_rate <= 1:
            raise ConfigError(f"max_error_rate must be between 0 and 1, got {self.max_error_rate!r}")

    def too_many_errors(self, errors: int, calls: int) -> bool:
        """Whether ``errors`` failed calls out of ``calls`` fail the run."""
        return calls > 0 and (errors == calls or errors / calls > self.max_error_rate)
