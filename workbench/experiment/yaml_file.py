"""Writing a prompt variant back into an experiment YAML file (the playground's Save).

An existing file is edited with ruamel.yaml's round-trip mode, so a save changes only the
saved variant's entry, and in it only the fields whose values changed: comments, flow
collections (``expected: [label]``, ``params: {temperature: 0, max_tokens: 4}``), quoting,
block scalars (``>-``, ``|``) and key order are kept. A changed string keeps the style it had
(a folded ``>-`` text is re-wrapped); new multi-line text is written as a literal block
(``|``). A variant saved under a new name is added after the others, laid out like the last of
them. Every line outside the entry is copied from the file as it was, so even spacing that
ruamel.yaml would normalise (``key:   value``, ``~``) stays. A missing file gets a complete
definition. Credentials are never written: keys such as ``api_key`` are dropped at any depth.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    ScalarString,
    SingleQuotedScalarString,
)

from workbench.core.exceptions import ConfigError
from workbench.core.redaction import without_secrets
from workbench.core.spec import ExperimentSpec
from workbench.core.variant import PromptVariant

#: Where a re-wrapped folded (``>``) text breaks its lines.
_FOLD_WIDTH = 88


def write_variant(
    target: Path, variant: PromptVariant, *, experiment: ExperimentSpec, variants: Sequence[PromptVariant]
) -> None:
    """Put ``variant`` into the experiment file ``target``, replacing the entry of the same name.

    Only that entry changes (see the module docstring). A missing ``target`` is created from
    ``experiment`` and ``variants``.

    Raises:
        ConfigError: ``target`` is not an experiment definition, or is not valid YAML.
    """
    entry = json.loads(json.dumps(without_secrets(variant.to_dict())))  # plain data: lists, not tuples
    if target.exists():
        text = target.read_text()
        layout = _Layout.guess(text)
    else:
        text, layout = None, _Layout()
    for blocks in (True, False):  # block scalars are for people; if one cannot hold the text, quote it
        data = _load(target, text) if text is not None else _fresh(_experiment_dict(experiment, target, variants))
        entries = data.get("variants")
        if not isinstance(entries, CommentedSeq):
            entries = data["variants"] = CommentedSeq()
        names = [e.get("name") if isinstance(e, Mapping) else None for e in entries]
        if variant.name in names:
            index = names.index(variant.name)
            entries[index] = _merge(entries[index], entry, flow=False, blocks=blocks)
        else:
            like = _unstyled_copy(entries[-1]) if entries and isinstance(entries[-1], CommentedMap) else None
            entries.append(_merge(like, entry, flow=False, blocks=blocks) if like else _fresh(entry, blocks=blocks))
        written = layout.dump(data)
        saved = yaml.safe_load(written).get("variants", [])
        if entry in saved:
            break
    if text is not None:
        written = _splice(text, written, variant.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(written)


def default_yaml(name: str) -> Path:
    return Path("experiments") / f"{name}.yaml"


@dataclass(frozen=True)
class _Layout:
    """The indentation a file uses, so that re-emitting it changes no untouched line."""

    mapping: int = 2
    sequence: int = 4
    offset: int = 2

    @classmethod
    def guess(cls, text: str) -> _Layout:
        """Read the steps from the first nested mapping and the first block sequence."""
        found: dict[str, int] = {}
        lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        for above, line in zip(lines, lines[1:], strict=False):
            if not re.search(r":\s*(#.*)?$", above):  # ``key:`` opening a block
                continue
            step = _indent(line) - _indent(above)
            body = line.lstrip()
            if body.startswith("- ") and step >= 0:  # ``key:`` then ``- item`` (at the same indent, or deeper)
                found.setdefault("offset", step)
                found.setdefault("sequence", step + len(body) - len(body[1:].lstrip()))
            elif step > 0:
                found.setdefault("mapping", step)
        return cls(**found)

    def yaml(self) -> YAML:
        handler = YAML()  # round-trip mode
        handler.preserve_quotes = True
        handler.width = 4096  # never re-wrap a line that was not changed
        handler.indent(mapping=self.mapping, sequence=self.sequence, offset=self.offset)
        return handler

    def dump(self, data: Any) -> str:
        buffer = io.StringIO()
        self.yaml().dump(data, buffer)
        return buffer.getvalue()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _splice(original: str, written: str, name: str) -> str:
    """``original`` with only the lines of entry ``name`` taken from ``written`` (the re-emitted file).

    Falls back to ``written`` when the entries cannot be told apart by lines (a flow list of
    variants, say): the result must hold exactly the data ``written`` holds.
    """
    old_lines, new_lines = original.splitlines(keepends=True), written.splitlines(keepends=True)
    new_spans = _entry_spans(written)
    old_spans = _entry_spans(original)
    names = list(new_spans)
    if name not in new_spans or not old_spans:
        return written
    start, end = new_spans[name]
    if name in old_spans:
        before, after = old_spans[name]
    else:  # a new entry: after the one before it
        previous = names[names.index(name) - 1] if names.index(name) > 0 else None
        if previous not in old_spans:
            return written
        before = after = old_spans[previous][1]
    spliced = "".join(old_lines[:before] + new_lines[start:end] + old_lines[after:])
    if not original.endswith("\n") and spliced.endswith("\n") and after == len(old_lines):
        spliced = spliced[:-1]
    try:
        same = yaml.safe_load(spliced) == yaml.safe_load(written)
    except yaml.YAMLError:
        same = False
    return spliced if same else written


def _entry_spans(text: str) -> dict[str, tuple[int, int]]:
    """Per variant name, the lines [start, end) of its entry in a block list under ``variants``:
    from its ``- `` line to the last line indented deeper than that dash."""
    entries = _Layout().yaml().load(text).get("variants")
    if not isinstance(entries, CommentedSeq) or entries.fa.flow_style():
        return {}
    lines = text.splitlines()
    spans: dict[str, tuple[int, int]] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            return {}
        start = entries.lc.item(index)[0]
        dash = _indent(lines[start])
        end = start + 1
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > dash):
            end += 1
        while end > start + 1 and not lines[end - 1].strip():  # blank lines after it are not its own
            end -= 1
        spans[entry["name"]] = (start, end)
    return spans


def _load(path: Path, text: str) -> CommentedMap:
    try:
        data = _Layout().yaml().load(text)
    except YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML ({exc}); fix it or pass another path to save()") from exc
    if not isinstance(data, CommentedMap):
        raise ConfigError(f"{path} does not hold an experiment definition; pass another path to save()")
    return data


def _same(old: Any, new: Any) -> bool:
    """Equal as data (``True`` is not ``1``), whatever the YAML style."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return old.keys() == new.keys() and all(_same(old[k], new[k]) for k in old)
    if _is_list(old) and _is_list(new):
        return len(old) == len(new) and all(_same(a, b) for a, b in zip(old, new, strict=True))
    if isinstance(old, bool) or isinstance(new, bool):
        return type(old) is type(new) and old == new
    return bool(old == new)


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _merge(old: Any, new: Any, *, flow: bool, blocks: bool) -> Any:
    """``new`` written over ``old``: unchanged parts keep their node (style, comments); changed ones, its style."""
    if _same(old, new):
        return old
    if isinstance(old, CommentedMap) and isinstance(new, Mapping):
        inner = flow or bool(old.fa.flow_style())
        for key in [k for k in old if k not in new]:
            del old[key]
        for key, value in new.items():
            if key in old:
                old[key] = _merge(old[key], value, flow=inner, blocks=blocks)
            else:
                old[key] = _fresh(value, flow=inner, blocks=blocks)
        return old
    if isinstance(old, CommentedSeq) and _is_list(new):
        inner = flow or bool(old.fa.flow_style())
        for i, value in enumerate(new):
            if i < len(old):
                old[i] = _merge(old[i], value, flow=inner, blocks=blocks)
            else:
                old.append(_fresh(value, flow=inner, blocks=blocks))
        while len(old) > len(new):
            old.pop()
        return old
    if isinstance(new, str):
        return _string(new, like=old, flow=flow, blocks=blocks)
    return _fresh(new, flow=flow, blocks=blocks)


def _fresh(value: Any, *, flow: bool = False, blocks: bool = True) -> Any:
    """A new node: lists of plain values on one line (``[a, b]``), other collections as blocks."""
    if isinstance(value, Mapping):
        node: CommentedMap | CommentedSeq = CommentedMap(
            (k, _fresh(v, flow=flow, blocks=blocks)) for k, v in value.items()
        )
    elif _is_list(value):
        inline = flow or not any(isinstance(v, Mapping) or _is_list(v) for v in value)
        node = CommentedSeq(_fresh(v, flow=inline, blocks=blocks) for v in value)
        if inline:
            node.fa.set_flow_style()
    elif isinstance(value, str):
        return _string(value, like=None, flow=flow, blocks=blocks)
    else:
        return value
    if flow:
        node.fa.set_flow_style()
    return node


def _string(text: str, *, like: Any, flow: bool, blocks: bool) -> str:
    """``text`` in the style ``like`` had: a block scalar stays one, new multi-line text becomes ``|``."""
    if blocks and not flow:
        if isinstance(like, FoldedScalarString) and "\n" not in text:
            return _folded(text)
        if isinstance(like, LiteralScalarString | FoldedScalarString) or "\n" in text:
            return LiteralScalarString(text)
    if isinstance(like, SingleQuotedScalarString) and "\n" not in text:
        return SingleQuotedScalarString(text)
    if isinstance(like, ScalarString) and not isinstance(like, LiteralScalarString | FoldedScalarString):
        return DoubleQuotedScalarString(text)
    return str(text)


def _folded(text: str) -> FoldedScalarString:
    """A folded scalar that breaks its lines at spaces near ``_FOLD_WIDTH`` characters."""
    folded = FoldedScalarString(text)
    folded.fold_pos = _line_breaks(text)
    return folded


def _line_breaks(text: str) -> list[int]:
    """Positions of the spaces where a greedy wrap at ``_FOLD_WIDTH`` breaks ``text``."""
    positions: list[int] = []
    line_start, last_space = 0, -1
    for i, char in enumerate(text):
        if char == " ":
            if i - line_start > _FOLD_WIDTH and last_space > line_start:
                positions.append(last_space)
                line_start = last_space + 1
            last_space = i
    if len(text) - line_start > _FOLD_WIDTH and last_space > line_start:
        positions.append(last_space)
    return positions


def _unstyled_copy(node: Any) -> Any:
    """A copy with the same layout (flow or block, scalar styles) and none of the comments."""
    if isinstance(node, CommentedMap):
        copy: CommentedMap | CommentedSeq = CommentedMap((k, _unstyled_copy(v)) for k, v in node.items())
    elif isinstance(node, CommentedSeq):
        copy = CommentedSeq(_unstyled_copy(v) for v in node)
    elif isinstance(node, ScalarString):
        return type(node)(str(node))
    else:
        return node
    if node.fa.flow_style():
        copy.fa.set_flow_style()
    return copy


def _experiment_dict(experiment: ExperimentSpec, target: Path, variants: Sequence[PromptVariant]) -> dict[str, Any]:
    """A fresh YAML definition for an experiment built in Python (credentials left out)."""
    source = Path(experiment.dataset.source)
    if not source.exists():
        raise ConfigError(
            f"cannot write {target}: the dataset was not loaded from a file ({experiment.dataset.source}); "
            "save it as CSV/JSONL under data/ and load it with Dataset.load first"
        )
    data_path = os.path.relpath(source.resolve(), target.parent.resolve())
    return json.loads(
        json.dumps(
            {
                "name": experiment.name,
                "description": experiment.description,
                "dataset": {
                    "path": data_path,
                    "id_column": experiment.dataset.id_column,
                    "expected": list(experiment.dataset.expected),
                },
                "models": experiment.model_entries(),
                "scorers": [without_secrets(s.spec()) for s in experiment.scorers],
                "repeats": experiment.repeats,
                "settings": {
                    "max_concurrency": experiment.settings.max_concurrency,
                    "local_concurrency": experiment.settings.local_concurrency,
                    "timeout_s": experiment.settings.timeout_s,
                    "max_attempts": experiment.settings.retry.max_attempts,
                    "transport": experiment.settings.transport,
                    "max_error_rate": experiment.settings.max_error_rate,
                    "traces": experiment.settings.traces,
                    "executor": experiment.settings.executor,
                },
                "variants": [without_secrets(v.to_dict()) for v in variants],
            }
        )
    )
