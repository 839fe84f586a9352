"""A past run's definition, rebuilt from what it recorded: its manifest and its cases file.

:func:`spec_from_manifest` turns ``manifest.json`` (variants, models, router groups,
scorer specs, success rule) and the run's cases (the dataset's inputs and expected
values) back into an :class:`~workbench.core.spec.ExperimentSpec`. A scorer whose code
is not stored (a Python function) comes back as a :class:`RecordedScorer`: its scores
are in the rows, it cannot score new outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.core import schema as col
from workbench.core.dataset import Dataset
from workbench.core.exceptions import UsageError
from workbench.core.routing import RouterGroup
from workbench.core.runstore import CasesFile
from workbench.core.schema import SuccessRule
from workbench.core.spec import ExperimentSpec
from workbench.core.variant import PromptVariant
from workbench.scorers import scorer_from_spec


class RecordedScorer:
    """A scorer of a reopened run whose definition could not be rebuilt (a Python function, say).

    Its scores are in the run's rows, so comparisons and summaries work; it cannot score
    new outputs.
    """

    calls_models = False

    def __init__(self, name: str, spec: Mapping[str, Any] | None, run_id: str) -> None:
        self.name = name
        self._spec = dict(spec or {"type": "recorded", "metric_name": name})
        self.run_id = run_id

    def spec(self) -> dict[str, Any]:
        return dict(self._spec)

    def score(self, **_: Any) -> float:
        raise UsageError(
            f"scorer {self.name!r} was read back from MLflow run {self.run_id}: its scores are in the run's "
            "cases, but its code is not stored, so it cannot score new outputs; pass the scorer itself"
        )


def spec_from_manifest(manifest: Mapping[str, Any], cases: CasesFile, run_id: str) -> ExperimentSpec:
    """The experiment's definition as the run recorded it (``manifest.json``); the dataset is its
    cases' inputs. ``run_id`` names where it came from in messages."""
    variants = [
        PromptVariant.from_dict({k: v for k, v in data.items() if k != "version"})
        for data in manifest["variants"].values()
    ]
    about = cases.about
    names = list(about.get("scorers") or [])
    specs = list(manifest.get("scorers") or [])
    scorers = [_scorer(name, specs[i] if i < len(specs) else None, run_id) for i, name in enumerate(names)]
    success = manifest.get("success_rule") or {}
    dataset = manifest.get("dataset") or {}
    return ExperimentSpec(
        name=str(manifest["experiment"]),
        variants=variants,
        dataset=_recorded_dataset(cases, dataset, run_id),
        models=list(manifest["models"]),
        routers=_routers(manifest),
        scorers=scorers,
        repeats=int(manifest.get("repeats", 1)),
        success=SuccessRule(**success),
        description=f"reopened from MLflow run {run_id}",
    )


def _routers(manifest: Mapping[str, Any]) -> dict[str, RouterGroup]:
    """The run's router groups, as its manifest recorded them (``{name, router: {...}}`` entries).

    MLflow's copy went through the redactor, which masks every value under a key-like name,
    ``api_key_env`` included: such a masked name is left unset (set it again to re-run the group).
    """
    groups = {}
    for entry in manifest.get("routers") or ():
        if not isinstance(entry, Mapping):
            continue
        router = dict(entry["router"])
        router["deployments"] = [
            {k: v for k, v in d.items() if not (k == "api_key_env" and not str(v).isidentifier())}
            for d in router.get("deployments") or ()
        ]
        groups[str(entry["name"])] = RouterGroup(name=entry["name"], **router)
    return groups


def _scorer(name: str, spec: Mapping[str, Any] | None, run_id: str) -> Any:
    if spec is not None:
        try:
            built = scorer_from_spec(spec, where=f"run {run_id}")
        except Exception:  # a function scorer, a type of a newer version...: keep its scores only
            built = None
        if built is not None and built.name == name:
            return built
    return RecordedScorer(name, spec, run_id)


def _recorded_dataset(cases: CasesFile, about: Mapping[str, Any], run_id: str) -> Dataset:
    """One row per case of the first variant x model x repeat: its id, inputs and expected values."""
    inputs = col.columns(cases.columns, col.INPUT)
    expected = col.columns(cases.columns, col.EXPECTED)
    first = cases.read([col.CASE_ID, *inputs, *expected], where={col.REPEAT: 0}).drop_duplicates(col.CASE_ID)
    renamed = {c: c.removeprefix(col.INPUT) for c in inputs} | {c: c.removeprefix(col.EXPECTED) for c in expected}
    frame = first.rename(columns=renamed).reset_index(drop=True)
    id_column = "id" if "id" not in frame.columns else col.CASE_ID
    frame = frame.rename(columns={col.CASE_ID: id_column})
    source = f"{about.get('source', 'dataset')} (as recorded in MLflow run {run_id})"
    return Dataset(
        frame,
        id_column=id_column,
        expected=[c.removeprefix(col.EXPECTED) for c in expected],
        source=source,
        content_hash=about.get("hash"),
    )
