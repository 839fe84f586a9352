"""Conversations: a dataset row's earlier chat turns, sent as real chat messages.

A variant opts in with ``history="messages"``, naming the column that holds the
turns *before* the one under test: a list of ``{"role": "user" | "assistant",
"content": str}`` (in JSONL, a JSON list; in a CSV cell, the same list as a JSON
string; an empty cell or ``[]`` is the first turn of a conversation). The variant
then sends system, few-shot examples, these turns, and its own user turn last.

A history must start with a user turn, alternate user / assistant, and end with an
assistant turn, since the variant's user turn follows it. :func:`history_turns`
checks all of that and names the file, row, column, turn and the fix.

Example:
    >>> history_turns('[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]')
    [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello!'}]
    >>> history_turns(None)
    []
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from workbench.core.exceptions import DatasetError

#: Roles a history turn may have (the variant's own system message stays the only system one).
ROLES = ("user", "assistant")
_KEYS = frozenset({"role", "content"})
#: How many characters of a turn the readable ``prompt`` column keeps.
_SHOWN = 160
_SPACE = re.compile(r"\s+")
_EXAMPLE = '[{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]'


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:  # NaN: pandas' empty cell
        return True
    return isinstance(value, str) and not value.strip()


def history_turns(value: Any, *, where: str | None = None, column: str = "messages") -> list[dict[str, str]]:
    """The chat turns a history cell holds, checked.

    Args:
        value: The cell: a list of ``{"role", "content"}`` mappings, the same list as a JSON
            string (a CSV cell), or empty (``None``, NaN, ``""``, ``[]``: no earlier turn).
        where: Where the row came from, for the error (e.g. ``"dataset data/chats.jsonl row 3 (line 3)"``).
        column: The column the cell is in, for the error.

    Returns:
        The turns as plain ``{"role", "content"}`` dicts, in order.

    Raises:
        DatasetError: The cell is not a list of turns, a turn has a bad role or no text content,
            the turns do not alternate from a user turn, or the last one is not the assistant's;
            the message names the row, column and turn and says how to fix it.
    """
    at = f"{where + ' ' if where else ''}column {column!r}"
    if _empty(value):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"{at} is not valid JSON ({exc.msg} at column {exc.colno}); write the earlier turns as a JSON list, "
                f"e.g. {_EXAMPLE}"
            ) from None
    if hasattr(value, "tolist") and not isinstance(value, Mapping):  # a list column read through Arrow
        value = value.tolist()
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise DatasetError(
            f"{at} holds a {type(value).__name__}, not a list of turns; write the earlier turns as a list, "
            f"e.g. {_EXAMPLE} ([] for a conversation's first turn)"
        )
    turns = []
    for i, turn in enumerate(value):
        label = f"{at} turn {i + 1}"
        if not isinstance(turn, Mapping):
            raise DatasetError(
                f"{label} is a {type(turn).__name__}, not an object; write it as {{'role': ..., 'content': ...}}"
            )
        unknown = sorted(set(map(str, turn)) - _KEYS)
        if unknown:
            raise DatasetError(f"{label} has unknown key(s) {unknown}; a turn has only 'role' and 'content'")
        role, content = turn.get("role"), turn.get("content")
        if role not in ROLES:
            fix = "put system text in the variant's `system`" if role == "system" else f"use one of {list(ROLES)}"
            raise DatasetError(f"{label} has role {role!r}; {fix}")
        if not isinstance(content, str) or not content.strip():
            raise DatasetError(f"{label} ({role}) has no text 'content' (got {content!r}); give the turn its text")
        expected = ROLES[i % 2]
        if role != expected:
            raise DatasetError(
                f"{label} is from the {role}, but turn {i + 1} must be from the {expected}: the turns start with the "
                "user and alternate; merge two turns in a row from the same role into one"
            )
        turns.append({"role": role, "content": content})
    if turns and turns[-1]["role"] != "assistant":
        raise DatasetError(
            f"{at} ends with a user turn (turn {len(turns)}); the history is the turns *before* the one under test, "
            "so it ends with the assistant's reply: move that last user turn into the variant's prompt column"
        )
    return turns


def compact(turns: Sequence[Mapping[str, Any]], *, width: int = _SHOWN) -> str:
    """The turns one line each, ``role: text``, whitespace folded and long texts cut (for the ``prompt`` column).

    Example:
        >>> turns = [{"role": "user", "content": "Where is\\nmy order?"},
        ...          {"role": "assistant", "content": "On its way."}]
        >>> print(compact(turns))
        user: Where is my order?
        assistant: On its way.
    """
    lines = []
    for turn in turns:
        text = _SPACE.sub(" ", str(turn["content"])).strip()
        if len(text) > width:
            text = text[: width - 1].rstrip() + "…"
        lines.append(f"{turn['role']}: {text}")
    return "\n".join(lines)


def readable_prompt(messages: Sequence[Mapping[str, Any]], *, few_shot: int = 0) -> str:
    """What a case sent, as the ``prompt`` column shows it: system, the history compactly, the user turn.

    The few-shot turns (``few_shot`` examples, two messages each, right after the system message)
    are left out: they are the same for every case and live in the variant.

    Example:
        >>> msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        ...         {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye?"}]
        >>> print(readable_prompt(msgs))
        [system]
        Be brief.
        <BLANKLINE>
        [history: 2 turns]
        user: Hi
        assistant: Hello
        <BLANKLINE>
        [user]
        Bye?
    """
    system = [m for m in messages if m["role"] == "system"]
    history = list(messages[len(system) + 2 * few_shot : -1])
    parts = [f"[{m['role']}]\n{m['content']}" for m in system]
    if history:
        parts.append(f"[history: {len(history)} turns]\n{compact(history)}")
    last = messages[-1]
    parts.append(f"[{last['role']}]\n{last['content']}")
    return "\n\n".join(parts)
