"""Give memory that large transients freed back to the OS, so peak RSS follows the data actually held."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

import pyarrow as pa


def _malloc_trim() -> object:
    """glibc's ``malloc_trim``, or None off glibc (macOS, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


def release_unused() -> None:
    """Give the pages Arrow's allocator and C's ``malloc`` freed back to the OS.

    The allocators keep freed pages for reuse, so without this every large transient (a
    sorted column, a chunk of a dataset file, a grouped copy, a paired table) stays in RSS
    after it is gone. Pandas' ``str`` columns live in Arrow's allocator; numpy arrays and
    Python objects in ``malloc``'s (glibc: ``malloc_trim``).
    """
    pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)  # type: ignore[operator]
