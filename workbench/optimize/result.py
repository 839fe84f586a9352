"""What a prompt search returns: the search tree, each accepted edit's diff, dev scores with CIs,
and the one verdict that counts, the winner against the starting prompt on the test split."""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd

from workbench.analysis.compare import Comparison, compare_many
from workbench.analysis.stats import bootstrap_mean_ci, wilson_ci
from workbench.core import schema as col
from workbench.core.exceptions import UnknownNameError
from workbench.core.html import frame_html, render
from workbench.optimize.candidates import Candidate
from workbench.optimize.evaluate import Evaluation
from workbench.optimize.splits import Splits

#: The model column of the test comparison: candidates may run on different models.
TEST_MODEL = "test split"


@dataclass
class OptimizeResult:
    """A finished (or budget-stopped) prompt search.

    Attributes:
        objective: The scorer optimised.
        candidates: Every candidate, ``candidates[0]`` the starting prompt.
        splits: The train / dev / test splits (sizes and content hashes).
        finalists: Ids of the candidates tested at the end (best dev first); empty when none
            beat the starting prompt on dev.
        tests: Test-split evaluations of the start and the finalists.
        calls, cost_usd: What the whole search paid (cache hits free), the proposer's questions included.
        stop_reason: Why the search stopped.
        limits: ``max_calls`` and ``budget_usd`` as given.
        proposer_calls, proposer_cost_usd: Of ``calls`` / ``cost_usd``, what the proposer model's
            questions (:class:`~workbench.optimize.strategies.ModelProposer`) paid.
    """

    objective: str
    candidates: list[Candidate]
    splits: Splits
    finalists: list[str]
    tests: dict[str, Evaluation]
    calls: int
    cost_usd: float
    stop_reason: str
    limits: Mapping[str, Any] = field(default_factory=dict)
    proposer_calls: int = 0
    proposer_cost_usd: float = 0.0
    n_resamples: int = 10_000
    confidence: float = 0.95

    def __getitem__(self, candidate_id: str) -> Candidate:
        for candidate in self.candidates:
            if candidate.id == candidate_id:
                return candidate
        raise UnknownNameError(f"no candidate {candidate_id!r}; candidates: {[c.id for c in self.candidates]}")

    @property
    def start(self) -> Candidate:
        return self.candidates[0]

    @property
    def winner(self) -> Candidate:
        """The best dev candidate that beat the start there (the start itself when none did)."""
        return self[self.finalists[0]] if self.finalists else self.start

    # -- the verdict on test --------------------------------------------------------------
    @cached_property
    def comparisons(self) -> list[Comparison]:
        """Each finalist against the start on test (paired; Holm over the finalists when several)."""
        tested = [c for c in self.finalists if c in self.tests]
        if not tested or self.start.id not in self.tests:
            return []
        frame = pd.concat([self._test_rows(self.start), *(self._test_rows(self[c]) for c in tested)])
        return compare_many(
            frame,
            self.label(self.start),
            [self.label(self[c]) for c in tested],
            model=TEST_MODEL,
            scorers=[self.objective],
            confidence=self.confidence,
            adjust="holm",
            n_resamples=self.n_resamples,
        )

    def label(self, candidate: Candidate) -> str:
        """How a candidate is named in the verdict: the start's variant name, with the id for the others."""
        return self.start.variant.name if candidate is self.start else f"{self.start.variant.name}-{candidate.id}"

    def _test_rows(self, candidate: Candidate) -> pd.DataFrame:
        rows = self.tests[candidate.id].rows
        return pd.DataFrame(
            {
                col.CASE_ID: rows["case_id"].astype(str),
                col.VARIANT: self.label(candidate),
                col.MODEL: TEST_MODEL,
                col.REPEAT: rows["repeat"].astype(int),
                col.score_column(self.objective): rows["score"].astype(float),
                col.ERROR: None,
            }
        )

    @property
    def significant_gain(self) -> bool:
        """Whether a finalist is significantly better than the start on test (after Holm)."""
        return any(c.results[0].significant and c.results[0].direction == "better" for c in self.comparisons)

    @property
    def verdict_text(self) -> str:
        """The verdict in words: the test comparison, or why there is none."""
        if not self.finalists:
            return (
                f"No candidate beat the starting prompt {self.label(self.start)!r} on dev "
                f"({len(self.candidates) - 1} tried); the test split was not used."
            )
        lines = [cmp.results[0].verdict for cmp in self.comparisons]
        if len(self.comparisons) > 1:
            lines.append(f"p-values are Holm-adjusted over the {len(self.comparisons)} finalists tested on test.")
        lines.append(
            f"Test split: {len(self.splits.test)} cases the search never read (hash {self.splits.hashes['test']})."
        )
        return "\n".join(lines)

    # -- seeing why -------------------------------------------------------------------------
    def dev_ci(self, candidate: Candidate) -> tuple[float, float, float]:
        """Mean dev score with its CI (Wilson for pass/fail scores, bootstrap over cases otherwise)."""
        per_case = candidate.dev.per_case if candidate.dev is not None else pd.Series(dtype=float)
        if per_case.empty:
            return math.nan, math.nan, math.nan
        if per_case.isin([0.0, 1.0]).all():
            ci = wilson_ci(int(per_case.sum()), len(per_case), confidence=self.confidence)
        else:
            ci = bootstrap_mean_ci(per_case.to_numpy(), confidence=self.confidence, n_resamples=2_000)
        return float(per_case.mean()), float(ci.low), float(ci.high)

    @property
    def tree(self) -> pd.DataFrame:
        """One row per candidate: id, parent, step, strategy, what changed, accepted, dev score and CI."""
        rows = []
        for c in self.candidates:
            mean, low, high = self.dev_ci(c)
            rows.append(
                {
                    "id": c.id, "parent": c.parent or "", "step": c.step, "strategy": c.strategy, "change": c.note,
                    "accepted": c.accepted, "dev": mean, "dev_ci_low": low, "dev_ci_high": high,
                    "version": c.variant.version, "model": c.model,
                    "finalist": c.id in self.finalists,
                }
            )  # fmt: skip
        return pd.DataFrame(rows)

    def diff(self, candidate_id: str) -> str:
        """The candidate's prompt against its parent's, as a unified diff (difflib)."""
        child = self[candidate_id]
        parent = self[child.parent] if child.parent else None
        return _diff(parent, child)

    @property
    def accepted_diffs(self) -> dict[str, str]:
        """Each accepted edit's diff against its parent, by candidate id."""
        return {c.id: self.diff(c.id) for c in self.candidates[1:] if c.accepted}

    def plot(self) -> Any:
        """Plotly: dev score with its CI per candidate, in the order tried; accepted ones filled."""
        import plotly.graph_objects as go

        tree = self.tree
        fig = go.Figure()
        for accepted, group in tree.groupby("accepted"):
            fig.add_trace(
                go.Scatter(
                    x=group["id"], y=group["dev"], mode="markers", name="accepted" if accepted else "rejected",
                    marker={"symbol": "circle" if accepted else "circle-open", "size": 10},
                    error_y={"type": "data", "symmetric": False, "array": group["dev_ci_high"] - group["dev"],
                             "arrayminus": group["dev"] - group["dev_ci_low"]},
                    text=group["change"], hovertemplate="%{x}: %{y:.3f}<br>%{text}<extra></extra>",
                )
            )  # fmt: skip
        fig.update_layout(
            title=f"dev {self.objective} per candidate (95% CI); the verdict is on test",
            xaxis={"categoryorder": "array", "categoryarray": list(tree["id"])},
            yaxis_title=self.objective,
        )
        return fig

    def __str__(self) -> str:
        spent = f"{self.calls} calls" + (f", ${self.cost_usd:.4f}" if self.cost_usd else "")
        if self.proposer_calls:
            spent += f" (proposer: {self.proposer_calls} calls" + (
                f", ${self.proposer_cost_usd:.4f})" if self.proposer_cost_usd else ")"
            )
        return "\n".join(
            [
                f"prompt search on {self.objective}: {len(self.candidates)} candidates, {spent}; "
                f"stopped: {self.stop_reason}",
                str(self.splits),
                self.verdict_text,
            ]
        )

    def _repr_html_(self) -> str:
        tree = frame_html(self.tree.drop(columns=["version"]), float_format=lambda x: f"{x:.3f}")
        notes = {c.id: c.note for c in self.candidates}
        diffs = list(self.accepted_diffs.items())
        return render("optimize.html.j2", summary=str(self), tree=tree, diffs=diffs, notes=notes)

    def to_json(self) -> dict[str, Any]:
        """A plain summary: tree, diffs and verdict (what is logged to MLflow)."""
        return {
            "objective": self.objective,
            "splits": {"sizes": self.splits.sizes, "hashes": self.splits.hashes},
            "tree": json.loads(self.tree.to_json(orient="records")),
            "finalists": self.finalists,
            "verdict": self.verdict_text,
            "calls": self.calls,
            "cost_usd": self.cost_usd,
            "proposer_calls": self.proposer_calls,
            "proposer_cost_usd": self.proposer_cost_usd,
            "stop_reason": self.stop_reason,
        }


def _text(candidate: Candidate) -> list[str]:
    data = candidate.variant.to_dict(redacted=True)
    data.pop("name", None)
    data["model"] = candidate.model
    return json.dumps(data, indent=2, sort_keys=True, default=str).splitlines()


def _diff(parent: Candidate | None, child: Candidate) -> str:
    before = _text(parent) if parent is not None else []
    lines = difflib.unified_diff(before, _text(child), parent.id if parent else "(none)", child.id, lineterm="")
    return "\n".join(lines)
