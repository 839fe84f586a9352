"""Red-team data and text functions: attack suites, strategies, canaries and hijack markers.

This package holds what the other layers share and knows nothing of runs: the scorers
(:mod:`workbench.scorers.safety`) detect success with :mod:`workbench.redteam.detect`, and
:func:`workbench.redteam` (in :mod:`workbench.experiment.redteam`) builds the experiment.

``wb.redteam`` is that function, not this package: import from the package's modules by their
full name (``from workbench.redteam.strategies import STRATEGIES``), not as ``workbench.redteam.x``
attributes.
"""

from workbench.redteam.detect import canary_leak, canary_token, marker_hit
from workbench.redteam.strategies import STRATEGIES, Strategy, resolve_strategies
from workbench.redteam.suite import CATEGORIES, Attack, AttackSuite, CleanCase, load_clean, load_suite

__all__ = [
    "CATEGORIES",
    "STRATEGIES",
    "Attack",
    "AttackSuite",
    "CleanCase",
    "Strategy",
    "canary_leak",
    "canary_token",
    "load_clean",
    "load_suite",
    "marker_hit",
    "resolve_strategies",
]
