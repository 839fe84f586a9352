"""Run promptfoo's ``eval`` against the fake OpenAI server, for head-to-head benchmarks.

promptfoo is installed locally, outside the Python environment::

    npm install --prefix benchmarks promptfoo@0.121

It is run with everything that could reach the internet switched off (telemetry,
update check, sharing, remote generation), with its database, logs and cache
under ``workdir`` instead of ``~/.promptfoo``, and with ``OPENAI_API_KEY`` set to
a fake key so no real key can travel to the fake server.

Example:
    >>> from workbench.testing import FakeOpenAIServer
    >>> with FakeOpenAIServer(latency_s=0.1) as server:  # doctest: +SKIP
    ...     run_promptfoo(server.base_url, ["Say {{word}}"], [{"word": "hi"}],
    ...                   concurrency=16, workdir=Path("/tmp/pf"), cache=False, server=server)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

BENCH_DIR = Path(__file__).resolve().parent
PROMPTFOO_BIN = BENCH_DIR / "node_modules" / ".bin" / "promptfoo"
INSTALL_COMMAND = "npm install --prefix benchmarks promptfoo@0.121"

#: Environment that keeps promptfoo offline and quiet. Each name was checked in promptfoo 0.121's source.
OFFLINE_ENV: dict[str, str] = {
    "PROMPTFOO_DISABLE_TELEMETRY": "1",  # no usage events
    "PROMPTFOO_DISABLE_UPDATE": "1",  # no latest-version check
    "PROMPTFOO_DISABLE_SHARING": "1",  # never upload results
    "PROMPTFOO_DISABLE_REMOTE_GENERATION": "1",  # no cloud-side generation
    "PROMPTFOO_DISABLE_REDTEAM_REMOTE_GENERATION": "1",
    "PROMPTFOO_DISABLE_RUNTIME_WARNINGS": "1",  # Node 20 end-of-support notice
    "DO_NOT_TRACK": "1",
    "NO_COLOR": "1",
    "NODE_NO_WARNINGS": "1",  # undici's experimental-interceptor notice
    "npm_config_update_notifier": "false",
    "OPENAI_API_KEY": "sk-fake",
    # Even with telemetry disabled, 0.121 posts one "telemetry disabled" event over https. Every https
    # request goes through proxy-from-env, so a closed loopback port as the proxy makes it fail locally,
    # with no DNS lookup; the fake server is plain http and is reached directly.
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


def promptfoo_available() -> bool:
    """Whether Node and the locally installed promptfoo can be run."""
    if shutil.which("node") is None or not PROMPTFOO_BIN.exists():
        return False
    try:
        with tempfile.TemporaryDirectory() as probe_dir:
            env = _env(Path(probe_dir))
            done = subprocess.run(
                [str(PROMPTFOO_BIN), "--version"], env=env, capture_output=True, text=True, timeout=60
            )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip().startswith("0.121")


def write_config(
    path: Path, base_url: str, prompts: list[str], cases: list[dict[str, Any]], *, model: str = "fake"
) -> Path:
    """Write a promptfooconfig.yaml: every prompt x every case, one OpenAI-compatible provider.

    Prompts use promptfoo's ``{{var}}`` placeholders; each case is a dict of variables.
    promptfoo sends each rendered prompt as a single user message.
    """
    provider = {"id": f"openai:chat:{model}", "config": {"apiBaseUrl": base_url, "apiKey": "sk-fake"}}
    config = {
        "description": "workbench benchmark",
        "prompts": list(prompts),
        "providers": [provider],
        "tests": [{"vars": dict(case)} for case in cases],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return path


def command(config: Path, output: Path, *, concurrency: int, cache: bool) -> list[str]:
    """The promptfoo command line :func:`run_promptfoo` runs."""
    cmd = [str(PROMPTFOO_BIN), "eval", "-c", str(config), "-o", str(output)]
    cmd += ["--max-concurrency", str(concurrency), "--no-progress-bar", "--no-table", "--no-share"]
    return cmd if cache else [*cmd, "--no-cache"]


def run_promptfoo(
    base_url: str,
    prompts: list[str],
    cases: list[dict[str, Any]],
    *,
    concurrency: int,
    workdir: Path,
    cache: bool,
    server: Any = None,
    model: str = "fake",
    timeout_s: float = 600.0,
) -> dict[str, Any]:
    """Run ``promptfoo eval`` once and time it.

    Args:
        base_url: The fake server's ``/v1`` URL.
        prompts: promptfoo prompt templates.
        cases: Variables of each test case.
        concurrency: ``--max-concurrency``.
        workdir: Holds the config, output, promptfoo's database and cache. Reuse it across calls with
            ``cache=True`` to measure a cached run: the first such call fills the cache.
        cache: ``False`` passes ``--no-cache`` and starts from an empty cache directory.
        server: The :class:`~workbench.testing.FakeOpenAIServer`, to count the requests it saw.
        model: Model name promptfoo asks for.
        timeout_s: Give up after this long.

    Returns:
        ``wall_s`` (process wall time), ``server_requests`` (None without ``server``), ``results``,
        ``errors`` (rows promptfoo reports as errors), ``outputs`` (list of replies), ``returncode``,
        ``command`` and ``stderr_tail``.

    Raises:
        RuntimeError: promptfoo is not installed.
    """
    if not PROMPTFOO_BIN.exists():
        raise RuntimeError(f"promptfoo is not installed at {PROMPTFOO_BIN}; run {INSTALL_COMMAND!r}")
    workdir.mkdir(parents=True, exist_ok=True)
    config = write_config(workdir / "promptfooconfig.yaml", base_url, prompts, cases, model=model)
    output = workdir / "output.json"
    output.unlink(missing_ok=True)
    env = _env(workdir)
    if not cache:
        shutil.rmtree(env["PROMPTFOO_CACHE_PATH"], ignore_errors=True)
    cmd = command(config, output, concurrency=concurrency, cache=cache)
    before = server.requests if server is not None else None
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=workdir, capture_output=True, text=True, timeout=timeout_s)
    wall_s = time.perf_counter() - start
    outputs: list[Any] = []
    errors = 0
    if output.exists():
        rows = json.loads(output.read_text())["results"]["results"]
        outputs = [(row.get("response") or {}).get("output") for row in rows]
        errors = sum(1 for row in rows if row.get("error"))
    return {
        "wall_s": wall_s,
        "server_requests": None if server is None else server.requests - before,
        "results": len(outputs),
        "errors": errors,
        "outputs": outputs,
        # promptfoo exits 100 when an assertion fails; there are none here, so 0 is expected.
        "returncode": done.returncode,
        "command": cmd,
        "stderr_tail": done.stderr[-2000:],
    }


def _env(workdir: Path) -> dict[str, str]:
    # Drop inherited OpenAI settings (a real key must never reach the fake server), promptfoo settings
    # and any proxy that the fake server's plain-http URL would otherwise go through.
    dropped = ("OPENAI_", "PROMPTFOO_", "HTTP_PROXY", "ALL_PROXY")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(dropped)}
    env.update(OFFLINE_ENV)
    env["PROMPTFOO_CONFIG_DIR"] = str(workdir / "promptfoo-home")  # database and logs
    env["PROMPTFOO_CACHE_PATH"] = str(workdir / "cache")
    return env


if __name__ == "__main__":
    # Smoke run: 2 prompts x 10 cases, cold then cached, against the fake server.
    import argparse

    from workbench.testing import FakeOpenAIServer, expected_reply

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()
    if not promptfoo_available():
        raise SystemExit(f"promptfoo is not available; run {INSTALL_COMMAND!r}")
    prompts = ["Classify the sentiment: {{text}}", "Is this review positive or negative? {{text}}"]
    cases = [{"text": f"review number {i}"} for i in range(args.cases)]
    with FakeOpenAIServer(latency_s=args.latency) as srv, tempfile.TemporaryDirectory() as tmp:
        expected = sorted(
            expected_reply("fake", [{"role": "user", "content": p.replace("{{text}}", c["text"])}])
            for p in prompts
            for c in cases
        )
        for label, use_cache in (("cold", False), ("cache-fill", True), ("cached", True)):
            res = run_promptfoo(
                srv.base_url,
                prompts,
                cases,
                concurrency=args.concurrency,
                workdir=Path(tmp),
                cache=use_cache,
                server=srv,
            )
            ok = sorted(o for o in res["outputs"] if o is not None) == expected
            print(
                f"{label:10s} wall={res['wall_s']:.2f}s server_requests={res['server_requests']} "
                f"results={res['results']} errors={res['errors']} outputs_match={ok} rc={res['returncode']}"
            )
        print("command:", " ".join(res["command"]))
