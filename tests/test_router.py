"""Router groups (issue 17, item 5): one model answered by several deployments through litellm's Router.

Two fake OpenAI-compatible servers on 127.0.0.1 stand in for two replicas; one of them fails.
"""

import collections
import textwrap
import time

import pytest

import workbench as wb
from workbench.core.routing import RouterGroup
from workbench.engine.retry import RetryPolicy
from workbench.experiment.config import load_experiment
from workbench.testing import FakeOpenAIServer
from workbench.testing.fake_openai import expected_reply

A_KEY, B_KEY = "sk-routerA-SECRET-1f2e3d4c", "sk-routerB-SECRET-9a8b7c6d"


@pytest.fixture(autouse=True)
def keys(monkeypatch):
    monkeypatch.setenv("A_KEY", A_KEY)
    monkeypatch.setenv("B_KEY", B_KEY)


def group(a: FakeOpenAIServer, b: FakeOpenAIServer, **options) -> RouterGroup:
    limits_a = options.pop("extra_a", {})
    limits_b = options.pop("extra_b", {})
    return RouterGroup(
        name="support-gpt",
        deployments=[
            {"model": "openai/fake", "api_base": a.base_url, "api_key_env": "A_KEY", "id": "replica-a", **limits_a},
            {"model": "openai/fake", "api_base": b.base_url, "api_key_env": "B_KEY", "id": "replica-b", **limits_b},
        ],
        **options,
    )


def experiment(models, n: int, **settings) -> wb.Experiment:
    return wb.Experiment(
        name="routed",
        variants=[wb.PromptVariant(name="plain", prompt="Echo {{ text }}", params={"temperature": 0})],
        dataset=wb.Dataset.from_records([{"id": f"c{i:02d}", "text": f"case number {i}"} for i in range(n)]),
        models=models,
        settings=wb.RunSettings(**settings),
    )


def check_replies(result: wb.ExperimentResult) -> None:
    variant = result.experiment.variants[0]
    for row in result.cases.to_dict("records"):
        assert row["output"] == expected_reply("fake", variant.render({"text": row["input.text"]})), row["case_id"]


@pytest.mark.parametrize("fault", ["500", "429"])
def test_a_failing_replica_every_case_is_answered_by_the_healthy_one_and_the_rows_say_so(fault):
    with FakeOpenAIServer() as healthy, FakeOpenAIServer(fault_rate=1.0, faults=(fault,)) as failing:
        result = experiment([group(failing, healthy)], 12).run(log_to_mlflow=False, progress=False)
        assert failing.requests >= 1  # the router did send it calls: the failover is real
        assert failing.stats.successes == 0
        assert healthy.stats.successes == 12
        tried = failing.requests + healthy.requests
    cases = result.cases
    assert cases["error"].isna().all(), cases["error"].dropna().tolist()[:2]
    assert (cases["deployment"] == "replica-b").all()
    assert cases["attempts"].sum() == tried  # each row counts the router's tries, the failed ones too
    assert (cases["model"] == "support-gpt").all()
    check_replies(result)
    table = result.side_by_side()
    assert (table.frame["plain:deployment"] == "replica-b").all()
    assert table.to_html().count("via replica-b") == 12


def test_both_healthy_both_answer_and_a_rerun_hits_the_cache_whoever_answered(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        exp = experiment([group(a, b)], 24)
        first = exp.run(tracking_uri=uri, progress=False)
        answered = {"replica-a": a.stats.successes, "replica-b": b.stats.successes}
        bases = [a.base_url, b.base_url]
        second = exp.run(log_to_mlflow=False, progress=False)
        assert a.requests + b.requests == 24  # nothing new was sent
    counts = collections.Counter(first.cases["deployment"])
    assert set(counts) == {"replica-a", "replica-b"}, counts  # simple-shuffle: P(all on one) = 2 * 2**-24
    assert counts == answered  # the column says who really answered
    assert second.cases["cached"].all()
    reopened = wb.load_run(first.run_id, tracking_uri=uri)  # MLflow's manifest keeps the group...
    kept = reopened.experiment.routers["support-gpt"]
    assert [d.api_base for d in kept.deployments] == bases
    assert {d.api_key_env for d in kept.deployments} == {None}  # ...with its key variables masked
    assert list(reopened.cases["deployment"]) == list(first.cases["deployment"])
    assert list(second.cases.sort_values("case_id")["deployment"]) == list(
        first.cases.sort_values("case_id")["deployment"]
    )


def test_order_holds_while_the_first_level_is_healthy_and_falls_back_when_it_fails():
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        result = experiment([group(a, b, extra_a={"order": 1}, extra_b={"order": 2})], 10).run(
            log_to_mlflow=False, progress=False
        )
        assert b.requests == 0
    assert (result.cases["deployment"] == "replica-a").all()
    with FakeOpenAIServer(fault_rate=1.0, faults=("500",)) as a, FakeOpenAIServer() as b:
        routed = group(a, b, extra_a={"order": 1}, extra_b={"order": 2}, num_retries=1)
        result = experiment([routed], 6).run(log_to_mlflow=False, progress=False, cache=False)
        assert a.requests >= 6 and b.stats.successes == 6
    assert result.cases["error"].isna().all()
    assert (result.cases["deployment"] == "replica-b").all()


def test_rpm_limits_are_respected_and_a_call_over_every_limit_is_not_sent():
    # litellm counts rpm per calendar minute: each server's arrivals are counted by minute.
    arrivals: dict[str, list[float]] = {"replica-a": [], "replica-b": []}

    def recording(name):
        def reply(body):
            arrivals[name].append(time.time())
            return expected_reply(body["model"], body["messages"])

        return reply

    limits = {"replica-a": 2, "replica-b": 3}
    with FakeOpenAIServer(reply=recording("replica-a")) as a, FakeOpenAIServer(reply=recording("replica-b")) as b:
        routed = group(a, b, extra_a={"rpm": 2}, extra_b={"rpm": 3}, num_retries=0)  # no retry: refused at once
        assert routed.strategy == "usage-based-routing-v2"
        rows = experiment([routed], 7, max_concurrency=1).run(log_to_mlflow=False, progress=False, cache=False).cases
    for name, limit in limits.items():
        per_minute = collections.Counter(int(t // 60) for t in arrivals[name])
        assert arrivals[name] and max(per_minute.values()) <= limit, (name, per_minute)
    # 7 calls do not fit in 5 a minute (litellm 1.106 even keeps one of headroom: it sends max(1, rpm - 1))
    assert collections.Counter(rows["deployment"].dropna()) == {n: len(t) for n, t in arrivals.items()}
    errors = rows["error"].dropna()
    assert len(errors) == 7 - sum(len(t) for t in arrivals.values()) >= 1, errors.tolist()
    assert errors.str.contains("No deployments available").all(), errors.tolist()


def test_an_rpm_limit_sends_the_rest_to_the_other_replica():
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        routed = group(a, b, extra_a={"rpm": 3}, extra_b={"rpm": 1000})
        result = experiment([routed], 10, max_concurrency=2).run(log_to_mlflow=False, progress=False)
        # rpm counts reset each calendar minute: a run that crossed one may give replica-a 6
        assert a.requests <= 6 and a.requests + b.requests == 10
    assert result.cases["error"].isna().all()
    assert collections.Counter(result.cases["deployment"])["replica-b"] >= 4


def test_the_router_retries_and_the_engine_does_not_retry_on_top():
    with FakeOpenAIServer(fault_rate=1.0, faults=("500",)) as a, FakeOpenAIServer(fault_rate=1.0, faults=("500",)) as b:
        routed = group(a, b, num_retries=2)
        exp = experiment([routed], 2, retry=RetryPolicy(max_attempts=6, initial_wait_s=0.001, max_wait_s=0.01))
        with pytest.raises(wb.TooManyErrorsError) as caught:
            exp.run(log_to_mlflow=False, progress=False)
        sent = a.requests + b.requests
    # 2 cases x (1 + num_retries) router attempts; the engine's 6 attempts would make it 36.
    assert sent == 6, sent
    rows = caught.value.result.cases
    assert rows["error"].notna().all() and rows["deployment"].isna().all()


def test_yaml_router_group_runs_and_a_bad_one_fails_before_any_call(tmp_path):
    data = tmp_path / "cases.jsonl"
    data.write_text('{"id": "c1", "text": "hello"}\n{"id": "c2", "text": "bye"}\n')
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        source = tmp_path / "routed.yaml"
        source.write_text(
            textwrap.dedent(f"""\
                name: routed-yaml
                dataset: {{path: cases.jsonl}}
                variants:
                  - {{name: plain, prompt: "Echo {{{{ text }}}}"}}
                models:
                  - name: support-gpt
                    router:
                      deployments:
                        - {{model: openai/fake, api_base: "{a.base_url}", api_key_env: A_KEY, rpm: 60}}
                        - {{model: openai/fake, api_base: "{b.base_url}", api_key_env: B_KEY}}
                """)
        )
        exp = load_experiment(source)
        assert exp.routers["support-gpt"].strategy == "usage-based-routing-v2"
        result = exp.run(log_to_mlflow=False, progress=False)
        assert a.requests + b.requests == 2
        hosts = {a.base_url.split("//")[1].removesuffix("/v1"), b.base_url.split("//")[1].removesuffix("/v1")}
    assert set(result.cases["deployment"]) <= {f"openai/fake@{h}" for h in hosts}
    assert result.cases["error"].isna().all()


BAD = {
    "an unknown field": ({"model": "openai/fake", "rmp": 3}, "deployments[0].rmp': unknown key"),
    "a key instead of a variable name": (
        {"model": "openai/fake", "api_key_env": "sk-live-abc123def456"},
        "must name an environment variable",
    ),
    "a key in params": ({"model": "openai/fake", "params": {"api_key": "sk-x"}}, "look like credentials"),
    "a negative rpm": ({"model": "openai/fake", "rpm": -1}, "deployments[0].rpm'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_router_config_is_a_clear_error_naming_the_file_and_field(tmp_path, case):
    deployment, expected = BAD[case]
    source = tmp_path / "bad.yaml"
    source.write_text(
        "name: bad\ndataset: {path: cases.jsonl}\nvariants: [{name: plain, prompt: 'x {{ text }}'}]\n"
        f"models:\n  - name: support-gpt\n    router:\n      deployments: [{{{_flow(deployment)}}}]\n"
    )
    with pytest.raises(wb.ConfigError) as caught:
        load_experiment(source)
    message = str(caught.value)
    assert str(source.name) in message and "models[0]" in message and expected in message, message
    assert "sk-live-abc123def456" not in message and "sk-x" not in message


def _flow(mapping: dict) -> str:
    def value(v):
        return "{" + _flow(v) + "}" if isinstance(v, dict) else str(v)

    return ", ".join(f"{k}: {value(v)}" for k, v in mapping.items())


def test_limits_with_a_strategy_that_cannot_enforce_them_are_refused(tmp_path):
    with pytest.raises(wb.ConfigError, match="usage-based-routing-v2"):
        RouterGroup(name="g", routing_strategy="simple-shuffle", deployments=[{"model": "openai/fake", "rpm": 5}])


def test_an_unset_key_variable_or_unknown_provider_fails_before_any_call(monkeypatch):
    monkeypatch.delenv("B_KEY")
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        with pytest.raises(wb.ModelError, match="'B_KEY', which is not set"):
            experiment([group(a, b)], 2).run(log_to_mlflow=False, progress=False)
        unknown = RouterGroup(name="g", deployments=[{"model": "nosuchprovider-xyz/abc", "api_base": a.base_url}])
        with pytest.raises(wb.ModelError, match="unknown model"):
            experiment([unknown], 2).run(log_to_mlflow=False, progress=False)
        assert a.requests == b.requests == 0


def test_variant_params_that_say_where_to_call_clash_with_a_group():
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        exp = experiment([group(a, b)], 2)
        exp.variants[0] = wb.PromptVariant(name="plain", prompt="Echo {{ text }}", params={"api_base": a.base_url})
        with pytest.raises(wb.ModelError, match="api_base"):
            exp.run(log_to_mlflow=False, progress=False)
        assert a.requests == 0


def test_a_group_survives_overrides_and_round_trips_through_an_experiment_file():
    routed = RouterGroup(
        name="support-gpt",
        deployments=[{"model": "openai/fake", "api_base": "http://127.0.0.1:9/v1", "api_key_env": "A_KEY", "rpm": 5}],
    )
    exp = experiment([routed, "openai/gpt-4o-mini"], 2)
    assert exp.models == ["support-gpt", "openai/gpt-4o-mini"] and exp.routers == {"support-gpt": routed}
    only = exp.with_overrides(models=["support-gpt"])  # what `workbench run --model support-gpt` does
    assert only.models == ["support-gpt"] and only.routers["support-gpt"] == routed
    entries = exp.model_entries()
    assert entries[1] == "openai/gpt-4o-mini" and A_KEY not in str(entries)
    from workbench.experiment.config import experiment_from_dict

    data = {"name": "x", "dataset": {"path": "data/listings.jsonl"}, "variants": [{"name": "v", "prompt": "x"}]}
    again = experiment_from_dict({**data, "models": entries}, source="round-trip")
    assert again.routers == exp.routers and again.models == exp.models


def test_a_groups_estimate_and_budget_price_it_as_its_dearest_deployment():
    mixed = RouterGroup(
        name="support-gpt",
        deployments=[
            {"model": "openai/gpt-4o-mini", "api_base": "http://127.0.0.1:9/v1", "api_key_env": "A_KEY"},
            {"model": "openai/gpt-4o", "api_base": "http://127.0.0.1:10/v1", "api_key_env": "B_KEY"},
        ],
    )
    exp = experiment([mixed, "openai/gpt-4o"], 3)
    table = exp.estimate().table.set_index("model")
    assert table.loc["support-gpt", "cost_usd_max"] == pytest.approx(table.loc["openai/gpt-4o", "cost_usd_max"])
    assert table.loc["support-gpt", "cost_usd_max"] > 0
    unpriced = RouterGroup(
        name="g",
        deployments=[
            {"model": "openai/no-such-model-xyz", "api_base": "http://127.0.0.1:9/v1", "api_key_env": "A_KEY"}
        ],
    )
    with pytest.raises(wb.ModelError, match="no price for 'openai/no-such-model-xyz'"):
        experiment([unpriced], 2).run(log_to_mlflow=False, progress=False, budget_usd=1.0)


def test_building_a_router_leaves_litellm_prices_of_other_models_alone():
    """litellm's Router registers its deployments' model names in the global price map (with no
    price); left there, the same model would be priced differently outside the group afterwards."""
    import litellm

    from workbench.providers.router import build_router, close_router

    group = wb.RouterGroup(
        name="priced-alone",
        deployments=[
            {"model": "openai/not-a-priced-model", "api_base": "http://127.0.0.1:9/v1"},
            {"model": "openai/gpt-4o-mini", "api_base": "http://127.0.0.1:9/v1"},
        ],
    )
    known = dict(litellm.model_cost["gpt-4o-mini"])
    router = build_router(group, num_retries=0)
    try:
        assert "openai/not-a-priced-model" not in litellm.model_cost
        assert litellm.model_cost["gpt-4o-mini"] == known
    finally:
        close_router(router)
