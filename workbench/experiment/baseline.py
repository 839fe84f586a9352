"""Run only the candidate and compare it with a stored baseline run: no calls for the baseline.

"Is today's prompt better than the one in production, measured last week?" The baseline
is a past run in MLflow (a run id, or an alias such as ``production``, see
:func:`workbench.set_alias`); the candidate is one variant of the experiment, run now;
cases pair by id (:func:`workbench.compare_results`). ``workbench gate --baseline-run``
and the ``baseline_run`` parameter of ``notebooks/ab_test.ipynb`` are this function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.analysis.compare import compare_results
from workbench.analysis.comparison import Comparison
from workbench.core.exceptions import UsageError
from workbench.experiment.experiment import Experiment
from workbench.experiment.result import ExperimentResult
from workbench.experiment.stored import load_run


@dataclass
class AgainstBaseline:
    """What :func:`run_against_baseline` returns.

    Attributes:
        result: The candidate's run (one variant).
        baseline: The stored baseline run, reopened (:func:`workbench.load_run`).
        comparison: Candidate vs the baseline's variant, paired by case id.
    """

    result: ExperimentResult
    baseline: ExperimentResult
    comparison: Comparison


def run_against_baseline(
    experiment: Experiment,
    baseline_run: str,
    *,
    baseline: str | None = None,
    candidate: str | None = None,
    tracking_uri: str | None = None,
    scorers: list[str] | None = None,
    **run_options: Any,
) -> AgainstBaseline:
    """Run ``candidate`` alone and compare it with variant ``baseline`` of a stored run.

    Args:
        experiment: The experiment (its variants, dataset, models, scorers).
        baseline_run: The stored run: an id, ``runs:/<id>``, or an alias of this
            experiment (``production``) or ``<experiment>@<alias>``.
        baseline: The stored run's variant to compare with; default: the one the alias
            names, else the run's only (or first) variant.
        candidate: The variant to run now; default: the experiment's only variant other
            than ``baseline``.
        tracking_uri: The store of the baseline run (the default store otherwise).
        scorers: Scorers to compare on (default: every scorer both runs have).
        run_options: Passed to :meth:`Experiment.run` (``log_to_mlflow``, ``progress``...).

    Raises:
        UsageError: before any call, when the candidate cannot be told or the stored
            run does not have the baseline variant.

    Example:
        >>> out = wb.run_against_baseline(exp, "production", candidate="few_shot")  # doctest: +SKIP
        >>> print(out.comparison.verdicts[0])  # doctest: +SKIP
    """
    stored = load_run(baseline_run, experiment=experiment.name, tracking_uri=tracking_uri)
    stored_names = [v.name for v in stored.experiment.variants]
    baseline = baseline or stored.picked_variant or stored_names[0]
    if baseline not in stored_names:
        raise UsageError(f"the baseline run {stored.run_id} has no variant {baseline!r}; its variants: {stored_names}")
    if candidate is None:
        others = [v.name for v in experiment.variants if v.name != baseline]
        if len(experiment.variants) == 1:
            others = [experiment.variants[0].name]
        if len(others) != 1:
            raise UsageError(
                f"say which variant of {experiment.name!r} is the candidate (candidate=... or --candidate): "
                f"its variants other than the baseline {baseline!r} are {others}"
            )
        candidate = others[0]
    only = experiment.with_overrides(variants=[candidate])
    model = only.models[0]
    stored_models = list(stored.experiment.models)
    if model not in stored_models and len(stored_models) > 1:
        raise UsageError(
            f"the baseline run {stored.run_id} ran models {stored_models}, not {model!r}; "
            "run the candidate on one of them (--model)"
        )
    result = only.run(**run_options)
    comparison = compare_results(
        stored,
        result,
        baseline_variant=baseline,
        candidate_variant=candidate,
        model=model if model in stored_models else None,
        scorers=scorers,
    )
    return AgainstBaseline(result=result, baseline=stored, comparison=comparison)
