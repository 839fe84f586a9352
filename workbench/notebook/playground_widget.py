"""The ipywidgets view of a :class:`workbench.notebook.playground.Playground` (state lives there).

The view knows the state only by duck typing (it is handed a Playground), so the
state module imports the view and never the other way round.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
from IPython.display import display

from workbench.core.html import render

_WIDE = widgets.Layout(width="100%")
#: The "compare to" choice that means the selected variant's previous version.
PREVIOUS = "previous version"


class PlaygroundWidget:
    """Controls on top, a Run button, then progress, the status line and the side-by-side table."""

    def __init__(self, pg: Any) -> None:  # a workbench.notebook.playground.Playground
        self.pg = pg
        names = list(pg.versions)
        self.variant = widgets.Dropdown(options=names, value=pg.selected, description="variant")
        self.against = widgets.Dropdown(options=[PREVIOUS, *names], value=pg.against, description="compare to")
        self.version = widgets.HTML()
        self.system = widgets.Textarea(description="system", rows=2, layout=_WIDE)
        self.prompt = widgets.Textarea(description="prompt", rows=4, layout=_WIDE)
        self.model = widgets.Text(value=pg.model, description="model")
        self.temperature = widgets.BoundedFloatText(min=0, max=2, step=0.1, description="temperature")
        self.max_tokens = widgets.BoundedIntText(min=1, max=100_000, description="max tokens")
        self.mode = widgets.ToggleButtons(
            options=[("first n", "first"), ("random n", "random"), ("ids", "ids"), ("failed last time", "failed")],
            value=pg.sample_mode,
            description="sample",
        )
        self.n = widgets.BoundedIntText(value=pg.n, min=1, max=1_000_000, description="n")
        self.ids = widgets.Text(placeholder="case ids, comma-separated", description="ids")
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
        ]:
            widget.add_class(f"wb-playground-{name}")
        self.variant.observe(self._on_variant, names="value")
        self.against.observe(lambda change: setattr(pg, "against", change["new"]), names="value")
        self.run_button.on_click(lambda _: self._guarded(self._run))
        self.save_button.on_click(lambda _: self._guarded(self._save))
        self.revert_button.on_click(lambda _: self._guarded(self._revert))
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
        self.out.clear_output()
        with self.out:  # the progress bar shows here while the calls run
            run = self.pg.run()
            self.out.clear_output(wait=True)
            display(run.table)

    def _save(self) -> None:
        self._apply()
        self.pg.save()

    def _revert(self) -> None:
        self.pg.revert()
        self.render()

    def _on_variant(self, change: dict[str, str]) -> None:
        self.pg.select(change["new"])
        self.render()

    def _guarded(self, action: object) -> None:
        try:
            action()  # type: ignore[operator]
        except Exception as exc:  # show it in the widget; a callback's traceback is easy to miss
            self.status.value = render("error.html.j2", text=f"{type(exc).__name__}: {exc}")

    # -- writing the state into the controls -----------------------------------
    def render(self) -> None:
        pg = self.pg
        current = pg.current
        self.system.value = current.system or ""
        self.prompt.value = current.prompt
        self.temperature.value = float(current.params.get("temperature", 0.0))
        self.max_tokens.value = int(current.params.get("max_tokens", 256))
        self._shown = {"temperature": self.temperature.value, "max_tokens": self.max_tokens.value}
        history = pg.versions[pg.selected]
        self.version.value = render(
            "playground_version.html.j2", version=current.version, versions=len(history), examples=len(current.examples)
        )
        self.revert_button.disabled = len(history) < 2
        self.status.value = render("status.html.j2", text=pg.status)
