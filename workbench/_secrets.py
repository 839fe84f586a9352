"""Keep credentials out of everything the workbench writes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: Keys whose values are treated as secrets (``api_key``, ``aws_secret_access_key``, ...).
SECRET_KEY = re.compile(r"key|token|secret|password|authorization|credential", re.IGNORECASE)


def is_secret(key: str) -> bool:
    return bool(SECRET_KEY.search(key))


def redact(params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``params`` with the values of credential-like keys replaced by ``"***"``."""
    return {k: ("***" if is_secret(k) else v) for k, v in params.items()}
