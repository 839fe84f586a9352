"""The trace writer process on its own: what it reports when it cannot write, or dies, and
that starting it never re-runs the user's script (it is not ``multiprocessing``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow import MlflowClient

from workbench.tracking.trace_store import WriterProcess


def _record(trace_id: str) -> dict:
    span = {"span": 1, "parent": None, "name": "v · a", "start_ns": 1, "end_ns": 2, "attributes": {}, "error": None}
    return {"trace_id": trace_id, "spans": [span], "feedback": []}


def test_the_process_writes_and_says_which_traces(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment = MlflowClient(uri).create_experiment("traces")
    process = WriterProcess(uri, experiment)
    process.send([_record("tr-" + "1" * 32), _record("tr-" + "2" * 32)])
    reply = process.finish()
    assert reply == {"written": ["tr-" + "1" * 32, "tr-" + "2" * 32], "errors": []}
    assert len(MlflowClient(uri).search_traces(locations=[experiment])) == 2


def test_any_value_arrives_as_text_and_the_uri_is_not_on_the_command_line(tmp_path):
    uri = f"sqlite:///{tmp_path / 'secret-store.db'}"
    experiment = MlflowClient(uri).create_experiment("traces")
    process = WriterProcess(uri, experiment)
    assert "secret-store" not in Path(f"/proc/{process._process.pid}/cmdline").read_text()  # ps shows it there

    class Opaque:  # a dataset cell holding an object the writer process cannot import
        def __str__(self) -> str:
            return "opaque thing"

    record = _record("tr-" + "5" * 32)
    record["spans"][0]["attributes"] = {"mlflow.spanInputs": {"cell": Opaque()}}
    process.send([record])
    assert process.finish() == {"written": ["tr-" + "5" * 32], "errors": []}
    (trace,) = MlflowClient(uri).search_traces(locations=[experiment])
    assert trace.data.spans[0].inputs == {"cell": "opaque thing"}


def test_a_store_error_is_reported_not_raised(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()  # the store exists; experiment 424242 does not
    process = WriterProcess(uri, "424242")
    process.send([_record("tr-" + "3" * 32)])
    reply = process.finish()
    assert reply["written"] == []
    assert len(reply["errors"]) == 1 and "424242" in reply["errors"][0]


def test_a_dead_process_says_so_with_its_exit_code(tmp_path):
    process = WriterProcess(f"sqlite:///{tmp_path / 'mlflow.db'}", "0")
    process._process.kill()
    process._process.wait()
    with pytest.raises(OSError):  # BrokenPipeError: the run's thread records it and goes on
        process.send([_record("tr-" + "6" * 32)])
    reply = process.finish()
    assert reply["written"] == []
    assert reply["errors"] == ["the trace writer process exited with code -9 (see its stderr)"]


def test_a_script_without_a_main_guard_runs_once(tmp_path):
    # multiprocessing's "spawn" would import this script again in the child (and run it twice, or fail)
    script = tmp_path / "user_script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from mlflow import MlflowClient
            from workbench.tracking.trace_store import WriterProcess
            uri = "sqlite:///{tmp_path / "mlflow.db"}"
            print("script body ran", flush=True)
            process = WriterProcess(uri, MlflowClient(uri).create_experiment("x"))
            process.send([{_record("tr-" + "4" * 32)!r}])
            print(process.finish()["written"], flush=True)
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["script body ran", "['tr-" + "4" * 32 + "']"]


def test_without_an_interpreter_to_start_the_thread_writes(monkeypatch, tmp_path):
    import workbench as wb
    from workbench.tracking import trace_store, traces

    def refuse(*args, **kwargs):
        raise FileNotFoundError("no python here")

    monkeypatch.setattr(trace_store.subprocess, "Popen", refuse)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment = MlflowClient(uri).create_experiment("fallback")
    spec = wb.Experiment(
        name="fallback",
        variants=[wb.PromptVariant(name="v", prompt="{{ text }}")],
        dataset=wb.Dataset.from_records([{"id": "a", "text": "x"}]),
        models=["openai/fake"],
        scorers=[wb.Contains(value="x")],
    )
    with pytest.warns(RuntimeWarning, match="traces are written from a thread: no python here"):
        writer = traces.TraceWriter(uri, experiment, "run", spec, planned=traces.PROCESS_FROM)
    assert writer.process is None
    writer.add(
        {"case_id": "a", "variant": "v", "model": "openai/fake", "repeat": 0, "output": "x", "score.contains": 1.0}
    )
    writer.flush()
    assert writer.written == 1 and not writer.errors
    assert len(MlflowClient(uri).search_traces(locations=[experiment])) == 1
