"""Prompt optimisation: a planted edit is found and proven on test, a null search does not claim
gains more often than alpha, the budget holds, and a killed search resumes without paying twice."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from pathlib import Path

import litellm
import numpy as np
import pandas as pd
import pytest
from conftest import FakeLLM

import workbench as wb
from workbench.analysis.stats import mcnemar_exact
from workbench.optimize import Cost, Evaluation, ModelProposer, Reflect, ScriptedProposer
from workbench.optimize.candidates import Candidate, Proposal
from workbench.optimize.strategies import REFLECT_SYSTEM, Context, Edit

PLANTED = "Watch for negation: 'not bad' is positive."


def _reviews(n: int = 90) -> wb.Dataset:
    words = ["kettle", "towel", "lamp", "mug", "chair", "scarf"]
    rows = [
        {"id": f"r{i:03d}", "review": f"The {words[i % 6]} number {i} is {'fine' if i % 2 else 'poor'}.",
         "label": "positive" if i % 2 else "negative"}
        for i in range(n)
    ]  # fmt: skip
    return wb.Dataset.from_records(rows, expected=["label"])


def _hard(text: str) -> bool:
    """Half the cases are 'hard': the fake model gets them wrong unless the planted sentence is there."""
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % 2 == 0


def planted_model(model: str, messages: list[dict[str, str]]) -> str:
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    text = messages[-1]["content"]
    right = "positive" if " fine." in text else "negative"
    if PLANTED in system or not _hard(text):
        return right
    return "negative" if right == "positive" else "positive"


def _experiment() -> wb.Experiment:
    start = wb.PromptVariant(
        name="start",
        system="Classify the review.",
        prompt="Review: {{ review }}\nSentiment:",
        params={"temperature": 0},
    )
    return wb.Experiment(
        name="planted",
        variants=[start],
        dataset=_reviews(),
        models=["openai/gpt-4o-mini"],
        scorers=[wb.LabelMatch(labels=["positive", "negative"], expected="label")],
    )


def _append(sentence: str):
    return lambda v: Edit({"system": f"{v.system} {sentence}"}, note=f"appended {sentence!r}")


EDITS = [_append("Be concise."), _append("Answer with one word."), _append(PLANTED), _append("Think first.")]


def test_planted_edit_is_found_within_budget_and_proven_on_test(fake_key: str) -> None:
    fake = FakeLLM(planted_model)
    result = wb.optimize(
        _experiment(), objective="label_match", strategy=Reflect(ScriptedProposer(EDITS)),
        max_calls=400, max_steps=4, seed=1, stratify="label", acompletion=fake,
    )  # fmt: skip
    print(result)
    assert len(fake.calls) == result.calls <= 400
    winner = result.winner
    assert PLANTED in (winner.variant.system or "")
    assert winner.parent is not None and winner.accepted
    assert result.significant_gain, result.verdict_text
    assert "beats" in result.verdict_text
    assert f"+{PLANTED}" not in result.diff(winner.id) and PLANTED in result.diff(winner.id)
    tree = result.tree
    assert list(tree["id"]) == [c.id for c in result.candidates]
    assert tree.loc[tree["id"] == winner.id, "dev"].item() == 1.0
    # the test split was never read by the search: no train/dev case id is in it
    test_ids = set(result.splits.test.frame["id"])
    assert not test_ids & set(result.splits.dev.frame["id"]) and not test_ids & set(result.splits.train.frame["id"])
    searched = {
        cid for c in result.candidates for ev in (c.dev, c.train) if ev is not None for cid in ev.rows["case_id"]
    }
    assert not searched & test_ids
    assert set(result.tests) == {"c0", winner.id}
    html = result._repr_html_()  # the notebook view: summary, tree, each accepted diff (escaped)
    assert "Watch for negation: &#39;not bad&#39;" in html and "<details>" in html and "<script" not in html
    assert result.plot().data[0].y is not None


def test_splits_are_stratified_seeded_and_hashed() -> None:
    data = _reviews(100)
    a = wb.split_dataset(data, stratify="label", seed=3)
    b = wb.split_dataset(data, stratify="label", seed=3)
    c = wb.split_dataset(data, stratify="label", seed=4)
    assert a.hashes == b.hashes != c.hashes
    assert a.sizes == {"train": 40, "dev": 30, "test": 30}
    for part in (a.train, a.dev, a.test):
        share = (part.frame["label"] == "positive").mean()
        assert share == pytest.approx(0.5, abs=0.04)
    ids = [set(p.frame["id"]) for p in (a.train, a.dev, a.test)]
    assert sum(map(len, ids)) == 100 and len(set.union(*ids)) == 100
    with pytest.raises(wb.UsageError, match="no such column"):
        wb.split_dataset(data, stratify="colour")


def test_budget_never_exceeds_max_calls(fake_key: str) -> None:
    for max_calls in (90, 150, 230):
        fake = FakeLLM(planted_model)
        result = wb.optimize(
            _experiment(), strategy=[Reflect(ScriptedProposer(EDITS), per_step=2), wb.FewShot()],
            max_calls=max_calls, max_steps=20, seed=0, acompletion=fake, cache=wb.ResponseCache(":memory:"),
        )  # fmt: skip
        assert len(fake.calls) == result.calls <= max_calls, (max_calls, len(fake.calls))
        assert "budget" in result.stop_reason
    with pytest.raises(wb.UsageError, match="cannot even pay for the starting prompt"):
        wb.optimize(_experiment(), max_calls=20, acompletion=FakeLLM(planted_model))


class _Killed(Exception):
    pass


class _KillOnTurn:
    """Wraps a strategy and raises on its n-th turn: a search killed mid-way."""

    def __init__(self, inner, turn: int) -> None:
        self.inner, self.turn, self.turns = inner, turn, 0
        self.name, self.needs_train = inner.name, inner.needs_train

    def propose(self, parent: Candidate, context: Context) -> list[Proposal]:
        self.turns += 1
        if self.turns == self.turn:
            raise _Killed("killed")
        return self.inner.propose(parent, context)


def test_killed_search_resumes_and_pays_for_no_call_twice(fake_key: str, tmp_path: Path) -> None:
    def strategies():
        return [Reflect(ScriptedProposer(EDITS)), wb.FewShot(per_step=2)]

    options = {"objective": "label_match", "max_calls": 600, "max_steps": 6, "seed": 2}
    reference = FakeLLM(planted_model)
    expected = wb.optimize(
        _experiment(), strategy=strategies(), acompletion=reference, cache=wb.ResponseCache(tmp_path / "ref.sqlite"),
        **options,
    )  # fmt: skip

    state = tmp_path / "state.json"
    first = FakeLLM(planted_model)
    killer = strategies()
    killer[1] = _KillOnTurn(killer[1], turn=2)
    with pytest.raises(_Killed):
        wb.optimize(_experiment(), strategy=killer, acompletion=first, state_path=state, **options)
    saved = json.loads(state.read_text())
    assert 0 < saved["spent"]["calls"] == len(first.calls)
    second = FakeLLM(planted_model)
    resumed = wb.optimize(_experiment(), strategy=strategies(), acompletion=second, state_path=state, **options)

    paid = [json.dumps(c["messages"]) for c in first.calls + second.calls]
    assert len(paid) == len(set(paid)), "a call was paid for twice"
    assert len(paid) == len(reference.calls) == resumed.calls == expected.calls
    assert [c.key for c in resumed.candidates] == [c.key for c in expected.candidates]
    assert resumed.verdict_text == expected.verdict_text
    again = FakeLLM(planted_model)  # a finished search, started again, calls nothing
    wb.optimize(_experiment(), strategy=strategies(), acompletion=again, state_path=state, **options)
    assert again.calls == []


# --- the null task: no edit can help ------------------------------------------------------------


class NoiseEvaluator:
    """No edit can help: each case has its own difficulty (passed with p = 0.9 or 0.2, 60% on
    average) and every prompt, whatever its wording, passes it at random with that p. In process,
    no engine: 200 searches in seconds."""

    def __init__(self, salt: int) -> None:
        self.salt = salt
        self.p = np.where(np.random.default_rng([salt, 0]).random(1000) < 4 / 7, 0.9, 0.2)

    def estimate(self, variant, model, dataset) -> Cost:
        return Cost(len(dataset))

    def evaluate(self, variant, model, dataset) -> Evaluation:
        ids = dataset.frame["id"].to_numpy(dtype=str)
        cases = [int(i[1:]) for i in ids]  # case r042 -> its draw 42
        seed = int(hashlib.sha256(f"{self.salt}|{variant.version}|{model}".encode()).hexdigest()[:8], 16)
        passed = np.random.default_rng(seed).random(1000)[cases] < self.p[cases]
        rows = pd.DataFrame({"case_id": ids, "repeat": 0, "score": passed.astype(float), "reason": None, "output": ""})
        return Evaluation(rows=rows, calls=len(ids))

    def estimate_ask(self, question):  # pragma: no cover - the scripted proposer asks nothing
        raise AssertionError("no model here")

    def ask(self, question):  # pragma: no cover - the scripted proposer asks nothing
        raise AssertionError("no model here")


def test_null_task_false_wins_stay_near_alpha_while_best_dev_wins_often(fake_key: str) -> None:
    edits = [_append(f"Hint {i}.") for i in range(12)]
    data = _reviews(150)
    exp = _experiment()
    t0 = time.perf_counter()
    n, claimed, dev_better, dev_significant = 200, 0, 0, 0
    for search in range(n):
        result = wb.optimize(
            exp.with_overrides(), strategy=Reflect(ScriptedProposer(edits), per_step=2), max_steps=5, seed=search,
            splits=wb.split_dataset(data, stratify="label", seed=search), evaluator=NoiseEvaluator(search),
            n_resamples=1_000,
        )  # fmt: skip
        assert len(result.candidates) == 11
        claimed += result.significant_gain
        best = max(result.candidates[1:], key=lambda c: c.dev_mean)
        dev_better += best.dev_mean > result.start.dev_mean
        # the same exact McNemar test the verdict uses, on the dev cases the winner was chosen on
        start, won = result.start.dev.per_case, best.dev.per_case
        fixed, broke = int(((won == 1) & (start == 0)).sum()), int(((won == 0) & (start == 1)).sum())
        dev_significant += fixed > broke and mcnemar_exact(broke, fixed) < 0.05
    seconds = time.perf_counter() - t0
    print(
        f"\nnull task, {n} searches of 10 candidates (dev {len(result.splits.dev)}, test {len(result.splits.test)} "
        f"cases), {seconds:.1f} s: test verdict claims a gain in {claimed / n:.1%}; the best dev score beats the "
        f"start in {dev_better / n:.1%}, significantly on dev (the selection data) in {dev_significant / n:.1%}"
    )
    assert claimed / n <= 0.075  # alpha = 0.05, plus sampling slack for 200 searches
    assert dev_better / n >= 0.8
    assert dev_significant > claimed  # choosing on dev and testing on dev inflates the gain


def test_cli_optimize_respects_max_calls_and_resumes_for_free(tmp_path: Path, capsys, monkeypatch) -> None:
    from workbench.cli import main
    from workbench.testing.fake_openai import FakeOpenAIServer

    _reviews(60).frame.to_csv(tmp_path / "reviews.csv", index=False)
    with FakeOpenAIServer(reply=lambda body: planted_model(body["model"], body["messages"])) as server:
        (tmp_path / "x.yaml").write_text(
            f"""name: cli_optimize
dataset: {{path: reviews.csv, id_column: id, expected: [label]}}
models: [openai/fake]
scorers: [{{type: label_match, labels: [positive, negative], expected: label}}]
variants:
  - name: start
    system: Classify the review.
    prompt: "Review: {{{{ review }}}}\\nSentiment:"
    params: {{api_base: "{server.base_url}", api_key: sk-fake, temperature: 0}}
"""
        )
        monkeypatch.chdir(tmp_path)
        argv = ["optimize", "x.yaml", "--objective", "label_match", "--max-calls", "120", "--strategy",
                "few_shot,params", "--steps", "6", "--no-mlflow", "--state", "state.json"]  # fmt: skip
        assert main(argv) == 0
        out = capsys.readouterr().out
        paid = server.requests
        assert 0 < paid <= 120
        assert "prompt search on label_match" in out and "splits: train 24" in out
        saved = (tmp_path / "state.json").read_text()
        assert json.loads(saved)["spent"]["calls"] == paid
        assert "sk-fake" not in saved  # the key is masked in the state file and restored on resume
        assert main(argv) == 0  # started again: the state and the response cache answer, no request is made
        assert server.requests == paid
        assert main([*argv[:-2], "--strategy", "nonsense"]) == 2


def test_search_is_logged_to_mlflow_as_a_parent_with_a_child_run_per_candidate(fake_key: str, tracking_uri: str):
    from mlflow.tracking import MlflowClient

    result = wb.optimize(
        _experiment(), strategy=Reflect(ScriptedProposer(EDITS[2:3])), max_calls=300, max_steps=1, seed=1,
        acompletion=FakeLLM(planted_model), log_to_mlflow=True, tracking_uri=tracking_uri,
    )  # fmt: skip
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("planted")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.`workbench.source` = 'optimize'")
    parent = runs[0]
    assert "beats start on label_match" in parent.data.tags["mlflow.note.content"]
    children = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert sorted(r.data.params["candidate"] for r in children) == ["c0", "c1"]
    child = next(r for r in children if r.data.params["candidate"] == "c1")
    assert child.data.params["parent"] == "c0" and child.data.metrics["dev"] == result["c1"].dev_mean
    diff = client.download_artifacts(child.info.run_id, "diff.txt")
    assert PLANTED in Path(diff).read_text()
    # Each candidate is a version of the registered prompt, linked to its child run.
    linked = {r.data.params["candidate"]: json.loads(r.data.tags["mlflow.linkedPrompts"])[0] for r in children}
    assert linked["c0"]["name"] == linked["c1"]["name"] and linked["c0"]["version"] != linked["c1"]["version"]
    version = client.get_prompt_version(linked["c1"]["name"], linked["c1"]["version"])
    assert PLANTED in json.dumps(version.template) and "+1/-1 lines" in version.commit_message


def test_several_finalists_are_holm_adjusted_and_the_verdict_says_so() -> None:
    edits = [_append(f"Hint {i}.") for i in range(8)]
    data = _reviews(150)
    for seed in range(20):  # the first search in which three candidates beat the start on dev
        result = wb.optimize(
            _experiment(), strategy=Reflect(ScriptedProposer(edits), per_step=2), max_steps=4, seed=seed,
            splits=wb.split_dataset(data, seed=seed), evaluator=NoiseEvaluator(seed), finalists=3, n_resamples=500,
        )  # fmt: skip
        if len(result.finalists) == 3:
            break
    assert len(result.comparisons) == 3 and set(result.tests) == {"c0", *result.finalists}
    assert all(c.adjust == "holm" for c in result.comparisons)
    assert "Holm-adjusted over the 3 finalists" in result.verdict_text
    raw = [c.results[0].p_value for c in result.comparisons]
    adjusted = [c.results[0].p_adjusted for c in result.comparisons]
    assert all(a >= r for a, r in zip(adjusted, raw, strict=True)) and adjusted != raw


# --- the model proposer: its questions are costed, counted, cached -------------------------------

PROPOSER = "openai/gpt-4o"


def proposer_or_planted(model: str, messages: list[dict[str, str]]) -> str:
    """The task model is ``planted_model``; the proposer (asked with REFLECT_SYSTEM) proposes the planted edit."""
    if messages[0]["content"] == REFLECT_SYSTEM:
        return f"Classify the review. {PLANTED}"
    return planted_model(model, messages)


def _proposer_calls(fake_calls: list[dict]) -> list[dict]:
    return [c for c in fake_calls if c["messages"][0]["content"] == REFLECT_SYSTEM]


def _serial() -> wb.Experiment:
    """One call at a time, so a kill lands between two calls (as in a process killed between them)."""
    exp = _experiment()
    return dataclasses.replace(exp, settings=dataclasses.replace(exp.settings, max_concurrency=1))


def test_model_proposer_params_are_validated_sent_and_masked() -> None:
    with pytest.raises(wb.UsageError, match="temperature must be a number from 0 to 2, got 5"):
        ModelProposer(PROPOSER, params={"temperature": 5})
    with pytest.raises(wb.UsageError, match="max_tokens must be a whole number >= 1, got 0"):
        ModelProposer(PROPOSER, params={"max_tokens": 0})
    with pytest.raises(wb.UsageError, match=r"may not set \['model'\]"):
        ModelProposer(PROPOSER, params={"model": "openai/gpt-4o-mini"})
    with pytest.raises(wb.UsageError, match="params must be a mapping"):
        ModelProposer(PROPOSER, params=[("temperature", 0)])  # type: ignore[arg-type]
    with pytest.raises(wb.UsageError, match="max_failures must be a whole number >= 1"):
        ModelProposer(PROPOSER, max_failures=0)
    proposer = ModelProposer(PROPOSER, params={"temperature": 0.7, "max_tokens": 60, "api_key": "sk-proposer-secret"})
    assert "sk-proposer-secret" not in repr(proposer) and "'temperature': 0.7" in repr(proposer)
    assert ModelProposer(PROPOSER).params == {"temperature": 0}  # the default: a replayable proposer


def test_model_proposer_calls_count_against_max_calls_and_are_reported_apart(fake_key: str, tracking_uri: str):
    from mlflow.tracking import MlflowClient

    proposer = ModelProposer(PROPOSER, params={"temperature": 0.7, "max_tokens": 60})
    fake = FakeLLM(proposer_or_planted)
    result = wb.optimize(
        _experiment(), objective="label_match", strategy=Reflect(proposer), max_calls=400, max_steps=3, seed=1,
        stratify="label", acompletion=fake, cache=wb.ResponseCache(":memory:"), log_to_mlflow=True,
        tracking_uri=tracking_uri,
    )  # fmt: skip
    asked = _proposer_calls(fake.calls)
    assert len(asked) == result.proposer_calls >= 1
    assert all(c["model"] == PROPOSER and c["temperature"] == 0.7 and c["max_tokens"] == 60 for c in asked)
    assert len(fake.calls) == result.calls <= 400  # the proposer's calls are part of the total
    assert 0 < result.proposer_cost_usd < result.cost_usd
    assert PLANTED in (result.winner.variant.system or "") and result.significant_gain
    assert f"(proposer: {result.proposer_calls} calls" in str(result)
    assert result.to_json()["proposer_calls"] == result.proposer_calls
    client = MlflowClient(tracking_uri)
    parent = client.search_runs(  # the newest search of experiment "planted" (the store is shared between tests)
        [client.get_experiment_by_name("planted").experiment_id],
        filter_string="tags.`workbench.source` = 'optimize'",
        order_by=["attribute.start_time DESC"],
        max_results=1,
    )[0]
    assert parent.data.metrics["proposer_calls"] == result.proposer_calls
    assert parent.data.metrics["proposer_cost_usd"] == pytest.approx(result.proposer_cost_usd)
    assert parent.data.metrics["calls"] == result.calls
    # the limit that pays for everything before the first question (and holds the test split back),
    # but not the question: the search stops right before asking; one call more and it asks
    before = [c["messages"][0]["content"] for c in fake.calls].index(REFLECT_SYSTEM)
    limit = before + 2 * len(result.splits.test)
    for max_calls, asks in ((limit, False), (limit + 1, True)):
        fake = FakeLLM(proposer_or_planted)
        stopped = wb.optimize(
            _experiment(), strategy=Reflect(proposer), max_calls=max_calls, max_steps=3, seed=1, stratify="label",
            acompletion=fake, cache=wb.ResponseCache(":memory:"),
        )  # fmt: skip
        assert len(fake.calls) == stopped.calls <= max_calls
        assert len(_proposer_calls(fake.calls)) == stopped.proposer_calls == asks
        assert ("the proposer's next question (1 call) would pass the budget" in stopped.stop_reason) != asks
    for max_calls in range(90, 260, 17):  # and whatever the limit, proposer calls included, it holds
        fake = FakeLLM(proposer_or_planted)
        stopped = wb.optimize(
            _experiment(), strategy=[Reflect(proposer), wb.FewShot()], max_calls=max_calls, max_steps=6, seed=1,
            stratify="label", acompletion=fake, cache=wb.ResponseCache(":memory:"),
        )  # fmt: skip
        assert len(fake.calls) == stopped.calls <= max_calls, (max_calls, len(fake.calls))
        assert len(_proposer_calls(fake.calls)) == stopped.proposer_calls


def test_model_proposer_dollars_count_against_budget_usd(fake_key: str) -> None:
    # gpt-4o with room for 4,000 completion tokens: a question may cost ~$0.04, a dev evaluation ~$0.005
    proposer = ModelProposer(PROPOSER, params={"temperature": 0, "max_tokens": 4000})
    question = float(litellm.cost_per_token(model=PROPOSER, prompt_tokens=0, completion_tokens=4000)[1])
    outcomes = []
    for budget in (0.03, 0.06, 0.2):
        fake = FakeLLM(proposer_or_planted)
        result = wb.optimize(
            _experiment(), strategy=Reflect(proposer), budget_usd=budget, max_steps=3, seed=1, stratify="label",
            acompletion=fake, cache=wb.ResponseCache(":memory:"),
        )  # fmt: skip
        assert result.cost_usd <= budget, (budget, result.cost_usd)
        assert len(_proposer_calls(fake.calls)) == result.proposer_calls
        outcomes.append((result.proposer_calls, result.stop_reason))
    assert outcomes[0][0] == 0 and "proposer's next question" in outcomes[0][1]  # $0.03 < one question's bound
    assert outcomes[2][0] >= 1 and question < 0.2
    with pytest.raises(wb.ModelError, match="no price for 'openai/unpriced-proposer'"):
        wb.optimize(
            _experiment(), strategy=Reflect(ModelProposer("openai/unpriced-proposer")), budget_usd=1.0,
            acompletion=FakeLLM(proposer_or_planted),
        )  # fmt: skip


class _Kill(BaseException):
    """A kill: not an Exception, so no retry or error handling catches it."""


class _KillAtCall:
    """acompletion that dies when paid call ``n`` (0-based) is about to be made; records answered calls."""

    def __init__(self, inner: FakeLLM, n: int) -> None:
        self.inner, self.n, self.started, self.paid = inner, n, 0, []

    async def __call__(self, **kwargs):
        if self.started == self.n:
            raise _Kill(f"killed before call {self.n}")
        self.started += 1
        reply = await self.inner(**kwargs)
        self.paid.append(kwargs)
        return reply


def test_killed_after_any_call_resumes_without_paying_a_proposer_call_twice(fake_key: str, tmp_path: Path) -> None:
    proposer = ModelProposer(PROPOSER, params={"temperature": 0.7, "max_tokens": 60})

    def strategies():
        return [Reflect(proposer), wb.FewShot(per_step=2)]

    options = {"objective": "label_match", "max_calls": 400, "max_steps": 4, "seed": 1, "stratify": "label"}
    reference = FakeLLM(proposer_or_planted)
    expected = wb.optimize(
        _serial(), strategy=strategies(), acompletion=reference, cache=wb.ResponseCache(tmp_path / "ref.sqlite"),
        **options,
    )  # fmt: skip
    asked = [i for i, c in enumerate(reference.calls) if c["messages"][0]["content"] == REFLECT_SYSTEM]
    assert asked and expected.proposer_calls == len(asked)
    # killed just before the proposer's question, just after it (its reply paid, its candidate not yet
    # run) and in the middle of a dev evaluation
    for n in (asked[0], asked[0] + 1, asked[0] + 5):
        cache, state = wb.ResponseCache(tmp_path / f"cache{n}.sqlite"), tmp_path / f"state{n}.json"
        killed = _KillAtCall(FakeLLM(proposer_or_planted), n)
        with pytest.raises(_Kill):
            wb.optimize(_serial(), strategy=strategies(), acompletion=killed, cache=cache, state_path=state, **options)
        assert len(killed.paid) == n
        saved = json.loads(state.read_text())["spent"]
        assert saved["proposer_calls"] == (n > asked[0])  # the question's spend was saved before anything else ran
        second = FakeLLM(proposer_or_planted)
        resumed = wb.optimize(
            _serial(), strategy=strategies(), acompletion=second, cache=cache, state_path=state, **options
        )
        paid = [json.dumps([c["model"], c["messages"]]) for c in killed.paid + second.calls]
        assert len(paid) == len(set(paid)), f"killed before call {n}: a call was paid for twice"
        assert len(paid) == len(reference.calls) == expected.calls
        assert len(_proposer_calls(killed.paid + second.calls)) == expected.proposer_calls
        assert [c.key for c in resumed.candidates] == [c.key for c in expected.candidates]
        assert resumed.verdict_text == expected.verdict_text


JUDGE_MODEL = "openai/gpt-4o-mini-judge"


def judged_planted(model: str, messages: list[dict[str, str]]) -> str:
    """``planted_model``, and an LLM judge that passes the answer when it is the expected label."""
    if model != JUDGE_MODEL:
        return planted_model(model, messages)
    text = messages[-1]["content"]
    output = re.search(r'Response to judge:\n"""\n(.*?)\n"""', text, re.S).group(1)
    expected = re.search(r"Expected:\nlabel: (\w+)", text).group(1)
    return json.dumps(
        {"reason": "ok" if output == expected else "wrong label", "score": "PASS" if output == expected else "FAIL"}
    )


def test_an_llm_judge_objective_given_as_a_scorer_counts_its_calls_against_max_calls(fake_key: str) -> None:
    judge = wb.LLMJudge(rubric="The answer is the expected sentiment label.", model=JUDGE_MODEL, samples=2)
    for max_calls in (300, 1500):
        fake = FakeLLM(judged_planted)
        result = wb.optimize(
            _experiment(), objective=judge, strategy=Reflect(ScriptedProposer(EDITS)), max_calls=max_calls,
            max_steps=4, seed=1, stratify="label", acompletion=fake, cache=wb.ResponseCache(":memory:"),
        )  # fmt: skip
        judged = [c for c in fake.calls if c["model"] == JUDGE_MODEL]
        # two judge samples per output, unless the same output of the same case was judged already (cached)
        assert 0 < len(judged) <= 2 * (len(fake.calls) - len(judged))
        assert len(fake.calls) == result.calls <= max_calls, (max_calls, len(fake.calls))
        assert result.objective == "llm_judge"
    assert PLANTED in (result.winner.variant.system or "") and result.significant_gain
    other = wb.LabelMatch(labels=["positive", "negative", "neutral"], expected="label")
    with pytest.raises(wb.UsageError, match="differs from experiment 'planted'"):
        wb.optimize(_experiment(), objective=other, max_calls=300, acompletion=FakeLLM(judged_planted))
    with pytest.raises(wb.UsageError, match="cannot be enforced with objective 'llm_judge'"):
        wb.optimize(_experiment(), objective=judge, budget_usd=1.0, acompletion=FakeLLM(judged_planted))
