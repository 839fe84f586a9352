"""Reading variants back from MLflow's Prompt Registry (``prompts:/name@alias``).

The tracker registers every variant it runs (:mod:`workbench.tracking.prompts`): one
registered prompt per experiment x variant, named ``<experiment>.<variant>``, whose
versions carry the whole variant (templates, few-shot examples, params; credentials
masked) as the version tag :data:`VARIANT_TAG`. :func:`registered_variant` reads one
back as the plain-data form :meth:`PromptVariant.from_dict
<workbench.core.variant.PromptVariant.from_dict>` takes; users call
``wb.PromptVariant.from_registry("prompts:/sentiment.few_shot@production")``.

A prompt registered outside the workbench (by ``mlflow.genai.register_prompt``) has no
such tag; it is read from its template: a text template becomes the user prompt, a chat
template's system message the system prompt and its last user message the prompt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from workbench.core.exceptions import UsageError
from workbench.util.paths import default_tracking_uri

#: Version tag holding the variant's plain-data form (JSON, credentials masked).
VARIANT_TAG = "workbench.variant"
#: Version tag holding the variant's content hash (:attr:`PromptVariant.version`).
VERSION_TAG = "workbench.variant_version"

_NAME_RULE = re.compile(r"[^A-Za-z0-9_.-]+")


def prompt_name(experiment: str, variant: str) -> str:
    """The registered prompt's name for a variant of an experiment (MLflow allows ``[A-Za-z0-9_.-]``).

    Example:
        >>> prompt_name("support rag", "k=3")
        'support_rag.k_3'
    """
    return f"{_NAME_RULE.sub('_', experiment)}.{_NAME_RULE.sub('_', variant)}"


def registered_variant(uri: str, *, tracking_uri: str | None = None) -> dict[str, Any]:
    """The plain-data form of the variant a registered prompt version holds.

    Args:
        uri: ``prompts:/<name>@<alias>``, ``prompts:/<name>/<version>``, or ``prompts:/<name>`` (latest).
        tracking_uri: The MLflow store; :func:`~workbench.util.paths.default_tracking_uri` by default.

    Raises:
        UsageError: the URI is not a prompt URI, or names no registered prompt version.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if not uri.startswith("prompts:/"):
        raise UsageError(f"{uri!r} is not a prompt URI; write prompts:/<name>@<alias> or prompts:/<name>/<version>")
    client = MlflowClient(tracking_uri or default_tracking_uri())
    try:
        version = client.load_prompt(uri)
    except MlflowException as exc:
        raise UsageError(f"no registered prompt at {uri}: {exc.message}") from exc
    if version is None:
        raise UsageError(f"no registered prompt at {uri}")
    return variant_data(version.name, version.template, version.tags)


def variant_data(name: str, template: str | list[dict[str, Any]], tags: Mapping[str, str]) -> dict[str, Any]:
    """A variant's plain-data form from a registered prompt's template and version tags.

    Example:
        >>> variant_data("sentiment.zero_shot", [{"role": "system", "content": "Be brief."},
        ...                                      {"role": "user", "content": "Review: {{ review }}"}], {})
        {'name': 'zero_shot', 'prompt': 'Review: {{ review }}', 'system': 'Be brief.'}
    """
    if VARIANT_TAG in tags:
        return dict(json.loads(tags[VARIANT_TAG]))
    short = name.rsplit(".", 1)[-1]
    if isinstance(template, str):
        return {"name": short, "prompt": template}
    users = [m["content"] for m in template if m.get("role") == "user"]
    if not users:
        raise UsageError(f"registered prompt {name!r} has no user message to use as the prompt")
    data = {"name": short, "prompt": users[-1]}
    system = [m["content"] for m in template if m.get("role") == "system"]
    if system:
        data["system"] = system[0]
    return data
