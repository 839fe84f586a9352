"""The playground: edit a prompt, run it on a sample, read the outputs side by side.

:func:`playground` is the notebook's inner loop. Pick a variant, edit its
template or parameters, choose a sample (first n, random n, specific ids, or
the cases that failed last time) and run: the outputs appear next to the
previous version of the variant (before the first edit: the first other
variant) with word-level differences highlighted and each case's scores,
under a status line with calls (new and from the cache), tokens, cost and
latency. A run that cannot start or fails (an unknown case id, nothing failed
last time, a missing API key, every call failing) shows one line in the widget
instead of the status line.

Each edit is a new :class:`~workbench.core.variant.PromptVariant` version (its
content hash); the playground keeps every version, and "previous version"
goes back one edit without making a new one. A template that names a variable
the dataset lacks is refused at the edit, with the dataset's columns and the
closest one. Runs go through the same runner and response cache as everything
else: the unchanged side of a comparison, and any case already run, costs
nothing. :meth:`Playground.save` writes the variant back to the experiment's
YAML file under ``experiments/`` (only that variant's entry changes) and logs a
run of it to MLflow.

All the logic lives on :class:`Playground`, so it is testable without a
browser; the widget (``.widget``, or display the object) is a thin view that
follows every change made from code.

Example:
    >>> pg = wb.playground(wb.load_experiment("experiments/sentiment.yaml"))  # doctest: +SKIP
    >>> pg  # the widget  # doctest: +SKIP
    >>> pg.edit(prompt="Review: {{ review }}\\nIs it positive or negative?")  # doctest: +SKIP
    >>> pg.run(n=8).table  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from workbench.core import schema as col
from workbench.core.dataset import Dataset
from workbench.core.exceptions import ConfigError, UsageError
from workbench.core.html import render
from workbench.core.variant import PromptVariant
from workbench.experiment.config import load_experiment
from workbench.experiment.experiment import Experiment
from workbench.experiment.result import ExperimentResult
from workbench.experiment.yaml_file import default_yaml, write_variant
from workbench.notebook.playground_status import check_columns, dataset_file, status_line
from workbench.notebook.playground_widget import PREVIOUS, PlaygroundWidget
from workbench.util.paths import project_root
from workbench.views.side_by_side import SideBySide

SampleMode = Literal["first", "random", "ids", "failed"]
_UNSET: Any = object()


@dataclass(frozen=True)
class PlaygroundRun:
    """What one click of Run produced."""

    variant: PromptVariant
    against: PromptVariant | None
    result: ExperimentResult
    table: SideBySide
    status: str

    def _repr_html_(self) -> str:
        return render("status.html.j2", text=self.status) + self.table.to_html()


def _label(variant: PromptVariant) -> str:
    return f"{variant.name}@{variant.version[:7]}"


@dataclass
class Playground:
    """Playground state: every version of every variant, the sample, the last runs.

    Build it with :func:`playground`.

    Attributes:
        versions: Every distinct version of each variant, in the order they were made.
        trail: Per variant, the versions that led to the current one (oldest first):
            an edit pushes, :meth:`revert` pops. The current version is the last.
        against: What runs are compared with: another variant's name, ``PREVIOUS``
            (this variant's version before the last edit), or ``None`` for the default,
            :attr:`compare_to`.
    """

    experiment: Experiment
    model: str
    versions: dict[str, list[PromptVariant]]
    selected: str
    against: str | None = None
    trail: dict[str, list[PromptVariant]] = field(default_factory=dict)
    sample_mode: SampleMode = "first"
    n: int = 8
    ids: list[str] = field(default_factory=list)
    seed: int = 0
    log_to_mlflow: bool = False
    tracking_uri: str | None = None
    acompletion: Callable[..., Any] | None = None
    runs: list[PlaygroundRun] = field(default_factory=list)
    failed: dict[str, list[str]] = field(default_factory=dict)
    status: str = ""
    _widget: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name, history in self.versions.items():
            self.trail.setdefault(name, [history[-1]])

    # -- versions --------------------------------------------------------------
    @property
    def current(self) -> PromptVariant:
        """The selected variant's current version (the last edit, or where :meth:`revert` went back to)."""
        return self.trail[self.selected][-1]

    @property
    def compare_to(self) -> str:
        """What the next run is compared with: ``against`` when chosen, else this variant's
        previous version once it has been edited, else the first other variant."""
        if self.against is not None:
            return self.against
        if len(self.trail[self.selected]) > 1:
            return PREVIOUS
        others = [name for name in self.versions if name != self.selected]
        return others[0] if others else PREVIOUS

    def select(self, name: str) -> PromptVariant:
        """Make ``name`` the variant that edits, runs and saves work on (the widget follows)."""
        if name not in self.versions:
            raise UsageError(f"no variant {name!r}; the variants are {list(self.versions)}")
        self.selected = name
        self._refresh()
        return self.current

    def edit(
        self,
        *,
        prompt: str | None = None,
        system: str | None = _UNSET,
        examples: Sequence[Mapping[str, Any]] | None = None,
        params: Mapping[str, Any] | None = None,
        **param_updates: Any,
    ) -> PromptVariant:
        """A new version of the selected variant with these changes (a no-op edit adds nothing).

        ``params`` replaces the parameters; keyword arguments such as
        ``temperature=0.7`` or ``max_tokens=16`` update single ones (``None`` removes one).
        The widget shows the new version at once.

        Raises:
            TemplateError: A template does not parse (the message names the line, and the
                missing ``}}`` of an unclosed ``{{``), or uses a variable that is not a
                column of the dataset (the message lists the columns and the closest one).
                Nothing changes.
        """
        base = self.current
        new_params = dict(base.params if params is None else params)
        for key, value in param_updates.items():
            if value is None:
                new_params.pop(key, None)
            else:
                new_params[key] = value
        changes: dict[str, Any] = {"params": new_params}
        if prompt is not None:
            changes["prompt"] = prompt
        if system is not _UNSET:
            changes["system"] = system or None
        if examples is not None:
            changes["examples"] = list(examples)
        # Check the templates against the dataset before the few-shot examples are checked
        # against the templates: a misspelt variable is a typo, not a missing example value.
        check_columns(dataclasses.replace(base, **{**changes, "examples": ()}), self.experiment.dataset)
        edited = dataclasses.replace(base, **changes)
        if edited.version != base.version:
            self.trail[self.selected].append(edited)
            history = self.versions[self.selected]
            if edited.version not in {v.version for v in history}:
                history.append(edited)
        self._refresh()
        return self.current

    def revert(self) -> PromptVariant:
        """Go back one edit: the version the current one was made from becomes current again.

        It makes no new version. Repeated reverts walk back to the first version; the
        versions gone back over stay in :attr:`versions`.
        """
        trail = self.trail[self.selected]
        if len(trail) < 2:
            raise UsageError(f"variant {self.selected!r} is at its first version: nothing older to go back to")
        trail.pop()
        self._refresh()
        return self.current

    def _against(self) -> PromptVariant | None:
        against = self.compare_to
        if against == PREVIOUS:
            trail = self.trail[self.selected]
            return trail[-2] if len(trail) > 1 else None
        if against not in self.versions:
            raise UsageError(f"cannot compare against {against!r}; choose {PREVIOUS!r} or {list(self.versions)}")
        other = self.trail[against][-1]
        return None if other.version == self.current.version else other

    # -- the sample ------------------------------------------------------------
    def sample(self) -> Dataset:
        """The cases the next run uses."""
        dataset = self.experiment.dataset
        if self.sample_mode == "first":
            return dataset.head(self.n)
        if self.sample_mode == "random":
            return dataset.sample(self.n, seed=self.seed)
        if self.sample_mode == "ids":
            wanted = self.ids
        elif self.sample_mode == "failed":
            if self.selected not in self.failed:
                raise UsageError(f"variant {self.selected!r} has not been run yet: there is no 'failed last time'")
            wanted = self.failed[self.selected]
            if not wanted:
                raise UsageError(f"nothing failed in the last run of {self.selected!r}")
        else:
            raise UsageError(f"sample mode must be first, random, ids or failed, got {self.sample_mode!r}")
        if not wanted:
            raise UsageError("sample mode 'ids' needs at least one case id: type them comma-separated")
        ids = dataset.frame[dataset.id_column]
        unknown = sorted(set(wanted) - set(ids))
        if unknown:
            known = list(dict.fromkeys(ids))
            shown = ", ".join(repr(i) for i in known[:3]) + (", ..." if len(known) > 3 else "")
            raise UsageError(
                f"no case(s) {unknown} in dataset {dataset_file(dataset)}; its {dataset.id_column!r} values are {shown}"
            )
        return dataset._subset(dataset.frame[ids.isin(wanted)])

    # -- running ---------------------------------------------------------------
    def run(self, *, n: int | None = None, progress: bool = True) -> PlaygroundRun:
        """Run the current version (and the one it is compared with, :attr:`compare_to`) on the sample.

        Unchanged calls come from the response cache, so only what changed is paid for.
        The status line is cleared first: after a failed run it never shows the last
        good run's figures.
        """
        if n is not None:
            self.n = n
        self.status = ""
        current, against = self.current, self._against()
        shown = [current] + ([against] if against else [])
        labels = [_label(v) for v in shown]
        if against is not None and labels[0] == labels[1]:
            labels[1] += "'"
        renamed = [dataclasses.replace(v, name=label) for v, label in zip(shown, labels, strict=True)]
        if against is not None:
            renamed.reverse()  # the baseline first: the diff shows what the edit changed
        experiment = Experiment(
            name=self.experiment.name,
            variants=renamed,
            dataset=self.sample(),
            models=[self.model],
            scorers=self.experiment.scorers,
            settings=self.experiment.settings,
            success=self.experiment.success,
        )
        result = experiment.run(
            log_to_mlflow=self.log_to_mlflow,
            tracking_uri=self.tracking_uri,
            progress=progress,
            acompletion=self.acompletion,
            source="playground",
        )
        mine = result.cases[result.cases[col.VARIANT] == labels[0]]
        failing = experiment.success.failures(mine, result.scorer_names)
        self.failed[self.selected] = list(dict.fromkeys(mine.loc[failing, col.CASE_ID]))
        run = PlaygroundRun(current, against, result, result.side_by_side(limit=None), status_line(result, labels[0]))
        self.runs.append(run)
        self.status = run.status
        self._refresh()
        return run

    # -- saving ----------------------------------------------------------------
    def save(self, path: str | Path | None = None, *, as_name: str | None = None, log_to_mlflow: bool = True) -> Path:
        """Write the current version back to an experiment YAML file and log it to MLflow.

        Args:
            path: The YAML file; default: the file the experiment was loaded
                from, else ``experiments/<experiment name>.yaml``. In an existing
                file only this variant's entry changes, and in it only the changed
                fields: comments, flow lists, quoting and block scalars stay as they
                were (new multi-line text is written as a ``|`` block).
            as_name: Save under another variant name (added next to the others).
            log_to_mlflow: Also log a run of the saved version to MLflow.

        Credentials (``api_key``... in params) are never written: keep them in
        the environment.

        The MLflow run re-runs the saved version on the last sample through
        the response cache, so it costs nothing when that sample was just run.
        """
        variant = self.current if as_name is None else dataclasses.replace(self.current, name=as_name)
        target = Path(path) if path else Path(self.experiment.source or default_yaml(self.experiment.name))
        if not target.is_absolute():
            target = project_root() / target
        newest = [trail[-1] for trail in self.trail.values()]
        write_variant(target, variant, experiment=self.experiment, variants=newest)
        load_experiment(target)  # what we wrote must load; fail here, not at the next run
        self.status = f"saved {variant.name} (version {variant.version}) to {target}"
        if log_to_mlflow:
            try:
                sample = self.sample()
            except ValueError:  # e.g. "failed last time" with nothing failed
                sample = self.experiment.dataset.head(self.n)
            logged = Experiment(
                name=self.experiment.name,
                variants=[variant],
                dataset=sample,
                models=[self.model],
                scorers=self.experiment.scorers,
                settings=self.experiment.settings,
            ).run(tracking_uri=self.tracking_uri, progress=False, acompletion=self.acompletion, source="playground")
            self.status += f"; logged to MLflow run {logged.run_id}"
        self._refresh()
        return target

    # -- the widget ------------------------------------------------------------
    @property
    def widget(self) -> Any:
        """The ipywidgets view (built on first use)."""
        if self._widget is None:
            self._widget = PlaygroundWidget(self)
        return self._widget

    def _refresh(self) -> None:
        if self._widget is not None:
            self._widget.render()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget.box)


def playground(
    source: Experiment | Sequence[PromptVariant],
    dataset: Dataset | None = None,
    *,
    model: str | None = None,
    scorers: Sequence[Any] = (),
    n: int = 8,
    log_to_mlflow: bool = False,
    tracking_uri: str | None = None,
    acompletion: Callable[..., Any] | None = None,
) -> Playground:
    """An interactive playground for an experiment (or variants + a dataset).

    Args:
        source: An :class:`~workbench.experiment.experiment.Experiment`, or prompt variants.
        dataset: The cases, when ``source`` is a list of variants.
        model: The litellm model string to start with (default: the experiment's first).
        scorers: Scorers, when ``source`` is a list of variants.
        n: Sample size to start with.
        log_to_mlflow: Log every run (not only saved versions) to MLflow.
        tracking_uri: MLflow tracking URI (default: the project's ``mlruns/``).
        acompletion: The async completion function (tests inject fakes here).

    Example:
        >>> pg = wb.playground(experiment)  # doctest: +SKIP
        >>> pg  # doctest: +SKIP
    """
    if isinstance(source, Experiment):
        experiment = source
    else:
        if dataset is None:
            raise ConfigError("playground(variants, dataset): pass the dataset the variants run on")
        experiment = Experiment(
            name="playground",
            variants=list(source),
            dataset=dataset,
            models=[model] if model else ["local/gemma-3-270m"],
            scorers=scorers,
        )
    experiment.dataset.validate(experiment.variants)
    versions = {v.name: [v] for v in experiment.variants}
    names = list(versions)
    return Playground(
        experiment=experiment,
        model=model or experiment.models[0],
        versions=versions,
        selected=names[-1],
        n=n,
        log_to_mlflow=log_to_mlflow,
        tracking_uri=tracking_uri,
        acompletion=acompletion,
    )
