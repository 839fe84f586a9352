"""A model that is a group of deployments: replicas of one model, or the same model at two providers.

A :class:`RouterGroup` names one model of an experiment (its ``name`` is what the ``model``
column shows and what the cache keys on) and lists the :class:`Deployment` s that can
answer for it. At run time litellm's ``Router`` picks a deployment per call, moves on to
another one when a deployment fails or is rate-limited, holds each deployment to its
``rpm``/``tpm`` limits, and tries higher ``order`` levels only when the lower ones fail
(see :mod:`workbench.providers.router`). The ``deployment`` column records which one answered.

API keys are never part of a group: a deployment names the environment variable that holds
its key (``api_key_env``), and the key is read from the environment when the call is made.

Example:
    >>> group = RouterGroup(name="support-gpt", deployments=[
    ...     {"model": "openai/gpt-4o-mini", "api_base": "http://127.0.0.1:8001/v1", "api_key_env": "A_KEY", "rpm": 60},
    ...     {"model": "openai/gpt-4o-mini", "api_base": "http://127.0.0.1:8002/v1", "api_key_env": "B_KEY"},
    ... ])
    >>> group.deployments[0].id
    'openai/gpt-4o-mini@127.0.0.1:8001'
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from workbench.core.exceptions import ConfigError
from workbench.core.redaction import REDACTOR, is_secret

#: litellm routing strategies a group can use (``usage-based-routing-v2`` is the one that enforces rpm/tpm).
RoutingStrategy = Literal["simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing-v2"]
#: The strategy that holds deployments to their rpm/tpm limits.
LIMITING_STRATEGY = "usage-based-routing-v2"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Deployment(BaseModel):
    """One place a group's model can be called.

    Args:
        model: The litellm model string (``openai/gpt-4o-mini``, ``azure/my-deployment``...).
        api_base: The server's URL, for self-hosted or proxied deployments.
        api_key_env: Name of the environment variable holding the key (never the key itself).
        rpm: Requests per minute this deployment may take (litellm counts per calendar minute).
        tpm: Tokens per minute this deployment may take.
        order: Priority level: deployments of order 2 are tried only when every order-1 one
            failed, and so on. Unset: all deployments share one level.
        weight: Relative share of calls under ``simple-shuffle``.
        id: The name the ``deployment`` column shows; by default ``model@host:port``.
        params: Other litellm params of this deployment (``api_version``...); no credentials.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    api_base: str | None = None
    api_key_env: str | None = None
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    order: int | None = Field(default=None, ge=1)
    weight: float | None = Field(default=None, gt=0)
    id: str | None = Field(default=None, min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(
                f"must name an environment variable (such as A_KEY), not hold a key; got a value that is "
                f"not a variable name ({len(value)} characters, not shown)"
            )
        return value

    @field_validator("params")
    @classmethod
    def _no_credentials(cls, value: dict[str, Any]) -> dict[str, Any]:
        secret = sorted(k for k in value if is_secret(k))
        if secret:
            raise ValueError(
                f"params {secret} look like credentials; keys are never written in a config: put the key in an "
                "environment variable and name it in `api_key_env`"
            )
        return value

    @field_validator("api_base")
    @classmethod
    def _no_userinfo(cls, value: str | None) -> str | None:
        if value is not None and urllib.parse.urlsplit(value).password:
            raise ValueError("must not carry a password (user:password@host); name the key in `api_key_env` instead")
        return value

    def label(self) -> str:
        """The ``deployment`` column's value: ``id``, else ``model@host:port`` (or the model alone)."""
        if self.id:
            return self.id
        if self.api_base:
            return f"{self.model}@{urllib.parse.urlsplit(self.api_base).netloc or self.api_base}"
        return self.model


class RouterGroup(BaseModel):
    """A named model answered by several deployments, through litellm's ``Router``.

    Args:
        name: The model's name in the experiment (``model`` column, cache key, MLflow run).
        deployments: Where it can be called; at least one.
        routing_strategy: How litellm picks among the deployments of one order level. Unset:
            ``usage-based-routing-v2`` when a deployment has an ``rpm``/``tpm`` limit (the only
            strategy that enforces them), else ``simple-shuffle``.
        num_retries: Retries of a call across the deployments (the router's, not the engine's:
            see :mod:`workbench.providers.router`). Unset: the run's ``max_attempts`` - 1.
        cooldown_s: Seconds a failing or rate-limited deployment is left out (litellm's default if unset).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    deployments: list[Deployment] = Field(min_length=1)
    routing_strategy: RoutingStrategy | None = None
    num_retries: int | None = Field(default=None, ge=0)
    cooldown_s: float | None = Field(default=None, ge=0)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(describe_errors(f"router group {data.get('name')!r}", exc)) from None

    @model_validator(mode="after")
    def _consistent(self) -> RouterGroup:
        labels = [d.label() for d in self.deployments]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(
                f"deployments {dupes} appear twice (same model and api_base); give each an `id` to tell them apart"
            )
        limited = [d.label() for d in self.deployments if d.rpm or d.tpm]
        if limited and self.routing_strategy not in (None, LIMITING_STRATEGY):
            raise ValueError(
                f"deployments {limited} have rpm/tpm limits, which litellm enforces only with routing_strategy "
                f"{LIMITING_STRATEGY!r} (got {self.routing_strategy!r}); drop routing_strategy, or use `weight` "
                "to share calls without a limit"
            )
        return self

    @property
    def strategy(self) -> str:
        """The routing strategy in effect (see ``routing_strategy``)."""
        if self.routing_strategy is not None:
            return self.routing_strategy
        return LIMITING_STRATEGY if any(d.rpm or d.tpm for d in self.deployments) else "simple-shuffle"

    def to_spec(self) -> dict[str, Any]:
        """The group as plain data (for MLflow params and reports): env var names, never keys."""
        return self.model_dump(exclude_none=True, exclude_defaults=True) | {"name": self.name}


def describe_errors(where: str, exc: ValidationError) -> str:
    """One line per pydantic error, naming the field; a credential-like field's value is never shown."""
    lines = [f"{where} is not a valid router group:"]
    for error in exc.errors():
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".") or "<group>"
        hidden = not error["loc"] or any(is_secret(p) for p in error["loc"])  # a whole group, or a key's value
        shown = "" if hidden else f" (got {REDACTOR.data(error.get('input'), pii=False)!r})"
        if error["type"] == "extra_forbidden":
            lines.append(f"  field {loc!r}: unknown field; check its spelling (see RouterGroup / Deployment)")
        elif error["type"] == "missing":
            lines.append(f"  field {loc!r}: required but missing")
        else:
            lines.append(f"  field {loc!r}: {error['msg'].removeprefix('Value error, ')}{shown}")
    return "\n".join(lines)
