"""The ipywidgets view of a :class:`workbench.review.Review` (state lives there)."""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

if TYPE_CHECKING:
    from workbench.review import Review

_BOX = "border:1px solid #ddd;border-radius:4px;padding:6px 10px;margin:4px 0;white-space:pre-wrap"


def _fields(values: dict[str, Any]) -> str:
    return "".join(
        f"<div><b>{html.escape(str(k))}</b>: {html.escape('' if v is None else str(v))}</div>"
        for k, v in values.items()
    )


def _scores(scores: dict[str, float]) -> str:
    shown = []
    for name, value in scores.items():
        text = "–" if math.isnan(value) else ("✓" if value == 1 else "✗" if value == 0 else f"{value:.3g}")
        shown.append(f"{html.escape(name)} {text}")
    return " · ".join(shown)


class ReviewWidget:
    """Buttons carry DOM classes (``wb-review-up`` ...) so browser tests can find them."""

    def __init__(self, review: Review) -> None:
        self.review = review
        self.position = widgets.HTML()
        self.content = widgets.HTML()
        self.up = widgets.Button(description="👍 good", button_style="success", tooltip="thumbs up, then next")
        self.down = widgets.Button(description="👎 bad", button_style="danger", tooltip="thumbs down, then next")
        self.comment = widgets.Textarea(placeholder="optional comment (saved with the label)", rows=2)
        self.prev = widgets.Button(description="← previous", tooltip="previous case")
        self.next = widgets.Button(description="next →", tooltip="next case")
        self.status = widgets.HTML()
        for widget, name in [
            (self.up, "up"),
            (self.down, "down"),
            (self.prev, "prev"),
            (self.next, "next"),
            (self.comment, "comment"),
        ]:
            widget.add_class(f"wb-review-{name}")
        self.up.on_click(lambda _: self._label("up"))
        self.down.on_click(lambda _: self._label("down"))
        self.prev.on_click(lambda _: review.previous())
        self.next.on_click(lambda _: review.next())
        self.comment.layout.width = "100%"
        self.box = widgets.VBox(
            [
                self.position,
                self.content,
                widgets.HBox([self.up, self.down]),
                self.comment,
                widgets.HBox([self.prev, self.next]),
                self.status,
            ]
        )
        self.box.add_class("wb-review")

    def _label(self, value: str) -> None:
        try:
            self.review.label(value)  # type: ignore[arg-type]
        except Exception as exc:  # show it in the widget; a callback's traceback is easy to miss
            self.status.value = f"<span style='color:#a40e26'>{html.escape(f'{type(exc).__name__}: {exc}')}</span>"

    def render(self, *, clear_comment: bool = False) -> None:
        review = self.review
        if clear_comment:
            self.comment.value = ""
        if not review.items:
            self.content.value = "<i>Nothing to review: the filter matched no cases.</i>"
            for button in (self.up, self.down, self.prev, self.next):
                button.disabled = True
            return
        item = review.current
        labelled = len(review.labels)
        self.position.value = (
            f"<b>{review.index + 1} / {len(review.items)}</b> · case <code>{html.escape(item.case_id)}</code> · "
            f"{html.escape(item.variant)} on {html.escape(item.model)}"
            + (f" · repeat {item.repeat}" if item.repeat else "")
            + f" · {labelled} labelled"
        )
        existing = review.label_of(item)
        mark = ""
        if existing:
            mark = f" · already labelled {'👍' if existing['label'] == 'up' else '👎'}"
            if existing.get("comment"):
                mark += f" ({html.escape(existing['comment'])})"
        output = html.escape(item.output) if not item.error else f"<i>error: {html.escape(item.error)}</i>"
        self.content.value = (
            f"<div style='{_BOX}'><small>input</small>{_fields(item.inputs)}</div>"
            f"<div style='{_BOX};background:#f6f8fa'><small>output</small><div>{output}</div></div>"
            f"<div style='{_BOX}'><small>expected</small>{_fields(item.expected)}"
            f"<div><small>scores: {_scores(item.scores)}{mark}</small></div></div>"
        )
        self.prev.disabled = review.index == 0
        self.next.disabled = review.index >= len(review.items) - 1
        self.status.value = html.escape(review.status)
