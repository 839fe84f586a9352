"""Context from the user's own pipeline: a Python retriever's return value, or a dataset cell.

Both become the same tuple of :class:`~workbench.core.chunks.Chunk` the built-in retrievers
give, so scorers cannot tell them apart. Accepted items, in rank order:

- :class:`Chunk` objects (re-ranked 1..n in the order given);
- mappings with ``text`` and ``doc_id`` and/or ``id`` (optional ``score``, ``title``): a mapping
  with only ``id`` uses it as the document id too;
- plain strings: their document id is their rank (``"1"``, ``"2"``..., cited as ``[1]``).

A dataset cell may hold the list itself (JSONL) or the list as JSON text (CSV); an empty cell
means no context. Only the first ``k`` items are kept.

Example:
    >>> [(c.doc_id, c.rank) for c in as_chunks(["Free returns.", {"id": "fees", "text": "5%"}], k=5)]
    [('1', 1), ('fees', 2)]
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from workbench.core.chunks import Chunk
from workbench.core.exceptions import RetrievalError


def as_chunks(items: Any, *, k: int | None = None, where: str = "retrieved context") -> tuple[Chunk, ...]:
    """Normalise a user's retrieved context into chunks, ranks 1..n (at most ``k``).

    Raises:
        RetrievalError: the value is not a list of chunks, mappings with ``text``, or strings;
            ``where`` names its origin (the function, or the dataset row and column).
    """
    if items is None or (isinstance(items, float) and items != items):
        return ()
    if isinstance(items, str):
        text = items.strip()
        if not text:
            return ()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError as exc:
                raise RetrievalError(f"{where}: looks like a JSON list but is not valid JSON: {exc}") from exc
        else:
            items = [items]
    if hasattr(items, "tolist") and not isinstance(items, Mapping):  # a numpy array from pandas / Parquet
        items = items.tolist()
    if not isinstance(items, list | tuple):
        raise RetrievalError(
            f"{where}: expected a list of chunks, {{'id', 'text'}} objects or strings, got {type(items).__name__}"
        )
    return tuple(_chunk(item, rank, where) for rank, item in enumerate(list(items)[:k], start=1))


def _chunk(item: Any, rank: int, where: str) -> Chunk:
    if isinstance(item, Chunk):
        return dataclasses.replace(item, rank=rank)
    if isinstance(item, str):
        return Chunk(str(rank), str(rank), item, rank)
    if isinstance(item, Mapping):
        if "text" not in item:
            raise RetrievalError(f"{where}: item {rank} has no 'text' key (keys: {sorted(item)}); give each its text")
        doc_id = item.get("doc_id", item.get("id"))
        doc_id = str(rank) if doc_id is None else str(doc_id)
        score = item.get("score")
        return Chunk(
            id=str(item.get("id", doc_id)),
            doc_id=doc_id,
            text=str(item["text"]),
            rank=rank,
            score=None if score is None else float(score),
            title=str(item.get("title") or ""),
        )
    raise RetrievalError(
        f"{where}: item {rank} is a {type(item).__name__}; give a Chunk, a {{'id', 'text'}} mapping or a string"
    )
