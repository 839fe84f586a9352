"""MLflow 3's GenAI pages: variants in the Prompt Registry, linked to their runs, and the dataset as a run input."""

import json
import re
import threading

import pytest
from conftest import FakeLLM
from mlflow.tracking import MlflowClient

import workbench as wb
from workbench.cli import main
from workbench.core.registry import VARIANT_TAG, VERSION_TAG
from workbench.tracking import MlflowObserver
from workbench.tracking.genai import change_summary


@pytest.fixture
def store(tracking_uri, monkeypatch):
    """The session's store (a new SQLite store costs seconds of migrations); each test names its own experiment."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)  # the CLI's and from_registry's default store
    return tracking_uri


def _run(name, variants, reviews, label_match, uri):
    experiment = wb.Experiment(
        name=name, variants=variants, dataset=reviews, models=["openai/gpt-4o-mini"], scorers=[label_match]
    )
    observer = MlflowObserver(tracking_uri=uri, charts=False)  # charts are another test's business: keep this fast
    result = experiment.run(log_to_mlflow=False, observers=[observer], progress=False, acompletion=FakeLLM())
    result.run_id = observer.parent_run_id
    return result


def _linked(client, run_id):
    return json.loads(client.get_run(run_id).data.tags["mlflow.linkedPrompts"])


def test_variants_are_registered_once_per_content_and_linked_to_their_runs(
    store, fake_key, variants, reviews, label_match
):
    client = MlflowClient(store)
    first = _run("registry", variants, reviews, label_match, store)
    zero_shot, few_shot = variants
    edited = wb.PromptVariant(**{**zero_shot.to_dict(), "prompt": zero_shot.prompt + " (one word)"})
    second = _run("registry", [edited, few_shot], reviews, label_match, store)
    third = _run("registry", variants, reviews, label_match, store)  # the first content again: no new version

    versions = {v.version: v for v in client.search_prompt_versions("registry.zero_shot")}
    assert sorted(versions) == [1, 2]
    assert versions[1].tags[VERSION_TAG] == zero_shot.version
    assert versions[2].tags[VERSION_TAG] == edited.version
    assert versions[2].commit_message == "prompt: +1/-1 lines"
    assert versions[1].template[-1] == {"role": "user", "content": zero_shot.prompt}
    assert [v.version for v in client.search_prompt_versions("registry.few_shot")] == [1]
    few_shot_template = client.search_prompt_versions("registry.few_shot")[0].template
    assert [m["role"] for m in few_shot_template] == ["user", "assistant"] * len(few_shot.examples) + ["user"]

    assert _linked(client, first.run_id) == [
        {"name": "registry.zero_shot", "version": "1"},
        {"name": "registry.few_shot", "version": "1"},
    ]
    assert {"name": "registry.zero_shot", "version": "2"} in _linked(client, second.run_id)
    assert {"name": "registry.zero_shot", "version": "1"} in _linked(client, third.run_id)
    children = client.search_runs(
        [client.get_run(first.run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{second.run_id}'",
    )
    by_variant = {c.data.params["variant"]: _linked(client, c.info.run_id) for c in children}
    assert by_variant == {
        "zero_shot": [{"name": "registry.zero_shot", "version": "2"}],
        "few_shot": [{"name": "registry.few_shot", "version": "1"}],
    }
    experiment_id = client.get_run(first.run_id).info.experiment_id
    assert f",{experiment_id}," in client.get_prompt("registry.zero_shot").tags["_mlflow_experiment_ids"]


def test_from_registry_gives_back_the_variant_by_version_and_alias(store, fake_key, variants, reviews, label_match):
    result = _run("roundtrip", variants, reviews, label_match, store)
    few_shot = variants[1]
    loaded = wb.PromptVariant.from_registry("prompts:/roundtrip.few_shot/1")
    assert loaded == few_shot and loaded.version == few_shot.version

    # The run alias moves the prompt alias too.
    wb.set_alias(result.run_id, "production", variant="few_shot", tracking_uri=store)
    assert wb.PromptVariant.from_registry("prompts:/roundtrip.few_shot@production").version == few_shot.version

    with pytest.raises(wb.UsageError, match="no registered prompt at prompts:/roundtrip.missing@production"):
        wb.PromptVariant.from_registry("prompts:/roundtrip.missing@production")
    with pytest.raises(wb.UsageError, match="not a prompt URI"):
        wb.PromptVariant.from_registry("roundtrip.few_shot")


def test_a_prompt_registered_with_mlflow_itself_becomes_a_variant(store):
    MlflowClient(store).register_prompt(  # what mlflow.genai.register_prompt does, on this store
        name="plain",
        template=[
            {"role": "system", "content": "You label reviews."},
            {"role": "user", "content": "Review: {{ review }}"},
        ],
    )
    variant = wb.PromptVariant.from_registry("prompts:/plain/1")
    assert (variant.name, variant.system, variant.prompt) == ("plain", "You label reviews.", "Review: {{ review }}")


def test_the_dataset_is_an_input_of_the_parent_run(store, fake_key, variants, reviews, label_match):
    result = _run("datasets", variants, reviews, label_match, store)
    inputs = MlflowClient(store).get_run(result.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    dataset = inputs[0].dataset
    assert dataset.digest == reviews.content_hash
    assert json.loads(dataset.profile) == {"num_rows": len(reviews)}
    columns = {c["name"]: c["type"] for c in json.loads(dataset.schema)["mlflow_colspec"]}
    assert set(columns) == set(reviews.columns) and columns["review"] == "string"
    assert {t.key: t.value for t in inputs[0].tags} == {"mlflow.data.context": "evaluation"}


def test_promote_moves_the_production_alias_and_back(store, capsys):
    assert main(["promote", "experiments/sentiment.yaml", "few_shot", "--alias", "production"]) == 0
    assert re.search(r"prompts:/sentiment.few_shot@production -> version \d+", capsys.readouterr().out)
    spec = wb.load_experiment("experiments/sentiment.yaml")
    few_shot = next(v for v in spec.variants if v.name == "few_shot")
    assert wb.PromptVariant.from_registry("prompts:/sentiment.few_shot@production").version == few_shot.version
    assert main(["promote", "experiments/sentiment.yaml", "nope"]) == 2
    assert "has no variant 'nope'" in capsys.readouterr().err


def test_credentials_never_reach_the_registry(store, fake_key, variants, reviews, label_match):
    secret = "sk-live-registry-0123456789abcdef"
    keyed = wb.PromptVariant(**{**variants[0].to_dict(), "params": {"temperature": 0, "api_key": secret}})
    _run("secrets", [keyed, variants[1]], reviews, label_match, store)
    version = MlflowClient(store).search_prompt_versions("secrets.zero_shot")[0]
    assert secret not in json.dumps(version.template) and secret not in json.dumps(version.tags)
    assert json.loads(version.tags[VARIANT_TAG])["params"]["api_key"] == "***"


def test_the_commit_message_says_what_changed():
    before = {"name": "a", "prompt": "Q", "examples": [{"q": 1, "output": "x"}], "params": {"temperature": 0}}
    after = {"name": "a", "prompt": "Q", "system": "Be brief.", "examples": [], "params": {"max_tokens": 5}}
    assert change_summary(before, after, experiment="x") == (
        "system: +1/-0 lines; examples: 1 -> 0; params.max_tokens: unset -> 5; params.temperature: 0 -> unset"
    )
    assert "first registered" in change_summary(None, after, experiment="x")


def test_linking_survives_mlflow_writing_the_experiment_tag_at_the_same_moment(store, monkeypatch):
    """register_prompt may start MLflow's own thread that writes the prompt's experiment list too: the
    loser of that race gets a uniqueness error, and the workbench reads the tag again and retries."""
    from mlflow.exceptions import MlflowException

    from workbench.tracking.genai import _tag_experiment

    client = MlflowClient(store)
    client.register_prompt(name="raced", template="Q: {{ q }}")
    for thread in threading.enumerate():  # MLflow's own tagging thread: let it finish, so the race is ours
        if thread.name.startswith("link_prompt_to_experiment_thread"):
            thread.join(timeout=10)
    real = MlflowClient.set_prompt_tag
    calls = []

    def racing(self, name, key, value):
        if name == "raced" and ",7," in value:  # ours (MLflow's own thread may write ",0," meanwhile)
            calls.append(value)
            if len(calls) == 1:  # the other writer wins the first time
                real(self, name, key, ",900,")
                raise MlflowException("UNIQUE constraint failed: registered_model_tags")
        return real(self, name, key, value)

    monkeypatch.setattr(MlflowClient, "set_prompt_tag", racing)
    _tag_experiment(client, "raced", "7")
    assert len(calls) == 2 and ",900," in calls[1]  # read again: the winner's id is kept
    ids = set(client.get_prompt("raced").tags["_mlflow_experiment_ids"].strip(",").split(","))
    assert {"900", "7"} <= ids
