"""A conversation's earlier turns as HTML: role labels, each turn's text escaped and redacted.

The side-by-side table and the review widget show a row's history (the column a variant
names with ``history=``, see :mod:`workbench.core.conversation`) above its output with
:func:`conversation_html`.

Example:
    >>> html = conversation_html([{"role": "user", "content": "<b>hi</b>"}, {"role": "assistant", "content": "Hello"}])
    >>> "&lt;b&gt;hi&lt;/b&gt;" in html and "wb-turn-assistant" in html
    True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from markupsafe import Markup

from workbench.core.conversation import history_turns
from workbench.core.exceptions import DatasetError
from workbench.core.html import render
from workbench.core.variant import PromptVariant

__all__ = ["conversation_html", "history_columns"]


def history_columns(variants: Iterable[PromptVariant]) -> list[str]:
    """The history columns the variants name (``history=``), in order, once each."""
    return list(dict.fromkeys(v.history for v in variants if v.history))


def conversation_html(value: Any, *, empty: str = "first turn: no earlier turns") -> Markup:
    """The turns of a history cell (a list of ``{"role", "content"}``, or its JSON text) as HTML.

    A cell that is not a valid history (it was checked before the run, so only data edited
    since) is shown as its text rather than hidden.
    """
    try:
        turns = history_turns(value)
    except DatasetError:
        turns = [{"role": "unreadable history", "content": str(value)}]
    return Markup(render("conversation.html.j2", turns=turns, empty=empty))
