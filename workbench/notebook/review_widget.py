"""The ipywidgets view of a :class:`workbench.notebook.review.Review` (state lives there).

The view knows the state only by duck typing (it is handed a Review), so the
state module imports the view and never the other way round. The comment box
shows the current case's comment (``review.comment_of``); what is typed in it
is kept per case in ``review.drafts`` until a 👍 / 👎 saves it.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from workbench.core.html import render
from workbench.views.conversation import conversation_html, history_columns
from workbench.views.thumbnails import with_thumbnails


class ReviewWidget:
    """Buttons carry DOM classes (``wb-review-up`` ...) so browser tests can find them."""

    def __init__(self, review: Any) -> None:  # a workbench.notebook.review.Review
        self.review = review
        self.position = widgets.HTML()
        self.content = widgets.HTML()
        self.up = widgets.Button(description="👍 good", button_style="success", tooltip="thumbs up, then next")
        self.down = widgets.Button(description="👎 bad", button_style="danger", tooltip="thumbs down, then next")
        self.comment = widgets.Textarea(placeholder="optional comment (saved with the label)", rows=2)
        self.prev = widgets.Button(description="← previous", tooltip="previous case")
        self.next = widgets.Button(description="next →", tooltip="next case")
        self.status = widgets.HTML()
        self.done = widgets.HTML()
        self._rendering = False  # the box is being set from the state, not typed in
        for widget, name in [
            (self.up, "up"),
            (self.down, "down"),
            (self.prev, "prev"),
            (self.next, "next"),
            (self.comment, "comment"),
            (self.done, "done"),
        ]:
            widget.add_class(f"wb-review-{name}")
        self.up.on_click(lambda _: self._label("up"))
        self.down.on_click(lambda _: self._label("down"))
        self.prev.on_click(lambda _: review.previous())
        self.next.on_click(lambda _: review.next())
        self.comment.observe(self._typed, names="value")
        self.comment.layout.width = "100%"
        self.box = widgets.VBox(
            [
                self.position,
                self.content,
                widgets.HBox([self.up, self.down]),
                self.comment,
                widgets.HBox([self.prev, self.next]),
                self.status,
                self.done,
            ]
        )
        self.box.add_class("wb-review")

    def _label(self, value: str) -> None:
        try:
            self.review.label(value)  # type: ignore[arg-type]
        except Exception as exc:  # show it in the widget; a callback's traceback is easy to miss
            self.status.value = render("error.html.j2", text=f"{type(exc).__name__}: {exc}")

    def _typed(self, change: dict[str, Any]) -> None:
        if not self._rendering and self.review.items:
            self.review.drafts[self.review.current.key] = change["new"]

    def render(self) -> None:
        review = self.review
        if not review.items:
            self.content.value = render("message.html.j2", text="Nothing to review: the filter matched no cases.")
            for button in (self.up, self.down, self.prev, self.next):
                button.disabled = True
            return
        item = review.current
        self.position.value = render(
            "review_position.html.j2", index=review.index + 1, total=len(review.items), item=item,
            labelled=len(review.labels),
        )  # fmt: skip
        history = [c for c in history_columns(review.result.experiment.variants) if c in item.inputs]
        shown = {"history": history, "conversations": [conversation_html(item.inputs[c]) for c in history]}
        inputs = with_thumbnails(item.inputs, review.result.experiment)  # image inputs as thumbnails
        self.content.value = render(
            "review_item.html.j2", item=item, inputs=inputs, existing=review.label_of(item), **shown
        )
        self.prev.disabled = review.index == 0
        self.next.disabled = review.index >= len(review.items) - 1
        self.status.value = render("status.html.j2", text=review.status)
        self.done.value = render("message.html.j2", text=review.done_message()) if review.finished else ""
        self._rendering = True
        try:
            self.comment.value = review.comment_of(item)
        finally:
            self._rendering = False
