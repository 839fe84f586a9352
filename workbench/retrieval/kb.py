"""A knowledge base: a folder of Markdown articles, each with YAML front matter.

Every ``*.md`` file in the folder is one document::

    ---
    id: returns-window
    title: How long do I have to return an item?
    section: returns
    ---
    You can return most items within 14 days of delivery...

``id`` is required and must equal the file name without ``.md`` (so a citation ``[returns-window]``
points at one file); ``title`` is optional; other keys are kept as ``metadata``. The folder's
:attr:`KnowledgeBase.content_hash` changes when any article's bytes, or the set of files, change:
the vector index is keyed by it.

Example:
    >>> kb = load_kb("tests/data/kb_small")  # doctest: +SKIP
    >>> kb.documents[0].id, len(kb.content_hash)  # doctest: +SKIP
    ('account-password-reset', 16)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from workbench.core.exceptions import RetrievalError
from workbench.util.paths import resolve


@dataclass(frozen=True)
class Document:
    """One article: its id, title, body (without the front matter) and other front-matter keys."""

    id: str
    title: str
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class KnowledgeBase:
    """The documents of one folder, sorted by id, and the folder's content hash."""

    path: Path
    documents: tuple[Document, ...]
    content_hash: str

    def __len__(self) -> int:
        return len(self.documents)


def kb_files(path: Path) -> list[Path]:
    """The folder's Markdown files, sorted by name."""
    return sorted(p for p in path.glob("*.md") if p.is_file())


def kb_hash(path: str | Path) -> str:
    """Content hash of a knowledge-base folder: every ``*.md`` file's name and bytes (16 hex digits)."""
    folder = _folder(path)
    digest = hashlib.sha256()
    for file in kb_files(folder):
        digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def load_kb(path: str | Path) -> KnowledgeBase:
    """Read a knowledge-base folder.

    Raises:
        RetrievalError: the folder is missing or empty, or a file has no front matter, no ``id``,
            or an ``id`` other than its file name; the file and the fix are named.
    """
    folder = _folder(path)
    files = kb_files(folder)
    if not files:
        raise RetrievalError(f"knowledge base {str(path)!r} has no .md files; add one article per file")
    documents = [_document(file) for file in files]
    return KnowledgeBase(folder, tuple(sorted(documents, key=lambda d: d.id)), kb_hash(folder))


def _folder(path: str | Path) -> Path:
    folder = resolve(path)
    if not folder.is_dir():
        raise RetrievalError(
            f"knowledge base folder {str(path)!r} does not exist (looked at {folder}); "
            "give a folder of Markdown articles, relative to the working directory or the project root"
        )
    return folder


def _document(file: Path) -> Document:
    text = file.read_text(encoding="utf-8")
    if not text.startswith("---"):
        raise RetrievalError(f"knowledge base file {file} has no YAML front matter; start it with '---', 'id: ...'")
    head, sep, body = text[3:].partition("\n---")
    if not sep:
        raise RetrievalError(f"knowledge base file {file}: the front matter is not closed by a '---' line")
    try:
        meta = yaml.safe_load(head) or {}
    except yaml.YAMLError as exc:
        raise RetrievalError(f"knowledge base file {file}: the front matter is not valid YAML: {exc}") from exc
    if not isinstance(meta, dict) or not meta.get("id"):
        raise RetrievalError(f"knowledge base file {file}: the front matter has no 'id'; add 'id: {file.stem}'")
    doc_id = str(meta.pop("id"))
    if doc_id != file.stem:
        raise RetrievalError(
            f"knowledge base file {file}: id {doc_id!r} differs from the file name; "
            f"rename the file to {doc_id}.md or set 'id: {file.stem}'"
        )
    title = str(meta.pop("title", "") or "")
    return Document(doc_id, title, body.partition("\n")[2].strip(), meta)
