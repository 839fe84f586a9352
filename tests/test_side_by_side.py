import pytest
from conftest import FakeLLM

import workbench as wb
from workbench.views.side_by_side import word_diff_html


@pytest.fixture
def result(fake_key, variants, reviews, label_match):
    # zero_shot always answers "positive"; few_shot reads keywords ("Not bad at all" -> negative).
    def reply(model, messages):
        if len(messages) == 1:
            return "positive"
        text = messages[-1]["content"].lower()
        return "negative" if any(w in text for w in ("broke", "awful", "bad", "never")) else "positive"

    exp = wb.Experiment(
        name="sbs", variants=variants, dataset=reviews, models=["openai/gpt-4o-mini"], scorers=[label_match]
    )
    return exp.run(log_to_mlflow=False, progress=False, cache=False, acompletion=FakeLLM(reply))


def test_word_diff_marks_only_changed_words():
    out = word_diff_html("the cat sat on the mat", "the dog sat on the <mat>")
    assert "line-through" in out and ">cat</span>" in out  # dropped word struck
    assert ">dog</span>" in out
    assert "&lt;mat&gt;" in out and "<mat>" not in out  # escaped
    assert word_diff_html("same words", "same words") == "same words"


def test_side_by_side_rows_and_filters(result):
    table = result.side_by_side()
    frame = table.to_frame()
    assert len(frame) == 6 and table.variants == ["zero_shot", "few_shot"]
    assert list(frame["case_id"]) == ["a", "b", "c", "d", "e", "f"]
    row_b = frame.set_index("case_id").loc["b"]
    assert row_b["zero_shot:output"] == "positive" and row_b["few_shot:output"] == "negative"
    assert row_b["zero_shot:score"] == 0 and row_b["few_shot:score"] == 1
    # zero_shot is wrong on b, c, f; few_shot is wrong on e only: they disagree on b, c, e, f.
    assert list(result.side_by_side(only="disagreements").to_frame()["case_id"]) == ["b", "c", "e", "f"]
    assert list(result.side_by_side(only="failures").to_frame()["case_id"]) == ["b", "c", "e", "f"]
    assert list(result.side_by_side(["few_shot"], only="failures").to_frame()["case_id"]) == ["e"]
    limited = result.side_by_side(limit=2)
    assert len(limited) == 2 and limited.total == 6 and "limit=None" in limited.to_html()


def test_side_by_side_html_is_static_and_diffed(result):
    page = result.side_by_side(only="disagreements")._repr_html_()
    assert "<script" not in page and 'class="wb-side-by-side"' in page
    assert "(diff vs zero_shot)" in page
    assert "✓ pass" in page and "✗ fail" in page
    assert page.count("<tr>") == 1 + 4  # header + 4 disagreements
    assert "Broke after two days." in page


def test_side_by_side_bad_arguments(result):
    with pytest.raises(ValueError, match="no variant.*'nope'.*zero_shot"):
        result.side_by_side(["zero_shot", "nope"])
    with pytest.raises(ValueError, match="only must be"):
        result.side_by_side(only="wrong")
    with pytest.raises(ValueError, match="no scorer 'bleu'"):
        result.side_by_side(scorer="bleu")
