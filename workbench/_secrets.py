"""Keep credentials out of everything the workbench writes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: Keys whose values are treated as secrets (``api_key``, ``aws_secret_access_key``,
#: ``access_token``...). "token" only as a whole word at the end: ``max_tokens`` is a
#: model parameter that changes the output, not a credential.
SECRET_KEY = re.compile(r"key|secret|password|authorization|credential|(?:^|_)token$", re.IGNORECASE)


def is_secret(key: str) -> bool:
    return bool(SECRET_KEY.search(key))


def redact(params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``params`` with the values of credential-like keys replaced by ``"***"``."""
    return {k: ("***" if is_secret(k) else v) for k, v in params.items()}
