"""Human review: thumbs up / down on outputs, saved as they are clicked.

:func:`review` shows one case at a time in the notebook: the input, the
output of each variant under review, the expected value and the scores, with
👍 / 👎 buttons, an optional comment and previous / next. Every click appends
one JSON line to a label file under ``data/`` (flushed and fsynced, so a dead
kernel loses nothing) and, when the result was logged to MLflow, refreshes a
``review/labels.json`` table on the experiment's parent run.

A label is keyed by case id + variant version + a hash of the output: a
label stays attached to the exact output it judged, and a new prompt version
or a new output needs a new label. The latest click for a key wins.

Labelled failures become tests: :meth:`Review.add_to_golden_set` appends the
thumbs-down cases to a dataset file in one call.

The comment box always belongs to the case on screen: text typed and not yet
saved stays with its case when you move on (and is there again when you come
back), and a labelled case shows its saved comment, ready to edit. After the
last case the widget says how many outputs were labelled and which were
skipped (:attr:`Review.skipped`).

The buttons are reachable with the keyboard: Tab moves between 👍, 👎, the
comment, ← and →; Enter or Space presses the focused button.

Example:
    >>> rv = wb.review(result)  # doctest: +SKIP
    >>> rv  # the widget  # doctest: +SKIP
    >>> rv.labels  # doctest: +SKIP
    >>> rv.add_to_golden_set("data/sentiment_regressions.csv")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from workbench.core import schema as col
from workbench.core.exceptions import OutOfRangeError, UsageError
from workbench.core.golden import append_to_golden_set
from workbench.core.labels import Label, LabelStore, ReviewItem, default_labels_path, output_hash, stored_case_id
from workbench.experiment.result import ExperimentResult
from workbench.notebook.review_widget import ReviewWidget
from workbench.tracking.human_feedback import find_trace, log_human_label
from workbench.tracking.store import MlflowWriter
from workbench.util.paths import resolve

LABELS_ARTIFACT = "review/labels.json"
#: Skipped cases the done message names before it says "and N more".
_MAX_NAMED = 10


def _readable(labels: pd.DataFrame) -> pd.DataFrame:
    """The label file keeps epoch seconds; people read a UTC datetime."""
    if "ts" in labels:
        labels = labels.assign(ts=pd.to_datetime(labels["ts"].astype(float), unit="s", utc=True))
    return labels


def _items(result: ExperimentResult, variants: Sequence[str] | None, model: str | None) -> list[ReviewItem]:
    cases = result.cases
    if variants is not None:
        known = list(dict.fromkeys(cases["variant"]))
        unknown = [v for v in variants if v not in known]
        if unknown:
            raise UsageError(f"no variant(s) {unknown} in this result; its variants are {known}")
        cases = cases[cases["variant"].isin(list(variants))]
    if model is not None:
        cases = cases[cases["model"] == model]
    inputs = [c for c in cases.columns if c.startswith(col.INPUT)]
    expected = [c for c in cases.columns if c.startswith(col.EXPECTED)]
    scores = [c for c in cases.columns if c.startswith(col.SCORE)]
    items = []
    for row in cases.to_dict(orient="records"):
        error = row.get("error")
        items.append(
            ReviewItem(
                case_id=str(row["case_id"]),
                variant=str(row["variant"]),
                variant_version=str(row["variant_version"]),
                model=str(row["model"]),
                repeat=int(row["repeat"]),
                inputs={c.removeprefix(col.INPUT): row[c] for c in inputs},
                expected={c.removeprefix(col.EXPECTED): row[c] for c in expected},
                output=row["output"] if isinstance(row.get("output"), str) else "",  # a failed call has none
                error=error if isinstance(error, str) else None,
                scores={c.removeprefix(col.SCORE): float(row[c]) for c in scores},
            )
        )
    return items


@dataclass
class Review:
    """Review state: the items, where we are, and the label file.

    Build it with :func:`review`. The widget (``.widget``, or display the
    object) is a thin view over this state, so everything here also works
    without a browser.
    """

    result: ExperimentResult
    items: list[ReviewItem]
    store: LabelStore
    log_to_mlflow: bool = True
    index: int = 0
    status: str = ""
    #: Comments typed in the widget and not saved yet, by item key.
    drafts: dict[tuple[str, str, str], str] = field(default_factory=dict, repr=False)
    #: True once the last item has been labelled (or every item has a label).
    finished: bool = False
    _widget: Any = field(default=None, repr=False)

    # -- navigation -------------------------------------------------------------
    @property
    def current(self) -> ReviewItem:
        if not self.items:
            raise OutOfRangeError("nothing to review: the filter matched no cases")
        return self.items[self.index]

    def next(self) -> ReviewItem:
        self.index = min(self.index + 1, len(self.items) - 1)
        self._refresh()
        return self.current

    def previous(self) -> ReviewItem:
        self.index = max(self.index - 1, 0)
        self._refresh()
        return self.current

    def go(self, index: int) -> ReviewItem:
        if not 0 <= index < len(self.items):
            raise OutOfRangeError(f"index {index} out of range: {len(self.items)} items")
        self.index = index
        self._refresh()
        return self.current

    # -- labelling ----------------------------------------------------------------
    def label(self, value: Label, *, comment: str | None = None, advance: bool = True) -> dict[str, Any]:
        """Label the current item, save it at once, then move to the next one.

        Args:
            value: ``"up"`` or ``"down"``.
            comment: The comment saved with the label. None: what the comment box
                shows for this item (:meth:`comment_of`: the text typed for it, else
                its saved comment).
            advance: Move to the next item afterwards (not past the last one).

        Returns the record written to the label file.
        """
        item = self.current
        last = self.index == len(self.items) - 1
        record = self.store.add(
            item,
            value,
            comment=self.comment_of(item) if comment is None else comment,
            experiment=self.result.name,
            run_id=self.result.run_id,
        )
        self.drafts.pop(item.key, None)  # saved now
        self.status = f"saved {'👍' if value == 'up' else '👎'} for case {item.case_id} to {self.store.path}"
        if self.log_to_mlflow and self.result.run_id:
            self.status += self._log_labels()
            self.status += self._log_feedback(item, value, record.get("comment"))
        self.finished = self.finished or last or not self.skipped
        if advance and not last:
            self.index += 1
        self._refresh()
        return record

    def comment_of(self, item: ReviewItem | None = None) -> str:
        """The comment of ``item`` (default: the current one) as the comment box shows it.

        The text typed for it and not saved yet, else the comment saved with its label, else "".
        """
        item = item or self.current
        if item.key in self.drafts:
            return self.drafts[item.key]
        existing = self.label_of(item)
        return str(existing.get("comment") or "") if existing else ""

    @property
    def skipped(self) -> list[ReviewItem]:
        """The items under review that have no label yet (for their exact output)."""
        done = self.store.lookup()
        return [item for item in self.items if item.key not in done]

    def done_message(self) -> str:
        """How many items are labelled, and which were skipped, in one sentence.

        Example:
            >>> rv.done_message()  # doctest: +SKIP
            'Done: 5 of 6 outputs labelled (4 👍, 1 👎). Skipped 1: case b. Go back with ← previous, ...'
        """
        labels = self.labels
        ups = int((labels["label"] == "up").sum()) if not labels.empty else 0
        text = f"Done: {len(labels)} of {len(self.items)} outputs labelled ({ups} 👍, {len(labels) - ups} 👎)."
        skipped = self.skipped
        if not skipped:
            return text
        several = len({(i.variant, i.model) for i in self.items}) > 1
        names = [f"{i.case_id} ({i.variant} on {i.model})" if several else i.case_id for i in skipped]
        shown = ", ".join(names[:_MAX_NAMED])
        if len(names) > _MAX_NAMED:
            shown += f" and {len(names) - _MAX_NAMED} more"
        return (
            f"{text} Skipped {len(skipped)}: case{'s' if len(skipped) > 1 else ''} {shown}. "
            'Go back with ← previous, or review only those with wb.review(..., only="unlabelled").'
        )

    def label_of(self, item: ReviewItem | None = None) -> dict[str, Any] | None:
        """The latest label of ``item`` (default: the current one), or None."""
        item = item or self.current
        return self.store.lookup().get(item.key)

    @property
    def labels(self) -> pd.DataFrame:
        """The latest label of every reviewed item of this result; ``ts`` is when it was clicked (UTC)."""
        return _readable(self.store.latest_for({item.key for item in self.items}))

    def _result_labels(self) -> pd.DataFrame:
        """The latest label of every output of the whole result (not only the ones under review now)."""
        cases = self.result.cases
        outputs = [o if isinstance(o, str) else "" for o in cases["output"]]
        ids = map(stored_case_id, cases["case_id"])
        keys = set(zip(ids, cases["variant_version"], map(output_hash, outputs), strict=True))
        return _readable(self.store.latest_for(keys))

    def _log_labels(self) -> str:
        """Refresh the labels table on the parent MLflow run; never lose a label over it."""
        run_id = self.result.run_id
        if run_id is None:
            return ""
        try:
            # Overwritten at each click, and shown as a table in the MLflow UI.
            MlflowWriter(self.result.tracking_uri).replace_table(run_id, self._result_labels(), LABELS_ARTIFACT)
            return "; logged to MLflow"
        except Exception as exc:  # the label is already on disk
            return f"; MLflow logging failed ({type(exc).__name__}: {exc}), the label file has it"

    def _log_feedback(self, item: ReviewItem, value: Label, comment: str | None) -> str:
        """The label as a HUMAN assessment on the call's trace (when the run wrote traces)."""
        run_id = self.result.run_id
        if run_id is None:
            return ""
        try:
            trace_id = find_trace(
                run_id,
                case_id=str(item.case_id),
                variant=item.variant,
                model=item.model,
                repeat=item.repeat,
                tracking_uri=self.result.tracking_uri,
            )
            if trace_id is None:
                return ""
            log_human_label(trace_id, value, comment=comment, tracking_uri=self.result.tracking_uri)
            return " and to its trace"
        except Exception as exc:  # the label is already on disk
            return f"; the trace's feedback failed ({type(exc).__name__}: {exc})"

    # -- failures become tests ------------------------------------------------------
    def add_to_golden_set(
        self,
        path: str | Path,
        *,
        label: Label = "down",
        id_column: str = "id",
        corrections: dict[str, dict[str, Any]] | None = None,
    ) -> pd.DataFrame:
        """Append the cases labelled ``label`` (thumbs-down by default) to a dataset file.

        Each case is written once, with its inputs and expected values (a
        ``corrections`` entry ``{case_id: {column: value}}`` overrides an
        expected value). Ids already in the file are skipped. CSV and JSONL.

        Returns:
            The rows that were appended.
        """
        chosen = self.labels
        chosen = chosen[chosen["label"] == label] if not chosen.empty else chosen
        wanted = list(dict.fromkeys(chosen["case_id"])) if not chosen.empty else []
        by_case = {stored_case_id(item.case_id): item for item in self.items}  # the label file's ids
        rows = []
        for case_id in wanted:
            item = by_case[case_id]
            row = {id_column: item.case_id, **item.inputs, **item.expected}
            row.update((corrections or {}).get(item.case_id, {}))
            rows.append(row)
        new = append_to_golden_set(path, rows, id_column=id_column)
        if new.empty:
            return new
        target = resolve(path) if not Path(path).is_absolute() else Path(path)
        self.status = f"appended {len(new)} case(s) to {target}"
        self._refresh()
        return new.reset_index(drop=True)

    # -- the widget -------------------------------------------------------------------
    @property
    def widget(self) -> Any:
        """The ipywidgets view (built on first use)."""
        if self._widget is None:
            self._widget = ReviewWidget(self)
            self._refresh()
        return self._widget

    def _refresh(self) -> None:
        if self._widget is not None:
            self._widget.render()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget.box)

    def __len__(self) -> int:
        return len(self.items)


def review(
    result: ExperimentResult,
    *,
    variants: Sequence[str] | None = None,
    model: str | None = None,
    only: Literal["failures", "unlabelled"] | None = None,
    labels_path: str | Path | None = None,
    log_to_mlflow: bool = True,
) -> Review:
    """Review a result's outputs one at a time in the notebook.

    Args:
        result: The result to review.
        variants: Which variants' outputs (default: all).
        model: Only this model's outputs.
        only: ``"failures"`` (an error, or the deciding score below the bar of
            the experiment's success rule: the first scorer >= 0.5 by default) or
            ``"unlabelled"`` (no label yet for this exact output).
        labels_path: The label file; default ``data/labels/<experiment>.jsonl``.
        log_to_mlflow: Refresh the labels table on the result's MLflow run at each click.

    Example:
        >>> rv = wb.review(result, variants=["few_shot"], only="failures")  # doctest: +SKIP
        >>> rv  # doctest: +SKIP
    """
    store = LabelStore(labels_path or default_labels_path(result.name))
    items = _items(result, variants, model)
    if only == "failures":
        rule = result.experiment.success
        deciding = rule.deciding(result.scorer_names)
        items = [i for i in items if i.error or (deciding is not None and rule.failed_score(i.scores[deciding]))]
    elif only == "unlabelled":
        done = store.lookup()
        items = [i for i in items if i.key not in done]
    elif only is not None:
        raise UsageError(f"only must be None, 'failures' or 'unlabelled', got {only!r}")
    return Review(result, items, store, log_to_mlflow=log_to_mlflow)
