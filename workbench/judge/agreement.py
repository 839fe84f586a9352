"""Does the judge agree with people? Agreement rate, Cohen's kappa and the confusion table.

An LLM judge is only worth its cost if its verdicts match what a person would
say. :func:`judge_agreement` lines up judge scores with human labels (thumbs
up/down from :func:`workbench.notebook.review`, or any 1/0 labels), turns scores into
pass/fail at a threshold, and reports how often the two agree, Cohen's kappa
(agreement beyond what chance would give with these pass rates) and where
they disagree.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.core import schema as col
from workbench.core.exceptions import UsageError
from workbench.core.html import frame_html, render
from workbench.core.labels import LabelStore, output_hash

#: The two classes compared, in the order of the confusion table.
CLASSES: tuple[str, str] = ("pass", "fail")
#: Columns that may identify a judged output, matched between scores and labels.
JOIN_KEYS: tuple[str, ...] = ("case_id", "variant", "variant_version", "model", "repeat", "output_hash")
_PASS = {"up", "pass", "passed", "yes", "y", "true", "good", "1", "1.0", "👍"}
_FAIL = {"down", "fail", "failed", "no", "n", "false", "bad", "0", "0.0", "👎"}
# Landis & Koch (1977), the usual reading of kappa.
_KAPPA_WORDS = ((0.0, "no"), (0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial"))


def kappa_in_words(kappa: float) -> str:
    """Landis & Koch's reading of a kappa value.

    Example:
        >>> kappa_in_words(0.7)
        'substantial'
    """
    if math.isnan(kappa):
        return "undefined"
    if kappa <= 0:
        return "no"
    for upper, words in _KAPPA_WORDS[1:]:
        if kappa <= upper:
            return words
    return "almost perfect"


@dataclass
class JudgeAgreement:
    """How well judge verdicts match human labels.

    Attributes:
        n: Outputs with both a judge score and a human label.
        agreement: Share of them where judge and human agree.
        kappa: Cohen's kappa (NaN when undefined, see ``notes``).
        confusion: Counts, rows the human label, columns the judge's (``pass``/``fail``).
        pairs: One row per compared output: its keys, ``judge_score``,
            ``judge``, ``human`` and ``agree``.
        threshold: A judge score at or above this is a pass.
        notes: Caveats: unscored or unmatched outputs, degenerate labels.
    """

    n: int
    agreement: float
    kappa: float
    confusion: pd.DataFrame
    pairs: pd.DataFrame
    threshold: float
    notes: list[str] = field(default_factory=list)

    @property
    def disagreements(self) -> pd.DataFrame:
        """The compared outputs where judge and human differ."""
        return self.pairs[~self.pairs["agree"]]

    def rate(self, who: str) -> float:
        """Pass rate of ``"judge"`` or ``"human"``."""
        return float((self.pairs[who] == "pass").mean()) if self.n else math.nan

    def __str__(self) -> str:
        if self.n == 0:
            return "Judge vs humans: nothing to compare. " + " ".join(self.notes)
        agreed = int(self.pairs["agree"].sum())
        kappa = "undefined" if math.isnan(self.kappa) else f"{self.kappa:.2f}"
        text = (
            f"Judge vs humans on {self.n} outputs: they agree on {agreed} ({self.agreement:.0%}); "
            f"Cohen's kappa {kappa} ({kappa_in_words(self.kappa)} agreement beyond chance). "
            f"The judge passes {self.rate('judge'):.0%}, humans {self.rate('human'):.0%} "
            f"(judge threshold {self.threshold:g})."
        )
        return " ".join([text, *self.notes])

    def __repr__(self) -> str:
        return f"JudgeAgreement(n={self.n}, agreement={self.agreement:.3f}, kappa={self.kappa:.3f})"

    def _repr_html_(self) -> str:
        return render("message.html.j2", text=str(self)) + frame_html(self.confusion, index=True)


def _label(value: Any, threshold: float) -> str | None:
    """``"pass"``/``"fail"`` of a human label or judge score; None when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return "pass" if value else "fail"
    if isinstance(value, (int, float, np.number)):
        return "pass" if float(value) >= threshold else "fail"
    word = str(value).strip().lower()
    if word in _PASS:
        return "pass"
    if word in _FAIL:
        return "fail"
    raise UsageError(f"human label {value!r} is not understood; use 'up'/'down', 'pass'/'fail' or 1/0")


def _as_frame(labels: Any) -> Any:
    """A review, a result or a JSONL path become a DataFrame; anything else is returned as is."""
    if isinstance(labels, pd.DataFrame):
        return labels
    if isinstance(labels, (str, Path)):  # the label store's reader: a torn last line is skipped, with a warning
        return pd.DataFrame(LabelStore(labels).records())
    inner = getattr(labels, "labels", None)
    if isinstance(inner, pd.DataFrame):  # a workbench Review
        return inner
    cases = getattr(labels, "cases", None)
    if isinstance(cases, pd.DataFrame):  # an ExperimentResult
        return cases
    return labels


def _score_column(frame: pd.DataFrame, score: str | None, result: Any) -> str:
    if score is not None:
        column = score if score in frame else col.score_column(score)
        if column not in frame:
            raise UsageError(f"no score column {score!r}; the frame has {[c for c in frame if 'score' in str(c)]}")
        return column
    judges = [
        s.name
        for s in getattr(getattr(result, "experiment", None), "scorers", [])
        if getattr(s, "type_name", "") == "llm_judge"
    ]
    if len(judges) == 1:
        return col.score_column(judges[0])
    scored = [c for c in frame.columns if str(c).startswith(col.SCORE)] or [
        c for c in ("score", "judge_score") if c in frame
    ]
    if len(scored) != 1:
        raise UsageError(f"say which judge column to compare with `score=`; candidates are {scored}")
    return str(scored[0])


def _align(judge: Any, human: Any, score: str | None) -> tuple[pd.DataFrame, list[str]]:
    """One row per output with a ``judge_score`` and a raw ``human`` label, and notes."""
    result, judge, human = judge, _as_frame(judge), _as_frame(human)
    if not isinstance(judge, pd.DataFrame) and not isinstance(human, pd.DataFrame):
        judge_values, human_values = list(judge), list(human)
        if len(judge_values) != len(human_values):
            raise UsageError(
                f"{len(judge_values)} judge scores but {len(human_values)} human labels; aligned sequences "
                "must have the same length (or pass DataFrames keyed by case_id)"
            )
        return pd.DataFrame({"judge_score": judge_values, "human": human_values}), []
    if not (isinstance(judge, pd.DataFrame) and isinstance(human, pd.DataFrame)):
        raise UsageError("pass judge scores and human labels both as sequences, or both as frames keyed by case_id")
    if "label" not in human:
        raise UsageError(f"human labels need a 'label' column; they have {list(human.columns)}")
    column = _score_column(judge, score, result)
    judge = judge.rename(columns={column: "judge_score"})
    if "output_hash" in human and "output_hash" not in judge and "output" in judge:
        judge = judge.assign(output_hash=judge["output"].map(output_hash))
    keys = [k for k in JOIN_KEYS if k in judge and k in human]
    if "case_id" not in keys:
        raise UsageError("both frames need a 'case_id' column to be matched")
    human = human.sort_values("ts") if "ts" in human else human
    human = human.drop_duplicates(keys, keep="last")  # the latest click on an output wins
    for key in keys:  # ids read from JSON may be numbers, from a CSV strings
        judge, human = judge.assign(**{key: judge[key].astype(str)}), human.assign(**{key: human[key].astype(str)})
    merged = judge[[*keys, "judge_score"]].merge(human[[*keys, "label"]], on=keys, how="inner")
    if merged.duplicated(keys).any():
        extra = [k for k in JOIN_KEYS if k in judge and k not in keys]
        raise UsageError(
            f"a human label keyed by {keys} matches several judged outputs (they differ in {extra}); "
            "give the labels those columns too, or filter the judged rows to one model and repeat"
        )
    notes = []
    if len(merged) < len(human):
        notes.append(f"{len(human) - len(merged)} human label(s) matched no judged output and were left out.")
    return merged.rename(columns={"label": "human"}), notes


def judge_agreement(
    judge_scores: Any,
    human_labels: Any,
    *,
    threshold: float = 0.5,
    score: str | None = None,
) -> JudgeAgreement:
    """Compare judge verdicts with human labels: agreement, Cohen's kappa, confusion table.

    Args:
        judge_scores: Judge scores in 0..1, as a sequence aligned with
            ``human_labels``; or keyed by case: an ExperimentResult or its
            ``cases`` frame (the judge's ``score.<name>`` column is used).
        human_labels: ``"up"``/``"down"``, ``"pass"``/``"fail"`` or 1/0; a
            sequence, or a frame with ``case_id`` and ``label`` (plus any of
            ``variant``, ``variant_version``, ``model``, ``repeat``,
            ``output_hash`` to match outputs exactly), the path of a review
            JSONL file, or a :class:`~workbench.notebook.review.Review`.
        threshold: A judge score at or above this counts as a pass.
        score: The judge column when it cannot be guessed (``"llm_judge"`` or ``"score.llm_judge"``).

    Returns:
        A :class:`JudgeAgreement`. Outputs the judge could not score (NaN) are
        left out and counted in its notes. When both sides give every output
        the same label, kappa is NaN (undefined) with a note.

    Example:
        >>> a = judge_agreement([1, 1, 0, 0, 1, 0], ["up", "up", "down", "up", "up", "down"])
        >>> round(a.agreement, 3), round(a.kappa, 3)
        (0.833, 0.667)
    """
    pairs, notes = _align(judge_scores, human_labels, score)
    pairs["judge_score"] = pd.to_numeric(pairs["judge_score"], errors="coerce")
    unscored = pairs["judge_score"].isna()
    pairs["human"] = [_label(v, threshold) for v in pairs["human"]]
    unlabelled = pairs["human"].isna() & ~unscored
    if unscored.any():
        notes.append(f"{int(unscored.sum())} output(s) the judge could not score (NaN) were left out.")
    if unlabelled.any():
        notes.append(f"{int(unlabelled.sum())} output(s) without a human label were left out.")
    pairs = pairs[~unscored & ~unlabelled].reset_index(drop=True)
    pairs.insert(
        pairs.columns.get_loc("judge_score") + 1, "judge", [_label(s, threshold) for s in pairs["judge_score"]]
    )
    pairs["agree"] = pairs["judge"] == pairs["human"]
    confusion = pd.crosstab(
        pd.Categorical(pairs["human"], categories=CLASSES),
        pd.Categorical(pairs["judge"], categories=CLASSES),
        rownames=["human"],
        colnames=["judge"],
        dropna=False,
    )
    n = len(pairs)
    if n == 0:
        notes.append("No output has both a judge score and a human label.")
        return JudgeAgreement(0, math.nan, math.nan, confusion, pairs, threshold, notes)
    humans, judges = set(pairs["human"]), set(pairs["judge"])
    if len(humans | judges) == 1:
        kappa = math.nan
        notes.append(
            f"Kappa is undefined: judge and humans gave every output {next(iter(humans))!r}, so agreement "
            "cannot be told apart from chance. Label some outputs of the other kind."
        )
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from sklearn.metrics import cohen_kappa_score  # imported on use: it is slow to import

            kappa = float(cohen_kappa_score(pairs["human"], pairs["judge"], labels=list(CLASSES)))
        if len(humans) == 1:
            notes.append(
                f"Humans labelled every output {next(iter(humans))!r}: this cannot show whether the judge "
                "tells good outputs from bad ones; label some of the other kind."
            )
    return JudgeAgreement(n, float(pairs["agree"].mean()), kappa, confusion, pairs, threshold, notes)
