"""What a variant retrieves before its call: a small frozen spec, part of the variant's version.

A :class:`Retrieval` names where the context comes from, one of three sources:

- a knowledge base folder (``kb=``) searched by a built-in retriever (``"bm25"``,
  ``"embedding"``, ``"hybrid"``), with its chunking (``chunk_size``, ``overlap``, in words);
- the user's own Python retriever (``retriever=my_function``, called as ``my_function(query, k)``),
  or its import path ``"package.module:function"`` (the form a YAML file can hold);
- a dataset column of pre-computed contexts (``column=``).

The query is a Jinja2 template over the case's columns (``"{{ question }}"``). The retrieved
chunks render into the variant's templates as ``{{ context }}``. Running a spec is
:mod:`workbench.retrieval`'s job; this module only describes it.

Example:
    >>> spec = Retrieval(kb="data/kb", retriever="hybrid", k=5)
    >>> sorted(spec.variables()), spec.to_dict()["retriever"]
    (['question'], 'hybrid')
    >>> Retrieval.from_dict(spec.to_dict()) == spec
    True
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
import jinja2.meta
import jinja2.sandbox

from workbench.core.exceptions import ConfigError

#: The template variable the retrieved chunks render into.
CONTEXT_VARIABLE = "context"
#: The built-in retrievers over a knowledge-base folder.
BUILT_IN = ("bm25", "embedding", "hybrid")
#: The embedding model of the ``embedding`` and ``hybrid`` retrievers (shipped in a wheel: the ``rag`` extra).
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"

_ENV = jinja2.sandbox.SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)

#: A user's retriever: ``fn(query, k)`` -> chunks, ``{"id"/"doc_id", "text", ...}`` dicts or strings.
RetrieverFunction = Callable[[str, int], Any]


@dataclass(frozen=True)
class Retrieval:
    """How a variant gets its ``{{ context }}``.

    Args:
        kb: Folder of Markdown articles with YAML front matter (relative to the working
            directory or the project root), for the built-in retrievers.
        retriever: ``"bm25"``, ``"embedding"``, ``"hybrid"`` (with ``kb``), a Python function
            ``fn(query, k)``, or its import path ``"module:function"``.
        k: How many chunks the prompt gets.
        chunk_size: Words per chunk (built-in retrievers).
        overlap: Words shared by consecutive chunks of a document.
        query: Jinja2 template of the search query, over the case's columns.
        column: A dataset column holding pre-computed contexts per case (a list of
            ``{"id"/"doc_id", "text"}`` objects or strings, or that list as JSON text).
        embedding_model: The embedding model (only the shipped all-MiniLM-L6-v2 for now).

    Example:
        >>> Retrieval(column="contexts", k=3).source
        'column'
    """

    kb: str | None = None
    retriever: str | RetrieverFunction = "bm25"
    k: int = 5
    chunk_size: int = 128
    overlap: int = 32
    query: str = "{{ question }}"
    column: str | None = None
    embedding_model: str = DEFAULT_EMBEDDING_MODEL

    def __post_init__(self) -> None:
        if isinstance(self.retriever, str) and ":" in self.retriever:
            object.__setattr__(self, "retriever", _import(self.retriever))
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ConfigError(f"retrieval: k must be a whole number >= 1, got {self.k!r}")
        if not (isinstance(self.chunk_size, int) and self.chunk_size >= 1):
            raise ConfigError(f"retrieval: chunk_size (words) must be a whole number >= 1, got {self.chunk_size!r}")
        if not (isinstance(self.overlap, int) and 0 <= self.overlap < self.chunk_size):
            raise ConfigError(
                f"retrieval: overlap must be a whole number of words from 0 to chunk_size - 1 "
                f"({self.chunk_size - 1}), got {self.overlap!r}"
            )
        sources = [name for name, given in self._sources().items() if given]
        if len(sources) != 1:
            raise ConfigError(
                "retrieval: give exactly one source of context: kb='data/kb' (with retriever "
                "'bm25' | 'embedding' | 'hybrid'), retriever=<a Python function (query, k)>, or "
                f"column=<a dataset column of pre-computed contexts>; got {sources or 'none'}"
            )
        if isinstance(self.retriever, str) and self.retriever not in BUILT_IN:
            raise ConfigError(
                f"retrieval: unknown retriever {self.retriever!r}; choose one of {list(BUILT_IN)}, "
                "a Python function, or its import path 'module:function'"
            )
        if self.embedding_model != DEFAULT_EMBEDDING_MODEL:
            raise ConfigError(
                f"retrieval: unknown embedding_model {self.embedding_model!r}; the shipped one is "
                f"{DEFAULT_EMBEDDING_MODEL!r}"
            )
        try:
            _ENV.parse(self.query)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"retrieval: query template {self.query!r} has a syntax error: {exc.message}") from exc

    def _sources(self) -> dict[str, bool]:
        return {
            "kb": self.kb is not None,
            "retriever function": callable(self.retriever),
            "column": self.column is not None,
        }

    @property
    def source(self) -> str:
        """``"kb"``, ``"function"`` or ``"column"``: where the context comes from."""
        if self.column is not None:
            return "column"
        return "function" if callable(self.retriever) else "kb"

    def variables(self) -> set[str]:
        """The case columns the query template uses (none for a dataset column of contexts)."""
        if self.source == "column":
            return set()
        return set(jinja2.meta.find_undeclared_variables(_ENV.parse(self.query)))

    def render_query(self, row: Mapping[str, Any]) -> str:
        """The search query for one case."""
        return _ENV.from_string(self.query).render(dict(row))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (the ``retrieval:`` block of a variant in YAML); a function is its import path."""
        if self.source == "column":
            return {"column": self.column, "k": self.k}
        data: dict[str, Any] = {}
        if self.source == "kb":
            data["kb"] = self.kb
        data["retriever"] = _import_path(self.retriever) if callable(self.retriever) else self.retriever
        data["k"] = self.k
        if self.source == "kb":
            data.update(chunk_size=self.chunk_size, overlap=self.overlap)
            if self.retriever != "bm25":
                data["embedding_model"] = self.embedding_model
        data["query"] = self.query
        return data

    def fingerprint(self) -> dict[str, Any]:
        """What goes into the variant's version: :meth:`to_dict`, plus a function's source code hash."""
        data = self.to_dict()
        if callable(self.retriever):
            try:
                code = inspect.getsource(self.retriever)
            except (OSError, TypeError):  # built in, or defined where the source is not kept
                code = repr(self.retriever)
            data["source_sha"] = hashlib.sha256(code.encode()).hexdigest()[:12]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Retrieval:
        """Inverse of :meth:`to_dict`."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(
                f"retrieval: unknown key(s) {sorted(unknown)}; the keys are {sorted(cls.__dataclass_fields__)}"
            )
        return cls(**dict(data))


def _import_path(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


def _import(path: str) -> RetrieverFunction:
    """The function an import path ``"module:function"`` names."""
    module_name, _, qualname = path.partition(":")
    if "<" in qualname:  # a lambda or a function defined inside another one
        raise ConfigError(
            f"retrieval: retriever {path!r} cannot be imported (a lambda or nested function); "
            "pass the function itself in Python, or move it to a module's top level"
        )
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"retrieval: retriever {path!r} cannot be imported: {exc}") from exc
    if not callable(target):
        raise ConfigError(f"retrieval: retriever {path!r} is not a function")
    return target  # type: ignore[no-any-return]
