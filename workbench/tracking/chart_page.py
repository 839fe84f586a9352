"""One HTML page of plotly charts that opens offline, in the MLflow UI and from a download, in under 2 MB.

plotly.js is 4.8 MB of JavaScript; inlined as it is, every page (and every run)
carried it. The page carries it compressed instead: raw deflate (1.47 MB), written in
base85 (1.84 MB) with an alphabet that holds no ``<``, ``>`` or ``&``, so the text
can neither close its ``<script>`` element nor be read as markup. A few lines of
JavaScript decode it and unpack it with the browser's ``DecompressionStream``
(Chrome/Edge 80, Firefox 113, Safari 16.4), then draw each figure from its JSON. No
network is needed, so the page also works inside the MLflow UI's sandboxed iframe and
on a machine without internet. A browser that cannot unpack it shows a line saying so
instead of the charts.

MLflow's own ``log_figure`` writes plotly figures that load plotly.js from a CDN: a
small file, but blank offline. The figures' data (names, labels, numbers) pass the
redaction chain; the library does not need to (it is code, not data).
"""

from __future__ import annotations

import base64
import functools
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup
from plotly.offline import get_plotlyjs

from workbench.core.html import render
from workbench.core.redaction import REDACTOR

#: Python's base85 alphabet (RFC 1924) ...
_RFC1924 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~"
#: ... with the characters HTML or a script element could trip on swapped for harmless ones.
ALPHABET = _RFC1924.translate(str.maketrans("&<>`", ",.:["))


@dataclass(frozen=True)
class ChartSection:
    """One figure of a chart page: its anchor (``id``), an optional heading above it, the figure."""

    name: str
    figure: Any
    heading: str | None = None


def chart_page(title: str, sections: Sequence[ChartSection]) -> str:
    """A self-contained HTML page of plotly figures (see the module docstring).

    Example:
        >>> page = chart_page("sentiment: charts", [ChartSection("scores", fig)])  # doctest: +SKIP
    """
    rendered = [(section.name, section.heading, Markup(_figure_json(section.figure))) for section in sections]
    library = Markup(packed_plotlyjs())  # code, not data: not redacted (a mask would corrupt it)
    return render("charts_page.html.j2", title=title, alphabet=ALPHABET, plotlyjs=library, sections=rendered)


def _figure_json(figure: Any) -> str:
    """The figure as JSON, redacted; ``<`` escaped so no string in it can close the script element."""
    return REDACTOR.text(figure.to_json()).replace("<", "\\u003c")


@functools.cache
def packed_plotlyjs() -> str:
    """plotly.js, raw-deflated and base85-encoded in :data:`ALPHABET` (computed once per process, ~0.6 s)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9)  # wbits -15: raw deflate, "deflate-raw" in JS
    packed = compressor.compress(get_plotlyjs().encode()) + compressor.flush()
    return base64.b85encode(packed).decode("ascii").translate(str.maketrans(_RFC1924, ALPHABET))
