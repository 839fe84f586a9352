"""Notebook and report HTML: Jinja2 templates with autoescape, one place for shared styles.

Every ``_repr_html_``, table and widget body is rendered from a template in
``workbench/core/templates/``; ``_styles.j2`` holds the score badges and table
styles they share. Every value a template prints is escaped and passes the
redaction chain (:data:`~workbench.core.redaction.REDACTOR`), so a name, an
output or an error can neither inject markup nor leak a credential into an
executed notebook. Pre-rendered HTML (a plotly figure, a pandas table made
here) is passed as :class:`markupsafe.Markup`.

Example:
    >>> render("message.html.j2", text="<b>not bold</b>")
    '<p>&lt;b&gt;not bold&lt;/b&gt;</p>'
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jinja2
from markupsafe import Markup

from workbench.core.redaction import REDACTOR


def _finalize(value: Any) -> Any:
    if isinstance(value, Markup) or not isinstance(value, str):
        return "" if value is None else value
    return REDACTOR.text(value)


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("workbench.core", "templates"),
        autoescape=True,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["score"] = score_text
    return env


def render(template: str, /, **context: Any) -> str:
    """Render ``template`` (a file name in ``core/templates/``) with ``context`` (escaped, redacted)."""
    return environment().get_template(template).render(**context).strip()


def frame_html(frame: Any, **options: Any) -> Markup:
    """A pandas DataFrame as an escaped, redacted HTML table, ready to put in a template."""
    options.setdefault("index", False)
    options.setdefault("border", 0)
    return Markup(REDACTOR.frame(frame).to_html(escape=True, **options))


def score_text(value: Any) -> str:
    """A score as the badges show it: ✓ pass / ✗ fail for 1 and 0, three digits otherwise, – for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    if value in (0.0, 1.0):
        return "✓ pass" if value else "✗ fail"
    return f"{value:.3g}"
