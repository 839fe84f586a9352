"""The playground in a real JupyterLab: edit a prompt, Run, an invalid case id, Save.

An error is one line in place of the status line (no traceback in the widget, no figures of
the run before), the "temperature" label is not cut off, and Save changes only the saved
variant's lines of the YAML file. The model is a fake built on litellm's ``mock_response``:
nothing reaches the network.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

import nbformat
import pytest
from browser_support import BROWSER, screenshot, show_on_failure, wait_for_idle_kernel

pytestmark = BROWSER

EXPERIMENT_YAML = """\
# A playground test experiment: comments and flow lists must survive a Save.
name: playground-e2e
dataset:
  path: ../data.csv     # relative to this file
  expected: [label]
models: [openai/gpt-4o-mini]
scorers:
  - {type: label_match, labels: [positive, negative], expected: label}
variants:
  # the instruction
  - name: zero_shot
    system: >-
      Classify the sentiment of the product review as positive or negative.
      Answer with one word.
    prompt: "Review: {{ review }}\\nSentiment:"
    params: {temperature: 0, max_tokens: 4, stop: ["\\n"]}
  # worked examples
  - name: few_shot
    prompt: "Review: {{ review }}\\nSentiment:"
    examples:
      - {review: "Arrived quickly, lovely fabric.", output: positive}
    params: {temperature: 0, max_tokens: 4}
"""

DATA_CSV = """\
id,review,label
kettle,"Great kettle, boils fast.",positive
charger,Broke after two days.,negative
towels,Lovely soft towels.,positive
"""

PLAYGROUND_CELL = '''\
import litellm


async def fake_completion(*, model, messages, **kwargs):
    """Every answer is "positive": litellm builds the response, no network."""
    return await litellm.acompletion(model=model, messages=messages, mock_response="positive")


pg = wb.playground(
    wb.load_experiment({yaml_file!r}),
    acompletion=fake_completion,
    n=2,
    tracking_uri={tracking_uri!r},
)
pg
'''


def _playground_notebook(root: Path, tracking_uri: str) -> None:
    (root / "experiments").mkdir()
    (root / "experiments" / "playground.yaml").write_text(EXPERIMENT_YAML)
    (root / "data.csv").write_text(DATA_CSV)
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    notebook.cells = [
        nbformat.v4.new_code_cell("import sys\n\nimport workbench as wb\n\nprint(sys.executable)"),
        nbformat.v4.new_code_cell(
            PLAYGROUND_CELL.format(yaml_file=str(root / "experiments" / "playground.yaml"), tracking_uri=tracking_uri)
        ),
    ]
    nbformat.write(notebook, root / "playground.ipynb")


def _entry(lines: list[str], name: str) -> range:
    start = lines.index(f"  - name: {name}")
    after = [i for i, line in enumerate(lines) if i > start and line.startswith(("  - ", "  #"))]
    return range(start, after[0] if after else len(lines))


@pytest.mark.timeout(300)
def test_playground_errors_are_one_line_and_save_touches_only_the_saved_variant(store_uri, jupyterlab, page, tmp_path):
    url, token, server = jupyterlab
    root = tmp_path / "lab"
    _playground_notebook(root, store_uri)
    yaml_file = root / "experiments" / "playground.yaml"

    with show_on_failure(server):
        page.goto(f"{url}/lab/tree/playground.ipynb?token={token}")
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
        wait_for_idle_kernel(url, token, timeout=60)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        page.locator(".jp-OutputArea-output", has_text=sys.executable).wait_for(timeout=60_000)
        playground = page.locator(".wb-playground")
        playground.wait_for(timeout=60_000)
        status = page.locator(".wb-playground-status")

        # The "temperature" label is shown whole.
        label = page.locator(".wb-playground-temperature .widget-label")
        assert label.inner_text() == "temperature"
        assert label.evaluate("e => e.scrollWidth <= e.clientWidth"), "the temperature label is cut off"

        # Edit the prompt and Run: the outputs, and a status line with the figures.
        page.locator(".wb-playground-prompt textarea").fill("Product review: {{ review }}\nSentiment:")
        page.locator(".wb-playground-run").click()
        status.filter(has_text="calls").wait_for(timeout=60_000)
        assert "2 cases · 4 calls, all new" in status.inner_text()
        page.locator(".wb-playground-out", has_text="charger").wait_for()

        # An unknown case id: one line of error, nothing left of the run before.
        page.locator(".wb-playground-mode").get_by_role("button", name="ids", exact=True).click()
        page.locator(".wb-playground-ids input").fill("kettle, nope")
        page.locator(".wb-playground-run").click()
        status.filter(has_text="UsageError").wait_for(timeout=30_000)
        line = status.inner_text().strip()
        assert line == (
            "UsageError: no case(s) ['nope'] in dataset data.csv; its 'id' values are 'kettle', 'charger', 'towels'"
        )
        assert "calls" not in line and "label_match" not in line
        assert status.locator("span").evaluate("e => e.getClientRects().length") == 1  # one line on screen too
        assert page.locator(".wb-playground-out").inner_text().strip() == ""
        assert playground.filter(has_text="Traceback").count() == 0
        assert playground.locator("[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
        status.evaluate("e => e.scrollIntoView({block: 'center'})")  # the widget and its error line in view
        screenshot(page, "playground_error.png")

        # Save: only the saved variant's lines of the YAML file change.
        before = yaml_file.read_text()
        page.locator(".wb-playground-save").click()
        status.filter(has_text="saved few_shot").wait_for(timeout=90_000)
        assert "logged to MLflow run" in status.inner_text()
    after = yaml_file.read_text()
    old, new = before.splitlines(), after.splitlines()
    changed_old: set[int] = set()
    changed_new: set[int] = set()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag != "equal":
            changed_old.update(range(i1, i2))
            changed_new.update(range(j1, j2))
    assert changed_old == {_entry(old, "few_shot")[1]}, changed_old  # its prompt line
    assert changed_new <= set(_entry(new, "few_shot")), changed_new
    # The edited prompt is multi-line text: a literal block now.
    assert "    prompt: |-\n      Product review: {{ review }}\n      Sentiment:\n" in after
