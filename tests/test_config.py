import textwrap

import pytest
from conftest import ROOT

import workbench as wb


def write(tmp_path, body, name="exp.yaml"):
    (tmp_path / "d.csv").write_text("id,review,label\n1,good,positive\n2,bad,negative\n")
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


GOOD = """
name: t
dataset: {path: d.csv, expected: [label]}
variants:
  - name: a
    prompt: "Review: {{ review }}"
scorers:
  - {type: label_match, labels: [positive, negative], expected: label}
"""


def test_shipped_sentiment_experiment_loads():
    exp = wb.load_experiment(ROOT / "experiments" / "sentiment.yaml")
    assert [v.name for v in exp.variants] == ["zero_shot", "few_shot"]
    assert exp.models == ["local/gemma-3-270m"] and len(exp.dataset) >= 150
    exp.dataset.validate(exp.variants)
    labels = exp.dataset.frame["label"].value_counts()
    assert labels["positive"] == labels["negative"]  # balanced golden set


def test_relative_dataset_path_is_relative_to_the_yaml_file(tmp_path, monkeypatch):
    path = write(tmp_path, GOOD)
    monkeypatch.chdir("/")
    exp = wb.load_experiment(path)
    assert len(exp.dataset) == 2 and exp.dataset.source == str(tmp_path / "d.csv")
    assert exp.models == [wb.DEFAULT_LOCAL_MODEL]


def test_typo_key_names_file_and_key(tmp_path):
    path = write(tmp_path, GOOD.replace("prompt:", "promt:"))
    with pytest.raises(wb.ConfigError) as info:
        wb.load_experiment(path)
    message = str(info.value)
    assert str(path) in message
    assert "key 'variants[0].promt': unknown key" in message
    assert "key 'variants[0].prompt': required but missing" in message


def test_bad_values_and_unknown_scorer(tmp_path):
    with pytest.raises(wb.ConfigError, match=r"key 'repeats'.*greater than or equal to 1"):
        wb.load_experiment(write(tmp_path, GOOD + "repeats: 0\n"))
    with pytest.raises(wb.ScorerError, match=r"exp\.yaml key 'scorers\[1\]': unknown scorer type 'bleu'"):
        wb.load_experiment(write(tmp_path, GOOD + "  - {type: bleu}\n"))


def test_invalid_yaml_and_missing_dataset(tmp_path):
    with pytest.raises(wb.ConfigError, match="not valid YAML"):
        wb.load_experiment(write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(wb.DatasetError, match="does not exist"):
        wb.load_experiment(write(tmp_path, GOOD.replace("d.csv", "nope.csv")))
    with pytest.raises(wb.ConfigError, match="does not exist"):
        wb.load_experiment(tmp_path / "missing.yaml")
