"""What the browser tests share: servers on 127.0.0.1 in their own process groups, a headless
Chromium page, JupyterLab and the MLflow UI started as users start them, screenshots in reports/.

Chromium is Debian's (``/usr/bin/chromium``; ``.ci/run`` installs it when it runs as root),
driven by Playwright's Python API; Playwright's own browser download is not used. conftest.py
loads this module as a plugin, so its fixtures (``page``, ``jupyterlab``, ``mlflow_ui``...) are
there for every test; a browser test module sets ``pytestmark = BROWSER`` so it skips, with the
reason, where Chromium is missing.
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

import pytest
from conftest import ROOT

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

BROWSER = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="browser tests need Debian's Chromium at /usr/bin/chromium: `apt-get install chromium` "
        "(.ci/run installs it when run as root)",
    ),
]


def free_port() -> int:
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
def show_on_failure(server: Server) -> Iterator[None]:
    """Attach the server's log to any failure in the block."""
    try:
        yield
    except BaseException as exc:
        exc.add_note(server.describe())
        raise


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    """A page in a fresh headless Chromium profile."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="browser tests need Playwright for Python: pip install -e '.[dev]'"
    )
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


def screenshot(page: Any, name: str) -> Path:
    REPORTS.mkdir(exist_ok=True)
    path = REPORTS / name
    page.screenshot(path=str(path))
    return path


# -- the MLflow UI ---------------------------------------------------------------------------------


def start_mlflow_ui(tracking_uri: str, port: int, log: Path) -> Server:
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


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, wb.ExperimentResult]:
    """The demo experiment (4 cases) logged by the real local model into a fresh store, once per
    module: the MLflow UI tests only read it."""
    store = tmp_path_factory.mktemp("demo") / "mlruns"
    store.mkdir()
    tracking_uri = f"sqlite:///{store / 'mlflow.db'}"
    experiment = wb.load_experiment(ROOT / "experiments" / "sentiment.yaml").with_overrides(limit=4)
    result = experiment.run(tracking_uri=tracking_uri, progress=False, cache=False)
    return tracking_uri, result


@pytest.fixture(scope="module")
def mlflow_ui(
    demo_store: tuple[str, wb.ExperimentResult], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Server]]:
    """The MLflow UI on ``demo_store``, once per module (each test gets its own fresh browser profile)."""
    tracking_uri, _ = demo_store
    port = free_port()
    server = start_mlflow_ui(tracking_uri, port, tmp_path_factory.mktemp("mlflow-ui") / "mlflow-ui.log")
    try:
        server.wait_until_up(f"http://127.0.0.1:{port}/health", timeout=90)
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.stop()


# -- JupyterLab -------------------------------------------------------------------------------------


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
    port, token = free_port(), secrets.token_hex(16)
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


def wait_for_idle_kernel(url: str, token: str, *, timeout: float) -> None:
    """The lab's own indicator says "idle" before the kernel has started; ask the server."""
    deadline = time.monotonic() + timeout
    kernels: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/kernels?token={token}", timeout=5) as response:
                kernels = json.load(response)
        except urllib.error.HTTPError as exc:
            # jupyter_server answers 500 (KeyError 'last_activity') when asked while a kernel is
            # still being created: a race in the server, over once the kernel exists. Ask again.
            if exc.code < 500:
                raise
            kernels = f"HTTP {exc.code} from /api/kernels"
            time.sleep(0.3)
            continue
        if any(k["execution_state"] == "idle" and k["connections"] > 0 for k in kernels):
            return
        time.sleep(0.3)
    pytest.fail(f"no connected idle kernel within {timeout:.0f} s: {kernels}")
