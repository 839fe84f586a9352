"""A variant's ``response_format``: structured output, named by a schema file or given whole.

The value is litellm's structured-output parameter. Remote models receive it as given; the
embedded local models turn it into a llama.cpp grammar (see ``workbench.providers.local``), so
their output can only be JSON that fits the schema. Three forms are accepted:

- ``{"type": "json_object"}``: any JSON object.
- ``{"type": "json_schema", "json_schema": {"name": "listing", "schema": {...}}}``: litellm's form;
  ``schema`` may also be the path of a ``.json`` file.
- ``{"json_schema": "data/listing.schema.json"}``: the short form, a schema file by path; it
  becomes litellm's form, named after the file.

Paths resolve like datasets and the ``json_schema_valid`` scorer's schema: from the working
directory, else from the project root (so ``notebooks/`` works). The schema is read once, when
the variant is made, so the response cache key holds the schema itself, not its path: editing
the file gives new calls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from workbench.core.exceptions import ConfigError
from workbench.util.paths import resolve

_TYPES = ("text", "json_object", "json_schema")


def _read_schema(path: str, where: str) -> dict[str, Any]:
    file = resolve(path)
    try:
        schema = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"{where}: cannot read the JSON schema file {str(path)!r} ({exc.strerror}); give a path "
            "relative to the project root or the working directory"
        ) from exc
    except ValueError as exc:
        raise ConfigError(f"{where}: the schema file {str(file)!r} is not valid JSON: {exc}") from exc
    if not isinstance(schema, dict):
        kind = type(schema).__name__
        raise ConfigError(f"{where}: the schema file {str(file)!r} must hold a JSON object, got {kind}")
    return schema


def _name_of(path: str) -> str:
    stem = path.replace("\\", "/").rsplit("/", 1)[-1].split(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9_-]", "_", stem)[:64] or "schema"


def expand_response_format(value: Any, *, where: str = "response_format") -> dict[str, Any]:
    """``value`` in litellm's form, schema files read.

    Raises:
        ConfigError: an unknown shape or type, or a schema file that cannot be read, naming
            ``where`` and the fix.

    Example:
        >>> expand_response_format({"type": "json_object"})
        {'type': 'json_object'}
        >>> rf = expand_response_format({"json_schema": "data/listing.schema.json"})  # doctest: +SKIP
        >>> rf["type"], rf["json_schema"]["name"], rf["json_schema"]["schema"]["type"]  # doctest: +SKIP
        ('json_schema', 'listing', 'object')
    """
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{where}: must be a mapping such as {{type: json_object}} or "
            f"{{json_schema: data/listing.schema.json}}, got {value!r}"
        )
    value = dict(value)
    if "type" not in value and set(value) == {"json_schema"} and isinstance(value["json_schema"], str):
        path = value["json_schema"]
        return {"type": "json_schema", "json_schema": {"name": _name_of(path), "schema": _read_schema(path, where)}}
    kind = value.get("type")
    if kind not in _TYPES:
        raise ConfigError(
            f"{where}: 'type' must be one of {list(_TYPES)}, got {kind!r}; or give a schema file: "
            "{json_schema: data/listing.schema.json}"
        )
    if kind != "json_schema":
        return value
    spec = value.get("json_schema")
    if not isinstance(spec, Mapping) or "schema" not in spec:
        raise ConfigError(
            f"{where}: type json_schema needs json_schema: {{name: ..., schema: {{...}} or a .json path}}, got {spec!r}"
        )
    spec = dict(spec)
    if isinstance(spec["schema"], str):
        spec.setdefault("name", _name_of(spec["schema"]))
        spec["schema"] = _read_schema(spec["schema"], where)
    elif not isinstance(spec["schema"], Mapping):
        raise ConfigError(f"{where}: json_schema.schema must be a JSON Schema object or a .json path")
    spec.setdefault("name", "schema")
    return {**value, "json_schema": spec}


def schema_of(response_format: Mapping[str, Any] | None) -> tuple[bool, dict[str, Any] | None]:
    """Whether ``response_format`` asks for JSON, and the schema it gives (None: any JSON object).

    Example:
        >>> schema_of({"type": "json_object"})
        (True, None)
        >>> schema_of({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}})
        (True, {'type': 'object'})
        >>> schema_of(None)
        (False, None)
    """
    if not response_format:
        return False, None
    kind = response_format.get("type")
    if kind == "json_schema":
        return True, dict(response_format["json_schema"]["schema"])
    if kind == "json_object":
        schema = response_format.get("schema")  # llama-cpp-python's own spelling
        return True, dict(schema) if isinstance(schema, Mapping) else None
    return False, None
