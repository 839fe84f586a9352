"""The ``workbench`` command line.

workbench run experiments/sentiment.yaml [--model M] [--limit N] [--repeats N] [--no-mlflow] [--no-cache]
workbench gate experiments/sentiment.yaml --min label_match=0.85 [--baseline-run production] [--promote production]
workbench gate experiments/redteam.yaml --max attack_success_rate=0.05
workbench report notebooks/ab_test.ipynb [-p key value ...]
workbench cache info|clear
workbench runs [--experiment E] [--since 7d] | --close-orphans
workbench alias <run_id> production [--variant V]
workbench promote experiments/sentiment.yaml few_shot [--alias production]
workbench optimize experiments/sentiment.yaml --variant zero_shot --objective label_match --max-calls 400
workbench ui
workbench server start|stop|status | user NAME [--grant EXPERIMENT=PERMISSION]
workbench sync <run folder>

Exit codes: 0 done (a gate passed), 1 a gate failed or a run failed (its MLflow
run ends FAILED), 2 bad input (the message says what and how to fix it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import pandas as pd
import yaml

import workbench  # noqa: F401  (applies offline defaults before litellm/mlflow load)
from workbench.analysis.gate import gate
from workbench.core.exceptions import RunError, WorkbenchError
from workbench.engine.cache_choice import open_cache
from workbench.experiment.baseline import run_against_baseline
from workbench.experiment.config import load_experiment
from workbench.optimize import FewShot, ModelProposer, ParamSweep, Reflect, Strategy, optimize
from workbench.server.commands import add_team_commands
from workbench.tracking.genai import promote
from workbench.tracking.report import run_report
from workbench.tracking.runs import list_runs, set_alias
from workbench.tracking.store import MlflowWriter, ui_command

#: The response cache keeps raw prompts and outputs (PII included) to replay calls.
NO_CACHE_HELP = "neither read nor write the response cache (it keeps raw text: inputs and outputs with any PII)"


def _cmd_run(args: argparse.Namespace) -> int:

    experiment = load_experiment(args.file).with_overrides(models=args.model, limit=args.limit, repeats=args.repeats)
    print(f"{experiment.name}: {experiment.n_calls} calls ({len(experiment.dataset)} cases)")
    result = experiment.run(
        log_to_mlflow=not args.no_mlflow, progress=not args.quiet, source="cli", cache=not args.no_cache
    )
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(result.summary.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    for note in result.notes:
        print(f"note: {note}")
    print(f"\nverdict: {result.verdict()}")
    if result.run_id:
        print(f"MLflow run {result.run_id}; open the UI with:\n  {ui_command(result.tracking_uri)}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:

    parameters = {key: yaml.safe_load(value) for key, value in args.parameter}
    report = run_report(args.notebook, parameters=parameters, output_dir=args.output_dir)
    for verdict in report.verdicts:
        print(f"winner: {verdict}")
    print(f"report: {report.html}  (executed notebook: {report.notebook})")
    if report.run_ids:
        print(f"attached to MLflow run(s): {', '.join(report.run_ids)}")
    print(f"open the MLflow UI with:\n  {ui_command(report.tracking_uri)}")
    if report.error:
        print(f"error: the notebook failed: {report.error}", file=sys.stderr)
        return 1
    return 0


def _parse_thresholds(pairs: Sequence[str], option: str = "--min") -> dict[str, float]:
    example = "scorer=0.85" if option == "--min" else "attack_success_rate=0.05"
    thresholds = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            thresholds[name.strip()] = float(value)
        except ValueError:
            raise WorkbenchError(f"{option} {pair!r} must look like {example}") from None
        if not sep:
            raise WorkbenchError(f"{option} {pair!r} must look like {example}")
    return thresholds


def _cmd_gate(args: argparse.Namespace) -> int:

    thresholds = _parse_thresholds(args.min)
    maxima = _parse_thresholds(args.max, "--max")
    experiment = load_experiment(args.file).with_overrides(models=args.model, limit=args.limit)
    options: dict[str, Any] = {
        "log_to_mlflow": not args.no_mlflow,
        "progress": not args.quiet,
        "source": "cli",
        "cache": not args.no_cache,
    }
    if args.baseline_run:
        against = run_against_baseline(
            experiment, args.baseline_run, baseline=args.baseline, candidate=args.candidate, **options
        )
        comparison = against.comparison
        print(f"baseline: MLflow run {against.baseline.run_id} (not re-run); candidate run {against.result.run_id}")
    else:
        comparison = experiment.run(**options).compare(args.baseline, args.candidate)
    outcome = gate(comparison, thresholds=thresholds, maxima=maxima, gated_scorers=args.scorer or None)
    print(comparison)
    print(outcome)
    if outcome.passed and args.promote:
        variant = next(v for v in experiment.variants if v.name == comparison.candidate)
        _print_promoted(promote(MlflowWriter().client, experiment.name, variant, args.promote), args.promote)
    return 0 if outcome.passed else 1


def _cmd_promote(args: argparse.Namespace) -> int:
    experiment = load_experiment(args.file)
    names = [v.name for v in experiment.variants]
    if args.variant not in names:
        raise WorkbenchError(f"{args.file} has no variant {args.variant!r}; its variants are {names}")
    variant = experiment.variants[names.index(args.variant)]
    _print_promoted(promote(MlflowWriter().client, experiment.name, variant, args.alias), args.alias)
    return 0


def _print_promoted(version: Any, alias: str) -> None:
    print(
        f"prompts:/{version.name}@{alias} -> version {version.version}; load it with "
        f'wb.PromptVariant.from_registry("prompts:/{version.name}@{alias}")'
    )


def _cmd_cache(args: argparse.Namespace) -> int:

    cache = open_cache()
    if args.action == "clear":
        print(f"removed {cache.clear()} cached responses from {cache.path}")
    else:
        print(f"{len(cache)} cached responses in {cache.path}")
    return 0


def _cmd_runs(args: argparse.Namespace) -> int:
    writer = MlflowWriter()
    if not args.close_orphans:
        table = list_runs(experiment=args.experiment, variant=args.variant, since=args.since)
        if table.empty:
            print(f"no workbench runs in {writer.tracking_uri} match")
            return 0
        shown = table.assign(
            variants=table["variants"].map(lambda v: ",".join(v)),
            start_time=table["start_time"].dt.strftime("%Y-%m-%d %H:%M"),
        )
        columns = ["run_id", "experiment", "start_time", "status", "variants", "n_cases", "aliases", "verdict"]
        with pd.option_context("display.width", 250, "display.max_colwidth", 70):
            print(shown[columns].to_string(index=False))
        return 0
    closed = writer.close_orphans()
    print(f"closed {len(closed)} orphaned run(s) as KILLED in {writer.tracking_uri}")
    for run_id in closed:
        print(f"  {run_id}")
    return 0


def _cmd_alias(args: argparse.Namespace) -> int:
    ref = set_alias(args.run_id, args.alias, variant=args.variant)
    variant = f" (variant {ref.variant})" if ref.variant else ""
    print(f"{args.alias} -> run {ref.run_id}{variant}; gate against it with --baseline-run {args.alias}")
    return 0


def _cmd_ui(args: argparse.Namespace) -> int:

    print(ui_command(port=args.port))
    return 0


def _strategies(names: str, proposer: str) -> list[Strategy]:
    """``few_shot,reflect,params`` -> the strategy objects (taking turns in that order)."""
    known: dict[str, Strategy] = {
        "few_shot": FewShot(),
        "reflect": Reflect(ModelProposer(proposer)),
        "params": ParamSweep({"temperature": [0.0, 0.3, 0.7]}),
    }
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in known]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"unknown strategy {unknown or names!r}; use some of {sorted(known)}")
    return [known[n] for n in chosen]


def _cmd_optimize(args: argparse.Namespace) -> int:
    experiment = load_experiment(args.file)
    variant = args.variant or experiment.variants[0].name
    state = args.state or f".cache/workbench/optimize/{experiment.name}-{variant}-seed{args.seed}.json"
    try:
        strategies = _strategies(args.strategy, args.proposer)
    except argparse.ArgumentTypeError as exc:
        print(f"error: --strategy: {exc}", file=sys.stderr)
        return 2
    result = optimize(
        experiment,
        variant=variant,
        objective=args.objective,
        strategy=strategies,
        max_calls=args.max_calls,
        budget_usd=args.budget_usd,
        max_steps=args.steps,
        seed=args.seed,
        stratify=args.stratify,
        finalists=args.finalists,
        state_path=state,
        log_to_mlflow=not args.no_mlflow,
    )
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_colwidth", 60):
        print(result.tree.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    for cid, text in result.accepted_diffs.items():
        print(f"\n{cid} vs its parent:\n{text}")
    print(f"\n{result}\nstate (rerun to continue): {state}")
    return 0


def _positive(text: str) -> int:
    """An argparse type: a whole number >= 1 (0 and negatives are refused, never read as "all")."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"must be at least 1, got {value}; leave the option out to use the file's value"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Prompt Workbench: A/B test prompts.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run an experiment YAML file and log it to MLflow")
    run.add_argument("file", help="experiment definition, e.g. experiments/sentiment.yaml")
    run.add_argument("--model", action="append", help="litellm model string (repeatable); overrides the file")
    run.add_argument("--limit", type=_positive, help="only the first N cases (N >= 1)")
    run.add_argument("--repeats", type=_positive, help="run each case N times (N >= 1)")
    run.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--no-cache", action="store_true", help=NO_CACHE_HELP)
    run.set_defaults(func=_cmd_run)

    report = sub.add_parser("report", help="execute a notebook with papermill into reports/ (ipynb + HTML)")
    report.add_argument("notebook")
    report.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="notebook parameter (value parsed as YAML: 20, null, true, text)",
    )
    report.add_argument("--output-dir", default="reports")
    report.set_defaults(func=_cmd_report)

    gate = sub.add_parser(
        "gate",
        help="run an experiment and fail (exit 1) if the candidate is significantly worse, misses a --min "
        "threshold or is above a --max ceiling",
    )
    gate.add_argument("file", help="experiment definition, e.g. experiments/sentiment.yaml")
    gate.add_argument(
        "--baseline-run",
        metavar="RUN",
        help="compare with this stored MLflow run (an id or an alias such as production) instead of "
        "re-running the baseline: only the candidate runs",
    )
    gate.add_argument("--baseline", help="baseline variant (default: the first, or the one the alias names)")
    gate.add_argument("--candidate", help="candidate variant (default: the best other one)")
    gate.add_argument(
        "--min",
        action="append",
        default=[],
        metavar="SCORER=VALUE",
        help="absolute threshold on the candidate's mean, e.g. label_match=0.85 (repeatable)",
    )
    gate.add_argument(
        "--max",
        action="append",
        default=[],
        metavar="RATE=VALUE",
        help="ceiling on the candidate's attack_success_rate or canary_leak_rate (one minus attack_resisted / "
        "canary_kept) or on a scorer's mean, e.g. attack_success_rate=0.05 (repeatable)",
    )
    gate.add_argument("--scorer", action="append", help="gate only these scorers on regressions (repeatable)")
    gate.add_argument("--model", action="append", help="litellm model string; overrides the file")
    gate.add_argument("--limit", type=_positive, help="only the first N cases (N >= 1)")
    gate.add_argument("--no-mlflow", action="store_true")
    gate.add_argument("--quiet", action="store_true", help="no progress bar")
    gate.add_argument("--no-cache", action="store_true", help=NO_CACHE_HELP)
    gate.add_argument(
        "--promote",
        metavar="ALIAS",
        help="when the gate passes, point this alias of MLflow's Prompt Registry (e.g. production) at the candidate",
    )
    gate.set_defaults(func=_cmd_gate)

    promote_cmd = sub.add_parser(
        "promote", help="point a Prompt Registry alias (e.g. production) at a variant of an experiment file"
    )
    promote_cmd.add_argument("file", help="experiment definition, e.g. experiments/sentiment.yaml")
    promote_cmd.add_argument("variant", help="the variant to promote; registered first if its content is new")
    promote_cmd.add_argument("--alias", default="production", help="the alias to move (default: production)")
    promote_cmd.set_defaults(func=_cmd_promote)

    runs = sub.add_parser("runs", help="list the MLflow store's experiment runs, newest first (or close orphans)")
    runs.add_argument("--experiment", help="only this experiment")
    runs.add_argument("--variant", help="only runs that ran this variant")
    runs.add_argument("--since", help="only runs started since: a date (2026-11-30) or an age (7d, 12h)")
    runs.add_argument(
        "--close-orphans",
        action="store_true",
        help="mark runs left RUNNING by a process that is gone (killed, crashed) as KILLED",
    )
    runs.set_defaults(func=_cmd_runs)

    alias = sub.add_parser("alias", help="name a run (and its variant) with an alias, e.g. production")
    alias.add_argument("run_id", help="the parent run id, or a variant's child run id")
    alias.add_argument("alias", help="e.g. production; it moves from the run it named before")
    alias.add_argument("--variant", help="the run's variant the alias stands for (e.g. the one shipped)")
    alias.set_defaults(func=_cmd_alias)

    cache = sub.add_parser("cache", help="show or clear the response cache")
    cache.add_argument("action", choices=["info", "clear"])
    cache.set_defaults(func=_cmd_cache)

    opt = sub.add_parser(
        "optimize", help="search for a better prompt within a budget; verdict on a held-out test split"
    )
    opt.add_argument("file", help="experiment definition, e.g. experiments/sentiment.yaml")
    opt.add_argument("--variant", help="the starting prompt (default: the file's first variant)")
    opt.add_argument("--objective", help="the scorer to maximise (default: the file's first scorer)")
    opt.add_argument(
        "--max-calls", type=_positive, help="most model calls the search may pay for (cache hits are free)"
    )
    opt.add_argument("--budget-usd", type=float, help="most dollars the search may spend")
    opt.add_argument("--strategy", default="few_shot,reflect", help="comma-separated: few_shot, reflect, params")
    opt.add_argument("--proposer", default="local/smollm2-135m-instruct", help="the model that rewrites instructions")
    opt.add_argument("--steps", type=_positive, default=8, help="strategy turns (default 8)")
    opt.add_argument("--seed", type=int, default=0, help="seeds the split and every random choice")
    opt.add_argument("--stratify", help="column to stratify the train/dev/test split by, e.g. label")
    opt.add_argument("--finalists", type=_positive, default=1, help="best dev candidates tested at the end (Holm)")
    opt.add_argument("--state", help="JSON state file (default under .cache/workbench/optimize/); rerun to resume")
    opt.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    opt.set_defaults(func=_cmd_optimize)
    add_team_commands(sub)

    ui = sub.add_parser("ui", help="print the command that opens the MLflow UI on this project")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(func=_cmd_ui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RunError as exc:  # the run happened and failed: its MLflow run is FAILED
        print(f"error: the run failed: {exc}", file=sys.stderr)
        return 1
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
