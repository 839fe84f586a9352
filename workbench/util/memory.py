"""Give memory that large transients freed back to the OS, so peak RSS follows the data actually held."""

from __future__ import annotations

import pyarrow as pa


def release_unused() -> None:
    """Give the pages Arrow's allocator freed back to the OS.

    The allocator (mimalloc or jemalloc) keeps freed pages for reuse, so without this
    every large transient (a sorted column, a chunk of a dataset file, a grouped copy)
    stays in RSS after it is gone. Pandas' ``str`` columns live in that allocator too.
    """
    pa.default_memory_pool().release_unused()
