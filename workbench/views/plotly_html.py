"""Plotly figures in JupyterLab and in static HTML, with plotly.js on a page once.

JupyterLab draws a figure from plotly's own mimetype (``application/vnd.plotly.v1+json``)
with the plotly.js its jupyterlab-plotly extension ships: offline, nothing embedded.
nbconvert's HTML export cannot read that mimetype, so :class:`StaticHtmlRenderer` adds a
``text/html`` rendering of each figure. plotly.js is 4.8 MB; plotly's own HTML renderers put
it in every figure or fetch it from a CDN (MLflow's ``log_figure`` does too: blank offline).
Here the first figure a kernel displays carries it once, compressed (1.84 MB, see
:func:`plotlyjs_script`), and each figure draws once the browser has unpacked it. A report
with six charts went from 28 MB to about 2.3 MB and still opens offline. The run's chart
page in MLflow (:mod:`workbench.tracking.chart_page`) carries the same script.

If the output that carried plotly.js is gone (its cell re-run, its output cleared) before
a notebook is exported, the exported charts say so in place of the chart; run the notebook
from the top (``workbench report`` always does).

Example:
    >>> html = plotlyjs_script()  # doctest: +SKIP
    >>> len(html) < 2_100_000  # doctest: +SKIP
    True
"""

from __future__ import annotations

import functools
import uuid
import zlib
from typing import Any

import numpy as np
import plotly.io as pio
from markupsafe import Markup
from plotly.io._base_renderers import MimetypeRenderer
from plotly.offline import get_plotlyjs

from workbench.core.html import render

#: The name of the renderer in ``plotly.io.renderers``.
RENDERER = "workbench"

#: Python's base85 alphabet (RFC 1924) ...
_RFC1924 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~"
#: ... with the characters HTML, a script element or a JS template could trip on swapped for
#: harmless ones (it has no quote or backslash either), so the packed text sits in a JS string.
ALPHABET = _RFC1924.translate(str.maketrans("&<>`", ",.:["))


@functools.cache
def packed_plotlyjs() -> str:
    """plotly.js, raw-deflated (1.47 MB) and base85-encoded in :data:`ALPHABET` (1.84 MB); ~0.6 s once."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9)  # wbits -15: raw deflate, "deflate-raw" in JS
    packed = compressor.compress(get_plotlyjs().encode()) + compressor.flush()
    return b85encode(packed)


def b85encode(data: bytes) -> str:
    """``base64.b85encode(data)`` in :data:`ALPHABET`, computed with numpy.

    The standard library's builds a Python object per 4-byte word: 50 MB of peak memory for
    plotly.js, which a 100,000-case run's MLflow logging could not afford. Same output.
    """
    padding = -len(data) % 4
    words = np.frombuffer(data + b"\0" * padding, dtype=">u4").astype(np.uint64)
    digits = np.empty((len(words), 5), dtype=np.uint8)
    for place in range(4, -1, -1):
        words, digits[:, place] = np.divmod(words, 85)
    text = np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)[digits].tobytes()
    return text[: len(text) - padding].decode("ascii")


@functools.cache
def plotlyjs_script() -> Markup:
    """A ``<script>`` that unpacks plotly.js (:func:`packed_plotlyjs`) and then draws every figure on the page.

    Until it is unpacked, ``Plotly`` is a stand-in whose ``newPlot`` queues the call, so
    figures may come before or after it. The browser unpacks it with ``DecompressionStream``
    (Chrome 80+, Firefox 113+, Safari 16.4+); where that is missing, each chart says so. The
    library is code, not data: it is not redacted (a mask would corrupt it).
    """
    return Markup(render("plotlyjs_loader.html.j2", alphabet=ALPHABET, packed=Markup(packed_plotlyjs())))


def figure_html(fig: Any, *, include_plotlyjs: bool) -> str:
    """One figure as an HTML fragment, with :func:`plotlyjs_script` in front when asked.

    The fragment says in place of the chart when no plotly.js reached the page.
    """
    div_id = str(uuid.uuid4())
    html = pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id, validate=False)
    fallback = render("plotly_fallback.html.j2", div_id=div_id)
    # Plain strings: adding a str to Markup would escape the figure.
    return (str(plotlyjs_script()) if include_plotlyjs else "") + html + fallback


class StaticHtmlRenderer(MimetypeRenderer):
    """A ``text/html`` rendering next to plotly's mimetype: plotly.js with the first figure only.

    plotly renders with a *copy* of the renderer (``RenderersConfig._build_mime_bundle``), so
    whether plotly.js was sent lives in a dict the copies share, not in an attribute of one
    copy (which left plotly.js in every figure of a report: 28 MB for six charts).
    """

    def __init__(self) -> None:
        self.state = {"plotlyjs_sent": False}

    def to_mimebundle(self, fig_dict: Any) -> dict[str, str]:
        first = not self.state["plotlyjs_sent"]
        self.state["plotlyjs_sent"] = True
        return {"text/html": figure_html(fig_dict, include_plotlyjs=first)}


def use_notebook_renderer() -> None:
    """Render plotly figures for JupyterLab (plotly's mimetype) *and* for static HTML reports."""
    if RENDERER not in pio.renderers:
        pio.renderers[RENDERER] = StaticHtmlRenderer()
    pio.renderers.default = f"plotly_mimetype+{RENDERER}"
