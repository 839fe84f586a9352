"""Image inputs: the request that reaches the fake OpenAI server, errors before any call, thumbnails."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

import workbench as wb
from workbench.core.exceptions import DatasetError, ModelError, TemplateError
from workbench.core.images import for_key, readable
from workbench.engine.cache import cache_key
from workbench.testing import FakeOpenAIServer

MODEL = "openai/fake-vision"


def make_images(folder):
    """Three tiny pictures of different formats, written by Pillow (a few hundred bytes each)."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGBA", (40, 30), (220, 20, 20, 255)).save(folder / "red.png")
    Image.new("RGB", (240, 120), (20, 40, 200)).save(folder / "blue.jpg", quality=80)
    Image.new("P", (16, 16), 3).save(folder / "dot.gif")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def photo_dataset(tmp_path, rows):
    """A JSONL dataset in tmp_path/data whose image paths are relative to that folder."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    path = data / "photos.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return wb.Dataset.load(path)


def variant(server, **extra):
    params = {"api_base": server.base_url, "api_key": "sk-fake", "temperature": 0}
    return wb.PromptVariant(name="look", prompt="What is the {{ item }}?", images=["photo"], params=params, **extra)


def image_parts(body):
    return [p for p in body["messages"][-1]["content"] if p["type"] == "image_url"]


def test_local_files_go_as_base64_data_urls_with_their_mime_type_and_urls_as_given(tmp_path):
    files = make_images(tmp_path / "data" / "img")
    dataset = photo_dataset(
        tmp_path,
        [
            {"id": "a", "item": "mug", "photo": "img/red.png"},
            {"id": "b", "item": "bag", "photo": "img/blue.jpg"},
            {"id": "c", "item": "dot", "photo": "img/dot.gif"},
            {"id": "d", "item": "shoe", "photo": "https://example.com/shop/shoe.webp"},
        ],
    )
    bodies = []
    with FakeOpenAIServer(reply=lambda body: bodies.append(body) or "a thing") as server:
        exp = wb.Experiment(name="photos", variants=[variant(server)], dataset=dataset, models=[MODEL])
        result = exp.run(log_to_mlflow=False, progress=False)
    assert result.cases["error"].isna().all(), result.cases["error"].tolist()
    by_text = {b["messages"][-1]["content"][0]["text"]: b for b in bodies}
    assert len(by_text) == 4
    for item, name, mime in [("mug", "red.png", "image/png"), ("bag", "blue.jpg", "image/jpeg"),
                             ("dot", "dot.gif", "image/gif")]:  # fmt: skip
        body = by_text[f"What is the {item}?"]
        content = body["messages"][-1]["content"]
        assert content[0] == {"type": "text", "text": f"What is the {item}?"}
        (part,) = image_parts(body)
        assert part == {
            "type": "image_url",
            "image_url": {"url": f"data:{mime};base64," + base64.b64encode(files[name]).decode()},
        }
    (remote,) = image_parts(by_text["What is the shoe?"])
    assert remote["image_url"]["url"] == "https://example.com/shop/shoe.webp"
    prompts = dict(zip(result.cases["case_id"], result.cases["prompt"], strict=True))
    assert prompts["a"] == "[user]\nWhat is the mug?\n[image: red.png]"
    assert prompts["d"] == "[user]\nWhat is the shoe?\n[image: shoe.webp]"
    assert not any("base64" in p for p in prompts.values())
    assert result.cases["input.photo"].tolist() == ["img/red.png", "img/blue.jpg", "img/dot.gif",
                                                    "https://example.com/shop/shoe.webp"]  # fmt: skip


def test_the_cache_key_holds_the_hash_of_the_bytes_so_a_changed_picture_is_a_new_call(tmp_path):
    make_images(tmp_path / "data" / "img")
    dataset = photo_dataset(tmp_path, [{"id": "a", "item": "mug", "photo": "img/red.png"}])
    with FakeOpenAIServer(reply=lambda body: "a mug") as server:
        exp = wb.Experiment(name="photos", variants=[variant(server)], dataset=dataset, models=[MODEL])
        exp.run(log_to_mlflow=False, progress=False)
        again = exp.run(log_to_mlflow=False, progress=False)
        assert server.requests == 1 and again.cases["cached"].all()
        Image.new("RGBA", (40, 30), (20, 220, 20, 255)).save(tmp_path / "data" / "img" / "red.png")  # same name
        changed = exp.run(log_to_mlflow=False, progress=False)
        assert server.requests == 2 and not changed.cases["cached"].any()
    # The key is computed from the hash: the base64 text is not in what is hashed.
    messages = exp.variants[0].render({"item": "mug", "photo": "img/red.png"}, base_dir=tmp_path / "data")
    url = messages[-1]["content"][1]["image_url"]["url"]
    digest = hashlib.sha256((tmp_path / "data" / "img" / "red.png").read_bytes()).hexdigest()
    assert url.digest == digest and url.label == "red.png"
    hashed = for_key(messages)[-1]["content"][1]["image_url"]["url"]
    assert hashed == "sha256:" + digest and "base64" not in json.dumps(for_key(messages))
    # the same bytes under another name are the same request, so the same key
    (tmp_path / "data" / "img" / "copy.png").write_bytes((tmp_path / "data" / "img" / "red.png").read_bytes())
    copy = exp.variants[0].render({"item": "mug", "photo": "img/copy.png"}, base_dir=tmp_path / "data")
    assert cache_key(MODEL, copy, {}, 0) == cache_key(MODEL, messages, {}, 0)
    assert cache_key(MODEL, copy, {}, 0) != cache_key(
        MODEL, exp.variants[0].render({"item": "mug", "photo": "img/blue.jpg"}, base_dir=tmp_path / "data"), {}, 0
    )


def test_a_missing_file_is_named_with_row_field_and_fix_before_any_call(tmp_path):
    make_images(tmp_path / "data" / "img")
    dataset = photo_dataset(
        tmp_path,
        [{"id": "a", "item": "mug", "photo": "img/red.png"}, {"id": "b", "item": "bag", "photo": "img/nope.jpg"}],
    )
    with FakeOpenAIServer() as server:
        exp = wb.Experiment(name="photos", variants=[variant(server)], dataset=dataset, models=[MODEL])
        with pytest.raises(DatasetError) as caught:
            exp.run(log_to_mlflow=False, progress=False)
        assert server.requests == 0
    message = str(caught.value)
    assert "photos.jsonl" in message and "line 2" in message  # the file and the row
    assert "image column 'photo'" in message and "'img/nope.jpg'" in message
    assert "relative to the dataset file's folder" in message and "fix the path" in message
    numbers = wb.Dataset.from_records([{"id": "a", "item": "mug", "photo": 7}])
    with FakeOpenAIServer() as server:
        exp = wb.Experiment(name="photos", variants=[variant(server)], dataset=numbers, models=[MODEL])
        with pytest.raises(DatasetError, match=r"row 1: image column 'photo' holds 7; give a file path"):
            exp.run(log_to_mlflow=False, progress=False)
        assert server.requests == 0


def test_images_on_an_embedded_text_only_model_fail_in_validation(tmp_path):
    make_images(tmp_path / "data" / "img")
    dataset = photo_dataset(tmp_path, [{"id": "a", "item": "mug", "photo": "img/red.png"}])
    look = wb.PromptVariant(name="look", prompt="What is the {{ item }}?", images=["photo"])
    exp = wb.Experiment(name="photos", variants=[look], dataset=dataset, models=["local/smollm2-135m-instruct"])
    with pytest.raises(ModelError, match=r"variant 'look' sends images \(photo\) but model "
                                         r"'local/smollm2-135m-instruct' .* takes text only"):  # fmt: skip
        exp.run(log_to_mlflow=False, progress=False)


def test_variant_images_field_version_round_trip_and_bad_names():
    plain = wb.PromptVariant(name="v", prompt="What is the {{ item }}?")
    with_image = wb.PromptVariant(name="v", prompt="What is the {{ item }}?", images=["photo"])
    assert plain.variables() == {"item"} and with_image.variables() == {"item", "photo"}
    assert plain.version != with_image.version
    assert wb.PromptVariant.from_dict(with_image.to_dict()) == with_image
    assert "images" not in plain.to_dict()
    with pytest.raises(TemplateError, match="images must list distinct column names"):
        wb.PromptVariant(name="v", prompt="x", images=["photo", "photo"])
    # few-shot examples are text only: they need no image
    wb.PromptVariant(name="v", prompt="{{ item }}", images=["photo"], examples=[{"item": "mug", "output": "a mug"}])


def test_yaml_images_key_and_data_url_cells(tmp_path):
    pixel = io.BytesIO()
    Image.new("RGB", (2, 2), (1, 2, 3)).save(pixel, format="PNG")
    data_url = "data:image/png;base64," + base64.b64encode(pixel.getvalue()).decode()
    (tmp_path / "d.jsonl").write_text(json.dumps({"id": "a", "photo": data_url}) + "\n")
    exp = wb.experiment_from_dict(
        {
            "name": "y",
            "dataset": {"path": "d.jsonl"},
            "variants": [{"name": "look", "prompt": "Describe it.", "images": ["photo"]}],
            "models": ["openai/gpt-4o-mini"],
        },
        base_dir=tmp_path,
    )
    (look,) = exp.variants
    assert look.images == ("photo",)
    messages = look.render({"photo": data_url})
    assert messages[-1]["content"][1]["image_url"]["url"] == data_url
    assert readable(messages[-1]["content"]) == "Describe it.\n[image: data:image/png;base64]"


def test_thumbnails_in_the_side_by_side_table_and_the_review_widget(tmp_path):
    make_images(tmp_path / "data" / "img")
    dataset = photo_dataset(
        tmp_path,
        [{"id": "a", "item": "mug", "photo": "img/red.png"}, {"id": "b", "item": "bag", "photo": "img/blue.jpg"}],
    )
    with FakeOpenAIServer(reply=lambda body: "a thing") as server:
        one = variant(server)
        two = wb.PromptVariant(name="look2", prompt="Name the {{ item }}.", images=["photo"], params=one.params)
        exp = wb.Experiment(name="photos", variants=[one, two], dataset=dataset, models=[MODEL])
        result = exp.run(log_to_mlflow=False, progress=False)
    html = result.side_by_side().to_html()
    sources = re.findall(r'<img src="(data:image/[a-z]+;base64,[A-Za-z0-9+/=]+)"', html)
    assert len(sources) == 2
    for src in sources:  # shrunk to fit 96 px, not the 240 px original
        picture = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert max(picture.size) <= 96
    assert 'alt="blue.jpg"' in html and "img/blue.jpg" not in html  # the picture, not the path
    rv = wb.review(result, labels_path=tmp_path / "labels.jsonl", log_to_mlflow=False)
    content = rv.widget.content.value
    assert '<img src="data:image/' in content and 'alt="red.png"' in content
    assert rv.items[0].inputs["photo"] == "img/red.png"  # the label file keeps the path
    # a file gone since the run shows its name, not a broken picture
    (tmp_path / "data" / "img" / "blue.jpg").unlink()
    assert "[image: blue.jpg (not found)]" in result.side_by_side().to_html()


def test_the_readme_photo_example_runs_against_the_fake_server_and_refuses_local_models():
    exp = wb.load_experiment("experiments/photos.yaml")
    (look,) = exp.variants
    assert look.images == ("photo",)
    with pytest.raises(ModelError, match="takes text only"):
        exp.with_overrides(models=["local/gemma-3-270m"]).run(log_to_mlflow=False, progress=False)
    bodies = []

    def answer(body):
        bodies.append(body)
        return '{"category": "home", "colour": "red"}'

    with FakeOpenAIServer(reply=answer) as server:
        pointed = dataclasses.replace(look, params={**look.params, "api_base": server.base_url, "api_key": "sk-fake"})
        exp.variants = [pointed]
        result = exp.with_overrides(models=["openai/gpt-4o-mini"]).run(log_to_mlflow=False, progress=False)
    assert len(bodies) == 3 and result.cases["error"].isna().all()
    urls = [image_parts(b)[0]["image_url"]["url"] for b in bodies]
    assert all(u.startswith("data:image/jpeg;base64,") for u in urls) and len(set(urls)) == 3
    scores = dict(zip(result.cases["case_id"], result.cases["score.field_match"], strict=True))
    assert scores == {"p1": 1.0, "p2": 0.0, "p3": 0.0}  # the fake always says a red home item


def test_mlflow_gets_the_image_columns_and_never_the_base64(tmp_path, tracking_uri):
    from mlflow.tracking import MlflowClient

    make_images(tmp_path / "data" / "img")
    dataset = photo_dataset(tmp_path, [{"id": "a", "item": "mug", "photo": "img/red.png"}])
    with FakeOpenAIServer(reply=lambda body: "a mug") as server:
        exp = wb.Experiment(name="photos_tracked", variants=[variant(server)], dataset=dataset, models=[MODEL])
        result = exp.run(tracking_uri=tracking_uri, progress=False)
    client = MlflowClient(tracking_uri)
    parent = client.get_run(result.run_id)
    (child,) = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert json.loads(child.data.params["images"]) == ["photo"]
    logged = ""
    for run in (parent, child):
        folder = client.download_artifacts(run.info.run_id, "", str(tmp_path / run.info.run_id))
        logged += "".join(p.read_text(errors="ignore") for p in Path(folder).rglob("*") if p.is_file())
    assert "[image: red.png]" in logged and "img/red.png" in logged
    assert ";base64," not in logged
