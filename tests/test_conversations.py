"""Conversations: history rendered as chat turns, checked before any call, rolled up per conversation."""

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.core.conversation import compact, history_turns, readable_prompt
from workbench.engine.cache import cache_key
from workbench.testing import FakeOpenAIServer
from workbench.views.conversation import conversation_html

DATA = Path(__file__).parent / "data" / "conversations_tiny.jsonl"
MODEL = "openai/fake"
HISTORY = [
    {"role": "user", "content": "How long do I have to return shoes?"},
    {"role": "assistant", "content": "30 days."},
]


def chat_variant(**kwargs) -> wb.PromptVariant:
    return wb.PromptVariant(
        name="chat", system="You are Bazaar support.", prompt="Q: {{ question }}", history="messages", **kwargs
    )


# -- rendering ------------------------------------------------------------------------------


def test_render_puts_system_few_shot_history_then_the_user_turn_in_order():
    variant = chat_variant(examples=[{"question": "Hi?", "output": "Hello."}])
    messages = variant.render({"question": "And who pays?", "messages": HISTORY})
    assert messages == [
        {"role": "system", "content": "You are Bazaar support."},
        {"role": "user", "content": "Q: Hi?"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "How long do I have to return shoes?"},
        {"role": "assistant", "content": "30 days."},
        {"role": "user", "content": "Q: And who pays?"},
    ]


def test_history_cell_may_be_json_text_an_arrow_array_or_empty():
    assert history_turns(json.dumps(HISTORY)) == HISTORY
    assert history_turns(np.array(HISTORY, dtype=object)) == HISTORY
    for empty in (None, float("nan"), "", "  ", [], "[]"):
        assert history_turns(empty) == []
    first_turn = chat_variant().render({"question": "Hi", "messages": "[]"})
    assert [m["role"] for m in first_turn] == ["system", "user"]


def test_a_variant_without_history_ignores_the_column_and_keeps_its_version():
    plain = wb.PromptVariant(name="plain", prompt="Q: {{ question }}")
    assert plain.render({"question": "x", "messages": HISTORY}) == [{"role": "user", "content": "Q: x"}]
    payload = json.dumps({"system": None, "prompt": "Q: {{ question }}", "examples": [], "params": {}}, sort_keys=True)
    assert plain.version == hashlib.sha256(payload.encode()).hexdigest()[:12]  # the pre-history formula
    assert wb.PromptVariant(name="c", prompt="Q: {{ question }}", history="messages").version != plain.version
    assert "messages" in chat_variant().variables() and "messages" not in plain.variables()
    assert wb.PromptVariant.from_dict(chat_variant().to_dict()) == chat_variant()


def test_the_cache_key_covers_the_history():
    variant = chat_variant()
    other = [HISTORY[0], {"role": "assistant", "content": "14 days."}]
    keys = {
        cache_key(MODEL, variant.render({"question": "And who pays?", "messages": history}), variant.params, 0)
        for history in (HISTORY, other, [])
    }
    assert len(keys) == 3


def test_history_must_name_a_column():
    with pytest.raises(wb.TemplateError, match="history must name the column"):
        wb.PromptVariant(name="x", prompt="{{ q }}", history="")


def test_prompt_column_shows_the_history_compactly_without_the_few_shot_turns():
    variant = chat_variant(examples=[{"question": "Hi?", "output": "Hello."}])
    long = "word " * 100
    history = [{"role": "user", "content": "Where is\nmy order?"}, {"role": "assistant", "content": long}]
    text = readable_prompt(variant.render({"question": "Thanks", "messages": history}), few_shot=1)
    lines = text.splitlines()
    assert lines[:2] == ["[system]", "You are Bazaar support."]
    assert "[history: 2 turns]" in lines and "user: Where is my order?" in lines
    assert "Hi?" not in text and "Hello." not in text  # the few-shot turns live in the variant
    assistant = next(line for line in lines if line.startswith("assistant: "))
    assert assistant.endswith("…") and len(assistant) <= len("assistant: ") + 160
    assert lines[-2:] == ["[user]", "Q: Thanks"]
    assert compact([]) == ""


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ([{"role": "bot", "content": "hi"}], r"turn 1 has role 'bot'; use one of \['user', 'assistant'\]"),
        ([{"role": "system", "content": "hi"}], r"role 'system'; put system text in the variant's `system`"),
        ([{"role": "user"}], r"turn 1 \(user\) has no text 'content' \(got None\); give the turn its text"),
        ({"role": "user", "content": "hi"}, r"holds a dict, not a list of turns; .*\[\] for a conversation's first"),
        ("[{'role': 'user'}]", r"is not valid JSON .*write the earlier turns as a JSON list"),
        ([{"role": "user", "content": "a"}], r"ends with a user turn \(turn 1\).*move that last user turn"),
        (
            [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
            r"turn 2 is from the user, but turn 2 must be from the assistant.*merge two turns",
        ),
        ([{"role": "user", "content": "a", "name": "x"}], r"turn 1 has unknown key\(s\) \['name'\]"),
        (["hello"], r"turn 1 is a str, not an object"),
    ],
)
def test_bad_history_names_the_column_turn_and_fix(cell, expected):
    with pytest.raises(wb.DatasetError, match=expected) as info:
        history_turns(cell, where="dataset x.jsonl row 4 (line 4)", column="messages")
    assert str(info.value).startswith("dataset x.jsonl row 4 (line 4) column 'messages'")


def test_dataset_validation_lists_every_bad_row_with_file_row_id_and_field(tmp_path):
    rows = [
        {"id": "ok", "question": "q", "messages": HISTORY},
        {"id": "bad-role", "question": "q", "messages": [{"role": "agent", "content": "x"}]},
        {"id": "ends-user", "question": "q", "messages": HISTORY[:1]},
    ]
    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(wb.DatasetError) as info:
        wb.Dataset.load(path).validate([chat_variant()])
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(
        f"dataset {path} row 2 (line 2) (id 'bad-role') column 'messages' turn 1 has role 'agent'"
    )
    assert lines[1].startswith(
        f"dataset {path} row 3 (line 3) (id 'ends-user') column 'messages' ends with a user turn"
    )


def test_csv_cells_hold_json_and_an_empty_cell_is_a_first_turn(tmp_path):
    path = tmp_path / "chats.csv"
    pd.DataFrame(
        [
            {"id": "t1", "question": "Hi", "messages": ""},
            {"id": "t2", "question": "And?", "messages": json.dumps(HISTORY)},
            {"id": "t3", "question": "So?", "messages": "not json"},
        ]
    ).to_csv(path, index=False)
    dataset = wb.Dataset.load(path)
    with pytest.raises(wb.DatasetError, match=r"row 3 \(line 4\) \(id 't3'\) column 'messages' is not valid JSON"):
        dataset.validate([chat_variant()])
    plain = wb.PromptVariant(name="plain", prompt="{{ question }}")
    dataset.validate([plain])  # a variant that does not use the history does not care
    good = wb.Dataset.from_records([{"id": "t1", "question": "Hi", "messages": ""}])
    good.validate([chat_variant()])


def test_a_missing_history_column_is_named_before_any_call():
    dataset = wb.Dataset.from_records([{"id": "a", "question": "q"}])
    with pytest.raises(wb.DatasetError, match=r"has no column 'messages' used by variant 'chat'"):
        dataset.validate([chat_variant()])


def test_yaml_variants_take_a_history_field():
    exp = wb.experiment_from_dict(
        {
            "name": "chats",
            "dataset": {"path": str(DATA), "expected": ["reference"]},
            "variants": [{"name": "chat", "prompt": "{{ question }}", "history": "messages"}],
            "models": [MODEL],
        }
    )
    assert exp.variants[0].history == "messages"


# -- end to end through the fake OpenAI server ----------------------------------------------


def _variants(base_url: str) -> list[wb.PromptVariant]:
    params = {"api_base": base_url, "api_key": "sk-fake-conv-0000", "temperature": 0}
    system = "You are Bazaar support."
    return [
        wb.PromptVariant(name="single", system=system, prompt="{{ question }}", params=params),
        wb.PromptVariant(name="chat", system=system, prompt="{{ question }}", history="messages", params=params),
    ]


@pytest.fixture
def run() -> tuple[wb.ExperimentResult, list[list[dict]]]:
    sent: list[list[dict]] = []

    def reply(body: dict) -> str:
        sent.append(body["messages"])
        return "the seller" if len(body["messages"]) > 2 else "I do not know"

    with FakeOpenAIServer(reply=reply) as server:
        dataset = wb.Dataset.load(DATA, expected=["reference"])
        scorer = wb.Contains(expected="reference")
        exp = wb.Experiment(name="conv", variants=_variants(server.base_url), dataset=dataset, models=[MODEL],
                            scorers=[scorer])  # fmt: skip
        result = exp.run(log_to_mlflow=False, progress=False)
    return result, sent


def test_the_server_receives_the_history_as_separate_turns(run):
    result, sent = run
    assert len(sent) == 10
    long = [m for m in sent if len(m) == 6]  # conversation c2, turn 3, with its history
    assert len(long) == 1
    assert [m["role"] for m in long[0]] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert long[0][2]["content"] == "Every Monday, weekly." and long[0][-1]["content"] == "What about the fee?"
    assert all(len(m) == 2 for m in sent if "Every Monday" not in json.dumps(m) and "30 days" not in json.dumps(m))
    cases = result.cases.set_index(["case_id", "variant"])
    assert "[history: 4 turns]\nuser: When do sellers get paid?" in cases.loc[("c2-t3", "chat"), "prompt"]
    assert "[history" not in cases.loc[("c2-t3", "single"), "prompt"]
    assert list(cases.loc[("c2-t3", "chat"), "input.messages"][0].values()) == ["user", "When do sellers get paid?"]


def test_a_bad_history_stops_the_run_before_any_call(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": "x", "question": "q", "messages": [{"role": "user", "content": "a"}]}) + "\n")
    with FakeOpenAIServer() as server:
        exp = wb.Experiment(name="bad", variants=_variants(server.base_url), dataset=wb.Dataset.load(path),
                            models=[MODEL])  # fmt: skip
        with pytest.raises(wb.DatasetError, match=r"row 1 \(line 1\) \(id 'x'\) column 'messages' ends with a user"):
            exp.run(log_to_mlflow=False, progress=False)
        assert server.requests == 0


def test_side_by_side_shows_the_turns_escaped_above_the_outputs(run):
    result, _ = run
    html = result.side_by_side().to_html()
    assert "&lt;b&gt;My orders&lt;/b&gt; &amp; press Return." in html and "<b>My orders</b>" not in html
    assert html.count('class="wb-turn wb-turn-assistant"') == 4  # c1-t2: 1, c2-t2: 1, c2-t3: 2
    row = html.index("wb-turn-user")
    assert row < html.index("And who pays for the &lt;label&gt;?")  # the history comes above the case's row
    assert "first turn: no earlier turns" in html
    assert "&#39;role&#39;" not in html and "'role'" not in html  # not a Python repr in a cell


def test_review_widget_shows_the_conversation_above_the_output(run, tmp_path):
    result, _ = run
    review = wb.review(result, variants=["chat"], labels_path=tmp_path / "labels.jsonl", log_to_mlflow=False)
    review.go(1)  # c1-t2
    content = review.widget.content.value
    assert "conversation so far" in content and "&lt;b&gt;My orders&lt;/b&gt;" in content
    assert content.index("conversation so far") < content.index("output")
    assert "<b>messages</b>" not in content  # the history is not repeated as an input value


def test_conversation_html_labels_roles_and_escapes():
    html = str(conversation_html(json.dumps([{"role": "user", "content": "<script>x</script>"},
                                             {"role": "assistant", "content": "ok"}])))  # fmt: skip
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert html.index("wb-turn-user") < html.index("wb-turn-assistant")
    assert "unreadable history" in str(conversation_html("{nope"))


def test_report_on_a_real_run(run):
    result, _ = run
    report = wb.conversation_report(result, scorer="contains")
    summary = report.summary.set_index("variant")
    # "single" never sees the history: it answers "I do not know" everywhere, and fails every turn.
    assert summary.loc["single", "all_pass"] == 0 and summary.loc["single", "conversations"] == 2
    first = report.conversations.set_index(["variant", "conversation"])["first_failing_turn"]
    assert first.loc[("single", "c1")] == 1 and first.loc[("single", "c2")] == 1


def test_a_run_reopened_from_mlflow_keeps_its_conversations(tracking_uri):
    def reply(body: dict) -> str:  # right on first turns; on later turns right only with the history
        return "the seller; no; 2%" if len(body["messages"]) > 2 else "30 days, weekly"

    with FakeOpenAIServer(reply=reply) as server:
        dataset = wb.Dataset.load(DATA, expected=["reference"])
        exp = wb.Experiment(name="conv-logged", variants=_variants(server.base_url), dataset=dataset, models=[MODEL],
                            scorers=[wb.Contains(expected="reference")])  # fmt: skip
        live = exp.run(tracking_uri=tracking_uri, progress=False)
    old = wb.load_run(live.run_id, tracking_uri=tracking_uri)
    assert [v.history for v in old.experiment.variants] == [None, "messages"]
    assert "wb-turn-assistant" in old.side_by_side().to_html()
    with pytest.raises(wb.UsageError, match=r"column 'conversation_id'.*pass dataset=wb.Dataset.load"):
        wb.conversation_report(old, scorer="contains")
    again = wb.conversation_report(old, scorer="contains", dataset=dataset)
    expected = wb.conversation_report(live, scorer="contains")
    pd.testing.assert_frame_equal(again.summary, expected.summary)
    summary = again.summary.set_index("variant")
    assert summary.loc["chat", "all_pass"] == 2 and summary.loc["single", "all_pass"] == 0
    assert again.conversations.groupby("variant")["first_failing_turn"].max().to_dict()["single"] == 2


# -- conversation report on a hand-made result ----------------------------------------------


def _cases(scores: dict[str, dict[tuple[str, int], float]], errors: set[tuple[str, str, int]] = frozenset()):
    rows = []
    for variant, by_turn in scores.items():
        for (conversation, turn), score in by_turn.items():
            rows.append(
                {
                    "case_id": f"{conversation}-t{turn}",
                    "variant": variant,
                    "model": "m",
                    "repeat": 0,
                    "input.conversation_id": conversation,
                    "expected.turn": turn,
                    "error": "Timeout: slow" if (variant, conversation, turn) in errors else None,
                    "score.ok": math.nan if (variant, conversation, turn) in errors else score,
                }
            )
    return pd.DataFrame(rows)


def test_report_counts_all_pass_first_failing_turn_and_rate_by_turn():
    base = {("a", 1): 1, ("a", 2): 1, ("a", 3): 1, ("b", 1): 1, ("b", 2): 0, ("b", 3): 0, ("c", 1): 0, ("c", 2): 1}
    cand = {("a", 1): 1, ("a", 2): 1, ("a", 3): 1, ("b", 1): 1, ("b", 2): 1, ("b", 3): 1, ("c", 1): 1, ("c", 2): 1}
    cases = _cases({"base": base, "cand": cand}, errors={("cand", "c", 2)})
    report = wb.conversation_report(cases, scorer="ok", threshold=0.5)
    conv = report.conversations.set_index(["variant", "conversation"])
    assert conv.loc[("base", "a"), "all_turns_pass"] == 1.0 and pd.isna(conv.loc[("base", "a"), "first_failing_turn"])
    assert conv.loc[("base", "b"), "first_failing_turn"] == 2 and conv.loc[("base", "b"), "passed_turns"] == 1
    assert conv.loc[("base", "c"), "first_failing_turn"] == 1
    assert conv.loc[("cand", "c"), "first_failing_turn"] == 2  # a failed call fails its turn
    summary = report.summary.set_index("variant")
    assert summary.loc["base", "all_pass"] == 1 and summary.loc["base", "conversations"] == 3
    assert summary.loc["cand", "all_pass"] == 2
    assert summary.loc["base", "all_pass_rate"] == pytest.approx(1 / 3)
    assert summary.loc["base", "ci_low"] < 1 / 3 < summary.loc["base", "ci_high"]
    assert summary.loc["base", "median_first_failing_turn"] == 1.5
    by_turn = report.by_turn.set_index(["variant", "turn"])
    assert by_turn.loc[("base", 2), "n"] == 3 and by_turn.loc[("base", 2), "passed"] == 2
    assert by_turn.loc[("base", 3), "pass_rate"] == 0.5
    assert by_turn.loc[("cand", 2), "n"] == 3 and by_turn.loc[("cand", 2), "pass_rate"] == pytest.approx(2 / 3)
    assert "every turn passes" in report._repr_html_()


def test_an_unscored_turn_without_a_failure_leaves_the_conversation_undecided():
    cases = _cases({"v": {("a", 1): 1, ("a", 2): math.nan, ("b", 1): 0, ("b", 2): math.nan}})
    report = wb.conversation_report(cases, scorer="ok", by="conversation_id", turn="turn")
    conv = report.conversations.set_index("conversation")
    assert math.isnan(conv.loc["a", "all_turns_pass"])
    assert conv.loc["b", "all_turns_pass"] == 0.0  # a failure decides, whatever comes after
    assert report.summary.loc[0, "undecided"] == 1
    assert report.by_turn["turn"].tolist() == [1]  # no turn 2 was scored


def test_conversation_level_comparison_pairs_conversations_with_mcnemar():
    # 12 conversations of 2 turns: the candidate fixes the second turn of 8, breaks none.
    base, cand = {}, {}
    for i in range(12):
        base[(f"k{i}", 1)] = cand[(f"k{i}", 1)] = 1
        base[(f"k{i}", 2)] = 0 if i < 8 else 1
        cand[(f"k{i}", 2)] = 1
    report = wb.conversation_report(_cases({"base": base, "cand": cand}), scorer="ok")
    comparison = report.compare("base", "cand")
    assert comparison.scorers == ["all_turns_pass"]
    row = comparison["all_turns_pass"]
    assert row.n_cases == 12 and row.n_fixed == 8 and row.n_regressed == 0
    assert row.diff == pytest.approx(8 / 12)
    assert row.p_value == pytest.approx(2 * 0.5**8)  # exact McNemar, 8 discordant pairs all one way
    assert "McNemar" in row.test


def test_report_names_missing_columns_and_scorers():
    cases = _cases({"v": {("a", 1): 1}})
    with pytest.raises(wb.UsageError, match=r"have a column 'conv'; name the conversation / turn columns"):
        wb.conversation_report(cases, scorer="ok", by="conv")
    with pytest.raises(wb.UsageError, match=r"no scorer 'nope'"):
        wb.conversation_report(cases, scorer="nope")


# -- the embedded local model ---------------------------------------------------------------


@pytest.mark.local_model
def test_local_model_answers_a_conversation_turn_by_turn():
    dataset = wb.Dataset.load(DATA, expected=["reference"]).head(3)
    variant = wb.PromptVariant(name="chat", system="Answer in one short sentence.", prompt="{{ question }}",
                               history="messages", params={"temperature": 0, "max_tokens": 16})  # fmt: skip
    model, scorer = "local/smollm2-135m-instruct", wb.Contains(expected="reference")
    exp = wb.Experiment(name="conv-local", variants=[variant], dataset=dataset, models=[model], scorers=[scorer])
    result = exp.run(log_to_mlflow=False, progress=False)
    assert result.cases["error"].isna().all()
    assert (result.cases["output"].str.len() > 0).all()
    report = wb.conversation_report(result, scorer="contains")
    assert report.conversations["turns"].tolist() == [2, 1]  # c1: turns 1-2, c2: turn 1


def test_a_history_read_back_from_parquet_is_redacted_before_it_leaves():
    # pandas hands out a list cell read from Arrow as a numpy array of dicts: the MLflow writer's
    # redaction must reach into it like into a list.
    secret = "sk-fake-HISTORY-LEAK-123456789"
    wb.REDACTOR.learn({"api_key": secret})
    cell = np.array([{"role": "user", "content": f"my key is {secret}"}, {"role": "assistant", "content": "ok"}])
    frame = pd.DataFrame({"input.messages": [cell], "n": [1]})
    out = wb.REDACTOR.frame(frame)
    assert secret not in json.dumps(out["input.messages"].iloc[0])
    assert out["input.messages"].iloc[0][1] == {"role": "assistant", "content": "ok"}
    assert secret in frame["input.messages"].iloc[0][0]["content"]  # the caller's frame is left alone


def test_validation_lists_ten_bad_histories_and_counts_the_rest():
    bad = [{"role": "user", "content": "unanswered"}]
    dataset = wb.Dataset.from_records([{"id": f"r{i}", "question": "q", "messages": bad} for i in range(13)])
    with pytest.raises(wb.DatasetError) as info:
        dataset.validate([chat_variant()])
    lines = str(info.value).splitlines()
    assert len(lines) == 11 and lines[-1] == "... and 3 more problem(s)"
    assert lines[9].startswith("dataset <records> row 10 (id 'r9') column 'messages' ends with a user turn")
