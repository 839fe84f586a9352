"""Before the first call: what an experiment will call, and whether it can.

:func:`validate` checks everything that can be checked before money is spent
(the dataset has rows and fits the variants, models and keys, params are plain
JSON, scorers against expected values, the transport, and it builds the knowledge-base
indexes of variants that retrieve); :func:`plan` yields the calls lazily, case by case, each
with its retrieved chunks rendered into ``{{ context }}``. The engine in
:mod:`workbench.engine.runner` runs them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.chunks import Chunk, format_context
from workbench.core.conversation import readable_prompt
from workbench.core.dataset import Case
from workbench.core.exceptions import DatasetError, RetrievalError, ScorerError
from workbench.core.images import base_dir_of, check_images, readable
from workbench.core.retrieval_spec import CONTEXT_VARIABLE
from workbench.core.spec import ExperimentSpec
from workbench.core.tool_results import check_tool_cases
from workbench.core.variant import PromptVariant
from workbench.engine.cache import cache_key
from workbench.providers.models import check_model, check_params, is_local
from workbench.providers.openai_compatible import TRANSPORT, check_compatible
from workbench.providers.router import check_group
from workbench.retrieval.run import PreparedRetrieval, prepare


@dataclass(frozen=True)
class Call:
    """One planned model call."""

    index: int
    variant: PromptVariant
    model: str
    case: Case
    repeat: int
    messages: list[dict[str, Any]]
    retrieved: tuple[Chunk, ...] | None = None  # None: the variant does not retrieve

    @functools.cached_property
    def key(self) -> str:
        return cache_key(self.model, self.messages, self.variant.params, self.repeat)


def render_prompt(messages: Sequence[Mapping[str, Any]], *, few_shot: int = 0) -> str:
    """Readable text of what this case sent: system, a conversation's history compactly, the user turn.

    The ``few_shot`` examples' turns are left out (they are in the variant). An image is shown as
    ``[image: photo.jpg]``, never as its base64 text.
    """
    return readable_prompt([{**m, "content": readable(m["content"])} for m in messages], few_shot=few_shot)


def validate(experiment: ExperimentSpec) -> None:
    """Everything that can be checked before spending money (and before any MLflow run opens).

    Raises:
        DatasetError: the dataset has no rows, or does not fit the variants.
        ModelError: a model is unknown, lacks its key, or a param is not plain JSON; a router
            group's deployment is unknown or its key variable is unset.
        ScorerError: a scorer cannot score a case's expected values.
        RetrievalError: a variant's knowledge base cannot be read or indexed (or lacks its extra).
    """
    dataset = experiment.dataset
    if len(dataset) == 0:
        raise DatasetError(
            f"dataset {dataset.source} has no rows (only a header?); add cases to it, "
            f"or check the `limit` of experiment {experiment.name!r}"
        )
    dataset.validate(experiment.variants)
    routers = experiment.routers
    local = [model for model in experiment.models if model not in routers and is_local(model)]  # text only
    check_images(dataset.cases(), experiment.variants, text_only_models=local, base_dir=base_dir_of(dataset.source))
    check_tool_cases(experiment.variants, dataset.cases(), dataset.columns)
    _prepare_retrieval(experiment)  # indexes are built now, before any call
    for variant in experiment.variants:
        for model in experiment.models:
            if model in routers:  # always through litellm's Router, whatever the transport
                check_group(routers[model], variant.params, where=f"variant {variant.name!r}")
                check_params(model, variant.params, where=f"variant {variant.name!r}")
                continue
            direct = experiment.settings.transport == TRANSPORT and not is_local(model)
            check_model(model, variant.params, needs_key_with_base=not direct)
            check_params(model, variant.params, where=f"variant {variant.name!r}")
            if direct:
                check_compatible(model, variant.params)
    for scorer in experiment.scorers:
        check = getattr(scorer, "check", None)
        if check is None:
            continue
        for case in dataset.cases():
            try:
                check(case.expectations)
            except ScorerError as exc:
                raise ScorerError(f"{case.where} (id {case.id!r}): {exc}") from exc


def _prepare_retrieval(experiment: ExperimentSpec) -> dict[str, PreparedRetrieval]:
    """Each retrieving variant's prepared retrieval (built indexes are reused within the process)."""
    prepared = {}
    for variant in experiment.variants:
        spec = variant.retrieval
        if spec is None:
            continue
        if spec.column is not None and spec.column not in experiment.dataset.columns:
            raise DatasetError(
                f"dataset {experiment.dataset.source} has no column {spec.column!r} of retrieved contexts "
                f"used by variant {variant.name!r}; its columns are {sorted(experiment.dataset.columns)}"
            )
        try:
            prepared[variant.name] = prepare(spec)
        except RetrievalError as exc:
            raise RetrievalError(f"variant {variant.name!r}: {exc}") from exc
    return prepared


def render_case(
    variant: PromptVariant, case: Case, retrieval: PreparedRetrieval | None, *, base_dir: Path | None = None
) -> tuple[list[dict[str, Any]], tuple[Chunk, ...] | None]:
    """A case's messages for one variant, and the chunks retrieved for them (None without retrieval).

    ``base_dir``: the folder image paths are relative to (the dataset file's).
    """
    if retrieval is None:
        return variant.render(case.inputs, where=case.where, base_dir=base_dir), None
    chunks = retrieval.retrieve(case.inputs, where=case.where)
    row: dict[str, Any] = {**case.inputs, CONTEXT_VARIABLE: format_context(chunks)}
    return variant.render(row, where=case.where, base_dir=base_dir), chunks


def plan(experiment: ExperimentSpec) -> Iterator[Call]:
    """Every call of the experiment, rendered lazily, case by case.

    Case-major order keeps all variants and models progressing together, so
    an interrupted run has comparable partial results.
    """
    index = 0
    retrievals = _prepare_retrieval(experiment)
    base_dir = base_dir_of(experiment.dataset.source)  # image paths are relative to the dataset file
    for case in experiment.dataset.cases():
        for variant in experiment.variants:
            messages, chunks = render_case(variant, case, retrievals.get(variant.name), base_dir=base_dir)
            for model in experiment.models:
                for repeat in range(experiment.repeats):
                    yield Call(index, variant, model, case, repeat, messages, chunks)
                    index += 1
