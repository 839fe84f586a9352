"""End to end in a real browser: the MLflow UI on a logged experiment, and the review widget in JupyterLab.

Chromium is Debian's (``/usr/bin/chromium``; ``.ci/run`` installs it when it runs as root),
driven by Playwright's Python API; Playwright's own browser download is not used. Every
server binds 127.0.0.1 on a free port, runs in its own process group and is stopped with it.
Screenshots go to ``reports/`` for a human to look at.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import pytest
from conftest import ROOT
from mlflow.tracking import MlflowClient

import workbench as wb
from workbench.util.paths import project_root

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox: CI runs as root. The rest keeps Chromium off the (closed) network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
REPORTS = ROOT / "reports"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="browser tests need Debian's Chromium at /usr/bin/chromium: `apt-get install chromium` "
        "(.ci/run installs it when run as root)",
    ),
]
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="browser tests need Playwright for Python: pip install -e '.[dev]'"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server process in its own process group, its output in a log file."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.name, self.argv, self.log = name, argv, log
        self._log_handle = log.open("wb")
        self.process = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=self._log_handle, stderr=subprocess.STDOUT, start_new_session=True
        )

    def describe(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"{self.name} ({shlex.join(self.argv)}), last output:\n{text[-6000:]}"

    def wait_until_up(self, url: str, *, timeout: float) -> None:
        """Poll ``url`` until it answers 200; fail with the server's log if it exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited with code {self.process.returncode}: {self.describe()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        pytest.fail(f"{self.name} did not answer {url} within {timeout:.0f} s: {self.describe()}")

    def stop(self) -> None:
        """SIGTERM to the whole group, SIGKILL to whatever is left after 20 s."""
        for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue
            if not _group_alive(self.process.pid):
                break
            time.sleep(0.5)
        self._log_handle.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def _show_on_failure(server: Server) -> Iterator[None]:
    """Attach the server's log to any failure in the block."""
    try:
        yield
    except BaseException as exc:
        exc.add_note(server.describe())
        raise


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    """A page in a fresh headless Chromium profile."""
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile",
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        context.set_default_timeout(30_000)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def _screenshot(page: Any, name: str) -> Path:
    REPORTS.mkdir(exist_ok=True)
    path = REPORTS / name
    page.screenshot(path=str(path))
    return path


# -- the MLflow UI ---------------------------------------------------------------------------------


def _mlflow_ui(tracking_uri: str, port: int, log: Path) -> Server:
    """Start the command ``wb.ui_command`` prints (the one the README tells users to run)."""
    words = shlex.split(wb.ui_command(tracking_uri, port=port))
    env_words = [w for w in words if re.fullmatch(r"[A-Z_]+=.*", w)]
    argv = words[len(env_words) :]
    if not Path(argv[0]).is_absolute():  # ``.venv/bin/mlflow``, relative to the project
        argv[0] = str(project_root() / argv[0])
    env = {**os.environ, **dict(w.split("=", 1) for w in env_words)}
    # Faster start and stop for a test: one worker, no background job runner (GenAI jobs only).
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    return Server("mlflow ui", [*argv, "--workers", "1"], env=env, cwd=log.parent, log=log)


@pytest.fixture
def demo_store(tmp_path: Path) -> tuple[str, wb.ExperimentResult]:
    """The demo experiment (4 cases) logged by the real local model into a fresh store."""
    store = tmp_path / "mlruns"
    store.mkdir()
    tracking_uri = f"sqlite:///{store / 'mlflow.db'}"
    experiment = wb.load_experiment(ROOT / "experiments" / "sentiment.yaml").with_overrides(limit=4)
    result = experiment.run(tracking_uri=tracking_uri, progress=False, cache=False)
    return tracking_uri, result


@pytest.fixture
def mlflow_ui(demo_store: tuple[str, wb.ExperimentResult], tmp_path: Path) -> Iterator[tuple[str, Server]]:
    tracking_uri, _ = demo_store
    port = _free_port()
    server = _mlflow_ui(tracking_uri, port, tmp_path / "mlflow-ui.log")
    try:
        server.wait_until_up(f"http://127.0.0.1:{port}/health", timeout=90)
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.stop()


@pytest.mark.local_model
@pytest.mark.timeout(240)
def test_mlflow_ui_shows_the_experiment_its_variant_runs_and_their_metrics(demo_store, mlflow_ui, page):
    tracking_uri, result = demo_store
    url, server = mlflow_ui
    client = MlflowClient(tracking_uri)
    experiment_id = client.get_experiment_by_name("sentiment").experiment_id
    children = {
        run.info.run_name: run
        for run in client.search_runs([experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'")
    }
    expected_names = {f"{v} @ local/gemma-3-270m" for v in ("zero_shot", "few_shot")}
    assert set(children) == expected_names

    with _show_on_failure(server):
        page.goto(f"{url}/#/experiments/{experiment_id}/runs")
        parent = page.locator(f"a[href$='/runs/{result.run_id}']")
        parent.wait_for(timeout=60_000)  # the SPA loads its bundle, then the runs
        assert parent.inner_text() == "sentiment"
        assert page.get_by_test_id("experiment-link").inner_text() == "sentiment"

        # The variant x model runs are children of the experiment run: expand it.
        page.locator("[role=gridcell]", has=parent).get_by_role("button").click()
        for name in expected_names:
            page.get_by_role("link", name=name, exact=True).wait_for()

        # Show the label_match column, hide three empty ones, for the screenshot.
        assistant = page.get_by_role("button", name="Close")  # MLflow 3's assistant side panel
        if assistant.count() == 1:
            assistant.click()
        page.get_by_role("button", name="Columns").click()
        menu = page.locator("[data-radix-popper-content-wrapper]")
        for column in ("label_match", "Dataset", "Source", "Models"):
            page.get_by_placeholder("Search columns").fill(column)
            menu.locator("span").filter(has_text=re.compile(f"^{re.escape(column)}$")).first.click()
        page.keyboard.press("Escape")
        page.locator(".ag-header-cell[col-id='metrics.`label_match`']").wait_for()
        shot = _screenshot(page, "mlflow_ui.png")

        # A variant run's page lists its summary metrics with their values.
        name = "few_shot @ local/gemma-3-270m"
        page.get_by_role("link", name=name, exact=True).click()
        page.get_by_role("heading", name=name).wait_for()
        run = children[name]
        for metric in ("label_match", "label_match.macro_f1", "error_rate", "latency_p95_s"):
            row = page.get_by_role("row").filter(has=page.get_by_role("link", name=metric, exact=True))
            shown = float(row.get_by_role("cell").nth(1).inner_text())
            assert shown == pytest.approx(run.data.metrics[metric], rel=1e-3), metric
        summary = result.summary.set_index("variant").loc["few_shot"]
        assert run.data.metrics["label_match"] == pytest.approx(summary["label_match"])
        _screenshot(page, "mlflow_ui_run.png")
    assert shot.stat().st_size > 10_000


# -- JupyterLab and the review widget ----------------------------------------------------------------

FAKE_MODEL_CELL = '''\
import litellm


async def fake_completion(*, model, messages, **kwargs):
    """Every answer is "positive": litellm builds the response, no network."""
    return await litellm.acompletion(model=model, messages=messages, mock_response="positive")


experiment = wb.Experiment(
    name="review-e2e",
    variants=[wb.PromptVariant(name="plain", prompt="Review: {{ review }}\\nSentiment:")],
    dataset=wb.Dataset.from_records(
        [
            {"id": "kettle", "review": "Great kettle, boils fast.", "label": "positive"},
            {"id": "charger", "review": "Broke after two days.", "label": "negative"},
        ],
        expected=["label"],
    ),
    models=["openai/gpt-4o-mini"],
    scorers=[wb.LabelMatch(labels=["positive", "negative"], expected="label")],
)
result = experiment.run(acompletion=fake_completion, log_to_mlflow=False, cache=False, progress=False)
'''


def _review_notebook(path: Path, labels: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    notebook.cells = [
        nbformat.v4.new_code_cell("import sys\n\nimport workbench as wb\n\nprint(sys.executable)"),
        nbformat.v4.new_code_cell(FAKE_MODEL_CELL),
        nbformat.v4.new_code_cell(f"wb.review(result, labels_path={str(labels)!r})"),
    ]
    nbformat.write(notebook, path)


@pytest.fixture
def jupyterlab(tmp_path: Path, fake_key: str) -> Iterator[tuple[str, str, Server]]:
    """JupyterLab on a temporary folder, run by this venv's python (so is its python3 kernel)."""
    root = tmp_path / "lab"
    root.mkdir()
    home = tmp_path / "jupyter"
    (home / "config" / "labconfig").mkdir(parents=True)
    # No "get Jupyter news?" prompt over the notebook.
    (home / "config" / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    env = {
        **os.environ,  # the fake OPENAI_API_KEY and the test's WORKBENCH_CACHE reach the kernel
        "JUPYTER_CONFIG_DIR": str(home / "config"),  # no user settings, workspaces or kernels
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
    }
    port, token = _free_port(), secrets.token_hex(16)
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",  # CI runs as root
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        # Nothing reaches the network: no news, no update check, no extension manager on PyPI.
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    server = Server("jupyter lab", argv, env=env, cwd=root, log=tmp_path / "jupyterlab.log")
    try:
        server.wait_until_up(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=60)
        yield f"http://127.0.0.1:{port}", token, server
    finally:
        server.stop()


def _wait_for_idle_kernel(url: str, token: str, *, timeout: float) -> None:
    """The lab's own indicator says "idle" before the kernel has started; ask the server."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{url}/api/kernels?token={token}", timeout=5) as response:
            kernels = json.load(response)
        if any(k["execution_state"] == "idle" and k["connections"] > 0 for k in kernels):
            return
        time.sleep(0.3)
    pytest.fail(f"no connected idle kernel within {timeout:.0f} s: {kernels}")


def _labels(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.timeout(240)
def test_thumbs_up_in_jupyterlab_writes_the_label(jupyterlab, page, tmp_path):
    url, token, server = jupyterlab
    labels = tmp_path / "labels" / "review-e2e.jsonl"
    _review_notebook(tmp_path / "lab" / "review.ipynb", labels)

    with _show_on_failure(server):
        page.goto(f"{url}/lab/tree/review.ipynb?token={token}")
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
        _wait_for_idle_kernel(url, token, timeout=60)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

        # The kernel is this venv's python, and the widget renders in the cell's output.
        page.locator(".jp-OutputArea-output", has_text=sys.executable).wait_for(timeout=60_000)
        up = page.locator(".wb-review-up")
        up.wait_for(timeout=60_000)
        for name in ("down", "prev", "next", "comment"):
            assert page.locator(f".wb-review-{name}").count() == 1, name
        assert _labels(labels) == []
        up.click()

        deadline = time.monotonic() + 30
        while not _labels(labels) and time.monotonic() < deadline:
            time.sleep(0.2)
        records = _labels(labels)
        assert len(records) == 1, records
        assert records[0]["case_id"] == "kettle"  # the first case
        assert records[0]["label"] == "up"
        assert records[0]["variant"] == "plain"
        page.locator(".wb-review", has_text="saved").wait_for()  # the widget says so, and moved on
        page.locator(".wb-review", has_text="charger").wait_for()
        _screenshot(page, "jupyterlab_review.png")
