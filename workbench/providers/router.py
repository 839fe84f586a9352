"""Router groups at run time: checked before any call, built into a ``litellm.Router``, closed after.

A :class:`~workbench.core.routing.RouterGroup` becomes one litellm ``Router`` whose
``model_list`` holds its deployments under the group's name. The router picks a deployment
per call (``routing_strategy``), leaves a failing or rate-limited one out for a while
(cooldown), moves to the next ``order`` level when a level fails, and, with
``usage-based-routing-v2``, never sends a deployment more than its ``rpm`` requests (or
``tpm`` tokens) in a calendar minute: when every deployment is at its limit the call waits
and retries. Its counters live in the router, so limits hold within one run (one process),
not across processes.

Who retries: **the router, not the engine.** The engine's retry loop
(:mod:`workbench.engine.retry`) would re-enter the router, and each of its attempts would
make ``num_retries + 1`` router attempts: a dead group would be tried ``max_attempts x
(num_retries + 1)`` times. Only the router knows which deployment failed and can send the
next attempt elsewhere, so a router group's call gets ``num_retries`` router retries
(by default the run's ``max_attempts - 1``: the same number of tries as any other model)
and one engine attempt. The engine's per-model concurrency limit still bounds the group's
calls in flight; the OpenAI SDK's own retries stay off (``max_retries=0``).

Keys: a deployment's ``api_key_env`` becomes litellm's ``os.environ/NAME`` reference, which
litellm resolves when it builds the deployment's client; the key itself is in no
config, row, cache entry or MLflow param, and the redactor learns it so an error message
that quotes it is masked.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any

import litellm

from workbench.core.exceptions import ModelError
from workbench.core.redaction import REDACTOR
from workbench.core.routing import RouterGroup
from workbench.providers.models import check_model, is_local

#: Variant params that say where and with which key to call: per deployment in a group, never per variant.
_PER_DEPLOYMENT = ("api_base", "base_url", "api_key")


def check_group(group: RouterGroup, params: Mapping[str, Any], *, where: str) -> None:
    """Fail before any call if a group cannot work: unknown provider, unset key variable, a local model.

    Args:
        group: The router group.
        params: The variant's params the group's calls will carry.
        where: What is being checked, for the message (``variant 'short'``).

    Raises:
        ModelError: naming the group, the deployment and the fix.
    """
    clash = [p for p in _PER_DEPLOYMENT if p in params]
    if clash:
        raise ModelError(
            f"{where}: params {clash} cannot be used with router group {group.name!r}: each of its deployments "
            "says where it is (`api_base`) and which key it uses (`api_key_env`); remove them from the variant"
        )
    for deployment in group.deployments:
        name = f"router group {group.name!r} deployment {deployment.label()!r}"
        if is_local(deployment.model):  # raises ModelError for an unknown provider
            raise ModelError(
                f"{name}: the embedded local model cannot be a router deployment (it runs in this process); "
                "list it as a model of its own"
            )
        if deployment.api_key_env is not None:
            key = os.environ.get(deployment.api_key_env)
            if not key:
                raise ModelError(
                    f"{name} reads its key from the environment variable {deployment.api_key_env!r}, which is "
                    "not set; set it (for example in a git-ignored .env loaded before running)"
                )
            REDACTOR.learn({"api_key": key})
            continue
        base = {"api_base": deployment.api_base} if deployment.api_base else {}
        try:
            check_model(deployment.model, {**deployment.params, **base})
        except ModelError as exc:
            raise ModelError(f"{name}: {exc}; or name the variable holding its key in `api_key_env`") from exc


def build_router(group: RouterGroup, *, num_retries: int) -> litellm.Router:
    """The litellm ``Router`` of one group (close it with :func:`close_router`).

    Args:
        group: The group.
        num_retries: Router retries of a call when the group does not set its own.
    """
    model_list = []
    for deployment in group.deployments:
        params: dict[str, Any] = {"model": deployment.model, **deployment.params}
        if deployment.api_base:
            params["api_base"] = deployment.api_base
        if deployment.api_key_env:
            params["api_key"] = f"os.environ/{deployment.api_key_env}"  # resolved by litellm, never stored here
        for field in ("rpm", "tpm", "order", "weight"):
            value = getattr(deployment, field)
            if value is not None:
                params[field] = value
        model_list.append(
            {
                "model_name": group.name,
                "litellm_params": params,
                "model_info": {"id": router_id(group, deployment.label())},
            }
        )
    options: dict[str, Any] = {}
    if group.cooldown_s is not None:
        options["cooldown_time"] = group.cooldown_s
    prices = {name: dict(info) for name, info in litellm.model_cost.items()}  # litellm updates them in place
    router = litellm.Router(
        model_list=model_list,
        routing_strategy=group.strategy,  # type: ignore[arg-type]  # checked by RouterGroup
        num_retries=group.num_retries if group.num_retries is not None else num_retries,
        **options,
    )
    _restore_prices(prices, keep={router_id(group, d.label()) for d in group.deployments})
    return router


def _restore_prices(prices: dict[str, Any], *, keep: set[str]) -> None:
    """Undo what building a Router wrote into litellm's global price map, but its deployments' ids.

    litellm registers every deployment's model name there (with no price: ``{}``), which would
    change how that model is priced for the rest of the process, outside the group too.
    """
    for name in list(litellm.model_cost):
        if name in keep:
            continue
        if name not in prices:
            del litellm.model_cost[name]
        elif litellm.model_cost[name] != prices[name]:
            litellm.model_cost[name] = prices[name]


def router_id(group: RouterGroup, label: str) -> str:
    """The id litellm knows a deployment by: a hash, since litellm splits its rpm/tpm counter keys
    on ``:``, which a label (``openai/x@127.0.0.1:8001``) holds."""
    return "wb-" + hashlib.sha256(f"{group.name}\0{label}".encode()).hexdigest()[:16]


def deployment_of(response: Any, group: RouterGroup) -> str | None:
    """Which deployment of ``group`` answered (its :meth:`~workbench.core.routing.Deployment.label`)."""
    hidden = getattr(response, "_hidden_params", None) or {}
    found = hidden.get("model_id")
    if found is None:
        return None
    labels = {router_id(group, d.label()): d.label() for d in group.deployments}
    return labels.get(str(found), str(found))


def close_router(router: litellm.Router) -> None:
    """Unhook a router from litellm's process-wide callback lists (its rpm/tpm counter among them)."""
    router.discard()
    selectors = [getattr(router, attr, None) for attr in litellm.Router._DEFAULT_SELECTOR_ATTR_BY_STRATEGY.values()]
    unregister = getattr(router, "_unregister_router_selectors", None)
    if unregister is not None:  # private in litellm; without it the selector stays registered, harmlessly idle
        unregister([s for s in selectors if s is not None])
