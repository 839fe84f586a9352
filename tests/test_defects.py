"""Regression tests for the defects of issue 11 (one test, or a few, per defect).

Every test uses an injected fake completion or a FakeOpenAIServer on 127.0.0.1;
nothing reaches the network and the embedded local model is not used. Each
test's docstring names the defect it guards.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import litellm
import pandas as pd
import pytest
from conftest import ROOT, FakeLLM, sample_reviews
from mlflow.tracking import MlflowClient

import workbench as wb
from workbench.cli import main
from workbench.engine.retry import RetryPolicy
from workbench.testing import FakeOpenAIServer
from workbench.tracking.store import HOST_TAG, PID_TAG, MlflowWriter, owner_tags

FAKE_KEY = "sk-fake-defects-0000000000000000"
FAST_RETRY = RetryPolicy(max_attempts=2, initial_wait_s=0.001, max_wait_s=0.01)
#: How many times each CLI path runs in its own process in the exit-hang test.
HANG_RUNS = 3
HANG_TIMEOUT_S = 120


# -- helpers ------------------------------------------------------------------------------
def _all_runs(uri: str) -> list:
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(ids)) if ids else []


def _parent_runs(uri: str) -> list:
    client = MlflowClient(uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    if not ids:
        return []
    return list(client.search_runs(ids, filter_string="tags.`workbench.kind` = 'experiment'"))


def _write_csv(path: Path, n: int) -> Path:
    rows = "".join(f"c{i},case number {i}\n" for i in range(n))
    path.write_text("id,text\n" + rows)
    return path


def _write_yaml(path: Path, data: Path, base_url: str, *, name: str, extra: str = "", params: str = "") -> Path:
    """A two-variant experiment on ``openai/fake`` served by a FakeOpenAIServer at ``base_url``."""
    path.write_text(
        textwrap.dedent(f"""\
            name: {name}
            dataset: {{path: {data}}}
            models: [openai/fake]
            scorers: [{{type: json_valid}}]
            variants:
              - {{name: a, prompt: "Echo {{{{ text }}}}", params: {{api_base: "{base_url}"{params}}}}}
              - {{name: b, prompt: "Say {{{{ text }}}}", params: {{api_base: "{base_url}"{params}}}}}
        """)
        + extra
    )
    return path


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``workbench ...`` in this process: (exit code, stdout, stderr); argparse's exits included."""
    try:
        code = main(args)
    except SystemExit as exc:  # argparse refuses bad arguments by exiting
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _cli_env(uri: str, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_REPORT_ID"}
    env.update(MLFLOW_TRACKING_URI=uri, WORKBENCH_CACHE=str(cache), OPENAI_API_KEY=FAKE_KEY)
    return env


def _variants(**params) -> list[wb.PromptVariant]:
    params = {"temperature": 0, **params}
    return [
        wb.PromptVariant(name="zero_shot", prompt="Review: {{ review }}\nSentiment:", params=params),
        wb.PromptVariant(
            name="few_shot",
            prompt="Review: {{ review }}\nSentiment:",
            examples=[{"review": "Nice.", "output": "positive"}],
            params=params,
        ),
    ]


def _experiment(name: str, *, models=("openai/gpt-4o-mini",), settings=None, **params) -> wb.Experiment:
    return wb.Experiment(
        name=name,
        variants=_variants(**params),
        dataset=sample_reviews(),
        models=list(models),
        scorers=[wb.LabelMatch(labels=["positive", "negative"], expected="label")],
        settings=settings or wb.RunSettings(retry=FAST_RETRY),
    )


def _bad_request(model: str = "gpt-4o-mini") -> Exception:
    return litellm.BadRequestError("bad request", model=model, llm_provider="openai")


# -- 2. header-only dataset; no hang at exit ------------------------------------------------
def test_header_only_dataset_is_refused_before_any_mlflow_run(store_uri, tmp_path, monkeypatch, capsys):
    """Defect: a CSV with only a header ran "0 calls", opened an MLflow run and exited 0.
    `workbench run` must exit non-zero naming the file ("has no rows") before any run is opened."""
    uri = store_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    data = tmp_path / "empty.csv"
    data.write_text("id,text\n")
    with FakeOpenAIServer() as server:
        yaml_file = _write_yaml(tmp_path / "empty.yaml", data, server.base_url, name="header-only")
        code, _, err = _cli(["run", str(yaml_file), "--quiet"], capsys)
        assert server.requests == 0
    assert code != 0
    assert "has no rows" in err and str(data) in err, err
    assert _all_runs(uri) == []  # no parent run, no child run, in any experiment


def test_no_hang_at_exit_in_any_cli_path(store_uri, tmp_path):
    """Defect: the `workbench` process could hang at exit (a background thread left behind)
    after a refused run or after a run that logged charts. Each path runs HANG_RUNS times in
    its own process and must exit within the timeout."""
    uri = store_uri
    empty = tmp_path / "empty.csv"
    empty.write_text("id,text\n")
    good = _write_csv(tmp_path / "good.csv", 4)
    MlflowClient(uri).search_experiments()  # create the store's tables once: two processes must not race to
    with FakeOpenAIServer() as server:
        header_only = _write_yaml(tmp_path / "empty.yaml", empty, server.base_url, name="hang-header-only")
        charts = _write_yaml(tmp_path / "good.yaml", good, server.base_url, name="hang-good")
        env = _cli_env(uri, tmp_path / "cache" / "responses.sqlite")

        def run_many(yaml_file: Path) -> list[tuple[int, float, str]]:
            outcomes = []
            for _ in range(HANG_RUNS):
                started = time.monotonic()
                try:
                    done = subprocess.run(
                        [sys.executable, "-m", "workbench.cli", "run", str(yaml_file), "--quiet"],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=HANG_TIMEOUT_S,
                    )  # fmt: skip
                except subprocess.TimeoutExpired as exc:
                    tail = (exc.stderr or b"")[-2000:]
                    pytest.fail(f"`workbench run {yaml_file.name}` did not exit within {HANG_TIMEOUT_S} s: {tail!r}")
                outcomes.append((done.returncode, time.monotonic() - started, done.stderr[-2000:]))
            return outcomes

        # The two paths side by side (two cores); each path's runs one after another.
        with ThreadPoolExecutor(max_workers=2) as pool:
            refused_future, charted_future = pool.submit(run_many, header_only), pool.submit(run_many, charts)
            refused, charted = refused_future.result(), charted_future.result()
    for code, _, err in refused:
        assert code != 0 and "has no rows" in err, err
    for code, _, err in charted:
        assert code == 0, err
    runs = _parent_runs(uri)
    assert len(runs) == HANG_RUNS and {r.info.status for r in runs} == {"FINISHED"}
    client = MlflowClient(uri)
    assert all(any(a.path == "charts.html" for a in client.list_artifacts(r.info.run_id)) for r in runs)


# -- 3. a run where every call failed --------------------------------------------------------
@pytest.mark.parametrize("transport", ["litellm", "openai-compatible"])
def test_a_param_that_is_not_json_is_refused_before_any_call(tmp_path, transport):
    """Defect: a run where every call failed exited 0. A set param (`stop={"\\n", "."}`, YAML
    `!!set`) failed every call deep in the client; it must be refused before any call with a
    ModelError naming the param, for both transports."""
    fake = FakeLLM()
    variant = wb.PromptVariant(
        name="sets", prompt="Echo {{ text }}",
        params={"api_base": "http://127.0.0.1:9/v1", "api_key": FAKE_KEY, "stop": {"\n", "."}},
    )  # fmt: skip
    exp = wb.Experiment(
        name="set-param", variants=[variant], dataset=wb.Dataset.from_records([{"id": "1", "text": "hi"}]),
        models=["openai/fake"], settings=wb.RunSettings(transport=transport, retry=FAST_RETRY),
    )  # fmt: skip
    with pytest.raises(wb.ModelError, match="stop"):
        exp.run(log_to_mlflow=False, progress=False, acompletion=fake)
    assert fake.calls == []

    data = _write_csv(tmp_path / "d.csv", 2)
    yaml_file = tmp_path / "set.yaml"
    yaml_file.write_text(
        textwrap.dedent(f"""\
            name: yaml-set
            dataset: {{path: {data}}}
            models: [openai/fake]
            settings: {{transport: {transport}, max_attempts: 1}}
            variants:
              - name: a
                prompt: "Echo {{{{ text }}}}"
                params:
                  api_base: "http://127.0.0.1:9/v1"
                  api_key: {FAKE_KEY}
                  stop: !!set {{"\\n": null, ".": null}}
        """)
    )
    with pytest.raises(wb.ModelError, match="stop"):
        wb.load_experiment(yaml_file).run(log_to_mlflow=False, progress=False, acompletion=fake)
    assert fake.calls == []


def test_a_run_where_every_call_fails_raises_and_ends_failed(store_uri, tmp_path):
    """Defect: a run where every call failed exited 0 and its MLflow run ended FINISHED.
    It must raise TooManyErrorsError carrying the partial result, and the parent run ends FAILED."""
    uri = store_uri
    fake = FakeLLM(fail=lambda messages: _bad_request())
    exp = _experiment("all-fail", api_key=FAKE_KEY)
    with pytest.raises(wb.TooManyErrorsError) as caught:
        exp.run(tracking_uri=uri, progress=False, acompletion=fake)
    result = caught.value.result
    assert result is not None and len(result.cases) == 12
    assert result.cases["error"].notna().all()
    runs = _parent_runs(uri)
    assert len(runs) == 1 and runs[0].info.status == "FAILED"
    assert all(r.info.status != "RUNNING" for r in _all_runs(uri))


def test_cli_run_where_every_call_fails_exits_non_zero(store_uri, tmp_path, monkeypatch, capsys):
    """Defect: a run where every call failed exited 0. `workbench run` on an experiment whose
    server answers 500 to everything (max_attempts 1) must exit non-zero."""
    uri = store_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    data = _write_csv(tmp_path / "d.csv", 3)
    with FakeOpenAIServer(fault_rate=1.0, faults=("500",)) as server:
        yaml_file = _write_yaml(tmp_path / "fail.yaml", data, server.base_url, name="cli-all-fail",
                                extra="settings: {max_attempts: 1}\n")  # fmt: skip
        code, _, err = _cli(["run", str(yaml_file), "--quiet"], capsys)
        assert server.requests == 6
    assert code == 1, err
    assert "failed" in err
    runs = _parent_runs(uri)
    assert len(runs) == 1 and runs[0].info.status == "FAILED"


def test_max_error_rate_fails_a_run_with_half_its_calls_failed():
    """Defect: `settings.max_error_rate` was not honoured; 0.2 must fail a run with ~50% errors
    (and 0.6 must not)."""
    fails = ("kettle", "towels", "never")  # 3 of 6 cases fail in both variants: 50%
    fake = FakeLLM(fail=lambda messages: _bad_request() if any(w in messages[-1]["content"] for w in fails) else False)
    strict = _experiment("error-rate", settings=wb.RunSettings(retry=FAST_RETRY, max_error_rate=0.2), api_key=FAKE_KEY)
    with pytest.raises(wb.TooManyErrorsError) as caught:
        strict.run(log_to_mlflow=False, progress=False, acompletion=fake)
    assert caught.value.result.cases["error"].notna().mean() == pytest.approx(0.5)
    lenient = _experiment("error-rate", settings=wb.RunSettings(retry=FAST_RETRY, max_error_rate=0.6), api_key=FAKE_KEY)
    result = lenient.run(log_to_mlflow=False, progress=False, acompletion=fake)
    assert result.cases["error"].notna().mean() == pytest.approx(0.5)


# -- 4. broken JSONL line --------------------------------------------------------------------
def test_a_broken_jsonl_line_is_reported_by_its_line_number(tmp_path, capsys):
    """Defect: a broken JSONL line was reported by a byte position ("char 57"), not its line."""
    data = tmp_path / "cases.jsonl"
    data.write_text(
        '{"id": "a", "text": "one"}\n'
        '{"id": "b", "text": "two"}\n'
        '{"id": "c", "text": "three"\n'  # line 3: the closing brace is missing
        '{"id": "d", "text": "four"}\n'
    )
    with pytest.raises(wb.DatasetError) as caught:
        wb.Dataset.load(data)
    message = str(caught.value)
    assert "line 3" in message and str(data) in message, message
    assert not re.search(r"\bchar \d+", message), message
    assert "line 1 column" not in message, message  # json's own position inside the one line read

    yaml_file = tmp_path / "exp.yaml"
    yaml_file.write_text(
        f"name: jsonl\ndataset: {{path: {data}}}\nmodels: [openai/fake]\n"
        'variants: [{name: a, prompt: "{{ text }}", params: {api_base: "http://127.0.0.1:9/v1"}}]\n'
    )
    code, _, err = _cli(["run", str(yaml_file), "--no-mlflow", "--quiet"], capsys)
    assert code != 0 and "line 3" in err, err


# -- 5. CLI numbers --------------------------------------------------------------------------
@pytest.mark.parametrize("option", [["--repeats", "0"], ["--limit", "0"], ["--limit", "-2"]])
def test_cli_refuses_zero_and_negative_numbers_before_any_call(store_uri, tmp_path, monkeypatch, capsys, option):
    """Defect: `--repeats 0` / `--limit 0` / `--limit -2` were read as "all" (or ran nothing)
    instead of being refused. They must exit non-zero with a clear message before any call."""
    uri = store_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    data = _write_csv(tmp_path / "d.csv", 3)
    with FakeOpenAIServer() as server:
        yaml_file = _write_yaml(tmp_path / "x.yaml", data, server.base_url, name="cli-numbers")
        code, out, err = _cli(["run", str(yaml_file), "--quiet", *option], capsys)
        assert server.requests == 0
    assert code != 0
    assert option[0] in err and "at least 1" in err, err
    assert _all_runs(uri) == []


def test_with_overrides_refuses_zero_limits_and_repeats():
    """Defect: `Experiment.with_overrides(limit=0)` silently meant "all cases"; it must raise UsageError."""
    exp = _experiment("overrides")
    for kwargs in ({"limit": 0}, {"limit": -2}, {"repeats": 0}):
        with pytest.raises(wb.UsageError):
            exp.with_overrides(**kwargs)
    assert len(exp.with_overrides(limit=2).dataset) == 2


# -- 6. two models: each model's comparison under its own keys -------------------------------
def _normal(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()


def test_each_models_comparison_is_logged_under_its_own_keys(store_uri, fake_key, tmp_path):
    """Defect: with two or more models, every model's comparison was logged under the same
    `cmp.<cand>_vs_<base>.*` keys, so the last model overwrote the others on the parent run."""
    uri = store_uri

    def reply(model, messages):
        text = messages[-1]["content"].lower()
        truth = "negative" if any(w in text for w in ("broke", "awful", "never")) else "positive"
        few_shot = len(messages) > 1
        if model == "openai/a":  # few_shot right, zero_shot always "positive": +50 pts
            return truth if few_shot else "positive"
        return truth  # model b: both right, no difference

    models = ["openai/a", "openai/b"]
    exp = _experiment("two-models", models=models)
    result = exp.run(tracking_uri=uri, progress=False, acompletion=FakeLLM(reply=reply))
    parent = MlflowClient(uri).get_run(result.run_id)
    metrics, tags = parent.data.metrics, parent.data.tags
    prefix = "cmp.few_shot_vs_zero_shot."

    def keys_of(model: str, names) -> set[str]:
        wanted = _normal(model)
        return {k for k in names if k.startswith(prefix) and _normal(k[len(prefix) :]).startswith(wanted + "_")}

    per_model = {m: keys_of(m, metrics) for m in models}
    assert all(per_model.values()), sorted(k for k in metrics if k.startswith("cmp."))
    assert per_model["openai/a"].isdisjoint(per_model["openai/b"])
    diff_a = [metrics[k] for k in per_model["openai/a"] if k.endswith("label_match.diff")]
    diff_b = [metrics[k] for k in per_model["openai/b"] if k.endswith("label_match.diff")]
    assert diff_a == [pytest.approx(0.5)] and diff_b == [pytest.approx(0.0)]
    tag_keys = [t.removeprefix("workbench.") for t in tags if t.startswith("workbench." + prefix)]
    verdicts = {m: {k for k in keys_of(m, tag_keys) if k.endswith("verdict")} for m in models}
    assert all(verdicts.values()) and verdicts["openai/a"].isdisjoint(verdicts["openai/b"]), sorted(tags)


# -- 7. reports attach only to the runs the notebook made -------------------------------------
def test_report_attaches_only_to_runs_its_notebook_made(store_uri, tmp_path, monkeypatch):
    """Defect: `workbench report` attached the executed notebook to parent runs it did not make
    (an earlier run, or another process's run of the same experiment made while it executed)."""
    uri = store_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    data = _write_csv(tmp_path / "d.csv", 4)
    # An unrelated run made before, through the API.
    before = (
        _experiment("unrelated-before", api_key=FAKE_KEY)
        .run(tracking_uri=uri, progress=False, acompletion=FakeLLM())
        .run_id
    )
    with FakeOpenAIServer() as server:
        yaml_file = _write_yaml(tmp_path / "rep.yaml", data, server.base_url, name="report-owner")
        # Another process runs the same experiment while the report executes.
        script = textwrap.dedent(f"""\
            import workbench as wb
            result = wb.load_experiment({str(yaml_file)!r}).run(tracking_uri={uri!r}, progress=False, cache=False)
            print("RUN_ID", result.run_id)
        """)
        concurrent = subprocess.Popen(
            [sys.executable, "-c", script], cwd=ROOT, env=_cli_env(uri, tmp_path / "other-cache.sqlite"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            report = wb.run_report("notebooks/ab_test.ipynb", parameters={"experiment": str(yaml_file)},
                                   output_dir=tmp_path / "reports", tracking_uri=uri)  # fmt: skip
            out, err = concurrent.communicate(timeout=120)
        finally:
            if concurrent.poll() is None:
                concurrent.kill()
    assert report.error is None, report.error
    assert concurrent.returncode == 0, err[-2000:]
    other = re.search(r"RUN_ID (\w+)", out).group(1)
    client = MlflowClient(uri)
    unrelated = {before, other}
    made_by_notebook = {r.info.run_id for r in _parent_runs(uri)} - unrelated
    assert len(made_by_notebook) == 1
    assert set(report.run_ids) == made_by_notebook
    for run_id in unrelated:
        run = client.get_run(run_id)
        assert client.list_artifacts(run_id, "report") == [], run_id
        assert "workbench.report" not in run.data.tags
    (mine,) = made_by_notebook
    assert {Path(a.path).name for a in client.list_artifacts(mine, "report")} == {"ab_test.ipynb", "ab_test.html"}
    assert "workbench.report" in client.get_run(mine).data.tags


# -- 8. a torn label file --------------------------------------------------------------------
def test_judge_agreement_skips_a_torn_last_line_of_a_label_file(tmp_path):
    """Defect: `judge_agreement` on a label JSONL file whose last line was torn (a kill mid-write)
    crashed; it must warn, skip that line and compare the rest."""
    labels = tmp_path / "labels.jsonl"
    records = [{"case_id": "a", "label": "up"}, {"case_id": "b", "label": "down"}, {"case_id": "c", "label": "down"}]
    labels.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"case_id": "d", "lab')
    judged = pd.DataFrame({"case_id": ["a", "b", "c", "d"], "score.llm_judge": [1.0, 0.0, 1.0, 1.0]})
    with pytest.warns(UserWarning, match="line 4"):
        agreement = wb.judge_agreement(judged, labels)
    assert agreement.n == 3
    assert agreement.agreement == pytest.approx(2 / 3)


# -- 9. runs killed and never resumed ---------------------------------------------------------
def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    with pytest.raises(ProcessLookupError):
        os.kill(child.pid, 0)
    return child.pid


def _running_parent(writer: MlflowWriter, experiment: str, pid: int) -> tuple[str, str]:
    """A workbench parent run left RUNNING by process ``pid`` (on this host), with a RUNNING child."""
    experiment_id = writer.experiment_id(experiment)
    tags = {"workbench.kind": "experiment", **owner_tags(), PID_TAG: str(pid)}
    parent = writer.create_run(experiment_id, experiment, tags)
    child = writer.create_run(experiment_id, "child", {"mlflow.parentRunId": parent, "workbench.kind": "variant"})
    return parent, child


def test_runs_close_orphans_marks_a_dead_process_run_killed(store_uri, tmp_path, monkeypatch, capsys):
    """Defect: a run killed and never resumed stayed RUNNING forever. `workbench runs
    --close-orphans` must mark it (and its children) KILLED, and leave a live process's run alone."""
    uri = store_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    writer = MlflowWriter(uri)
    dead, dead_child = _running_parent(writer, "killed-long-ago", _dead_pid())
    alive, _ = _running_parent(writer, "still-running", os.getpid())
    assert writer.client.get_run(dead).data.tags[HOST_TAG]  # tagged like a workbench run
    code, out, _ = _cli(["runs", "--close-orphans"], capsys)
    assert code == 0
    assert dead in out
    assert writer.status(dead) == "KILLED" and writer.status(dead_child) == "KILLED"
    assert writer.status(alive) == "RUNNING"
    writer.end_run(alive, "FINISHED")


def test_starting_any_run_closes_a_dead_process_run(store_uri, tmp_path, fake_key):
    """Defect: a run killed and never resumed stayed RUNNING unless the same experiment ran
    again. Starting any workbench run (another experiment) on the store must mark it KILLED."""
    uri = store_uri
    writer = MlflowWriter(uri)
    dead, _ = _running_parent(writer, "killed-and-forgotten", _dead_pid())
    result = _experiment("another-experiment").run(tracking_uri=uri, progress=False, acompletion=FakeLLM())
    assert writer.status(dead) == "KILLED"
    assert writer.status(result.run_id) == "FINISHED"


# -- 10. tool calls ----------------------------------------------------------------------------
TOOL_CALL = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"sku": 7}'}}


async def _tool_calling_model(*, model, messages, **kwargs):
    """A reply made only of a tool call: no text, finish_reason "tool_calls"."""
    response = litellm.ModelResponse(
        model=model,
        choices=[litellm.Choices(index=0, finish_reason="tool_calls", message=litellm.Message(
            role="assistant", content=None, tool_calls=[TOOL_CALL]))],
        usage=litellm.Usage(prompt_tokens=12, completion_tokens=5, total_tokens=17),
    )  # fmt: skip
    return await litellm.acompletion(model=model, messages=messages, mock_response=response)


def test_a_tool_call_reply_is_recorded_and_scored_from_its_calls(fake_key):
    """Defect: a reply with tool calls and no text was recorded as an empty answer and scored 0.
    It must keep its calls (JSON), finish_reason "tool_calls", a NaN text score with a reason,
    and a scorer taking `context` must see and score the calls."""
    seen = []

    @wb.scorer
    def called_lookup(context):
        seen.append(context.tool_calls)
        return float(context.tool_calls[0].name == "lookup" and context.tool_calls[0].arguments == {"sku": 7})

    exp = wb.Experiment(
        name="tools",
        variants=[wb.PromptVariant(name="agent", prompt="Find the colour of {{ item }}")],
        dataset=wb.Dataset.from_records([{"id": "1", "item": "mug", "answer": "red"},
                                         {"id": "2", "item": "kettle", "answer": "blue"}], expected=["answer"]),
        models=["openai/gpt-4o-mini"],
        scorers=[wb.ExactMatch(expected="answer"), called_lookup],
    )  # fmt: skip
    for run in range(2):  # the second run comes from the cache: the calls must survive it
        result = exp.run(log_to_mlflow=False, progress=False, acompletion=_tool_calling_model)
        cases = result.cases
        assert cases["cached"].tolist() == [bool(run)] * 2
        assert cases["error"].isna().all(), cases["error"].tolist()
        assert cases["output"].tolist() == ["", ""]
        assert cases["finish_reason"].tolist() == ["tool_calls", "tool_calls"]
        for cell in cases["tool_calls"]:
            (call,) = json.loads(cell)
            assert call["name"] == "lookup" and call["arguments"] == {"sku": 7}
        assert cases["score.exact_match"].isna().all()  # not 0: there was no text to compare
        assert cases["reason.exact_match"].str.contains("tool call").all(), cases["reason.exact_match"].tolist()
        assert cases["score.called_lookup"].tolist() == [1.0, 1.0]
    assert seen and all(calls[0].name == "lookup" for calls in seen)
    assert math.isnan(result.summary["exact_match"].iloc[0])


# -- 11. run observers -------------------------------------------------------------------------
class Recorder(wb.RunObserver):
    def __init__(self) -> None:
        self.events: list[str] = []
        self.rows: list[dict] = []
        self.planned: int | None = None

    def run_started(self, start) -> None:
        self.events.append("run_started")
        self.planned = start.n_calls

    def case_done(self, row) -> None:
        self.events.append("case_done")
        self.rows.append(dict(row))

    def run_finished(self, result) -> None:
        self.events.append("run_finished")

    def run_failed(self, error, result) -> None:
        self.events.append("run_failed")
        self.error = error


def test_observers_hear_start_every_case_and_the_end(fake_key):
    """Defect: custom run observers passed to `exp.run(observers=[...])` were not told of the run
    (or not exactly once): run_started once, case_done per call, run_finished once."""
    recorder = Recorder()
    result = _experiment("observed").run(log_to_mlflow=False, progress=False, acompletion=FakeLLM(),
                                         observers=[recorder])  # fmt: skip
    assert recorder.planned == 12
    assert recorder.events == ["run_started"] + ["case_done"] * 12 + ["run_finished"]
    assert sorted((r["case_id"], r["variant"]) for r in recorder.rows) == sorted(
        zip(result.cases["case_id"], result.cases["variant"], strict=True)
    )


def test_observers_hear_a_failed_run_as_failed(fake_key):
    """Defect: a failing run told observers run_finished (or nothing); it must be run_failed, once."""
    recorder = Recorder()
    with pytest.raises(wb.TooManyErrorsError):
        _experiment("observed-fail").run(log_to_mlflow=False, progress=False,
                                         acompletion=FakeLLM(fail=lambda m: _bad_request()),
                                         observers=[recorder])  # fmt: skip
    assert recorder.events == ["run_started"] + ["case_done"] * 12 + ["run_failed"]
    assert isinstance(recorder.error, wb.TooManyErrorsError)


def test_each_models_summary_metrics_are_logged_under_its_own_keys(store_uri, fake_key, tmp_path):
    """Defect: with two models the parent run's summary metrics (`<variant>.<metric>`) of the last
    model overwrote the others'."""
    uri = store_uri

    def reply(model, messages):  # model a: always "positive" (half right); model b: always right
        text = messages[-1]["content"].lower()
        truth = "negative" if any(w in text for w in ("broke", "awful", "never")) else "positive"
        return "positive" if model == "openai/a" else truth

    result = _experiment("two-models-summary", models=["openai/a", "openai/b"]).run(
        tracking_uri=uri, progress=False, acompletion=FakeLLM(reply=reply)
    )
    metrics = MlflowClient(uri).get_run(result.run_id).data.metrics
    assert metrics["zero_shot.openai_a.label_match"] == pytest.approx(0.5)
    assert metrics["zero_shot.openai_b.label_match"] == pytest.approx(1.0)


def test_an_api_base_without_a_key_is_refused_before_any_call_through_litellm(tmp_path, monkeypatch):
    """Defect: `api_base` alone passed the pre-run check, then every call failed ("Missing credentials",
    retried as a 500). Through litellm an OpenAI-style model needs a key (a placeholder will do);
    the openai-compatible transport sends none. A refused run creates no MLflow store either."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    store = tmp_path / "never-created"
    calls = []

    async def never(**kwargs):
        calls.append(kwargs)
        raise AssertionError("no call may be made")

    def experiment(transport: str) -> wb.Experiment:
        variant = wb.PromptVariant(name="v", prompt="{{ text }}", params={"api_base": "http://127.0.0.1:9/v1"})
        return wb.Experiment(name="no-key", variants=[variant], models=["openai/fake"],
                             dataset=wb.Dataset.from_records([{"id": "1", "text": "x"}]),
                             settings=wb.RunSettings(transport=transport))  # fmt: skip

    with pytest.raises(wb.ModelError, match=r"needs OPENAI_API_KEY.*api_key.*placeholder"):
        experiment("litellm").run(tracking_uri=f"sqlite:///{store / 'mlflow.db'}", progress=False, acompletion=never)
    assert calls == [] and not store.exists()
    from workbench.engine.planning import validate

    validate(experiment("openai-compatible"))  # no key needed: the transport sends none
