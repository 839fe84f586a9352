import json

import pandas as pd
import pytest
from conftest import FakeLLM

import workbench as wb
from workbench.core.labels import LabelStore, output_hash


@pytest.fixture
def result(fake_key, variants, reviews, label_match, tracking_uri):
    exp = wb.Experiment(
        name="review-unit", variants=variants, dataset=reviews, models=["openai/gpt-4o-mini"], scorers=[label_match]
    )
    return exp.run(tracking_uri=tracking_uri, progress=False, cache=False, acompletion=FakeLLM())


def test_labels_are_saved_on_click_keyed_by_case_version_output(result, tmp_path):
    path = tmp_path / "labels.jsonl"
    rv = wb.review(result, variants=["few_shot"], labels_path=path, log_to_mlflow=False)
    assert len(rv) == 6 and rv.current.case_id == "a"
    rv.label("up", comment="fine")
    # Saved before label() returned, one line per click, and we moved on.
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 1 and rv.current.case_id == "b"
    first = lines[0]
    few = result.cases[(result.cases["variant"] == "few_shot") & (result.cases["case_id"] == "a")].iloc[0]
    assert first["case_id"] == "a" and first["label"] == "up" and first["comment"] == "fine"
    assert first["variant_version"] == few["variant_version"]
    assert first["output_hash"] == output_hash(few["output"])
    rv.label("down")
    rv.previous()
    rv.label("down", advance=False)  # relabel "b": the latest click wins
    assert len(path.read_text().splitlines()) == 3
    labels = rv.labels.set_index("case_id")["label"].to_dict()
    assert labels == {"a": "up", "b": "down"}
    # A fresh session (a new kernel) sees the labels already given.
    again = wb.review(result, variants=["few_shot"], labels_path=path, only="unlabelled", log_to_mlflow=False)
    assert [i.case_id for i in again.items] == ["c", "d", "e", "f"]


def test_a_new_output_needs_a_new_label(result, tmp_path):
    path = tmp_path / "labels.jsonl"
    rv = wb.review(result, variants=["few_shot"], labels_path=path, log_to_mlflow=False)
    rv.label("up")
    item = rv.items[0]
    changed = type(item)(**{**item.__dict__, "output": item.output + " (edited)"})
    assert rv.label_of(item)["label"] == "up"
    assert rv.label_of(changed) is None


def test_torn_last_line_is_skipped(tmp_path, result):
    path = tmp_path / "labels.jsonl"
    rv = wb.review(result, labels_path=path, log_to_mlflow=False)
    rv.label("up")
    with path.open("a") as handle:
        handle.write('{"case_id": "b", "varia')  # the kernel died mid-write
    with pytest.warns(UserWarning, match="line 2 is not valid JSON"):
        assert len(LabelStore(path).records()) == 1


def test_labels_logged_to_mlflow_parent_run(result, tmp_path):
    from mlflow.tracking import MlflowClient

    rv = wb.review(result, labels_path=tmp_path / "labels.jsonl")
    rv.label("down", comment="wrong")
    assert "logged to MLflow" in rv.status
    client = MlflowClient(tracking_uri=result.tracking_uri)
    local = client.download_artifacts(result.run_id, "review/labels.json", str(tmp_path))
    table = pd.read_json(local, orient="split")
    assert list(table["label"]) == ["down"] and list(table["comment"]) == ["wrong"]
    rv.label("up")  # the table is rewritten, not appended to
    local = client.download_artifacts(result.run_id, "review/labels.json", str(tmp_path))
    assert list(pd.read_json(local, orient="split")["label"]) == ["down", "up"]
    logged = json.loads(client.get_run(result.run_id).data.tags["mlflow.loggedArtifacts"])
    assert logged.count({"path": "review/labels.json", "type": "table"}) == 1  # shown as a table in the UI


def test_failures_filter_and_golden_set_append(result, tmp_path):
    labels = tmp_path / "labels.jsonl"
    # FakeLLM reads "Not bad at all" (case e, positive) as negative: few_shot's only failure.
    rv = wb.review(result, variants=["few_shot"], only="failures", labels_path=labels, log_to_mlflow=False)
    assert [i.case_id for i in rv.items] == ["e"]
    rv.label("down", comment="negation")
    golden = tmp_path / "regressions.csv"
    added = rv.add_to_golden_set(golden)
    assert list(added["id"]) == ["e"]
    on_disk = pd.read_csv(golden, dtype=str)
    assert on_disk.to_dict(orient="records") == [
        {"id": "e", "review": "Not bad at all, would buy again.", "label": "positive"}
    ]
    assert rv.add_to_golden_set(golden).empty  # already there: not appended twice
    # The appended file is a valid dataset for the next experiment.
    assert len(wb.Dataset.load(golden, expected=["label"])) == 1
    jsonl = rv.add_to_golden_set(tmp_path / "reg.jsonl", corrections={"e": {"label": "neutral"}})
    assert json.loads((tmp_path / "reg.jsonl").read_text())["label"] == "neutral" and len(jsonl) == 1


def test_widget_state_follows_clicks(result, tmp_path):
    path = tmp_path / "labels.jsonl"
    rv = wb.review(result, variants=["zero_shot"], labels_path=path, log_to_mlflow=False)
    w = rv.widget
    assert "1 / 6" in w.position.value and w.prev.disabled and not w.next.disabled
    assert "Great kettle" in w.content.value
    w.comment.value = "good answer"
    w.up.click()
    assert json.loads(path.read_text())["comment"] == "good answer"
    assert "2 / 6" in w.position.value and w.comment.value == "" and "1 labelled" in w.position.value
    w.prev.click()
    assert "already labelled 👍" in w.content.value
    w.next.click()
    w.next.click()
    assert rv.index == 2
    for cls in ("wb-review-up", "wb-review-down", "wb-review-prev", "wb-review-next", "wb-review-comment"):
        assert any(cls in x._dom_classes for x in (w.up, w.down, w.prev, w.next, w.comment)), cls


def test_bad_review_arguments(result, tmp_path):
    with pytest.raises(ValueError, match="no variant.*'nope'"):
        wb.review(result, variants=["nope"])
    rv = wb.review(result, labels_path=tmp_path / "l.jsonl", log_to_mlflow=False)
    with pytest.raises(ValueError, match="label must be one of"):
        rv.label("meh")
    with pytest.raises(ValueError, match=r"\.csv or \.jsonl"):
        rv.add_to_golden_set(tmp_path / "x.parquet")


def test_golden_set_append_after_a_file_without_final_newline(result, tmp_path):
    golden = tmp_path / "g.csv"
    golden.write_text("id,review,label\nx1,old one,positive")  # hand-edited, no final newline
    rv = wb.review(
        result, variants=["few_shot"], only="failures", labels_path=tmp_path / "l.jsonl", log_to_mlflow=False
    )
    rv.label("down")
    rv.add_to_golden_set(golden)
    rows = pd.read_csv(golden, dtype=str).to_dict(orient="records")
    assert rows == [
        {"id": "x1", "review": "old one", "label": "positive"},
        {"id": "e", "review": "Not bad at all, would buy again.", "label": "positive"},
    ]


def test_mlflow_label_table_covers_the_whole_result_not_only_this_review(result, tmp_path):
    from mlflow.tracking import MlflowClient

    labels = tmp_path / "labels.jsonl"
    wb.review(result, variants=["zero_shot"], labels_path=labels).label("up")
    wb.review(result, variants=["few_shot"], labels_path=labels).label("down")
    local = MlflowClient(tracking_uri=result.tracking_uri).download_artifacts(
        result.run_id, "review/labels.json", str(tmp_path)
    )
    table = pd.read_json(local, orient="split")
    assert sorted(table["variant"]) == ["few_shot", "zero_shot"]


def test_a_comment_typed_then_next_stays_with_its_case(result, tmp_path):
    """It used to stay in the box and be saved against the next case on 👍 (issue 19, item 5)."""
    path = tmp_path / "labels.jsonl"
    rv = wb.review(result, variants=["zero_shot"], labels_path=path, log_to_mlflow=False)
    w = rv.widget
    w.comment.value = "typed for a, not saved"
    w.next.click()
    assert rv.current.case_id == "b" and w.comment.value == ""
    w.up.click()
    assert json.loads(path.read_text())["case_id"] == "b" and json.loads(path.read_text())["comment"] == ""
    w.prev.click()
    w.prev.click()
    assert rv.current.case_id == "a" and w.comment.value == "typed for a, not saved"  # the draft came back
    w.down.click()
    saved = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["case_id"], r["comment"]) for r in saved] == [("b", ""), ("a", "typed for a, not saved")]


def test_a_labelled_case_shows_its_saved_comment_in_the_box_to_edit(result, tmp_path):
    path = tmp_path / "labels.jsonl"
    rv = wb.review(result, variants=["zero_shot"], labels_path=path, log_to_mlflow=False)
    w = rv.widget
    w.comment.value = "good answer"
    w.up.click()
    assert w.comment.value == ""  # case b has no comment
    w.prev.click()
    assert w.comment.value == "good answer"
    w.comment.value = "good answer, a bit terse"
    w.up.click()
    assert rv.labels.set_index("case_id").loc["a", "comment"] == "good answer, a bit terse"
    # A new kernel: the saved comment is in the box, not only in the small print.
    again = wb.review(result, variants=["zero_shot"], labels_path=path, log_to_mlflow=False)
    assert again.widget.comment.value == "good answer, a bit terse"


def test_after_the_last_case_the_widget_says_what_was_labelled_and_skipped(result, tmp_path):
    rv = wb.review(result, variants=["few_shot"], labels_path=tmp_path / "labels.jsonl", log_to_mlflow=False)
    w = rv.widget
    assert [i.case_id for i in rv.items] == ["a", "b", "c", "d", "e", "f"]
    w.up.click()  # a, then on to b
    w.next.click()  # skip b
    w.next.click()  # skip c
    w.down.click()  # d
    w.down.click()  # e
    assert rv.current.case_id == "f" and w.done.value == "" and not rv.finished
    w.up.click()  # the last one
    assert rv.finished and [i.case_id for i in rv.skipped] == ["b", "c"]
    assert "Done: 4 of 6 outputs labelled (2 👍, 2 👎). Skipped 2: cases b, c." in w.done.value
    w.prev.click()  # the message stays while going back to the skipped ones
    assert "Skipped 2" in w.done.value
    rv.go(1)
    w.up.click()
    rv.go(2)
    w.up.click()
    assert rv.skipped == [] and "Done: 6 of 6 outputs labelled (4 👍, 2 👎)." in w.done.value
    assert "Skipped" not in w.done.value


def test_label_timestamps_are_utc_datetimes(result, tmp_path):
    rv = wb.review(result, variants=["few_shot"], labels_path=tmp_path / "labels.jsonl", log_to_mlflow=False)
    before = pd.Timestamp.now(tz="UTC")
    rv.label("up")
    ts = rv.labels["ts"]
    assert isinstance(ts.dtype, pd.DatetimeTZDtype) and str(ts.dtype.tz) == "UTC"
    assert before - pd.Timedelta(seconds=5) <= ts.iloc[0] <= pd.Timestamp.now(tz="UTC")
    assert isinstance(wb.review(result, labels_path=tmp_path / "none.jsonl").labels["ts"].dtype, pd.DatetimeTZDtype)
