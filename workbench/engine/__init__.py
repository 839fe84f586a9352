"""The execution engine: plan, call (cache, retries, limits, budget), score, summarise, tell observers.

Nothing here imports tracking, progress or redaction code: those follow a run
as :class:`RunObserver` objects.
"""

from workbench.engine.cache import CacheOption, ResponseCache
from workbench.engine.cache_choice import resolve_cache
from workbench.engine.calls import CallPath
from workbench.engine.estimate import Estimate, estimate
from workbench.engine.observers import ProgressObserver, RunObserver, RunStart
from workbench.engine.runner import execute

__all__ = [
    "CacheOption",
    "CallPath",
    "Estimate",
    "ProgressObserver",
    "ResponseCache",
    "RunObserver",
    "RunStart",
    "estimate",
    "execute",
    "resolve_cache",
]
