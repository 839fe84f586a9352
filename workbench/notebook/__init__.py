"""Notebook widgets: the playground (edit, run, compare) and human review (👍 / 👎 that become test cases)."""

from workbench.notebook.playground import Playground, playground
from workbench.notebook.review import Review, review

__all__ = ["Playground", "Review", "playground", "review"]
