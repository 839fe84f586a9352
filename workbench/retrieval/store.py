"""Where the persistent Chroma collections live (a module of its own: no chromadb import needed)."""

from __future__ import annotations

import os
from pathlib import Path

from workbench.util.paths import project_root

#: Environment variable that moves the Chroma store.
STORE_ENV = "WORKBENCH_CHROMA"


def store_dir() -> Path:
    """``$WORKBENCH_CHROMA`` if set, else ``.cache/workbench/chroma`` in the project (git-ignored)."""
    override = os.environ.get(STORE_ENV)
    return Path(override) if override else project_root() / ".cache" / "workbench" / "chroma"
