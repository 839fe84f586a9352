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
from typing import Any

from workbench.core.chunks import Chunk, format_context
from workbench.core.dataset import Case
from workbench.core.exceptions import DatasetError, RetrievalError, ScorerError
from workbench.core.retrieval_spec import CONTEXT_VARIABLE
from workbench.core.spec import ExperimentSpec
from workbench.core.variant import PromptVariant
from workbench.engine.cache import cache_key
from workbench.providers.models import check_model, check_params, is_local
from workbench.providers.openai_compatible import TRANSPORT, check_compatible
from workbench.retrieval.run import PreparedRetrieval, prepare


@dataclass(frozen=True)
class Call:
    """One planned model call."""

    index: int
    variant: PromptVariant
    model: str
    case: Case
    repeat: int
    messages: list[dict[str, str]]
    retrieved: tuple[Chunk, ...] | None = None  # None: the variant does not retrieve

    @functools.cached_property
    def key(self) -> str:
        return cache_key(self.model, self.messages, self.variant.params, self.repeat)


def render_prompt(messages: Sequence[Mapping[str, str]]) -> str:
    """Readable text of what this case sent, without the few-shot turns (they are in the template)."""
    shown = [m for m in messages if m["role"] == "system"] + [messages[-1]]
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in shown)


def validate(experiment: ExperimentSpec) -> None:
    """Everything that can be checked before spending money (and before any MLflow run opens).

    Raises:
        DatasetError: the dataset has no rows, or does not fit the variants.
        ModelError: a model is unknown, lacks its key, or a param is not plain JSON.
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
    _prepare_retrieval(experiment)  # indexes are built now, before any call
    for variant in experiment.variants:
        for model in experiment.models:
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
    variant: PromptVariant, case: Case, retrieval: PreparedRetrieval | None
) -> tuple[list[dict[str, str]], tuple[Chunk, ...] | None]:
    """A case's messages for one variant, and the chunks retrieved for them (None without retrieval)."""
    if retrieval is None:
        return variant.render(case.inputs, where=case.where), None
    chunks = retrieval.retrieve(case.inputs, where=case.where)
    row: dict[str, Any] = {**case.inputs, CONTEXT_VARIABLE: format_context(chunks)}
    return variant.render(row, where=case.where), chunks


def plan(experiment: ExperimentSpec) -> Iterator[Call]:
    """Every call of the experiment, rendered lazily, case by case.

    Case-major order keeps all variants and models progressing together, so
    an interrupted run has comparable partial results.
    """
    index = 0
    retrievals = _prepare_retrieval(experiment)
    for case in experiment.dataset.cases():
        for variant in experiment.variants:
            messages, chunks = render_case(variant, case, retrievals.get(variant.name))
            for model in experiment.models:
                for repeat in range(experiment.repeats):
                    yield Call(index, variant, model, case, repeat, messages, chunks)
                    index += 1
