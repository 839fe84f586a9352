"""Red-team data and text functions: attack suites, strategies, canaries and hijack markers.

This package holds what the other layers share and knows nothing of runs: the scorers
(:mod:`workbench.scorers.safety`) detect success with :mod:`workbench.attacks.detect`, and
:func:`workbench.redteam` (in :mod:`workbench.experiment.redteam`) builds the experiment.

(It is not called ``redteam``: ``wb.redteam`` is the function, and a package of the same name
would hide it.)
"""

from workbench.attacks.detect import canary_leak, canary_token, marker_hit
from workbench.attacks.strategies import STRATEGIES, Strategy, resolve_strategies
from workbench.attacks.suite import CATEGORIES, Attack, AttackSuite, CleanCase, load_clean, load_suite

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
