"""LLM-as-judge: verdict parsing, the judge scorer in a run (cost apart, cache, samples),
pairwise preference with order swapping, and judge/human agreement.

Judge and task calls go to a fake OpenAI-compatible server on 127.0.0.1: the task model
is ``openai/gpt-4o-mini`` and the judge ``openai/gpt-4o``, so both are priced from
litellm's local price map and told apart by the model name the server receives.
"""

import asyncio
import json
import math
import re
from collections import Counter

import litellm
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, confusion_matrix

import workbench as wb
from workbench.core.labels import output_hash
from workbench.core.settings import RunSettings
from workbench.engine.calls import CallPath
from workbench.judge.pairwise import parse_choice
from workbench.judge.parsing import Scale, parse_verdict
from workbench.scorers import ScoringContext, run_scorer, scorer_from_spec
from workbench.testing import FakeOpenAIServer

TASK, JUDGE = "openai/gpt-4o-mini", "openai/gpt-4o"
KEY = "sk-fake-judge-0000"
RECORDS = [
    {"id": "a", "text": "great kettle", "label": "positive"},
    {"id": "b", "text": "it broke", "label": "negative"},
    {"id": "c", "text": "great towels", "label": "negative"},  # the task model gets this one wrong
]


def judged_output(body: dict) -> str:
    return re.search(r'Response to judge:\n"""\n(.*?)\n"""', body["messages"][-1]["content"], re.S).group(1)


def expected_label(body: dict) -> str:
    return re.search(r"Expected:\nlabel: (\w+)", body["messages"][-1]["content"]).group(1)


class Scripted:
    """Server replies: the task says positive for 'great' (the polite variant the opposite);
    the judge answers with ``verdict(body)``."""

    def __init__(self, verdict=None):
        self.verdict = verdict or (lambda body: {"reason": "matches", "score": "PASS"}
                                   if judged_output(body) == expected_label(body)
                                   else {"reason": "wrong label", "score": "FAIL"})  # fmt: skip
        self.judge_bodies: list[dict] = []

    def __call__(self, body: dict) -> str:
        if body["model"] == JUDGE.split("/")[1]:
            self.judge_bodies.append(body)
            verdict = self.verdict(body)
            return verdict if isinstance(verdict, str) else json.dumps(verdict)
        content = body["messages"][-1]["content"]
        return "positive" if ("great" in content) != content.startswith("Please") else "negative"


def judge(server: FakeOpenAIServer, **options) -> wb.LLMJudge:
    params = {"api_base": server.base_url, "api_key": KEY, **options.pop("params", {})}
    return wb.LLMJudge(rubric="The answer is the expected sentiment label.", model=JUDGE, params=params, **options)


def experiment(server: FakeOpenAIServer, scorers=(), variants=("plain",)) -> wb.Experiment:
    params = {"api_base": server.base_url, "api_key": KEY, "temperature": 0}
    prompts = {"plain": "{{ text }}", "polite": "Please label: {{ text }}"}
    return wb.Experiment(
        name="judged", dataset=wb.Dataset.from_records(RECORDS, expected=["label"]), models=[TASK],
        variants=[wb.PromptVariant(name=v, prompt=prompts[v], params=params) for v in variants], scorers=list(scorers),
    )  # fmt: skip


def run(exp: wb.Experiment, **options) -> wb.ExperimentResult:
    return exp.run(log_to_mlflow=False, progress=False, **options)


# -- parsing ------------------------------------------------------------------------------

PASS_FAIL, ONE_TO_FIVE = Scale.parse("pass_fail"), Scale.parse("1-5")


@pytest.mark.parametrize(
    ("text", "scale", "expected"),
    [
        ('{"reason": "ok", "score": 4}', ONE_TO_FIVE, 0.75),
        ('```json\n{"reason": "fine", "score": "PASS"}\n```', PASS_FAIL, 1.0),
        ('Sure! Here it is: {"reason": "rude", "score": "FAIL"} Hope that helps.', PASS_FAIL, 0.0),
        ("{'score': 5, 'reason': 'single quotes'}", ONE_TO_FIVE, 1.0),
        ('{"Rating": "4 out of 5", "Explanation": "keys in any case"}', ONE_TO_FIVE, 0.75),
        ('{"score": true}', PASS_FAIL, 1.0),
        ("Reasoning: it is correct.\nScore: 4/5", ONE_TO_FIVE, 0.75),
        ('{"reason": "cut off by max_tokens", "score": 4', ONE_TO_FIVE, 0.75),
        ("**Score:** 2", ONE_TO_FIVE, 0.25),
        ("The score is 3.", ONE_TO_FIVE, 0.5),
        ("Verdict: PASS", PASS_FAIL, 1.0),
        ("fail.", PASS_FAIL, 0.0),
        ("Yes, it answers the question.", PASS_FAIL, 1.0),
        ("No", PASS_FAIL, 0.0),
        ("It clearly PASSES the rubric.", PASS_FAIL, 1.0),
        ("4", ONE_TO_FIVE, 0.75),
        ("7", Scale.parse("0-10"), 0.7),
        # never a silent 0: these are NaN with the raw text in the reason
        ("It would PASS if shorter, so FAIL", PASS_FAIL, math.nan),
        ('{"reason": "generous", "score": 7}', ONE_TO_FIVE, math.nan),
        ("I like it a lot", ONE_TO_FIVE, math.nan),
        ("", PASS_FAIL, math.nan),
    ],
)
def test_parse_verdict_variants(text, scale, expected):
    verdict = parse_verdict(text, scale)
    if math.isnan(expected):
        assert math.isnan(verdict.value) and not verdict.parsed
        assert repr(" ".join(text.split())) in verdict.reason  # quotes what the judge wrote
    else:
        assert verdict.value == pytest.approx(expected)
        assert verdict.reason


def test_parse_verdict_takes_the_reason_from_json_and_says_why_off_scale():
    assert parse_verdict('{"score": 2, "reasoning": "too long"}', ONE_TO_FIVE).reason == "too long"
    assert "not on the 1-5 scale" in parse_verdict('{"score": 0}', ONE_TO_FIVE).reason


def test_scales_normalise_to_zero_one_and_bad_configs_fail_early():
    assert [ONE_TO_FIVE.normalise(x) for x in (1, 3, 5, "5", 6)] == [0.0, 0.5, 1.0, 1.0, None]
    assert [PASS_FAIL.normalise(x) for x in ("PASS", "no", True, 0, 0.5, 2)] == [1.0, 0.0, 1.0, 0.0, 0.5, None]
    assert Scale.parse("0..10").normalise(2.5) == 0.25
    with pytest.raises(wb.ScorerError, match="scale '5-1'"):
        wb.LLMJudge(rubric="x", scale="5-1")
    with pytest.raises(wb.ScorerError, match="rubric"):
        wb.LLMJudge(rubric=" ")
    with pytest.raises(wb.ScorerError, match="samples"):
        wb.LLMJudge(rubric="x", samples=0)


def test_judge_is_a_spec_type_and_its_spec_hides_keys():
    spec = {"type": "llm_judge", "rubric": "Polite.", "model": JUDGE, "scale": "1-5", "params": {"api_key": KEY}}
    built = scorer_from_spec(spec)
    assert isinstance(built, wb.LLMJudge) and built.name == "llm_judge" and built.scale == "1-5"
    assert built.spec()["params"] == {"api_key": "***"} and KEY not in json.dumps(built.spec())
    assert wb.PairwiseJudge(params={"api_key": KEY}).spec()["params"] == {"api_key": "***"}


# -- the judge in a run -------------------------------------------------------------------


def test_judge_scores_each_output_and_counts_its_cost_apart_from_the_task():
    script = Scripted()
    with FakeOpenAIServer(reply=script) as server:
        plain = run(experiment(server), cache=False)
        judged = run(experiment(server, [judge(server, metric_name="judge")]), cache=False)
    cases = judged.cases.set_index("case_id")
    assert cases["output"].to_dict() == {"a": "positive", "b": "negative", "c": "positive"}
    assert cases["score.judge"].to_dict() == {"a": 1.0, "b": 1.0, "c": 0.0}
    assert cases.loc["c", "reason.judge"] == "wrong label"
    # what the judge saw: the rubric, the input, the expected value and the output
    first = script.judge_bodies[0]["messages"][-1]["content"]
    assert "The answer is the expected sentiment label." in first and "text: " in first and "label: " in first
    # task columns identical with and without the judge; judge usage in its own columns
    for column in ("prompt_tokens", "completion_tokens", "cost_usd"):
        pd.testing.assert_series_equal(plain.cases[column], judged.cases[column])
    assert (cases["judge.judge.prompt_tokens"] > 30).all() and (cases["judge.judge.completion_tokens"] > 0).all()
    price = litellm.cost_per_token(model=JUDGE, prompt_tokens=1000, completion_tokens=0)[0]
    assert cases["judge.judge.cost_usd"].iloc[0] >= price * 30 / 1000 > 0
    row = judged.summary.iloc[0]
    assert row["cost_usd"] == plain.summary.iloc[0]["cost_usd"]
    assert row["judge.judge_cost_usd"] == pytest.approx(cases["judge.judge.cost_usd"].sum())
    tokens = cases["judge.judge.prompt_tokens"] + cases["judge.judge.completion_tokens"]
    assert row["judge.judge_tokens"] == tokens.sum()
    assert row["judge"] == pytest.approx(2 / 3) and "judge.judge_spread_mean" not in judged.summary
    humans = pd.DataFrame({"case_id": ["c", "b", "a"], "variant": "plain", "label": ["down", "up", "down"]})
    agreement = wb.judge_agreement(judged, humans)  # the result's one judge column is found by itself
    assert (agreement.n, agreement.agreement) == (3, pytest.approx(2 / 3))


def test_a_cached_rerun_makes_no_judge_call_and_failed_judge_calls_are_not_cached():
    script = Scripted()
    broken = {"on": True}

    async def acompletion(**kwargs):
        if kwargs["model"] == JUDGE and broken["on"]:
            raise litellm.BadRequestError(message=f"judge refused (key {KEY})", model=JUDGE, llm_provider="openai")
        return await litellm.acompletion(**kwargs)

    with FakeOpenAIServer(reply=script) as server:
        exp = experiment(server, [judge(server)])
        failed = run(exp, acompletion=acompletion)
        assert failed.cases["score.llm_judge"].isna().all()
        assert failed.cases["reason.llm_judge"].str.contains("judge call failed: BadRequestError").all()
        assert not failed.cases["reason.llm_judge"].str.contains(KEY).any()  # the judge's key is masked
        broken["on"] = False
        first = run(exp, acompletion=acompletion)  # task calls cached, judge calls made now
        assert first.calls_made == 0 and len(script.judge_bodies) == 3
        sent = server.requests
        again = run(exp, acompletion=acompletion)
        assert server.requests == sent and len(script.judge_bodies) == 3  # zero judge requests
    assert again.cases["judge.llm_judge.cached"].all() and not first.cases["judge.llm_judge.cached"].any()
    pd.testing.assert_series_equal(first.cases["score.llm_judge"], again.cases["score.llm_judge"])
    # cached judge calls still count at list price, like cached task calls
    pd.testing.assert_series_equal(first.cases["judge.llm_judge.cost_usd"], again.cases["judge.llm_judge.cost_usd"])


def test_samples_report_the_judges_own_spread_and_self_agreement():
    seen = Counter()

    def flaky(body):  # case b flips between PASS and FAIL on every request; the others are stable
        output = judged_output(body)
        seen[output, expected_label(body)] += 1
        if expected_label(body) == "negative" and output == "negative":
            return {"reason": "coin", "score": "PASS" if seen[output, "negative"] % 2 else "FAIL"}
        return {"reason": "stable", "score": "PASS"}

    script = Scripted(flaky)
    with FakeOpenAIServer(reply=script) as server:
        exp = experiment(server, [judge(server, samples=2, params={"temperature": 0.7})])
        first = run(exp)
        assert len(script.judge_bodies) == 6  # 3 outputs x 2 samples
        again = run(exp)
        assert len(script.judge_bodies) == 6  # both samples cached under their own repeat index
    for result in (first, again):
        cases = result.cases.set_index("case_id")
        assert cases["score.llm_judge"].to_dict() == {"a": 1.0, "b": 0.5, "c": 1.0}
        assert cases["judge.llm_judge.spread"].to_dict() == {"a": 0.0, "b": 1.0, "c": 0.0}
        assert "2 judgement(s) [" in cases.loc["b", "reason.llm_judge"]
        row = result.summary.iloc[0]
        assert row["llm_judge.judge_self_agreement"] == pytest.approx(2 / 3)
        assert row["llm_judge.judge_spread_mean"] == pytest.approx(1 / 3)


def test_an_unparseable_verdict_is_nan_with_the_raw_text_never_zero():
    script = Scripted(lambda body: "Hmm, hard to say." if judged_output(body) == "negative" else "Score: PASS")
    with FakeOpenAIServer(reply=script) as server:
        result = run(experiment(server, [judge(server)]), cache=False)
    cases = result.cases.set_index("case_id")
    assert math.isnan(cases.loc["b", "score.llm_judge"])
    assert "unparseable judge verdict: 'Hmm, hard to say.'" in cases.loc["b", "reason.llm_judge"]
    assert result.summary.iloc[0]["llm_judge"] == 1.0  # the mean leaves it out instead of counting a 0


def test_judge_without_a_runner_context_calls_litellm_directly():
    judge_ = wb.LLMJudge(rubric="Polite.", model=JUDGE, params={"mock_response": '{"score": "PASS", "reason": "ok"}'})
    score = asyncio.run(run_scorer(judge_, inputs={"q": "hi"}, outputs="Hello!", expectations={}))
    assert score.value == 1.0 and score.reason == "ok" and score.prompt_tokens and score.cached is False


def test_an_unusable_judge_model_fails_before_any_call(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeOpenAIServer(reply=Scripted()) as server:
        exp = experiment(server, [wb.LLMJudge(rubric="x", model=JUDGE)])
        with pytest.raises(wb.ModelError, match="OPENAI_API_KEY"):
            run(exp, cache=False)
        assert server.requests == 0


# -- pairwise -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "choice"),
    [
        ('{"reason": "B is vague", "winner": "A"}', "A"),
        ('```json\n{"winner": "Response B"}\n```', "B"),
        ('{"winner": "tie"}', "tie"),
        ("Winner: **B**", "B"),
        ("Response A is better.", "A"),
        ("B", "B"),
        ("Both are equally fine, I cannot choose", None),
    ],
)
def test_parse_choice(text, choice):
    assert parse_choice(text) == choice


def pairwise_run(verdict):
    """Run the two-variant experiment, then the pairwise judge with ``verdict(first, second)``."""

    def reply(body):
        content = body["messages"][-1]["content"]
        a, b = re.findall(r'Response [AB]:\n"""\n(.*?)\n"""', content, re.S)
        return verdict(a, b)

    script = Scripted(reply)
    with FakeOpenAIServer(reply=script) as server:
        result = run(experiment(server, variants=("plain", "polite")))
        pj = wb.PairwiseJudge(model=JUDGE, params={"api_base": server.base_url, "api_key": KEY})
        preference = wb.pairwise_preference(result, baseline="plain", candidate="polite", judge=pj)
        again = wb.pairwise_preference(result, baseline="plain", candidate="polite", judge=pj)
    return preference, again, script


def test_pairwise_judge_swaps_the_order_and_calls_a_flip_a_tie():
    preference, _, script = pairwise_run(lambda a, b: '{"reason": "first is best", "winner": "A"}')
    assert len(script.judge_bodies) == 6  # 3 pairs x 2 orders, then all cached
    assert (preference.wins, preference.ties, preference.losses) == (0, 3, 0)
    assert preference.order_flips == 3 and not preference.table["consistent"].any()
    assert set(preference.table["baseline_first"]) == {"plain"}  # "A" said with plain shown first
    assert set(preference.table["candidate_first"]) == {"polite"}
    assert "position bias" in str(preference) and preference.win_rate == 0.5


def test_pairwise_judge_with_a_real_preference_counts_wins_and_losses():
    # plain answers a, b, c with positive, negative, positive; polite with the opposite labels.
    # The fake judge prefers "negative" wherever it is shown: polite wins a and c, loses b.
    def prefers_negative(a, b):
        return json.dumps({"reason": "negative is right", "winner": "A" if a == "negative" else "B"})

    preference, again, script = pairwise_run(prefers_negative)
    assert (preference.wins, preference.ties, preference.losses, preference.unjudged) == (2, 0, 1, 0)
    assert preference.table.set_index("case_id")["winner"].to_dict() == {"a": "polite", "b": "plain", "c": "polite"}
    assert preference.table["consistent"].all() and preference.order_flips == 0
    assert preference.win_rate == pytest.approx(2 / 3) and "2 win(s), 0 tie(s), 1 loss(es)" in str(preference)
    assert len(script.judge_bodies) == 6
    drop = ["judge_cached"]
    pd.testing.assert_frame_equal(preference.table.drop(columns=drop), again.table.drop(columns=drop))
    assert again.table["judge_cached"].all() and preference.cost_usd > 0


# -- judge / human agreement --------------------------------------------------------------

JUDGE_10 = [1, 1, 1, 0, 0, 1, 0, 1, 0, 1]
HUMAN_10 = ["up", "up", "down", "down", "down", "up", "up", "up", "down", "up"]


def test_agreement_and_kappa_match_hand_computation_and_sklearn():
    a = wb.judge_agreement(JUDGE_10, HUMAN_10)
    # agree on 8 of 10; both pass 6 of 10, so chance agreement is .6*.6 + .4*.4 = .52
    assert a.n == 10 and a.agreement == pytest.approx(0.8)
    assert a.kappa == pytest.approx((0.8 - 0.52) / (1 - 0.52))
    human = [int(h == "up") for h in HUMAN_10]
    assert a.kappa == pytest.approx(cohen_kappa_score(human, JUDGE_10))
    assert a.confusion.loc["pass", "pass"] == 5 and a.confusion.loc["fail", "fail"] == 3
    assert a.confusion.loc["pass", "fail"] == 1 and a.confusion.loc["fail", "pass"] == 1
    assert (a.confusion.to_numpy() == confusion_matrix(human, JUDGE_10, labels=[1, 0])).all()
    assert len(a.disagreements) == 2
    assert "agree on 8 (80%)" in str(a) and "kappa 0.58 (moderate" in str(a)


def test_agreement_thresholds_scores_and_reads_many_label_spellings():
    a = wb.judge_agreement([0.75, 0.25, 0.5, 0.4], [True, "FAIL", 1, "no"], threshold=0.5)
    assert list(a.pairs["judge"]) == ["pass", "fail", "pass", "fail"] and a.agreement == 1.0 and a.kappa == 1.0
    assert wb.judge_agreement([0.75, 0.25, 0.5, 0.4], [1, 0, 1, 0], threshold=0.8).agreement == 0.5
    with pytest.raises(ValueError, match="same length"):
        wb.judge_agreement([1, 0], ["up"])
    with pytest.raises(ValueError, match="'meh' is not understood"):
        wb.judge_agreement([1], ["meh"])


def test_degenerate_labels_give_nan_or_zero_kappa_with_a_note_not_a_crash():
    same = wb.judge_agreement([1, 1, 1], ["up", "up", "up"])
    assert same.agreement == 1.0 and math.isnan(same.kappa) and "undefined" in str(same)
    one_sided = wb.judge_agreement([1, 0, 1], ["up", "up", "up"])
    assert one_sided.kappa == 0.0 and "Humans labelled every output 'pass'" in str(one_sided)
    nothing = wb.judge_agreement([math.nan, math.nan], ["up", "down"])
    assert nothing.n == 0 and math.isnan(nothing.agreement) and "could not score" in str(nothing)


def cases_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "case_id": ["a", "b", "c", "a", "b", "c"],
            "variant": ["zero"] * 3 + ["few"] * 3,
            "variant_version": ["v0"] * 3 + ["v1"] * 3,
            "model": ["m"] * 6,
            "repeat": [0] * 6,
            "output": ["positive", "negative", "positive", "negative", "negative", "positive"],
            "score.exact_match": [1.0, 1.0, 0.0, 0.0, 1.0, 0.0],
            "score.llm_judge": [1.0, 1.0, 1.0, 0.0, math.nan, 0.0],
        }
    )


def test_agreement_matches_a_cases_frame_with_labels_by_case_and_variant():
    labels = pd.DataFrame(
        {
            "case_id": ["c", "a", "b", "a", "c", "z"],
            "variant": ["zero", "zero", "zero", "few", "few", "zero"],
            "label": ["down", "up", "up", "down", "down", "up"],
        }
    )
    with pytest.raises(ValueError, match="score="):
        wb.judge_agreement(cases_frame(), labels)  # two score columns: which one is the judge?
    a = wb.judge_agreement(cases_frame(), labels, score="llm_judge")
    assert a.n == 5 and a.agreement == pytest.approx(4 / 5)  # zero/c: judge passed what humans failed
    assert list(a.disagreements["case_id"]) == ["c"]
    assert any("matched no judged output" in n for n in a.notes)  # the label of case z
    ambiguous = pd.DataFrame({"case_id": ["a"], "label": ["up"]})
    with pytest.raises(ValueError, match="matches several judged outputs"):
        wb.judge_agreement(cases_frame(), ambiguous, score="llm_judge")


def test_agreement_reads_review_jsonl_keyed_by_output_hash_latest_click_wins(tmp_path):
    frame = cases_frame()
    path = tmp_path / "labels.jsonl"
    records = [
        {"case_id": r.case_id, "variant": r.variant, "variant_version": r.variant_version, "model": "m", "repeat": 0,
         "output_hash": output_hash(r.output), "label": "up" if r.case_id != "c" else "down", "comment": "", "ts": i}
        for i, r in enumerate(frame.itertuples())
    ]  # fmt: skip
    records.append({**records[0], "label": "down", "ts": 99})  # a later click on zero/a changes its label
    records.append({**records[1], "output_hash": output_hash("an older output"), "label": "down", "ts": 100})
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    a = wb.judge_agreement(frame, path, score="score.llm_judge")
    # judged: zero a/b/c pass, few a fail, few b NaN, few c fail; humans: zero a down, b up, c down; few a up, c down
    assert a.n == 5 and list(a.pairs["human"]) == ["fail", "pass", "fail", "pass", "fail"]
    assert a.agreement == pytest.approx(2 / 5)
    assert any("could not score" in n for n in a.notes) and any("matched no judged output" in n for n in a.notes)


@pytest.mark.local_model
def test_the_real_local_model_as_judge_gives_a_score_or_a_nan_with_a_reason():
    judge_ = wb.LLMJudge(rubric="The label matches the review's sentiment.", model="local/gemma-3-270m",
                         params={"max_tokens": 40})  # fmt: skip
    models = CallPath(RunSettings())  # litellm, uncached: the real local model

    async def score_all():
        return [
            await run_scorer(
                judge_, ScoringContext(inputs={"review": review}, output=label, expectations={}, models=models)
            )
            for review, label in (("Broke after a day.", "negative"), ("Lovely towels.", "negative"))
        ]

    for score in asyncio.run(score_all()):
        assert score.reason and score.prompt_tokens > 50 and score.cost_usd == 0.0
        assert 0.0 <= score.value <= 1.0 or (math.isnan(score.value) and "judge" in score.reason)


@pytest.mark.parametrize(
    ("text", "choice"),
    [("Response B is better: a more concise answer.", "B"), ("Verdict: a draw", None), ('{"winner": "A"}', "A")],
)
def test_pairwise_choice_is_not_fooled_by_the_article_a(text, choice):
    from workbench.judge.pairwise import parse_choice

    assert parse_choice(text) == choice
