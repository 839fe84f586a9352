"""Pay the first-use costs of logging a result while a run waits on the network.

The first charts, verdict and tables of a process import about 0.5 s of code:
plotly's property validators, scipy.special and pandas' writers. When charts
are on, the MLflow tracker starts a :class:`WarmUp` (:func:`warm_up` in a
background thread) when a run starts, so a cold run logs as fast as a warm one.
"""

from __future__ import annotations

import threading


class WarmUp:
    """:func:`warm_up` in a daemon thread; :meth:`wait` for it before plotting."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=warm_up, name="workbench-charts-warm-up", daemon=True)
        self._thread.start()

    def wait(self, timeout: float = 30.0) -> None:
        """Block until the warm-up is done: on a short (e.g. cached) run it may still be importing,
        and plotting alongside it would race its imports. A no-op when it was never started."""
        if self._thread is not None:
            self._thread.join(timeout)


def warm_up() -> None:
    """Import and exercise what logging a result will need; never raises."""
    try:
        import pandas as pd
        import scipy.special  # noqa: F401

        _build_throwaway_figures()
        pd.DataFrame({"a": [1.0]}).to_csv()
        pd.DataFrame({"a": [1.0]}).to_string()
    except Exception:  # only an optimisation: the charts are built (and checked) after the run
        pass


def _build_throwaway_figures() -> None:
    """Figures of every kind and property the charts use: plotly imports its
    validators lazily, on a process's first figures (about 0.4 s of CPU)."""
    import pandas as pd
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    line, marker = {"width": 1}, {"size": 4, "opacity": 0.5, "line": {"width": 1, "color": "gray"}}
    fig = make_subplots(rows=2, cols=1)
    fig.add_trace(go.Bar(x=["a"], y=[1], error_y={"type": "data", "array": [0.1]}, marker_color="gray"), row=1, col=1)
    fig.add_trace(
        go.Scatter(x=[1], y=pd.Series([1.0]), error_x={"type": "data", "array": [0.1]}, mode="markers+text",
                   marker=marker, line=line, textfont={"size": 10}),
        row=2, col=1,
    )  # fmt: skip
    fig.add_trace(go.Box(x=["a"], q1=[1], median=[2], q3=[3], lowerfence=[0], upperfence=[4], line=line, marker=marker))
    fig.add_trace(go.Box(y=pd.Series([1.0, 2.0]), boxpoints="all", line=line, marker=marker))
    fig.add_trace(go.Heatmap(z=[[1]], x=["a"], y=["a"], text=[["1"]], texttemplate="%{text}"))
    fig.add_hline(y=1, line_dash="dot")
    fig.add_vline(x=0, line_dash="dash", row=1, col=1)
    fig.add_annotation(x=1, y=1, text="x", showarrow=True, font={"size": 10})
    fig.update_xaxes(title_text="x", row=1, col=1)
    fig.update_yaxes(title_text="y", row=2, col=1)
    fig.update_layout(title="warm-up", template="plotly_white", legend={"orientation": "h"}, margin={"t": 40})
    fig.to_html(full_html=False, include_plotlyjs=False)
