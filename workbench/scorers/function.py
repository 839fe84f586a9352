"""Turn a plain Python function into a scorer with :func:`scorer`."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, overload

from workbench.core.exceptions import ScorerError
from workbench.scorers.base import BaseScorer

_ARGUMENTS = ("inputs", "outputs", "expectations", "context")


@dataclass(frozen=True)
class FunctionScorer(BaseScorer):
    """A scorer backed by a Python function.

    The function may take any of ``inputs``, ``outputs``, ``expectations`` and
    ``context`` (a :class:`~workbench.scorers.ScoringContext` with the tool calls,
    metadata, tokens...) by those names, and returns a number, a bool, a ``(value, reason)`` pair or
    a :class:`~workbench.scorers.base.Score`. It may be ``async``.

    In YAML, name it by import path: ``{type: function, function: "mypkg.scoring:politeness"}``.
    """

    type_name = "function"

    function: str = ""
    metric_name: str | None = None

    def __post_init__(self) -> None:
        fn = _import(self.function) if isinstance(self.function, str) else self.function
        wanted = [p for p in inspect.signature(fn).parameters if p in _ARGUMENTS]
        if not wanted:
            raise ScorerError(
                f"scorer function {self.function!r} must take at least one of {list(_ARGUMENTS)} as a parameter"
            )
        object.__setattr__(self, "_fn", fn)
        object.__setattr__(self, "_wanted", tuple(wanted))

    @property
    def name(self) -> str:
        return self.metric_name or self._fn.__name__  # type: ignore[attr-defined]

    @property
    def wants_context(self) -> bool:
        """Whether the function takes ``context`` (then it also sees tool-call-only replies)."""
        return "context" in self._wanted  # type: ignore[attr-defined]

    def score(
        self, *, inputs: Mapping[str, Any], outputs: str, expectations: Mapping[str, Any], context: Any = None
    ) -> Any:
        given = {"inputs": inputs, "outputs": outputs, "expectations": expectations, "context": context}
        return self._fn(**{k: given[k] for k in self._wanted})  # type: ignore[attr-defined]


def _import(path: str) -> Callable[..., Any]:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ScorerError(f"scorer function {path!r} must look like 'package.module:function'")
    try:
        return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as exc:
        raise ScorerError(f"cannot import scorer function {path!r}: {exc}") from exc


@overload
def scorer(fn: Callable[..., Any], /) -> FunctionScorer: ...
@overload
def scorer(*, name: str | None = None) -> Callable[[Callable[..., Any]], FunctionScorer]: ...


def scorer(fn: Callable[..., Any] | None = None, /, *, name: str | None = None) -> Any:
    """Decorator: make a scorer out of a function.

    Example:
        >>> @scorer
        ... def short(outputs):
        ...     return len(outputs.split()) <= 3
        >>> short.score(inputs={}, outputs="positive", expectations={})
        True
        >>> short.name
        'short'
    """

    def wrap(f: Callable[..., Any]) -> FunctionScorer:
        path = f"{f.__module__}:{f.__qualname__}"
        instance = FunctionScorer.__new__(FunctionScorer)
        object.__setattr__(instance, "function", path)
        object.__setattr__(instance, "metric_name", name or f.__name__)
        # Hold the function object itself: notebook functions cannot be re-imported by path.
        object.__setattr__(instance, "_fn", f)
        wanted = [p for p in inspect.signature(f).parameters if p in _ARGUMENTS]
        if not wanted:
            raise ScorerError(f"scorer function {f.__name__!r} must take one of {list(_ARGUMENTS)}")
        object.__setattr__(instance, "_wanted", tuple(wanted))
        return instance

    return wrap(fn) if fn is not None else wrap
