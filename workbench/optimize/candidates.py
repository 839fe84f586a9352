"""Candidates of a prompt search, the Pareto front of their per-case dev scores, and parent choice.

A candidate is a :class:`~workbench.PromptVariant` (with its version hash) on a model, the
candidate it was made from, and how. Candidates are kept on a Pareto front of per-case dev
scores, as GEPA does: a prompt that fixes a different subset of cases survives even when its
mean is not the best, and parents are drawn from the front weighted by the cases each one wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.redaction import MASK
from workbench.core.variant import PromptVariant
from workbench.optimize.evaluate import Evaluation


@dataclass(frozen=True)
class Proposal:
    """A new prompt a strategy suggests: the variant, the model to run it on, and what changed."""

    variant: PromptVariant
    model: str
    note: str


@dataclass
class Candidate:
    """One prompt the search tried.

    Attributes:
        id: ``c0`` (the starting prompt), ``c1``, ... in the order they were made.
        variant: The prompt; ``variant.version`` is its content hash.
        model: The model it runs on.
        parent: The id of the candidate it was made from (``None`` for the start).
        strategy: The strategy that made it (``"start"``, ``"few_shot"``, ``"reflect"``, ``"params"``).
        note: What changed, in words.
        step: The search step that made it.
        accepted: Whether it joined the Pareto front of dev scores when it was evaluated.
        dev: Its scores on the dev split.
        train: Its scores on the train split (only for candidates used as parents).
    """

    id: str
    variant: PromptVariant
    model: str
    parent: str | None
    strategy: str
    note: str
    step: int
    accepted: bool = False
    dev: Evaluation | None = None
    train: Evaluation | None = None

    @property
    def key(self) -> str:
        """What makes two candidates the same: the variant's version and the model."""
        return f"{self.variant.version}@{self.model}"

    @property
    def dev_mean(self) -> float:
        return self.dev.mean if self.dev is not None else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "variant": self.variant.to_dict(redacted=True),  # never a key in the state file
            "version": self.variant.version,
            "model": self.model,
            "parent": self.parent,
            "strategy": self.strategy,
            "note": self.note,
            "step": self.step,
            "accepted": self.accepted,
            "dev": None if self.dev is None else self.dev.to_json(),
            "train": None if self.train is None else self.train.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, secrets: Mapping[str, Any] | None = None) -> Candidate:
        """Read a saved candidate; credentials masked when it was saved come back from ``secrets``
        (the starting prompt's params, which the caller holds)."""
        variant = dict(data["variant"])
        variant["params"] = _unmasked(variant.get("params") or {}, secrets or {})
        return cls(
            id=data["id"],
            variant=PromptVariant.from_dict(variant),
            model=data["model"],
            parent=data["parent"],
            strategy=data["strategy"],
            note=data["note"],
            step=int(data["step"]),
            accepted=bool(data["accepted"]),
            dev=None if data["dev"] is None else Evaluation.from_json(data["dev"]),
            train=None if data["train"] is None else Evaluation.from_json(data["train"]),
        )


def _unmasked(params: Mapping[str, Any], secrets: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with each masked value (``"***"``) put back from the same place in ``secrets``."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value == MASK and key in secrets:
            out[key] = secrets[key]
        elif isinstance(value, Mapping) and isinstance(secrets.get(key), Mapping):
            out[key] = _unmasked(value, secrets[key])
        else:
            out[key] = value
    return out


def score_matrix(candidates: Sequence[Candidate]) -> pd.DataFrame:
    """Per-case dev scores, one column per candidate (cases a candidate could not score are NaN)."""
    columns = {c.id: c.dev.per_case for c in candidates if c.dev is not None}
    first = next(iter(columns.values()), None)
    if first is not None and all(s.index.equals(first.index) for s in columns.values()):  # the usual case: no alignment
        return pd.DataFrame(
            np.column_stack([s.to_numpy() for s in columns.values()]), index=first.index, columns=list(columns)
        )
    return pd.DataFrame(columns)


def dominated(scores: pd.DataFrame, candidate: str) -> bool:
    """Whether another candidate scores at least as well on every case and better on one.

    Cases either side could not score are left out of that pair's comparison.
    """
    values = scores.to_numpy(dtype=float)
    mine = values[:, list(scores.columns).index(candidate)][:, None]
    both = ~np.isnan(values) & ~np.isnan(mine)
    at_least = np.where(both, values >= mine, True).all(axis=0)
    better = np.where(both, values > mine, False).any(axis=0)
    return bool((at_least & better & both.any(axis=0)).any())


def pareto_front(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The candidates no other candidate dominates on per-case dev scores (equal twins both stay)."""
    scores = score_matrix(candidates)
    return [c for c in candidates if c.id in scores and not dominated(scores, c.id)]


def choose_parent(front: Sequence[Candidate], rng: np.random.Generator) -> Candidate:
    """Draw a parent from the front, weighted by the dev cases on which it has the best score."""
    scores = score_matrix(front).to_numpy(dtype=float)
    best = np.nanmax(np.where(np.isnan(scores), -np.inf, scores), axis=1, keepdims=True)
    weights = (scores == best).sum(axis=0).astype(float) + 1e-9
    return front[int(rng.choice(len(front), p=weights / weights.sum()))]
