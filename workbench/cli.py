"""The ``workbench`` command line.

workbench run experiments/sentiment.yaml [--model M] [--limit N] [--no-mlflow]
workbench report notebooks/ab_test.ipynb [-p key value ...]
workbench ui
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import yaml

import workbench  # noqa: F401  (applies offline defaults before litellm/mlflow load)
from workbench.exceptions import WorkbenchError


def _cmd_run(args: argparse.Namespace) -> int:
    import pandas as pd

    from workbench.config import load_experiment
    from workbench.tracking import ui_command

    experiment = load_experiment(args.file).with_overrides(models=args.model, limit=args.limit, repeats=args.repeats)
    print(f"{experiment.name}: {experiment.n_calls} calls ({len(experiment.dataset)} cases)")
    result = experiment.run(log_to_mlflow=not args.no_mlflow, progress=not args.quiet)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(result.summary.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    for note in result.notes:
        print(f"note: {note}")
    print(f"\nverdict: {result.verdict()}")
    if result.run_id:
        print(f"MLflow run {result.run_id}; open the UI with:\n  {ui_command(result.tracking_uri)}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from workbench.report import run_report
    from workbench.tracking import ui_command

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


def _parse_thresholds(pairs: Sequence[str]) -> dict[str, float]:
    thresholds = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            thresholds[name.strip()] = float(value)
        except ValueError:
            raise WorkbenchError(f"--min {pair!r} must look like scorer=0.85") from None
        if not sep:
            raise WorkbenchError(f"--min {pair!r} must look like scorer=0.85")
    return thresholds


def _cmd_gate(args: argparse.Namespace) -> int:
    from workbench.config import load_experiment
    from workbench.gate import gate

    thresholds = _parse_thresholds(args.min)
    experiment = load_experiment(args.file).with_overrides(models=args.model, limit=args.limit)
    result = experiment.run(log_to_mlflow=not args.no_mlflow, progress=not args.quiet)
    try:
        comparison = result.compare(args.baseline, args.candidate)
        outcome = gate(comparison, thresholds=thresholds, gated_scorers=args.scorer or None)
    except (ValueError, KeyError) as exc:
        raise WorkbenchError(str(exc)) from exc
    print(comparison)
    print(outcome)
    return 0 if outcome.passed else 1


def _cmd_cache(args: argparse.Namespace) -> int:
    from workbench.cache import ResponseCache

    cache = ResponseCache()
    if args.action == "clear":
        print(f"removed {cache.clear()} cached responses from {cache.path}")
    else:
        print(f"{len(cache)} cached responses in {cache.path}")
    return 0


def _cmd_ui(args: argparse.Namespace) -> int:
    from workbench.tracking import ui_command

    print(ui_command(port=args.port))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Prompt Workbench: A/B test prompts.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run an experiment YAML file and log it to MLflow")
    run.add_argument("file", help="experiment definition, e.g. experiments/sentiment.yaml")
    run.add_argument("--model", action="append", help="litellm model string (repeatable); overrides the file")
    run.add_argument("--limit", type=int, help="only the first N cases")
    run.add_argument("--repeats", type=int, help="run each case N times")
    run.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
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
        help="run an experiment and fail (exit 1) if the candidate is significantly worse or misses a threshold",
    )
    gate.add_argument("file", help="experiment definition, e.g. experiments/sentiment.yaml")
    gate.add_argument("--baseline", help="baseline variant (default: the first)")
    gate.add_argument("--candidate", help="candidate variant (default: the best other one)")
    gate.add_argument(
        "--min",
        action="append",
        default=[],
        metavar="SCORER=VALUE",
        help="absolute threshold on the candidate's mean, e.g. label_match=0.85 (repeatable)",
    )
    gate.add_argument("--scorer", action="append", help="gate only these scorers on regressions (repeatable)")
    gate.add_argument("--model", action="append", help="litellm model string; overrides the file")
    gate.add_argument("--limit", type=int, help="only the first N cases")
    gate.add_argument("--no-mlflow", action="store_true")
    gate.add_argument("--quiet", action="store_true", help="no progress bar")
    gate.set_defaults(func=_cmd_gate)

    cache = sub.add_parser("cache", help="show or clear the response cache")
    cache.add_argument("action", choices=["info", "clear"])
    cache.set_defaults(func=_cmd_cache)

    ui = sub.add_parser("ui", help="print the command that opens the MLflow UI on this project")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(func=_cmd_ui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
