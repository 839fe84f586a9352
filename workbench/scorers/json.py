"""JSON scorers: is the output valid JSON, and does it match a JSON Schema."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.exceptions import ScorerError
from workbench.scorers.base import BaseScorer, Score
from workbench.util.paths import resolve

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_json_output(text: str, *, allow_fences: bool = True) -> Any:
    """Parse a model's output as JSON, optionally unwrapping a Markdown code fence.

    Raises:
        ValueError: the text is not JSON.
    """
    if allow_fences:
        fenced = _FENCE.match(text)
        if fenced:
            text = fenced.group(1)
    return json.loads(text)


@dataclass(frozen=True)
class JsonValid(BaseScorer):
    """1.0 when the output parses as JSON (a ```json fence is accepted by default)."""

    allow_fences: bool = True
    metric_name: str | None = None

    def score(self, *, inputs: Mapping[str, Any], outputs: str, expectations: Mapping[str, Any]) -> Score:
        try:
            parse_json_output(str(outputs), allow_fences=self.allow_fences)
        except ValueError as exc:
            return Score(0.0, f"not JSON: {exc}")
        return Score(1.0)


@dataclass(frozen=True)
class JsonSchemaValid(BaseScorer):
    """1.0 when the output is JSON that validates against ``schema``.

    Args:
        schema: A JSON Schema as a dict, or the path of a ``.json`` file holding one.

    Example:
        >>> s = JsonSchemaValid(schema={"type": "object", "required": ["colour"]})
        >>> s.score(inputs={}, outputs='{"colour": "red"}', expectations={}).value
        1.0
    """

    schema: Any = field(default_factory=dict)
    allow_fences: bool = True
    metric_name: str | None = None

    def __post_init__(self) -> None:
        schema = self.schema
        if isinstance(schema, (str, Path)):
            path = resolve(schema)  # from the working directory, else the project root (as datasets)
            try:
                schema = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ScorerError(f"json_schema_valid: cannot read schema file {str(path)!r}: {exc}") from exc
        import jsonschema  # imported on use: it is slow to import

        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ScorerError(f"json_schema_valid: the schema itself is invalid: {exc.message}") from exc
        object.__setattr__(self, "_validator", jsonschema.validators.validator_for(schema)(schema))

    def score(self, *, inputs: Mapping[str, Any], outputs: str, expectations: Mapping[str, Any]) -> Score:
        try:
            document = parse_json_output(str(outputs), allow_fences=self.allow_fences)
        except ValueError as exc:
            return Score(0.0, f"not JSON: {exc}")
        import jsonschema

        error = jsonschema.exceptions.best_match(self._validator.iter_errors(document))  # type: ignore[attr-defined]
        if error is not None:
            path = "/".join(str(p) for p in error.absolute_path) or "<root>"
            return Score(0.0, f"schema violation at {path}: {error.message}")
        return Score(1.0)
