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
