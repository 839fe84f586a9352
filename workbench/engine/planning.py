"""Before the first call: what an experiment will call, and whether it can.

:func:`validate` checks everything that can be checked before money is spent
(the dataset has rows and fits the variants, models and keys, params are plain
JSON, scorers against expected values, the transport); :func:`plan` yields the
calls lazily, case by case. The engine in :mod:`workbench.engine.runner` runs them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.core.dataset import Case
from workbench.core.exceptions import DatasetError, ScorerError
from workbench.core.images import base_dir_of, check_images, readable
from workbench.core.spec import ExperimentSpec
from workbench.core.tool_results import check_tool_cases
from workbench.core.variant import PromptVariant
from workbench.engine.cache import cache_key
from workbench.providers.models import check_model, check_params, is_local
from workbench.providers.openai_compatible import TRANSPORT, check_compatible


@dataclass(frozen=True)
class Call:
    """One planned model call."""

    index: int
    variant: PromptVariant
    model: str
    case: Case
    repeat: int
    messages: list[dict[str, Any]]

    @functools.cached_property
    def key(self) -> str:
        return cache_key(self.model, self.messages, self.variant.params, self.repeat)


def render_prompt(messages: Sequence[Mapping[str, Any]]) -> str:
    """Readable text of what this case sent, without the few-shot turns (they are in the template).

    An image is shown as ``[image: photo.jpg]``, never as its base64 text.
    """
    shown = [m for m in messages if m["role"] == "system"] + [messages[-1]]
    return "\n\n".join(f"[{m['role']}]\n{readable(m['content'])}" for m in shown)


def validate(experiment: ExperimentSpec) -> None:
    """Everything that can be checked before spending money (and before any MLflow run opens).

    Raises:
        DatasetError: the dataset has no rows, or does not fit the variants.
        ModelError: a model is unknown, lacks its key, or a param is not plain JSON.
        ScorerError: a scorer cannot score a case's expected values.
    """
    dataset = experiment.dataset
    if len(dataset) == 0:
        raise DatasetError(
            f"dataset {dataset.source} has no rows (only a header?); add cases to it, "
            f"or check the `limit` of experiment {experiment.name!r}"
        )
    dataset.validate(experiment.variants)
    local = [model for model in experiment.models if is_local(model)]  # text only
    check_images(dataset.cases(), experiment.variants, text_only_models=local, base_dir=base_dir_of(dataset.source))
    check_tool_cases(experiment.variants, dataset.cases(), dataset.columns)
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


def plan(experiment: ExperimentSpec) -> Iterator[Call]:
    """Every call of the experiment, rendered lazily, case by case.

    Case-major order keeps all variants and models progressing together, so
    an interrupted run has comparable partial results.
    """
    index = 0
    base_dir = base_dir_of(experiment.dataset.source)  # image paths are relative to the dataset file
    for case in experiment.dataset.cases():
        for variant in experiment.variants:
            messages = variant.render(case.inputs, where=case.where, base_dir=base_dir)
            for model in experiment.models:
                for repeat in range(experiment.repeats):
                    yield Call(index, variant, model, case, repeat, messages)
                    index += 1
