"""Tool-call checks: did the model call the right function(s) with acceptable arguments?

The checker follows the AST evaluation of the Berkeley Function-Calling Leaderboard
(BFCL, Yan et al. 2024, ``bfcl/eval_checker/ast_eval``): an expected call is a function
name and, per argument, the list of *accepted* values; ``""`` among them marks the
argument optional. A model's call is right when

1. its name is the expected one;
2. every required argument (one whose accepted values do not hold ``""``) is present;
3. it has no argument the expected call does not list (the expected spec is the schema:
   list every argument the tool takes, optional ones with ``""``);
4. each value has the JSON type of an accepted value (an int is accepted where a float
   is, as BFCL does; ``"42"`` is **not** accepted where ``42`` is, nor ``42`` where
   ``"42"`` is: a tool's schema types its arguments, and downstream code breaks on the
   wrong type);
5. each value equals an accepted value: strings compared normalised (case, Unicode
   NFKC, whitespace), numbers within ``abs_tol`` / ``rel_tol``, lists element-wise,
   objects key-wise.

Parallel calls are matched order-insensitively by an assignment
(``scipy.optimize.linear_sum_assignment``). An empty expected list means "no call
expected" (BFCL's relevance detection): right when the model made no call. With
``ordered=True`` the calls are a sequence (a multi-step case, where each call depends on
the results fed back before it): the n-th call is checked against the n-th expected one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.core.exceptions import ScorerError
from workbench.core.outputs import ToolCall
from workbench.scorers.base import BaseScorer, Score
from workbench.scorers.context import ScoringContext
from workbench.scorers.values import close, is_number, normalize

#: An accepted value that marks an argument optional (BFCL's convention).
OPTIONAL = ""


@dataclass(frozen=True)
class ExpectedCall:
    """One expected call: the function's name and each argument's accepted values."""

    name: str
    arguments: Mapping[str, Sequence[Any]]

    @classmethod
    def parse(cls, spec: Any) -> ExpectedCall:
        """``{"name": "get_weather", "arguments": {"city": ["Paris", "paris, fr"]}}``."""
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
            raise ScorerError(
                f"tool_call_match: an expected call is {{'name': ..., 'arguments': {{...}}}}, got {spec!r}"
            )
        arguments = spec.get("arguments") or {}
        if isinstance(arguments, Mapping):  # a JSONL column of objects comes back from Arrow as one struct
            arguments = {k: v for k, v in arguments.items() if v is not None}  # keys missing there read null
        unknown = sorted(set(spec) - {"name", "arguments"})
        if unknown or not isinstance(arguments, Mapping):
            raise ScorerError(f"tool_call_match: expected call {spec!r} has keys {unknown} or non-object arguments")
        for arg, accepted in arguments.items():
            if not isinstance(accepted, list) or not accepted:
                raise ScorerError(
                    f"tool_call_match: argument {arg!r} of expected call {spec['name']!r} needs a non-empty list "
                    f"of accepted values (e.g. [{json.dumps(accepted)}]), got {accepted!r}"
                )
        return cls(spec["name"], dict(arguments))


@dataclass(frozen=True)
class CallCheck:
    """How a model's calls compare with the expected ones in one case.

    Attributes:
        ok: The call set is right.
        names_ok: The called function names are the expected ones (as a multiset).
        expected_calls: How many calls were expected (0: no call expected).
        problems: What failed, in words.
    """

    ok: bool
    names_ok: bool
    expected_calls: int
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class ToolCallMatch(BaseScorer):
    """The model's tool calls against expected calls, BFCL AST style (see the module docstring).

    The per-case score is 1.0 when the call set is right, else 0.0, with a reason
    naming what failed. Group metrics: ``success_rate`` (share of cases right),
    ``wrong_tool_rate`` (of cases expecting calls, share whose called names differ
    from the expected ones: a wrong, missing or extra function), ``argument_accuracy``
    (of cases expecting calls whose names were right, share whose arguments are all
    right) and ``no_call_accuracy`` (of cases expecting no call, share with none).

    Args:
        expected: The expected column: a list of calls (or its JSON text);
            ``[]`` means no call expected.
        abs_tol: Absolute tolerance for numbers.
        rel_tol: Relative tolerance for numbers (0.01 = 1%).
        ordered: The expected calls are a sequence (multi-step cases): compared position by
            position, not as a set.

    Example:
        >>> from workbench.core.outputs import ToolCall
        >>> s = ToolCallMatch(expected="calls")
        >>> ctx = ScoringContext(inputs={}, output="", expectations={
        ...     "calls": [{"name": "get_weather", "arguments": {"city": ["Paris"], "unit": ["c", ""]}}]},
        ...     tool_calls=(ToolCall("get_weather", {"city": " paris "}),))
        >>> s.score(inputs={}, outputs="", expectations=ctx.expectations, context=ctx).value
        1.0
    """

    expected: str | None = None
    abs_tol: float = 0.0
    rel_tol: float = 0.0
    ordered: bool = False
    metric_name: str | None = None

    def truth(self, expectations: Mapping[str, Any]) -> list[ExpectedCall]:
        """The expected calls of one case.

        Raises:
            ScorerError: the value is not a list of calls (or JSON text of one).
        """
        value = self._expected_json(expectations, what="expected calls are", give="a list")
        value = _data(value)
        if not isinstance(value, list):
            raise ScorerError(f"tool_call_match: expected calls {value!r} are not a list ([] = no call expected)")
        return [ExpectedCall.parse(v) for v in value]

    def check_call(self, call: ToolCall, want: ExpectedCall) -> list[str]:
        """What is wrong with one call against one expected call ([] = right)."""
        if call.name != want.name:
            return [f"called {call.name!r}, expected {want.name!r}"]
        args = call.arguments if call.arguments is not None else {}
        if not isinstance(args, Mapping):
            return [f"{call.name}: arguments are not a JSON object: {str(args)[:100]!r}"]
        problems = [
            f"{call.name}: missing required argument {arg!r}"
            for arg, accepted in want.arguments.items()
            if arg not in args and OPTIONAL not in accepted
        ]
        problems += [f"{call.name}: unknown argument {arg!r}" for arg in args if arg not in want.arguments]
        for arg, value in args.items():
            accepted = [a for a in want.arguments.get(arg, ()) if a != OPTIONAL or value == OPTIONAL]
            if arg not in want.arguments or not accepted:
                continue
            if not any(_same_type(value, a) for a in accepted):
                problems.append(f"{call.name}: {arg}={json.dumps(value)} has the wrong type (accepted {accepted!r})")
            elif not any(self.equal(value, a) for a in accepted):
                problems.append(f"{call.name}: {arg}={json.dumps(value)} is not one of {accepted!r}")
        return problems

    def equal(self, value: Any, accepted: Any) -> bool:
        """Whether a value equals one accepted value (types already checked)."""
        if isinstance(value, bool) or isinstance(accepted, bool):
            return value is accepted
        if is_number(value) and is_number(accepted):
            return close(float(value), float(accepted), abs_tol=self.abs_tol, rel_tol=self.rel_tol)
        if isinstance(value, str) and isinstance(accepted, str):
            return normalize(value) == normalize(accepted)
        if isinstance(value, list) and isinstance(accepted, list):
            return len(value) == len(accepted) and all(
                _same_type(v, a) and self.equal(v, a) for v, a in zip(value, accepted, strict=True)
            )
        if isinstance(value, Mapping) and isinstance(accepted, Mapping):
            return set(value) == set(accepted) and all(
                _same_type(value[k], accepted[k]) and self.equal(value[k], accepted[k]) for k in value
            )
        return bool(value == accepted)

    def compare(self, calls: Sequence[ToolCall], expected: Sequence[ExpectedCall]) -> CallCheck:
        """Match the calls to the expected ones (order-insensitive) and say what failed."""
        names_ok = Counter(c.name for c in calls) == Counter(w.name for w in expected)
        if not expected:
            shown = ", ".join(c.name for c in calls)
            return CallCheck(not calls, names_ok, 0, () if not calls else (f"no call expected, got {shown}",))
        if not calls:
            return CallCheck(False, False, len(expected), (f"no call made, expected {[w.name for w in expected]}",))
        if self.ordered:
            return self._compare_in_order(calls, expected)
        import numpy as np  # imported on use, with scipy
        from scipy.optimize import linear_sum_assignment

        found = [[self.check_call(c, w) for w in expected] for c in calls]
        # Cost: 0 right, 1 right name with wrong arguments, 2 another function.
        cost = np.array([[0 if not p else 1 if c.name == w.name else 2 for w, p in zip(expected, row, strict=True)]
                         for c, row in zip(calls, found, strict=True)])  # fmt: skip
        rows, cols = linear_sum_assignment(cost)
        problems = [p for r, k in zip(rows, cols, strict=True) for p in found[r][k]]
        problems += [f"missing call {expected[k].name!r}" for k in sorted(set(range(len(expected))) - set(cols))]
        problems += [f"extra call {calls[r].name!r}" for r in sorted(set(range(len(calls))) - set(rows))]
        return CallCheck(not problems, names_ok, len(expected), tuple(problems))

    def _compare_in_order(self, calls: Sequence[ToolCall], expected: Sequence[ExpectedCall]) -> CallCheck:
        """The n-th call against the n-th expected call; a missing or extra call is named with its position."""
        problems = [f"call {n}: {p}" for n, (c, w) in enumerate(zip(calls, expected, strict=False), start=1)
                    for p in self.check_call(c, w)]  # fmt: skip
        problems += [f"call {n}: missing call {w.name!r}" for n, w in enumerate(expected, 1) if n > len(calls)]
        problems += [f"call {n}: extra call {c.name!r}" for n, c in enumerate(calls, 1) if n > len(expected)]
        names_ok = [c.name for c in calls] == [w.name for w in expected]
        return CallCheck(not problems, names_ok, len(expected), tuple(problems))

    def score(
        self,
        *,
        inputs: Mapping[str, Any],
        outputs: str,
        expectations: Mapping[str, Any],
        context: ScoringContext | None = None,
    ) -> Score:
        calls = context.tool_calls if context is not None else ()
        result = self.compare(calls, self.truth(expectations))
        if result.ok:
            what = "no call, as expected" if not result.expected_calls else f"{result.expected_calls} call(s) right"
            return Score(1.0, what)
        return Score(0.0, "; ".join(result.problems))

    def aggregate(
        self,
        outputs: Sequence[str],
        expectations: Sequence[Mapping[str, Any]],
        *,
        tool_calls: Sequence[Sequence[ToolCall]] | None = None,
    ) -> dict[str, float]:
        if not outputs:
            return {}
        per_case = tool_calls if tool_calls is not None else [()] * len(outputs)
        checks = [self.compare(c, self.truth(e)) for c, e in zip(per_case, expectations, strict=True)]
        calling = [c for c in checks if c.expected_calls]
        named = [c for c in calling if c.names_ok]
        silent = [c for c in checks if not c.expected_calls]
        return {
            "success_rate": _share(c.ok for c in checks),
            "wrong_tool_rate": _share(not c.names_ok for c in calling),
            "argument_accuracy": _share(c.ok for c in named),
            "no_call_accuracy": _share(c.ok for c in silent),
        }


def _same_type(value: Any, accepted: Any) -> bool:
    """JSON types match; an int is accepted where a float is (BFCL), a bool is not a number."""
    if isinstance(value, bool) or isinstance(accepted, bool):
        return isinstance(value, bool) and isinstance(accepted, bool)
    if is_number(value) and is_number(accepted):
        return isinstance(accepted, float) or isinstance(value, int)
    if isinstance(value, Mapping) and isinstance(accepted, Mapping):
        return True
    return type(value) is type(accepted)


def _data(value: Any) -> Any:
    """Plain Python data: the numpy arrays and scalars a JSONL column of objects comes back as, unwrapped."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_data(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _data(v) for k, v in value.items()}
    return value


def _share(flags: Any) -> float:
    values = list(flags)
    return sum(values) / len(values) if values else float("nan")
