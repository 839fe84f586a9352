import difflib
import html
import json
import re
from typing import Any

import pytest
import yaml
from conftest import FakeLLM
from mlflow.tracking import MlflowClient

import workbench as wb
from workbench.notebook.playground import PREVIOUS


@pytest.fixture
def experiment(variants, reviews, label_match):
    return wb.Experiment(
        name="pg-unit", variants=variants, dataset=reviews, models=["openai/gpt-4o-mini"], scorers=[label_match]
    )


@pytest.fixture
def pg(fake_key, experiment):
    return wb.playground(experiment, acompletion=FakeLLM(), n=4)


def test_each_edit_is_a_new_version_and_no_op_edits_are_not(pg):
    first = pg.current
    assert pg.selected == "few_shot" and pg.against is None and pg.compare_to == "zero_shot"
    same = pg.edit(prompt=first.prompt)
    assert same is first and len(pg.versions["few_shot"]) == 1
    second = pg.edit(prompt="Review: {{ review }}\nThe sentiment is:")
    assert second.version != first.version and len(pg.versions["few_shot"]) == 2
    third = pg.edit(temperature=0.7)
    assert third.params["temperature"] == 0.7 and third.prompt == second.prompt
    assert len({v.version for v in pg.versions["few_shot"]}) == 3
    assert pg.revert().version == second.version
    with pytest.raises(ValueError, match="no variant 'nope'"):
        pg.select("nope")


def test_run_shows_the_edit_next_to_the_previous_version_and_reuses_the_cache(fake_key, experiment):
    fake = FakeLLM()
    pg = wb.playground(experiment, acompletion=fake, n=4)
    pg.against = PREVIOUS
    run = pg.run(progress=False)
    assert run.against is None and len(fake.calls) == 4  # nothing to compare with yet
    assert "4 calls, all new" in run.status and "label_match" in run.status
    pg.edit(prompt="Product review: {{ review }}\nSentiment:")
    run = pg.run(progress=False)
    # Only the edited version is called: the previous one comes from the cache.
    assert len(fake.calls) == 8 and "8 calls: 4 new, 4 from cache" in run.status
    assert run.table.variants[0].startswith("few_shot@") and run.table.variants[1] != run.table.variants[0]
    assert run.table.variants[1] == f"few_shot@{pg.current.version[:7]}"  # the baseline first, the edit diffed
    assert len(run.table) == 4 and "Product review" in run.result.cases["prompt"].iloc[-1]
    again = pg.run(progress=False)  # nothing changed: free
    assert len(fake.calls) == 8 and again.result.calls_made == 0
    assert "8 calls, all from cache" in again.status and "p50" not in again.status


def test_samples_first_random_ids_and_failed_last_time(pg):
    assert list(pg.sample().frame["id"]) == ["a", "b", "c", "d"]
    pg.sample_mode, pg.n = "random", 3
    assert len(pg.sample()) == 3
    pg.sample_mode, pg.ids = "ids", ["f", "b"]
    assert list(pg.sample().frame["id"]) == ["b", "f"]
    pg.ids = ["b", "zz"]
    with pytest.raises(ValueError, match=r"no case\(s\) \['zz'\]"):
        pg.sample()
    pg.sample_mode = "failed"
    with pytest.raises(ValueError, match="has not been run yet"):
        pg.sample()
    pg.sample_mode, pg.n = "first", 6
    pg.run(progress=False)
    # FakeLLM reads "Not bad at all" (case e) as negative: the only failure.
    assert pg.failed["few_shot"] == ["e"]
    pg.sample_mode = "failed"
    assert list(pg.sample().frame["id"]) == ["e"]
    run = pg.run(progress=False)
    assert list(run.table.to_frame()["case_id"]) == ["e"]


def test_save_writes_the_version_back_to_yaml_and_it_loads(pg, tmp_path, tracking_uri):
    # A file-backed experiment, as load_experiment gives.
    data = tmp_path / "data.csv"
    pg.experiment.dataset.frame.to_csv(data, index=False)
    pg.experiment.dataset = wb.Dataset.load(data, expected=["label"])
    target = tmp_path / "experiments" / "pg.yaml"
    pg.edit(prompt="Text: {{ review }}\nSentiment:", max_tokens=3)
    pg.tracking_uri = tracking_uri
    written = pg.save(target)
    saved = wb.load_experiment(written)
    few = next(v for v in saved.variants if v.name == "few_shot")
    assert few.version == pg.current.version and few.params["max_tokens"] == 3
    assert [v.name for v in saved.variants] == ["zero_shot", "few_shot"] and len(saved.dataset) == 6
    assert "logged to MLflow run" in pg.status
    run_id = pg.status.rsplit(" ", 1)[-1]
    logged = MlflowClient(tracking_uri).get_run(run_id)
    assert logged.data.tags["workbench.source"] == "playground"
    assert logged.info.run_name.endswith(" · playground")
    # Saving into an existing file replaces only that variant and keeps the header comment.
    target.write_text("# keep me\n" + target.read_text())
    pg.save(target, as_name="few_shot_v2")
    text = target.read_text()
    assert text.startswith("# keep me\n")
    assert [v["name"] for v in yaml.safe_load(text)["variants"]] == ["zero_shot", "few_shot", "few_shot_v2"]


def test_widget_edits_runs_and_reports_errors(pg):
    w = pg.widget
    assert w.prompt.value == pg.current.prompt and "1 version" in w.version.value
    w.run_button.click()  # nothing edited: no new version
    assert len(pg.versions["few_shot"]) == 1 and len(pg.runs) == 1
    assert "calls" in w.status.value
    w.prompt.value = "Review text: {{ review }}\nSentiment:"
    w.max_tokens.value = 5
    w.run_button.click()
    assert len(pg.versions["few_shot"]) == 2 and pg.current.params["max_tokens"] == 5
    assert "2 versions" in w.version.value
    w.prompt.value = "{{ review"  # a syntax error shows in the status line, the state is unchanged
    w.run_button.click()
    assert "TemplateError" in w.status.value and len(pg.versions["few_shot"]) == 2
    w.revert_button.click()
    assert w.prompt.value == pg.versions["few_shot"][0].prompt
    w.variant.value = "zero_shot"
    assert pg.selected == "zero_shot" and w.prompt.value == pg.current.prompt
    assert json.dumps(pg.current.to_dict())  # still plain data


def test_playground_from_variants_needs_a_dataset(variants):
    with pytest.raises(wb.ConfigError, match="pass the dataset"):
        wb.playground(variants)


def test_save_never_writes_keys_and_a_new_file_keeps_every_variant(fake_key, experiment, tmp_path):
    data = tmp_path / "data.csv"
    experiment.dataset.frame.to_csv(data, index=False)
    experiment.dataset = wb.Dataset.load(data, expected=["label"])
    experiment.variants[0] = wb.PromptVariant(
        name="zero_shot", prompt="Review: {{ review }}\nSentiment:", params={"api_key": "sk-REAL-SECRET-123"}
    )
    pg = wb.playground(experiment, acompletion=FakeLLM(), n=4)
    pg.edit(temperature=0.5)
    target = pg.save(tmp_path / "new.yaml", log_to_mlflow=False)
    text = target.read_text()
    assert "sk-REAL-SECRET-123" not in text and "api_key" not in text
    saved = wb.load_experiment(target)
    assert [v.name for v in saved.variants] == ["zero_shot", "few_shot"]
    assert saved.variants[1].params["temperature"] == 0.5 and saved.repeats == 1
    assert "logged to MLflow" not in pg.status


def test_revert_walks_back_to_the_first_version(pg):
    v1 = pg.current
    v2 = pg.edit(prompt="2: {{ review }}")
    v3 = pg.edit(prompt="3: {{ review }}")
    assert pg.revert().version == v2.version
    assert pg.revert().version == v1.version
    with pytest.raises(ValueError, match="first version"):
        pg.revert()
    assert v3.version in {v.version for v in pg.versions["few_shot"]}


def test_loaded_experiment_remembers_its_absolute_source(monkeypatch):
    from conftest import ROOT

    monkeypatch.chdir(ROOT / "notebooks")
    exp = wb.load_experiment("../experiments/sentiment.yaml")
    assert exp.source == str((ROOT / "experiments" / "sentiment.yaml").resolve())


# -- errors in the widget: one line, and no figures from the run before ------------------------------


class KernelShell:
    """Stands in for IPython inside a kernel, where leaving ``with output_widget:`` with an
    exception prints its traceback into the widget and swallows it."""

    def __init__(self) -> None:
        self.tracebacks: list[Any] = []

    def showtraceback(self, exc_tuple: Any = None, **kwargs: Any) -> None:
        self.tracebacks.append(exc_tuple)


@pytest.fixture
def kernel(monkeypatch):
    shell = KernelShell()
    monkeypatch.setattr("ipywidgets.widgets.widget_output.get_ipython", lambda: shell)
    return shell


def _unknown_id(pg, w, monkeypatch):
    w.mode.value, w.ids.value = "ids", "b, zz"


def _no_id(pg, w, monkeypatch):
    w.mode.value, w.ids.value = "ids", " , "


def _nothing_failed(pg, w, monkeypatch):
    w.mode.value = "failed"  # cases a-d all passed


def _no_api_key(pg, w, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")


def _every_call_fails(pg, w, monkeypatch):
    pg.acompletion = FakeLLM(fail=lambda messages: True)
    w.mode.value, w.ids.value = "ids", "e, f"  # not cached


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (
            _unknown_id,
            r"^UsageError: no case\(s\) \['zz'\] in dataset <records>; its 'id' values are 'a', 'b', 'c', \.\.\.$",
        ),
        (_no_id, r"^UsageError: sample mode 'ids' needs at least one case id"),
        (_nothing_failed, r"^UsageError: nothing failed in the last run of 'few_shot'"),
        (_no_api_key, r"^ModelError: model 'openai/gpt-4o-mini' needs OPENAI_API_KEY"),
        (_every_call_fails, r"^TooManyErrorsError: 4 of 4 calls failed .* APIConnectionError"),
    ],
)
def test_a_failed_run_is_one_line_in_place_of_the_last_runs_figures(pg, kernel, monkeypatch, break_it, expected):
    w = pg.widget
    w.run_button.click()
    assert "8 calls, all new" in w.status.value and len(pg.runs) == 1
    break_it(pg, w, monkeypatch)
    w.run_button.click()
    assert kernel.tracebacks == []  # nothing printed into the widget's output
    line = html.unescape(re.sub(r"<[^>]+>", "", w.status.value))
    assert re.search(expected, line), line
    assert "\n" not in line and "calls:" not in line and "label_match" not in line
    assert pg.status == "" and w.out.outputs == () and len(pg.runs) == 1
    w.variant.value = "zero_shot"  # re-rendering does not bring the old figures back
    assert "calls" not in w.status.value


def test_a_run_with_some_failed_calls_says_so_in_the_status(pg):
    pg.acompletion = FakeLLM(fail=lambda messages: "Broke" in messages[-1]["content"])
    run = pg.run(progress=False)
    assert "2 failed (APIConnectionError: litellm.APIConnectionError: connection dropped)" in run.status


# -- versions, compare to, and the widget following the state ----------------------------------------


def test_compare_to_is_the_previous_version_after_an_edit_unless_chosen(pg):
    w = pg.widget
    first = pg.current
    assert w.against.value == "zero_shot"  # nothing edited yet: the other variant
    w.prompt.value = "Product review: {{ review }}\nSentiment:"
    w.run_button.click()
    assert w.against.value == PREVIOUS and pg.runs[-1].against.version == first.version
    w.variant.value = "zero_shot"  # not edited: compared with the other variant
    assert w.against.value == "few_shot"
    w.variant.value = "few_shot"
    w.against.value = "zero_shot"  # the user's choice sticks across edits
    pg.edit(prompt="Text: {{ review }}\nSentiment:")
    assert pg.against == "zero_shot" and w.against.value == "zero_shot"
    assert pg.run(progress=False).against.name == "zero_shot"


def test_edit_from_code_shows_in_the_widget_and_run_keeps_it(pg):
    w = pg.widget
    pg.edit(prompt="From code: {{ review }}", temperature=0.5, system="Be brief.")
    assert w.prompt.value == "From code: {{ review }}" and w.temperature.value == 0.5
    assert w.system.value == "Be brief." and "2 versions" in w.version.value
    w.run_button.click()
    assert pg.current.prompt == "From code: {{ review }}" and len(pg.versions["few_shot"]) == 2
    pg.select("zero_shot")
    assert w.variant.value == "zero_shot" and w.prompt.value == pg.current.prompt


def test_previous_version_goes_back_without_making_a_version(pg):
    w = pg.widget
    v1 = pg.current
    v2 = pg.edit(prompt="2: {{ review }}")
    pg.edit(prompt="3: {{ review }}")
    w.revert_button.click()
    assert pg.current.version == v2.version and w.prompt.value == v2.prompt
    assert len(pg.versions["few_shot"]) == 3 and "3 versions" in w.version.value
    w.revert_button.click()
    assert pg.current.version == v1.version and len(pg.versions["few_shot"]) == 3
    assert w.revert_button.disabled
    # An edit from an older version is compared with the version it was made from.
    pg.edit(prompt="4: {{ review }}")
    assert pg.run(progress=False).against.version == v1.version
    assert len(pg.versions["few_shot"]) == 4


def test_widget_labels_are_not_cut_off(pg):
    w = pg.widget
    for control in (w.temperature, w.max_tokens, w.model, w.against, w.n, w.ids):
        assert control.style.description_width == "initial", control.description


def test_a_misspelt_variable_names_the_columns_and_the_closest(pg):
    with pytest.raises(wb.TemplateError) as info:
        pg.edit(prompt="Review: {{ reveiw }}\nSentiment:")
    message = str(info.value)
    assert "uses {{ reveiw }} (did you mean {{ review }}?)" in message
    assert "its columns are 'id', 'review'" in message and "'label'" not in message  # expected values are hidden
    assert len(pg.versions["few_shot"]) == 1
    w = pg.widget
    w.prompt.value = "{{ reveiw }}"
    w.run_button.click()
    assert "did you mean {{ review }}?" in html.unescape(w.status.value) and not pg.runs


def test_an_unclosed_brace_in_the_widget_names_its_line_and_the_missing_braces(pg):
    w = pg.widget
    w.prompt.value = "Review: {{ review\nSentiment:"
    w.run_button.click()
    assert "on line 1: missing `}}` to close the `{{` in 'Review: {{ review'" in html.unescape(w.status.value)


# -- Save to YAML changes only the saved variant's lines ----------------------------------------------

EXPERIMENT_YAML = """\
# The header comment.
name: pg-yaml
description: >
  A folded description
  over two lines.
dataset:
  path: ../data.csv     # relative to this file
  expected: [label]
models: [openai/gpt-4o-mini]
scorers:
  - {type: label_match, labels: [positive, negative], expected: label}
variants:
  # zero_shot: the instruction
  - name: zero_shot
    system: >-
      Classify the sentiment of the product review as positive or negative.
      Answer with one word.
    prompt: "Review: {{ review }}\\nSentiment:"
    params: {temperature: 0, max_tokens: 4, stop: ["\\n"]}   # kept short
  # few_shot: worked examples
  - name: few_shot
    prompt: 'Review: {{ review }}'
    examples:
      - {review: "Nice.", output: positive}
    params: {temperature: 0, max_tokens: 4}
  - name: last
    prompt: |-
      Review: {{ review }}
      Sentiment:
    params: {temperature: 0}
"""


def _entry_lines(text: str, name: str) -> range:
    """The line numbers (0-based) of the variant entry ``name``, from ``- name:`` to the next entry."""
    lines = text.splitlines()
    start = lines.index(f"  - name: {name}")
    after = [i for i, line in enumerate(lines) if i > start and line.startswith(("  - ", "  #"))]
    return range(start, after[0] if after else len(lines))


def _changed_lines(before: str, after: str) -> tuple[set[int], set[int]]:
    matcher = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(), autojunk=False)
    old: set[int] = set()
    new: set[int] = set()
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            old.update(range(i1, i2) or [i1])
            new.update(range(j1, j2) or [j1])
    return old, new


@pytest.fixture
def yaml_experiment(fake_key, reviews, tmp_path):
    reviews.frame.to_csv(tmp_path / "data.csv", index=False)
    path = tmp_path / "experiments" / "pg.yaml"
    path.parent.mkdir()
    path.write_text(EXPERIMENT_YAML)
    return path


def test_save_changes_only_the_saved_variants_lines(yaml_experiment):
    pg = wb.playground(wb.load_experiment(yaml_experiment), acompletion=FakeLLM(), n=4)
    pg.select("few_shot")
    pg.edit(prompt="Review: {{ review }}\nIs it positive or negative?\nSentiment:", max_tokens=3)
    before = yaml_experiment.read_text()
    pg.save(log_to_mlflow=False)
    after = yaml_experiment.read_text()
    old, new = _changed_lines(before, after)
    assert old and old <= set(_entry_lines(before, "few_shot")), old
    assert new <= set(_entry_lines(after, "few_shot")), new
    # The new multi-line prompt is a literal block; the flow params stay on one line.
    assert "    prompt: |-\n      Review: {{ review }}\n      Is it positive or negative?\n      Sentiment:\n" in after
    assert "    params: {temperature: 0, max_tokens: 3}\n" in after
    saved = wb.load_experiment(yaml_experiment)
    assert [v.version for v in saved.variants] == [pg.versions[name][-1].version for name in pg.versions]

    # A changed folded text stays folded; the other entries, comments included, stay as they were.
    pg.select("zero_shot")
    pg.edit(system="Classify the sentiment of the review. " * 4)
    before = after
    pg.save(log_to_mlflow=False)
    after = yaml_experiment.read_text()
    old, new = _changed_lines(before, after)
    assert old and old <= set(_entry_lines(before, "zero_shot")), old
    assert new <= set(_entry_lines(after, "zero_shot")), new
    assert "    system: >-\n      Classify the sentiment of the review." in after
    assert "# kept short" in after and wb.load_experiment(yaml_experiment).variants[0].system == pg.current.system

    # Saved under a new name: added after the others, every other line unchanged.
    before = after
    pg.save(as_name="zero_shot_v2", log_to_mlflow=False)
    after = yaml_experiment.read_text()
    old, new = _changed_lines(before, after)
    assert new <= set(_entry_lines(after, "zero_shot_v2")), new
    assert after.startswith(before.rstrip("\n"))
    assert [v.name for v in wb.load_experiment(yaml_experiment).variants] == [
        "zero_shot",
        "few_shot",
        "last",
        "zero_shot_v2",
    ]


def test_save_keeps_every_other_line_byte_for_byte(fake_key, reviews, tmp_path):
    # Spacing ruamel.yaml would normalise if it re-emitted these lines, and a list at offset 0.
    reviews.frame.to_csv(tmp_path / "data.csv", index=False)
    path = tmp_path / "odd.yaml"
    path.write_text(
        "name:   pg-odd    # spaced out\n"
        "dataset: { path: data.csv, expected: [ label ] }\n"
        "models: [openai/gpt-4o-mini]\n"
        "variants:\n"
        "- name: a\n"
        "  prompt:   'A: {{ review }}'\n"
        "- name: b\n"
        "  prompt: 'B: {{ review }}'\n"
        "  params: { max_tokens: 4, stop: ~ }\n"
        "\n"
        "# the end\n"
        "repeats:    1\n"
    )
    pg = wb.playground(wb.load_experiment(path), acompletion=FakeLLM(), n=2)
    pg.select("a")
    pg.edit(prompt="A2: {{ review }}")
    before = path.read_text()
    pg.save(log_to_mlflow=False)
    after = path.read_text()
    old, new = _changed_lines(before, after)
    assert old == new == {5}, (old, new)
    assert "- name: a\n  prompt: 'A2: {{ review }}'\n- name: b\n" in after
    assert wb.load_experiment(path).variants[0].prompt == "A2: {{ review }}"
