"""What MLflow 3's GenAI pages read: registered prompts and the run's dataset.

**Prompts.** Every variant a run uses is registered in MLflow's Prompt Registry as
``<experiment>.<variant>`` (:func:`~workbench.core.registry.prompt_name`), its chat template
(:meth:`PromptVariant.chat_template <workbench.core.variant.PromptVariant.chat_template>`)
as the content and the whole variant (credentials masked) as a version tag. A new version
is made only when the variant's content hash is new to that prompt (re-running an older
variant finds its old version), with a commit message that says what changed. The runs
that used it are linked to it, so the run page lists "Registered prompts" and the prompt
page lists its runs. An alias (``production``) names the version that is live:
:func:`promote` moves it (``workbench promote``), and moving it back is the rollback.

**Dataset.** The run's dataset is logged as an input of the parent run (name, content
hash, source file, column schema, row count): the run page's "Datasets" shows it, and
runs on the same data share its digest.
"""

from __future__ import annotations

import difflib
import json
import threading
import time
import warnings
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Dataset as MlflowDataset
from mlflow.entities import DatasetInput, InputTag
from mlflow.entities.model_registry import PromptVersion
from mlflow.exceptions import MlflowException
from mlflow.prompt.constants import PROMPT_EXPERIMENT_IDS_TAG_KEY
from mlflow.tracing.constant import TraceTagKey
from mlflow.tracing.utils.prompt import update_linked_prompts_tag

from workbench.core.dataset import Dataset
from workbench.core.redaction import REDACTOR
from workbench.core.registry import VARIANT_TAG, VERSION_TAG, prompt_name
from workbench.core.spec import ExperimentSpec
from workbench.core.variant import PromptVariant

#: Arrow type names -> MLflow column-spec types (anything else is shown as a string).
_COLSPEC_TYPES = {"int64": "long", "int32": "integer", "double": "double", "float": "float", "bool": "boolean"}


def register_variant(client: MlflowClient, experiment: str, variant: PromptVariant) -> PromptVersion:
    """The registered version holding ``variant``: an existing one with its content hash, else a new one."""
    name = prompt_name(experiment, variant.name)
    versions = _versions(client, name)
    for version in versions:
        if version.tags.get(VERSION_TAG) == variant.version:
            return version
    data = REDACTOR.data(variant.to_dict(redacted=True))  # the chain every value leaving the process passes
    previous = json.loads(versions[0].tags[VARIANT_TAG]) if versions and VARIANT_TAG in versions[0].tags else None
    version = client.register_prompt(
        name,
        REDACTOR.data(variant.chat_template()),
        commit_message=change_summary(previous, data, experiment=experiment),
        tags={VERSION_TAG: variant.version, VARIANT_TAG: json.dumps(data, ensure_ascii=False, default=str)},
    )
    _wait_for_mlflow_tagging()
    return version


def _wait_for_mlflow_tagging(timeout_s: float = 10.0) -> None:
    """Let the thread ``register_prompt`` starts (it adds the active experiment to the prompt's
    experiment list) finish, so it cannot overwrite the list :func:`link_prompts` writes next."""
    for thread in threading.enumerate():
        if thread.name.startswith("link_prompt_to_experiment_thread"):
            thread.join(timeout=timeout_s)


def _versions(client: MlflowClient, name: str) -> list[PromptVersion]:
    """Every version of a registered prompt, newest first (none when it is not registered yet)."""
    if client.get_prompt(name) is None:
        return []
    found: list[PromptVersion] = []
    token = None
    while True:
        page = client.search_prompt_versions(name, max_results=100, page_token=token)
        found += list(page)
        token = page.token
        if not token:
            break
    return sorted(found, key=lambda v: int(v.version), reverse=True)


def change_summary(before: dict[str, Any] | None, after: dict[str, Any], *, experiment: str) -> str:
    """A commit message: what changed from the prompt's latest version, field by field.

    Example:
        >>> change_summary({"name": "a", "prompt": "Q: {{ q }}", "params": {"temperature": 0}},
        ...                {"name": "a", "prompt": "Q: {{ q }}\\nA:", "params": {"temperature": 0.7}},
        ...                experiment="x")
        'prompt: +1/-1 lines; params.temperature: 0 -> 0.7'
    """
    if before is None:
        return f"variant {after['name']!r} of experiment {experiment!r}, first registered by the workbench"
    changes = []
    for key in ("system", "prompt"):
        old, new = before.get(key) or "", after.get(key) or ""
        if old != new:
            diff = list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0))
            added = sum(1 for d in diff if d.startswith("+") and not d.startswith("+++"))
            removed = sum(1 for d in diff if d.startswith("-") and not d.startswith("---"))
            changes.append(f"{key}: +{added}/-{removed} lines")
    old_examples, new_examples = before.get("examples") or [], after.get("examples") or []
    if old_examples != new_examples:
        edited = " (edited)" if len(old_examples) == len(new_examples) else ""
        changes.append(f"examples: {len(old_examples)} -> {len(new_examples)}{edited}")
    old_params, new_params = before.get("params") or {}, after.get("params") or {}
    for key in sorted(set(old_params) | set(new_params)):
        if old_params.get(key) != new_params.get(key):
            changes.append(f"params.{key}: {_short(old_params.get(key))} -> {_short(new_params.get(key))}")
    compared = {"name", "system", "prompt", "examples", "params", "description"}
    for key in sorted((set(before) | set(after)) - compared):
        if before.get(key) != after.get(key):
            changes.append(f"{key} changed")
    return "; ".join(changes) or "same content under a new hash"


def _short(value: Any) -> str:
    text = "unset" if value is None else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def link_prompts(client: MlflowClient, run_id: str, versions: list[PromptVersion]) -> None:
    """Link registered prompt versions to a run (the run page's "Registered prompts") and to its
    experiment (the experiment's Prompts tab).

    MLflow's own ``link_prompt_version_to_run`` looks the run up in the *global* tracking store,
    not the client's, so the run tag it would write is written here through the client.
    """
    if not versions:
        return
    run = client.get_run(run_id)
    current = run.data.tags.get(TraceTagKey.LINKED_PROMPTS)
    client.set_tag(run_id, TraceTagKey.LINKED_PROMPTS, update_linked_prompts_tag(current, versions))
    for name in sorted({v.name for v in versions}):
        _tag_experiment(client, name, run.info.experiment_id)


def _tag_experiment(client: MlflowClient, name: str, experiment_id: str, *, attempts: int = 3) -> None:
    """Add ``experiment_id`` to the prompt's experiment list (what the experiment's Prompts tab reads).

    ``register_prompt`` may start a thread of MLflow's own that writes the same tag at the same
    moment (when an experiment is active in the process); the loser of that race gets a
    uniqueness error, so the tag is read again and written again.
    """
    for attempt in range(attempts):
        prompt = client.get_prompt(name)
        known = [i for i in (prompt.tags.get(PROMPT_EXPERIMENT_IDS_TAG_KEY, "") if prompt else "").split(",") if i]
        if experiment_id in known:
            return
        try:
            # The registry matches ",<id>," with LIKE: the commas keep "1" from matching "10".
            client.set_prompt_tag(name, PROMPT_EXPERIMENT_IDS_TAG_KEY, f",{','.join([*known, experiment_id])},")
            return
        except MlflowException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def promote(client: MlflowClient, experiment: str, variant: PromptVariant, alias: str) -> PromptVersion:
    """Point ``alias`` (e.g. ``production``) at the version holding ``variant`` (registered if new).

    Moving the alias back to an older version is the rollback.
    """
    version = register_variant(client, experiment, variant)
    client.set_prompt_alias(version.name, alias, int(version.version))
    return version


def log_dataset(client: MlflowClient, run_id: str, dataset: Dataset) -> None:
    """Log the run's dataset as an input of the run: its name, content hash, source, columns and size."""
    types = dataset.arrow_types()
    schema = {
        "mlflow_colspec": [
            {"type": _COLSPEC_TYPES.get(str(types.get(name)), "string"), "name": name, "required": False}
            for name in dataset.columns
        ]
    }
    entity = MlflowDataset(
        name=_dataset_name(dataset.source),
        digest=dataset.content_hash,
        source_type="local",
        source=json.dumps({"uri": dataset.source}),
        schema=json.dumps(schema),
        profile=json.dumps({"num_rows": len(dataset)}),
    )
    client.log_inputs(run_id, [DatasetInput(entity, tags=[InputTag("mlflow.data.context", "evaluation")])])


def _dataset_name(source: str) -> str:
    """``data/sentiment.csv`` -> ``sentiment``; an in-memory source keeps its label."""
    tail = source.replace("\\", "/").rsplit("/", 1)[-1]
    return tail.rsplit(".", 1)[0] if "." in tail else tail


def log_run_inputs(client: MlflowClient, run_id: str, experiment: ExperimentSpec) -> dict[str, PromptVersion]:
    """The parent run's GenAI inputs: its dataset, and its variants registered and linked.

    Returns the registered version of each variant (by variant name), for the child runs to link.
    A store without a prompt registry (or any failure here) warns and registers nothing: these
    are views of the run, never a reason to lose it.
    """
    try:
        log_dataset(client, run_id, experiment.dataset)
        versions = {v.name: register_variant(client, experiment.name, v) for v in experiment.variants}
        link_prompts(client, run_id, list(versions.values()))
        return versions
    except Exception as exc:  # e.g. a tracking server without the registry
        warnings.warn(
            f"the run's dataset and prompts were not registered in MLflow: {exc!r}", RuntimeWarning, stacklevel=2
        )
        return {}
