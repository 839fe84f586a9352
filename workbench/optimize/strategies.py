"""How new candidates are made: small strategy objects the search takes turns with.

- :class:`FewShot`: demonstrations bootstrapped from train cases the parent gets right (as
  DSPy's BootstrapFewShot does), a different choice and number of them each time;
- :class:`Reflect`: a proposer reads the parent's failing train cases with the scorer's
  reasons and proposes an edit (GEPA's reflective mutation); :class:`ScriptedProposer` is the
  deterministic one (tests, dry runs), :class:`ModelProposer` asks a model;
- :class:`ParamSweep`: one parameter (``temperature``, ``max_tokens``...) or the model changed.

A strategy returns :class:`~workbench.optimize.candidates.Proposal` objects; the search skips
those already tried (same version on the same model), checks the budget and evaluates the rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from workbench.core import schema as col
from workbench.core.exceptions import UsageError
from workbench.core.variant import EXAMPLE_OUTPUT_KEY, PromptVariant
from workbench.optimize.candidates import Candidate, Proposal
from workbench.optimize.evaluate import Question


@dataclass
class Context:
    """What a strategy may read: the train cases (through the parent's train scores), the
    candidates tried so far, a seeded random generator, and a way to ask a proposer model
    (``ask(question)`` returns the reply; the search checks its cost against the budget first and
    stops the search when it cannot pay)."""

    seen: set[str]
    rng: np.random.Generator
    ask: Callable[[Question], str]


class Strategy(Protocol):
    """Makes proposals from a parent candidate."""

    name: str
    needs_train: bool

    def propose(self, parent: Candidate, context: Context) -> list[Proposal]: ...


def _is_new(variant: PromptVariant, model: str, context: Context) -> bool:
    return f"{variant.version}@{model}" not in context.seen


def _renamed(parent: Candidate, **changes: Any) -> PromptVariant:
    return dataclasses.replace(parent.variant, **changes)


@dataclass
class FewShot:
    """Few-shot demonstrations bootstrapped from train cases the parent answers correctly.

    Args:
        max_demos: Most demonstrations in one prompt; each proposal draws how many (1 to this)
            and which.
        per_step: Proposals per turn.
        threshold: The score at which a train case counts as answered correctly.
    """

    max_demos: int = 4
    per_step: int = 2
    threshold: float = 0.5
    name: str = field(default="few_shot", init=False)
    needs_train: bool = field(default=True, init=False)

    def propose(self, parent: Candidate, context: Context) -> list[Proposal]:
        if parent.train is None:
            return []
        right = parent.train.successes(threshold=self.threshold).drop_duplicates("case_id")
        inputs = [c for c in right.columns if str(c).startswith(col.INPUT)]
        if right.empty or not inputs:
            return []
        out: list[Proposal] = []
        for _ in range(self.per_step * 3):  # a few draws more than needed: some repeat an earlier choice
            k = int(context.rng.integers(1, min(self.max_demos, len(right)) + 1))
            picked = right.iloc[sorted(context.rng.choice(len(right), size=k, replace=False))]
            demos = [_demo(row, inputs) for _, row in picked.iterrows()]
            variant = _renamed(parent, examples=demos)
            if _is_new(variant, parent.model, context) and all(p.variant.version != variant.version for p in out):
                ids = ", ".join(map(str, picked["case_id"]))
                out.append(Proposal(variant, parent.model, f"{k} demonstration(s) from train cases {ids}"))
            if len(out) == self.per_step:
                break
        return out


def _demo(row: pd.Series, inputs: Sequence[str]) -> dict[str, Any]:
    demo = {str(c).removeprefix(col.INPUT): row[c] for c in inputs}
    demo[EXAMPLE_OUTPUT_KEY] = str(row["output"]).strip()
    return demo


@dataclass(frozen=True)
class Edit:
    """A change to a prompt: new field values (``system``, ``prompt``, ``params``) and a note."""

    changes: Mapping[str, Any]
    note: str = ""

    def apply(self, variant: PromptVariant) -> PromptVariant:
        unknown = set(self.changes) - {"system", "prompt", "params"}
        if unknown:
            raise UsageError(f"an edit may change system, prompt or params, not {sorted(unknown)}")
        return dataclasses.replace(variant, **dict(self.changes))


class Proposer(Protocol):
    """Reads a prompt and its failing train cases; proposes edits."""

    def propose(self, variant: PromptVariant, failures: pd.DataFrame, context: Context) -> list[Edit]: ...


@dataclass
class ScriptedProposer:
    """A deterministic proposer: the listed edits, each offered until it has been tried.

    Each edit is an :class:`Edit`, or a callable ``variant -> Edit`` (to edit relative to the
    parent, e.g. append a sentence to its system prompt).
    """

    edits: Sequence[Edit | Callable[[PromptVariant], Edit]]

    def propose(self, variant: PromptVariant, failures: pd.DataFrame, context: Context) -> list[Edit]:
        return [e if isinstance(e, Edit) else e(variant) for e in self.edits]


REFLECT_SYSTEM = (
    "You improve instructions for a language model. You are shown the current instruction and cases "
    "where the model's answer was wrong. Reply with a better instruction only, no explanation."
)


#: Params the proposer sets itself, so they cannot be given.
_PROPOSER_OWN = ("model", "messages", "stream", "n")


@dataclass
class ModelProposer:
    """Asks ``model`` for a better instruction (the system prompt), given failing cases and reasons.

    The question goes through the engine like every call (response cache, retries, limiter), and
    the search checks what it would cost against ``max_calls`` / ``budget_usd`` before asking; a
    restarted search finds the reply in the cache and pays nothing.

    Args:
        model: The proposer model (a litellm model string).
        params: Its model params, as a :class:`~workbench.PromptVariant`'s: ``temperature``,
            ``max_tokens`` (also the bound of the cost estimate: 256 tokens without it),
            ``api_base``, ``api_key``... (credentials are masked wherever they are logged).
        max_failures: Failing train cases shown per question.

    Raises:
        UsageError: params that are not a mapping, that set ``model``, ``messages``, ``stream`` or
            ``n``, or a ``temperature`` / ``max_tokens`` out of range.

    Example:
        >>> proposer = wb.ModelProposer("openai/gpt-4o-mini", params={"temperature": 0.7, "max_tokens": 300})
        >>> strategy = wb.Reflect(proposer)
    """

    model: str = "local/smollm2-135m-instruct"
    params: Mapping[str, Any] = field(default_factory=lambda: {"temperature": 0})
    max_failures: int = 4
    variant: PromptVariant = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"ModelProposer({self.model!r})"
        if not isinstance(self.model, str) or not self.model:
            raise UsageError(f"ModelProposer needs a model name (a litellm model string), got {self.model!r}")
        if not isinstance(self.params, Mapping):
            raise UsageError(f"{where}: params must be a mapping like {{'temperature': 0}}, got {self.params!r}")
        own = sorted(k for k in self.params if k in _PROPOSER_OWN)
        if own:
            raise UsageError(
                f"{where}: params may not set {own}; the proposer sets them itself (model: the first argument)"
            )
        temperature = self.params.get("temperature")
        if temperature is not None and (
            isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2
        ):
            raise UsageError(f"{where}: params temperature must be a number from 0 to 2, got {temperature!r}")
        for key in ("max_tokens", "max_completion_tokens"):
            value = self.params.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UsageError(f"{where}: params {key} must be a whole number >= 1, got {value!r}")
        if isinstance(self.max_failures, bool) or not isinstance(self.max_failures, int) or self.max_failures < 1:
            raise UsageError(f"{where}: max_failures must be a whole number >= 1, got {self.max_failures!r}")
        # the proposer's prompt is a variant like any other: its params are checked (response_format
        # read, credentials learned for masking) and are part of the cache key of its questions
        self.variant = PromptVariant(name="proposer", system=REFLECT_SYSTEM, prompt="{{ request }}", params=self.params)

    def __repr__(self) -> str:  # params may hold a key: shown masked, as a variant's
        return f"ModelProposer(model={self.model!r}, params={self.variant.to_dict(redacted=True).get('params', {})!r})"

    def propose(self, variant: PromptVariant, failures: pd.DataFrame, context: Context) -> list[Edit]:
        shown = failures.sample(n=min(self.max_failures, len(failures)), random_state=context.rng)
        lines = [f"Current instruction: {variant.system or '(none)'}", f"Prompt template: {variant.prompt}", ""]
        for _, row in shown.iterrows():
            inputs = {str(c).removeprefix(col.INPUT): row[c] for c in row.index if str(c).startswith(col.INPUT)}
            expected = {str(c).removeprefix(col.EXPECTED): row[c] for c in row.index if str(c).startswith(col.EXPECTED)}
            lines.append(f"Input: {inputs}\nModel answered: {row['output']!r}\nExpected: {expected}")
            if isinstance(row.get("reason"), str) and row["reason"]:
                lines.append(f"Why it is wrong: {row['reason']}")
            lines.append("")
        lines.append("Better instruction:")
        text = context.ask(Question(self.variant, self.model, "\n".join(lines))).strip()
        if not text or "{{" in text or "{%" in text:
            return []  # nothing usable (an empty reply, or template syntax that would not render)
        return [Edit({"system": text}, note=f"instruction rewritten by {self.model} from {len(shown)} failing case(s)")]

    @property
    def models(self) -> list[str]:
        """The models this proposer calls (checked for a price when the search has ``budget_usd``)."""
        return [self.model]


@dataclass
class Reflect:
    """Rewrite the prompt from its failing train cases, by a :class:`Proposer`.

    Args:
        proposer: A :class:`ModelProposer` (a model reads the failures) or a :class:`ScriptedProposer`.
        per_step: Most proposals per turn.
        threshold: Train cases scored below it are failures.
    """

    proposer: Proposer
    per_step: int = 1
    threshold: float = 0.5
    name: str = field(default="reflect", init=False)
    needs_train: bool = field(default=True, init=False)

    @property
    def models(self) -> list[str]:
        """The models its proposer calls, if any."""
        return list(getattr(self.proposer, "models", []))

    def propose(self, parent: Candidate, context: Context) -> list[Proposal]:
        if parent.train is None:
            return []
        failures = parent.train.failures(threshold=self.threshold)
        if failures.empty:
            return []
        out: list[Proposal] = []
        for edit in self.proposer.propose(parent.variant, failures, context):
            variant = edit.apply(parent.variant)
            if _is_new(variant, parent.model, context) and all(p.variant.version != variant.version for p in out):
                out.append(Proposal(variant, parent.model, edit.note or "edited by reflection"))
            if len(out) == self.per_step:
                break
        return out


@dataclass
class ParamSweep:
    """Parameters (and the model) as ordinary candidates: one value changed per proposal.

    Args:
        grid: Values to try per parameter, e.g. ``{"temperature": [0, 0.7], "max_tokens": [4, 16],
            "model": ["local/smollm2-135m-instruct"]}``.
        per_step: Proposals per turn.
    """

    grid: Mapping[str, Sequence[Any]]
    per_step: int = 2
    name: str = field(default="params", init=False)
    needs_train: bool = field(default=False, init=False)

    @property
    def models(self) -> list[str]:
        """The models the sweep may move candidates to."""
        return [str(m) for m in self.grid.get("model", [])]

    def propose(self, parent: Candidate, context: Context) -> list[Proposal]:
        out: list[Proposal] = []
        for key, values in self.grid.items():
            for value in values:
                if key == "model":
                    variant, model = parent.variant, str(value)
                else:
                    variant, model = _renamed(parent, params={**parent.variant.params, key: value}), parent.model
                if _is_new(variant, model, context) and all(
                    p.variant.version + p.model != variant.version + model for p in out
                ):
                    out.append(Proposal(variant, model, f"{key} = {value!r}"))
                if len(out) == self.per_step:
                    return out
        return out
