import json

import pandas as pd
import pytest
from conftest import ROOT

from workbench import Dataset, DatasetError, PromptVariant

ROWS = [
    {"id": "007", "review": "Great, works", "label": "positive"},
    {"id": "008", "review": "Meh, broke", "label": "negative"},
]


@pytest.fixture
def variant():
    return PromptVariant(name="few_shot", prompt="{{ review }}")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_load_each_format_gives_same_cases_and_hash(tmp_path, suffix):
    frame = pd.DataFrame(ROWS)
    path = tmp_path / f"d{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in ROWS))
    else:
        frame.to_parquet(path)
    ds = Dataset.load(path, expected=["label"])
    cases = list(ds.cases())
    assert [c.id for c in cases] == ["007", "008"]  # CSV ids keep leading zeros
    assert cases[0].inputs == {"review": "Great, works"}
    assert cases[0].expectations == {"label": "positive"}
    assert ds.content_hash == Dataset(frame, expected=["label"]).content_hash


def test_hash_changes_when_a_cell_changes():
    a = Dataset(pd.DataFrame(ROWS), expected=["label"])
    rows = [dict(r) for r in ROWS]
    rows[1]["label"] = "positive"
    assert a.content_hash != Dataset(pd.DataFrame(rows), expected=["label"]).content_hash


def test_missing_column_names_file_column_and_variant(tmp_path):
    path = tmp_path / "x.csv"
    pd.DataFrame([{"id": "1", "text": "hi", "label": "positive"}]).to_csv(path, index=False)
    ds = Dataset.load(path, expected=["label"])
    with pytest.raises(DatasetError) as info:
        ds.validate([PromptVariant(name="few_shot", prompt="{{ review }}")])
    message = str(info.value)
    assert str(path) in message and "'review'" in message and "'few_shot'" in message


def test_empty_cell_names_file_row_line_and_id(tmp_path, variant):
    path = tmp_path / "x.csv"
    path.write_text("id,review,label\na,fine,positive\nb,,negative\n")
    ds = Dataset.load(path, expected=["label"])
    with pytest.raises(DatasetError, match=r"x\.csv row 2 \(line 3\) \(id 'b'\) has no value in column 'review'"):
        ds.validate([variant])


def test_duplicate_and_empty_ids_are_rejected(tmp_path):
    with pytest.raises(DatasetError, match="repeats id 'a'"):
        Dataset(pd.DataFrame([{"id": "a", "x": 1}, {"id": "a", "x": 2}]))
    with pytest.raises(DatasetError, match="empty id"):
        Dataset(pd.DataFrame([{"id": None, "x": 1}]))


def test_missing_expected_column_and_bad_extension(tmp_path):
    with pytest.raises(DatasetError, match="no expected-value column 'label'"):
        Dataset(pd.DataFrame(ROWS).drop(columns="label"), expected=["label"])
    with pytest.raises(DatasetError, match="unsupported extension '.xlsx'"):
        Dataset.load(tmp_path / "x.xlsx")


def test_template_may_not_show_the_expected_answer():
    ds = Dataset(pd.DataFrame(ROWS), expected=["label"])
    with pytest.raises(DatasetError, match="expected-value column 'label'"):
        ds.validate([PromptVariant(name="leaky", prompt="{{ review }} is {{ label }}")])


def test_head_and_sample_are_reproducible():
    ds = Dataset(pd.DataFrame([{"id": str(i), "x": i} for i in range(50)]))
    assert list(ds.head(3).frame["id"]) == ["0", "1", "2"]
    assert list(ds.sample(5, seed=1).frame["id"]) == list(ds.sample(5, seed=1).frame["id"])
    assert len(ds.sample(100)) == 50


def test_a_relative_path_is_found_from_the_notebooks_folder_too(monkeypatch):
    """JupyterLab starts a notebook's kernel in its own folder: `data/...` still resolves (issue 19)."""
    monkeypatch.chdir(ROOT / "notebooks")
    dataset = Dataset.load("data/sentiment.csv", expected=["label"])
    assert len(dataset) == 160
    with pytest.raises(
        DatasetError, match=r"'data/nope.csv' does not exist: looked in the working directory .*notebooks"
    ):
        Dataset.load("data/nope.csv")


# -- streamed from the file ----------------------------------------------------------------------
MIXED = [  # JSONL whose dtypes only the whole file decides: chunks of 3 rows see different ones
    {"id": 1, "text": "a", "n": 1, "flag": True, "label": "positive"},
    {"id": 2, "text": "b", "n": 2, "flag": False, "label": "negative"},
    {"id": 3, "text": "c", "n": 3, "flag": True, "label": "positive"},
    {"id": 4, "text": "d", "n": None, "flag": None, "label": "negative", "late": "x"},
    {"id": 5, "text": "e", "n": 2.5, "label": "positive"},
    {"id": 6, "text": "f", "n": 6, "flag": False, "label": None},
    {"id": 7, "text": "g", "n": 7, "flag": True, "label": "positive", "late": "y"},
]


def write(path, rows):
    if path.suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    elif path.suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        pd.DataFrame(rows).astype({"n": "float64"}).to_parquet(path)
    return path


def old_hash(frame, expected):
    """The hash as it was computed before datasets could stream: the whole frame's JSON at once."""
    import hashlib

    body = frame.to_json(orient="split", index=False, date_format="iso")
    return hashlib.sha256(f"id|{','.join(expected)}|{body}".encode()).hexdigest()[:12]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_a_streamed_file_gives_what_the_file_read_whole_gives(tmp_path, monkeypatch, suffix):
    monkeypatch.setattr("workbench.core.dataset_files.CHUNK_ROWS", 3)
    path = write(tmp_path / f"d{suffix}", MIXED)
    streamed = Dataset.load(path, expected=["label"])
    whole = Dataset.load(path, expected=["label"], stream=False)
    assert "streamed" in repr(streamed) and "in memory" in repr(whole)
    assert len(streamed) == len(whole) == 7 and list(streamed.ids()) == [str(i) for i in range(1, 8)]
    assert [repr(c) for c in streamed.cases()] == [repr(c) for c in whole.cases()]
    assert streamed.content_hash == whole.content_hash == old_hash(whole.frame, ["label"])
    assert streamed.arrow_types() == whole.arrow_types()
    pd.testing.assert_frame_equal(streamed.head(4).frame, whole.head(4).frame)
    pd.testing.assert_frame_equal(streamed.frame, whole.frame)
    if suffix == ".jsonl":  # the whole file is read as pandas reads it (ints with a gap become floats)
        old = pd.DataFrame.from_records(MIXED).assign(id=lambda f: f["id"].astype(str))
        pd.testing.assert_frame_equal(whole.frame, old)
        assert whole.frame["n"].dtype == "float64" and whole.frame["flag"].dtype == object


def test_a_streamed_file_is_checked_row_by_row_across_chunks(tmp_path, monkeypatch, variant):
    monkeypatch.setattr("workbench.core.dataset_files.CHUNK_ROWS", 4)
    rows = [{"id": f"r{i}", "review": "" if i % 2 else "fine", "label": "positive"} for i in range(30)]
    path = write(tmp_path / "x.csv", rows)
    ds = Dataset.load(path, expected=["label"])
    with pytest.raises(DatasetError) as info:
        ds.validate([variant])
    lines = str(info.value).splitlines()
    assert lines[0].startswith(f"dataset {path} row 2 (line 3) (id 'r1') has no value in column 'review'")
    assert lines[9].startswith(f"dataset {path} row 20 (line 21) (id 'r19')")
    assert lines[10] == "... and 5 more problem(s)"
    path.write_text("id,review\na,x\nb,y\nc,z\nd,w\nb,v\n")
    with pytest.raises(DatasetError, match=r"x\.csv row 5 \(line 6\) repeats id 'b'"):
        Dataset.load(path)
    path.write_text("id,review\na,x\nb,y\nc,z\nd,w\n,v\n")
    with pytest.raises(DatasetError, match=r"x\.csv row 5 \(line 6\) has an empty id"):
        Dataset.load(path)


def test_a_file_changed_after_loading_is_not_read_half_new(tmp_path):
    path = write(tmp_path / "x.csv", ROWS)
    ds = Dataset.load(path, expected=["label"])
    path.write_text(path.read_text() + "009,Late addition,positive\n")
    with pytest.raises(DatasetError, match="changed or went away since it was loaded"):
        list(ds.cases())


def test_a_column_of_mixed_types_is_refused_before_any_call(tmp_path, fake_llm, fake_key):
    import workbench as wb

    path = tmp_path / "mixed.jsonl"
    path.write_text('{"id": "a", "x": 1}\n{"id": "b", "x": "two"}\n')
    exp = wb.Experiment(
        name="mixed",
        variants=[PromptVariant(name="v", prompt="{{ x }}")],
        dataset=Dataset.load(path),
        models=["openai/gpt-4o-mini"],
    )
    with pytest.raises(DatasetError, match=r"mixed\.jsonl column 'x' mixes values of different types"):
        exp.run(log_to_mlflow=False, progress=False, acompletion=fake_llm)
    assert fake_llm.calls == []
