"""The ipywidgets view of a :class:`workbench.notebook.playground.Playground` (state lives there).

The view knows the state only by duck typing (it is handed a Playground), so the
state module imports the view and never the other way round. The state calls
:meth:`PlaygroundWidget.render` after every change, so edits made from code show
in the text boxes at once.

Any error a button raises (a template that does not parse, an unknown case id, a
missing API key, a run whose calls all failed) is one line in place of the
status line; a failed Run also clears the previous run's table and figures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from IPython.display import display

from workbench.core.html import render

_WIDE = widgets.Layout(width="100%")
#: Labels as wide as their text ("temperature" is cut off at the default width).
_LABEL = {"description_width": "initial"}
#: The "compare to" choice that means the selected variant's previous version.
PREVIOUS = "previous version"


def one_line(text: str, *, limit: int = 400) -> str:
    """``text`` on one line (runs of whitespace and newlines become one space), cut at ``limit``."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def error_line(exc: BaseException) -> str:
    """What the widget shows for an error: its type and message on one line, never a traceback."""
    return one_line(f"{type(exc).__name__}: {exc}")


class PlaygroundWidget:
    """Controls on top, a Run button, then progress, the status line and the side-by-side table."""

    def __init__(self, pg: Any) -> None:  # a workbench.notebook.playground.Playground
        self.pg = pg
        self._rendering = False  # set while render() writes the state into the controls
        names = list(pg.versions)
        self.variant = widgets.Dropdown(options=names, value=pg.selected, description="variant", style=_LABEL)
        self.against = widgets.Dropdown(
            options=[PREVIOUS, *names], value=pg.compare_to, description="compare to", style=_LABEL
        )
        self.version = widgets.HTML()
        self.system = widgets.Textarea(description="system", rows=2, layout=_WIDE)
        self.prompt = widgets.Textarea(description="prompt", rows=4, layout=_WIDE)
        self.model = widgets.Text(value=pg.model, description="model", style=_LABEL)
        self.temperature = widgets.BoundedFloatText(min=0, max=2, step=0.1, description="temperature", style=_LABEL)
        self.max_tokens = widgets.BoundedIntText(min=1, max=100_000, description="max tokens", style=_LABEL)
        self.mode = widgets.ToggleButtons(
            options=[("first n", "first"), ("random n", "random"), ("ids", "ids"), ("failed last time", "failed")],
            value=pg.sample_mode,
            description="sample",
        )
        self.n = widgets.BoundedIntText(value=pg.n, min=1, max=1_000_000, description="n", style=_LABEL)
        self.ids = widgets.Text(placeholder="case ids, comma-separated", description="ids", style=_LABEL)
        self.run_button = widgets.Button(description="▶ Run", button_style="primary")
        self.save_button = widgets.Button(description="💾 Save to YAML", tooltip="write this version to experiments/")
        self.revert_button = widgets.Button(description="↶ previous version")
        self.status = widgets.HTML()
        self.out = widgets.Output()
        for widget, name in [
            (self.run_button, "run"),
            (self.save_button, "save"),
            (self.revert_button, "revert"),
            (self.prompt, "prompt"),
            (self.system, "system"),
            (self.ids, "ids"),
            (self.mode, "mode"),
            (self.temperature, "temperature"),
            (self.status, "status"),
            (self.out, "out"),
        ]:
            widget.add_class(f"wb-playground-{name}")
        self.variant.observe(self._on_variant, names="value")
        self.against.observe(self._on_against, names="value")
        self.run_button.on_click(lambda _: self._guarded(self._run, failed_run=True))
        self.save_button.on_click(lambda _: self._guarded(self._save))
        self.revert_button.on_click(lambda _: self._guarded(self.pg.revert))
        self.box = widgets.VBox(
            [
                widgets.HBox([self.variant, self.against, self.version]),
                self.system,
                self.prompt,
                widgets.HBox([self.model, self.temperature, self.max_tokens]),
                widgets.HBox([self.mode, self.n, self.ids]),
                widgets.HBox([self.run_button, self.save_button, self.revert_button]),
                self.status,
                self.out,
            ]
        )
        self.box.add_class("wb-playground")
        self.render()

    # -- reading the controls into the state -----------------------------------
    def _apply(self) -> None:
        pg = self.pg
        pg.model = self.model.value.strip() or pg.model
        pg.sample_mode = self.mode.value
        pg.n = self.n.value
        pg.ids = [i.strip() for i in self.ids.value.split(",") if i.strip()]
        # Only a control the user changed becomes a parameter: showing a default must not make a new version.
        changed = {
            name: control.value
            for name, control in (("temperature", self.temperature), ("max_tokens", self.max_tokens))
            if control.value != self._shown[name]
        }
        pg.edit(prompt=self.prompt.value, system=self.system.value or None, **changed)

    def _run(self) -> None:
        self._apply()
        self.status.value = ""
        self.out.clear_output()
        failure: Exception | None = None
        with self.out:  # the progress bar shows here while the calls run
            try:
                run = self.pg.run()
            except Exception as exc:
                # Inside a kernel, leaving `with self.out` with an exception prints its traceback
                # into the widget and swallows it: take it out so that _guarded shows one line.
                failure = exc
            else:
                self.out.clear_output(wait=True)
                display(run.table)
        if failure is not None:
            raise failure

    def _save(self) -> None:
        self._apply()
        self.pg.save()

    def _on_variant(self, change: dict[str, str]) -> None:
        if not self._rendering:
            self._guarded(lambda: self.pg.select(change["new"]))

    def _on_against(self, change: dict[str, str]) -> None:
        if not self._rendering:  # the user's choice; until then it follows pg.compare_to
            self.pg.against = change["new"]

    def _guarded(self, action: Callable[[], object], *, failed_run: bool = False) -> None:
        try:
            action()
        except Exception as exc:  # one line in the widget; a callback's traceback is easy to miss
            if failed_run:  # the last run's table and figures are not this run's
                self.pg.status = ""
                self.out.clear_output()
            self.status.value = render("error.html.j2", text=error_line(exc))

    # -- writing the state into the controls -----------------------------------
    def render(self) -> None:
        """Show the state: the selected variant's current version, what it is compared with, the status."""
        pg = self.pg
        current = pg.current
        self._rendering = True
        try:
            self.variant.value = pg.selected
            self.against.value = pg.compare_to
            self.system.value = current.system or ""
            self.prompt.value = current.prompt
            self.temperature.value = float(current.params.get("temperature", 0.0))
            self.max_tokens.value = int(current.params.get("max_tokens", 256))
        finally:
            self._rendering = False
        self._shown = {"temperature": self.temperature.value, "max_tokens": self.max_tokens.value}
        self.version.value = render(
            "playground_version.html.j2",
            version=current.version,
            versions=len(pg.versions[pg.selected]),
            examples=len(current.examples),
        )
        self.revert_button.disabled = len(pg.trail[pg.selected]) < 2
        self.status.value = render("status.html.j2", text=pg.status)
