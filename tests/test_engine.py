"""The execution engine with an injected fake: cache, retries, budget, estimate."""

import httpx
import litellm
import pytest
from conftest import FakeLLM
from mlflow.tracking import MlflowClient

import workbench as wb
from workbench.engine.cache import ResponseCache
from workbench.engine.retry import RetryPolicy

FAST_RETRY = RetryPolicy(max_attempts=4, initial_wait_s=0.001, max_wait_s=0.01)


def make(variants, reviews, label_match, **kw):
    kw.setdefault("settings", wb.RunSettings(retry=FAST_RETRY))
    return wb.Experiment(
        name="engine",
        variants=variants,
        dataset=reviews,
        models=["openai/gpt-4o-mini"],
        scorers=[label_match],
        **kw,
    )


def run(exp, fake, **kw):
    return exp.run(log_to_mlflow=False, progress=False, acompletion=fake, **kw)


def comparable(result):
    return result.cases.drop(columns=["latency_s", "cached", "attempts"])


def test_unchanged_rerun_makes_zero_calls_and_reports_savings(fake_key, variants, reviews, label_match):
    exp = make(variants, reviews, label_match, repeats=2)
    first_fake, second_fake = FakeLLM(), FakeLLM()
    first = run(exp, first_fake)
    second = run(exp, second_fake)
    assert len(first_fake.calls) == 24 and first.calls_made == 24
    assert second_fake.calls == [] and second.calls_made == 0
    assert second.cases["cached"].all() and not first.cases["cached"].any()
    pd_equal = comparable(first).equals(comparable(second))
    assert pd_equal, "a cached re-run reproduces every row"
    summary = second.summary.set_index("variant")
    assert summary.loc["few_shot", "cache_hits"] == 12
    assert summary.loc["few_shot", "cost_saved_usd"] == pytest.approx(summary.loc["few_shot", "cost_usd"])
    assert summary.loc["few_shot", "cost_usd"] > 0


def test_repeats_are_distinct_cache_entries(fake_key, variants, reviews, label_match, isolated_cache):
    run(make(variants, reviews, label_match, repeats=3), FakeLLM())
    assert len(ResponseCache(isolated_cache)) == 2 * 6 * 3


def test_errors_are_never_cached(fake_key, variants, reviews, label_match):
    exp = make(variants, reviews, label_match)
    flaky = FakeLLM(fail=lambda messages: "Lovely" in messages[-1]["content"])
    first = run(exp, flaky)
    assert first.cases["error"].notna().sum() == 2
    retry_fake = FakeLLM()
    second = run(exp, retry_fake)
    assert len(retry_fake.calls) == 2  # only the two failed calls are made again
    assert second.cases["error"].isna().all()


def test_refresh_and_off(fake_key, variants, reviews, label_match, isolated_cache):
    exp = make(variants, reviews, label_match)
    run(exp, FakeLLM())
    refresh = FakeLLM(lambda model, messages: "negative")
    result = run(exp, refresh, cache="refresh")
    assert len(refresh.calls) == 12 and (result.cases["output"] == "negative").all()
    assert (run(exp, FakeLLM()).cases["output"] == "negative").all()  # refresh overwrote
    off = FakeLLM()
    run(exp, off, cache=False)
    assert len(off.calls) == 12


def test_rate_limits_are_retried_after_retry_after(fake_key, variants, reviews, label_match):
    seen = {}

    def fail(messages):
        key = (len(messages), messages[-1]["content"])  # one key per variant x case
        seen[key] = seen.get(key, 0) + 1
        if "kettle" in key[1] and seen[key] <= 2:
            response = httpx.Response(429, headers={"retry-after": "0.01"})
            return litellm.RateLimitError("slow down", llm_provider="openai", model="gpt-4o-mini", response=response)
        return False

    result = run(make(variants, reviews, label_match), FakeLLM(fail=fail))
    kettle = result.cases[result.cases["input.review"].str.contains("kettle")]
    assert kettle["error"].isna().all() and (kettle["attempts"] == 3).all()
    assert (result.cases.loc[~result.cases.index.isin(kettle.index), "attempts"] == 1).all()


def test_permanent_errors_are_not_retried_and_are_excluded(fake_key, variants, reviews, label_match):
    def fail(messages):
        if "kettle" in messages[-1]["content"]:
            return litellm.BadRequestError("bad request", model="gpt-4o-mini", llm_provider="openai")
        return False

    fake = FakeLLM(fail=fail)
    result = run(make(variants, reviews, label_match), fake)
    kettle = result.cases[result.cases["input.review"].str.contains("kettle")]
    assert kettle["error"].str.startswith("BadRequestError").all()
    assert len(fake.calls) == 12  # one attempt each
    assert result.summary["error_rate"].tolist() == pytest.approx([1 / 6, 1 / 6])


def test_retries_exhausted_are_recorded_as_errors(fake_key, variants, reviews, label_match):
    fake = FakeLLM(fail=lambda messages: "kettle" in messages[-1]["content"])
    result = run(make(variants, reviews, label_match), fake)
    kettle = result.cases[result.cases["input.review"].str.contains("kettle")]
    assert kettle["error"].str.contains("APIConnectionError").all()
    assert kettle["score.label_match"].isna().all()
    assert len(fake.calls) == 10 + 2 * FAST_RETRY.max_attempts


def test_estimate_counts_calls_tokens_cost_and_cache(fake_key, variants, reviews, label_match):
    exp = make(variants, reviews, label_match)
    before = exp.estimate()
    assert before.calls == 12 and before.cached == 0
    table = before.table.set_index("variant")
    messages = next(iter(exp.variants)).render({"review": "Great kettle, boils fast."})
    assert (
        table.loc["zero_shot", "prompt_tokens"] >= 6 * litellm.token_counter(model="gpt-4o-mini", messages=messages) - 6
    )
    expected_cost = 0.0
    for r in before.table.itertuples():
        prompt_cost, completion_cost = litellm.cost_per_token(
            model="openai/gpt-4o-mini",
            prompt_tokens=int(r.prompt_tokens),
            completion_tokens=int(r.completion_tokens_max),
        )
        expected_cost += prompt_cost + completion_cost
    assert before.cost_usd == pytest.approx(expected_cost)
    run(exp, FakeLLM())
    after = exp.estimate()
    assert after.calls == 0 and after.cached == 12 and after.cost_usd == 0


def test_budget_stops_the_run_and_keeps_partial_results(
    fake_key, tracking_uri, variants, reviews, label_match, isolated_cache
):
    # max_tokens=1 makes the per-call upper bound close to what a call really costs.
    tight = [wb.PromptVariant(**{**v.to_dict(), "params": {"max_tokens": 1}}) for v in variants]
    exp = make(tight, reviews, label_match, settings=wb.RunSettings(max_concurrency=1, retry=FAST_RETRY))
    one_call = exp.estimate().cost_usd / 12
    fake = FakeLLM()
    with pytest.raises(wb.BudgetExceededError, match="budget_usd") as info:
        exp.run(progress=False, acompletion=fake, budget_usd=one_call * 4.5, tracking_uri=tracking_uri)
    partial = info.value.result
    assert 1 <= len(partial.cases) == len(fake.calls) < 12
    assert partial.cases["error"].isna().all()
    assert len(ResponseCache(isolated_cache)) == len(fake.calls)  # kept for the next run
    assert MlflowClient(tracking_uri).get_run(partial.run_id).info.status == "FAILED"
    rest = FakeLLM()
    full = run(exp, rest, budget_usd=1.0)
    assert len(rest.calls) == 12 - len(fake.calls) and len(full.cases) == 12


def test_budget_needs_known_prices(monkeypatch, variants, reviews, label_match):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    exp = wb.Experiment(
        name="e", variants=variants, dataset=reviews, models=["openai/my-finetune"], scorers=[label_match]
    )
    fake = FakeLLM()
    with pytest.raises(wb.ModelError, match="no price for 'openai/my-finetune'"):
        run(exp, fake, budget_usd=1.0)
    assert fake.calls == []


def test_output_affecting_params_change_the_cache_key_and_credentials_do_not():
    from workbench.core.redaction import is_secret
    from workbench.engine.cache import cache_key

    messages = [{"role": "user", "content": "hi"}]
    base = cache_key("openai/gpt-4o-mini", messages, {"max_tokens": 4}, 0)
    assert base != cache_key("openai/gpt-4o-mini", messages, {"max_tokens": 8}, 0)
    assert base != cache_key("openai/gpt-4o-mini", messages, {"max_completion_tokens": 4}, 0)
    assert base == cache_key("openai/gpt-4o-mini", messages, {"max_tokens": 4, "api_key": "sk-x"}, 0)
    for key in ("api_key", "access_token", "aws_session_token", "token", "Authorization", "client_secret"):
        assert is_secret(key), key
    for key in ("max_tokens", "max_completion_tokens", "temperature", "stop"):
        assert not is_secret(key), key


def test_the_run_freezes_the_garbage_collector_only_while_it_runs(fake_key, variants, reviews, label_match):
    import gc

    frozen_during = []

    class Spy(FakeLLM):
        async def __call__(self, **kwargs):
            frozen_during.append(gc.get_freeze_count())
            return await super().__call__(**kwargs)

    exp = make(variants, reviews, label_match)
    run(exp, Spy(), cache=False)
    assert min(frozen_during) > 100_000  # litellm, pandas and the rest are out of the collector's way
    assert gc.get_freeze_count() == 0  # and handed back afterwards

    class Abort(BaseException):  # not a provider error (like a KeyboardInterrupt): it aborts the run
        pass

    class Broken(FakeLLM):
        async def __call__(self, **kwargs):
            raise Abort

    with pytest.raises(Abort):
        run(exp, Broken(), cache=False)
    assert gc.get_freeze_count() == 0


def _open_cache(path: str, start, outcomes) -> None:
    start.wait()  # every process opens the file at the same moment
    try:
        ResponseCache(path).close()
        outcomes.put("ok")
    except Exception as exc:  # reported to the parent, which asserts on it
        outcomes.put(repr(exc))


def test_processes_opening_a_new_cache_file_together_all_succeed(tmp_path):
    """Defect seen in CI: two `workbench run` processes starting together on a new cache
    file; one failed with "database is locked" while switching the file to WAL mode."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    outcomes, seen = ctx.Queue(), []
    for attempt in range(10):
        path = str(tmp_path / f"race-{attempt}" / "responses.sqlite")
        start = ctx.Barrier(4)
        procs = [ctx.Process(target=_open_cache, args=(path, start, outcomes)) for _ in range(4)]
        for proc in procs:
            proc.start()
        seen += [outcomes.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
    assert seen == ["ok"] * len(seen)
