"""Credentials never leave the process (issue 11).

A key at any depth, under any of the usual names (``api_key``, ``Authorization``,
``x-api-key``, ``token``, ``access_token``, ``client_secret``, ``password``...),
never reaches a file, a repr, a hash or a cache key. Each test plants distinct
canaries at every depth (variant params, LLM-judge params, error messages) and
scans every file a run and a report write for each canary, as raw bytes and
base64-encoded (standard and URL-safe, at any alignment).
"""

from __future__ import annotations

import base64
import copy
import textwrap
import uuid
from pathlib import Path

import litellm
import pytest
from conftest import FakeLLM, sentiment_of
from mlflow.tracking import MlflowClient

import workbench as wb
from workbench.engine.cache import cache_key
from workbench.engine.retry import RetryPolicy
from workbench.testing import FakeOpenAIServer

JUDGE_MODEL = "openai/judge-model"
TASK_MODEL = "openai/gpt-4o-mini"
FAST_RETRY = RetryPolicy(max_attempts=2, initial_wait_s=0.001, max_wait_s=0.01)
VERDICT = '{"reason": "The answer is fine.", "score": "pass"}'


# -- canaries and the scan ----------------------------------------------------------------
def canaries(*names: str) -> dict[str, str]:
    """One distinct canary per name, unique to this call (the redactor is process-wide and learns:
    a canary of one test must not be masked because an earlier test taught it)."""
    run = uuid.uuid4().hex[:10]
    return {name: f"CANARY{name.replace('_', '')}{run}{uuid.uuid4().hex[:8]}" for name in names}


def _encodings(secret: str) -> dict[str, bytes]:
    """The canary as raw bytes, and the base64 characters it always produces (standard and
    URL-safe) whether it is encoded alone or inside a longer value (alignments 0, 1, 2)."""
    raw = secret.encode()
    found = {"raw": raw}
    for label, encode in (("base64", base64.b64encode), ("urlsafe_base64", base64.urlsafe_b64encode)):
        for shift in range(3):
            encoded = encode(b"\0" * shift + raw)
            first, end = -(-8 * shift // 6), (8 * (shift + len(raw))) // 6  # characters made only of canary bits
            found[f"{label}@{shift}"] = encoded[first:end]
    return found


def scan(roots: list[Path], secrets: dict[str, str]) -> tuple[list[Path], list[str]]:
    """Every file under ``roots``, and every (file, canary, encoding) found in one."""
    files = [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file()]
    needles = {(name, label): value for name, secret in secrets.items() for label, value in _encodings(secret).items()}
    leaks = []
    for path in files:
        data = path.read_bytes()
        leaks += [f"{path}: {name} ({label})" for (name, label), value in needles.items() if value in data]
    return files, leaks


def not_in(text: str, secrets: dict[str, str]) -> list[str]:
    """The canaries found in ``text`` (raw or base64): should be none."""
    data = text.encode()
    return [f"{name} ({label})" for name, s in secrets.items() for label, v in _encodings(s).items() if v in data]


# -- what is planted ------------------------------------------------------------------------
def task_params(c: dict[str, str]) -> dict:
    """Model params with a credential at every depth, under the usual names."""
    return {
        "temperature": 0,
        "max_tokens": 4,
        "api_key": c["api_key"],
        "extra_headers": {
            "Authorization": f"Bearer {c['bearer']}",
            "x-api-key": c["x_api_key"],
            "X-Auth-Token": c["auth_token"],
        },
        "extra_body": {
            "auth": {"token": c["nested_token"], "password": c["password"]},
            "providers": [{"name": "primary", "access_token": c["list_token"]}],
        },
        "client_secret": c["client_secret"],
    }


def judge_params(c: dict[str, str]) -> dict:
    return {"api_key": c["judge_key"], "extra_headers": {"Authorization": f"Bearer {c['judge_bearer']}"}}


TASK_NAMES = ("api_key", "bearer", "x_api_key", "auth_token", "nested_token", "password", "list_token", "client_secret")
JUDGE_NAMES = ("judge_key", "judge_bearer")


def without_credentials(params: dict) -> dict:
    """``params`` with each credential removed (the containers and every other param kept)."""
    out = copy.deepcopy(params)
    del out["api_key"], out["client_secret"]
    out["extra_headers"] = {}
    out["extra_body"]["auth"] = {}
    out["extra_body"]["providers"][0].pop("access_token")
    return out


def leaky_fake(c: dict[str, str]) -> FakeLLM:
    """Answers the task and the judge; some calls fail with errors quoting the credentials,
    as providers do ("Incorrect API key provided: ...")."""

    def reply(model, messages):
        return VERDICT if model == JUDGE_MODEL else sentiment_of(messages)

    def fail(messages):
        judging = "impartial evaluator" in messages[0]["content"]
        text = messages[-1]["content"]
        if judging and "seller" in text:
            return RuntimeError(
                f"judge rejected: Incorrect API key provided: {c['judge_key']} (Bearer {c['judge_bearer']})"
            )
        if judging:
            return False
        if "kettle" in text:
            return litellm.AuthenticationError(
                message=f"Incorrect API key provided: {c['api_key']}; x-api-key={c['x_api_key']}",
                llm_provider="openai", model="gpt-4o-mini",
            )  # fmt: skip
        if "towels" in text:
            return RuntimeError(
                f"upstream refused token {c['nested_token']} / {c['list_token']} / {c['auth_token']} / "
                f"password {c['password']} / secret {c['client_secret']} / Authorization: Bearer {c['bearer']}"
            )
        return False

    return FakeLLM(reply=reply, fail=fail)


def _experiment(name, c, reviews, label_match, params=None) -> tuple[wb.Experiment, wb.LLMJudge]:
    params = params or task_params(c)
    judge = wb.LLMJudge(rubric="The answer names the review's sentiment.", model=JUDGE_MODEL, params=judge_params(c))
    variants = [
        wb.PromptVariant(name="zero_shot", prompt="Review: {{ review }}\nSentiment:", params=params),
        wb.PromptVariant(name="few_shot", prompt="Review: {{ review }}\nSentiment:", params=params,
                         examples=[{"review": "Nice.", "output": "positive"}]),
    ]  # fmt: skip
    exp = wb.Experiment(
        name=name, variants=variants, dataset=reviews, models=[TASK_MODEL], scorers=[label_match, judge],
        settings=wb.RunSettings(retry=FAST_RETRY),
    )  # fmt: skip
    return exp, judge


# -- the tests ------------------------------------------------------------------------------
@pytest.mark.local_store("scans every file of the SQLite store and its artifact folder for the canaries")
def test_credentials_at_any_depth_never_reach_mlflow_the_cache_a_repr_or_a_hash(
    tmp_path, isolated_cache, reviews, label_match
):
    """Defect: a key at any depth, under any of the usual names (api_key, authorization,
    x-api-key, token, ...), reached a file, a repr, a hash or a cache key. Canaries in variant
    params, judge params and provider error messages; a run with MLflow and the cache on; every
    file of the store and the cache scanned (raw and base64)."""
    c = canaries(*TASK_NAMES, *JUDGE_NAMES)
    store = tmp_path / "mlruns"
    store.mkdir()
    uri = f"sqlite:///{store / 'mlflow.db'}"
    exp, judge = _experiment("secrets-everywhere", c, reviews, label_match)
    fake = leaky_fake(c)
    result = exp.run(tracking_uri=uri, progress=False, acompletion=fake)

    # The credentials were really used, and some calls really failed quoting them.
    task_calls = [call for call in fake.calls if call["model"] == TASK_MODEL]
    judge_calls = [call for call in fake.calls if call["model"] == JUDGE_MODEL]
    assert task_calls and all(call["api_key"] == c["api_key"] for call in task_calls)
    assert task_calls[0]["extra_body"]["auth"]["token"] == c["nested_token"]
    assert judge_calls and all(call["api_key"] == c["judge_key"] for call in judge_calls)
    assert result.cases["error"].notna().sum() == 4  # kettle and towels, in both variants
    assert result.cases["reason.llm_judge"].str.contains("judge rejected", na=False).any()

    # A run in which every call fails: its error is the exception's message and an MLflow tag.
    failing = FakeLLM(fail=lambda messages: RuntimeError(f"bad key {c['api_key']} for Bearer {c['bearer']}"))
    with pytest.raises(wb.TooManyErrorsError) as caught:
        _experiment("secrets-all-failed", c, reviews, label_match)[0].run(
            tracking_uri=uri,
            progress=False,
            acompletion=failing,
            cache=False,  # the first run cached these calls
        )
    assert not_in(str(caught.value), c) == []

    files, leaks = scan([store, isolated_cache.parent], c)
    names = {p.name for p in files}
    assert {"mlflow.db", "cases.json", "charts.html", "manifest.json", "prompt_template.json"} <= names, names
    assert isolated_cache.name in names
    assert leaks == []
    client = MlflowClient(uri)
    child = client.search_runs([client.get_experiment_by_name("secrets-everywhere").experiment_id],
                               filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'")[0]  # fmt: skip
    assert child.data.params["param.api_key"] == "***"  # logged, masked: the scan read real params

    # Reprs and the results table.
    for shown in (repr(exp.variants[0]), str(exp.variants[0]), repr(judge), repr(exp), str(judge.spec()),
                  str(exp.variants[0].to_dict(redacted=True)), result.cases.to_json(), repr(result.cases)):  # fmt: skip
        assert not_in(shown, c) == []

    # Hashes: the version and the cache key do not depend on credentials.
    other = canaries(*TASK_NAMES, *JUDGE_NAMES)
    same_but_other_keys = _experiment("v", other, reviews, label_match)[0].variants[0]
    no_keys = wb.PromptVariant(name="zero_shot", prompt="Review: {{ review }}\nSentiment:",
                               params=without_credentials(task_params(c)))  # fmt: skip
    assert exp.variants[0].version == same_but_other_keys.version == no_keys.version
    messages = exp.variants[0].render({"review": "Great kettle"})
    keys = {
        cache_key(TASK_MODEL, messages, task_params(c), 0),
        cache_key(TASK_MODEL, messages, task_params(other), 0),
        cache_key(TASK_MODEL, messages, without_credentials(task_params(c)), 0),
    }
    assert len(keys) == 1
    assert cache_key(TASK_MODEL, messages, {**task_params(c), "temperature": 1}, 0) not in keys  # the key can change


@pytest.mark.local_store("scans every file of the SQLite store and its artifact folder for the canaries")
def test_credentials_never_reach_a_report_its_mlflow_runs_or_the_cache(tmp_path, monkeypatch, isolated_cache):
    """Defect: a key at any depth, under any of the usual names (api_key, authorization,
    x-api-key, token, ...), reached a file: `workbench report` on a YAML experiment with canaries
    in its variants' and judge's params (some calls failing), every file of the report, the
    MLflow store and the cache scanned (raw and base64)."""
    c = canaries(*TASK_NAMES, *JUDGE_NAMES)
    store = tmp_path / "mlruns"
    store.mkdir()
    uri = f"sqlite:///{store / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # the keys come from the params only
    data = tmp_path / "d.csv"
    data.write_text("id,text\n" + "".join(f"c{i},case number {i}\n" for i in range(6)))
    with FakeOpenAIServer(fault_rate=0.3, faults=("500",), seed=1, reply=lambda body: VERDICT) as server:
        params = (
            f'{{api_base: "{server.base_url}", api_key: "{c["api_key"]}", temperature: 0, '
            f'extra_headers: {{Authorization: "Bearer {c["bearer"]}", x-api-key: "{c["x_api_key"]}", '
            f'X-Auth-Token: "{c["auth_token"]}"}}, '
            f'extra_body: {{auth: {{token: "{c["nested_token"]}", password: "{c["password"]}"}}, '
            f'providers: [{{name: primary, access_token: "{c["list_token"]}"}}]}}}}'
        )
        judge = (
            f'{{type: llm_judge, rubric: "The reply is JSON.", model: openai/fake, params: '
            f'{{api_base: "{server.base_url}", api_key: "{c["judge_key"]}", '
            f'extra_headers: {{Authorization: "Bearer {c["judge_bearer"]}"}}}}}}'
        )
        (tmp_path / "exp.yaml").write_text(textwrap.dedent(f"""\
            name: secret-report-everywhere
            dataset: {{path: {data}}}
            models: [openai/fake]
            settings: {{max_attempts: 1}}
            scorers: [{{type: json_valid}}, {judge}]
            variants:
              - {{name: a, prompt: "Echo {{{{ text }}}}", params: {params}}}
              - {{name: b, prompt: "Say {{{{ text }}}}", params: {params}}}
        """))  # fmt: skip
        report = wb.run_report("notebooks/ab_test.ipynb", parameters={"experiment": str(tmp_path / "exp.yaml")},
                               output_dir=tmp_path / "reports")  # fmt: skip
        stats = server.stats
    assert report.error is None, report.error
    assert stats.successes > 0 and sum(stats.faults.values()) > 0  # calls were made, and some failed
    assert report.run_ids  # the report went to MLflow too
    files, leaks = scan([store, tmp_path / "reports", isolated_cache.parent], c)
    names = {p.name for p in files}
    assert {"ab_test.ipynb", "ab_test.html", "mlflow.db", "cases.json", isolated_cache.name} <= names, names
    assert leaks == []


def test_router_group_keys_come_from_the_environment_and_never_reach_a_file(tmp_path, monkeypatch, isolated_cache):
    """Router groups (issue 17): each deployment names the environment variable holding its key;
    the keys are sent, and never reach MLflow, the cache, the run store, the rows or a repr."""
    from workbench.providers.router import build_router, close_router

    c = canaries("router_key_a", "router_key_b")
    monkeypatch.setenv("ROUTER_A_KEY", c["router_key_a"])
    monkeypatch.setenv("ROUTER_B_KEY", c["router_key_b"])
    store = tmp_path / "mlruns"
    store.mkdir()
    uri = f"sqlite:///{store / 'mlflow.db'}"
    data = wb.Dataset.from_records([{"id": f"c{i}", "text": f"case number {i}"} for i in range(6)])
    with FakeOpenAIServer() as healthy, FakeOpenAIServer(fault_rate=1.0, faults=("500",)) as failing:
        group = wb.RouterGroup(
            name="support-gpt",
            deployments=[
                {"model": "openai/fake", "api_base": failing.base_url, "api_key_env": "ROUTER_A_KEY", "rpm": 600},
                {"model": "openai/fake", "api_base": healthy.base_url, "api_key_env": "ROUTER_B_KEY"},
            ],
        )
        router = build_router(group, num_retries=1)
        sent = {d["litellm_params"]["api_key"] for d in router.model_list}
        close_router(router)
        assert sent == set(c.values())  # litellm resolved the os.environ/ references: the keys are used
        exp = wb.Experiment(
            name="secrets-router", dataset=data, models=[group],
            variants=[wb.PromptVariant(name="plain", prompt="Echo {{ text }}", params={"temperature": 0})],
        )  # fmt: skip
        result = exp.run(tracking_uri=uri, progress=False)
        assert failing.requests > 0 and healthy.stats.successes == 6  # both deployments were really called
    assert result.cases["deployment"].notna().all()
    files, leaks = scan([store, isolated_cache.parent], c)
    assert {"mlflow.db", "cases.json", "manifest.json", isolated_cache.name} <= {p.name for p in files}
    assert leaks == []
    for shown in (repr(exp), repr(group), str(group.to_spec()), str(exp.model_entries()), result.cases.to_json()):
        assert not_in(shown, c) == []
