"""The run store: a run's rows stream to a Parquet file and read back equal to the rows the engine made.

The reference is what the engine kept in memory before the store existed: every
row it handed to observers, packed into Arrow and sorted by plan order. The run
has errors, repeats, two models, tool calls and an LLM judge, so every column
holds a value somewhere.
"""

from __future__ import annotations

import json
import re

import litellm
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from conftest import sentiment_of

import workbench as wb
from workbench.core.runstore import CasesFile
from workbench.engine.summary import summarize

MODELS = ["openai/gpt-4o-mini", "openai/gpt-3.5-turbo"]
JUDGE = "openai/gpt-4o"
TOOL_CALL = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"sku": 7}'}}


async def fake_model(*, model, messages, **kwargs):
    """The task answers by keywords, refuses 'Broke' on the second model (a 400: not retried),
    answers 'towels' with a tool call; the judge passes outputs that name a label."""
    text = messages[-1]["content"]
    if model == JUDGE:
        judged = re.search(r'Response to judge:\n"""\n(.*?)\n"""', text, re.S).group(1)
        verdict = {"reason": "a label", "score": "PASS" if judged in ("positive", "negative") else "FAIL"}
        return await litellm.acompletion(model=model, messages=messages, mock_response=json.dumps(verdict))
    if "Broke" in text and model == MODELS[1]:
        raise litellm.exceptions.BadRequestError(message="refused", model=model, llm_provider="openai")
    if "towels" in text:
        reply = litellm.ModelResponse(
            model=model,
            choices=[litellm.Choices(index=0, finish_reason="tool_calls", message=litellm.Message(
                role="assistant", content=None, tool_calls=[TOOL_CALL]))],
            usage=litellm.Usage(prompt_tokens=12, completion_tokens=5, total_tokens=17),
        )  # fmt: skip
        return await litellm.acompletion(model=model, messages=messages, mock_response=reply)
    return await litellm.acompletion(model=model, messages=messages, mock_response=sentiment_of(messages))


class Rows(wb.RunObserver):
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def case_done(self, row) -> None:
        self.rows.append(dict(row))


def in_memory(rows: list[dict]) -> pd.DataFrame:
    """The results table as the engine built it in memory before the run store (commit d130ae0)."""
    names = dict.fromkeys(key for row in rows for key in row)
    table = pa.table({name: [row.get(name) for row in rows] for name in names})
    table = table.take(pc.sort_indices(table["_order"])).drop_columns(["_order"])
    strings = pd.StringDtype("pyarrow", na_value=np.nan)
    return table.to_pandas(types_mapper=lambda t: strings if pa.types.is_string(t) else None)


@pytest.fixture
def judged_run(reviews, variants, label_match, fake_key):
    judge = wb.LLMJudge(rubric="The answer is a sentiment label.", model=JUDGE)
    exp = wb.Experiment(
        name="store",
        variants=variants,
        dataset=reviews,
        models=MODELS,
        scorers=[label_match, judge],
        repeats=2,
        settings=wb.RunSettings(max_concurrency=3, max_error_rate=0.5),
    )
    seen = Rows()
    result = exp.run(log_to_mlflow=False, progress=False, acompletion=fake_model, observers=[seen])
    return result, in_memory(seen.rows)


def test_cases_read_back_equal_the_rows_the_engine_made(judged_run):
    result, reference = judged_run
    assert result.cases_path.name == "cases.parquet" and result.cases_path.exists()
    assert CasesFile(result.cases_path).in_order  # written in plan order, whatever order calls finished in
    about = CasesFile(result.cases_path).about  # the file says what run it holds
    assert about["experiment"] == "store" and about["models"] == MODELS and about["repeats"] == 2
    assert about["variants"] == {v.name: v.version for v in result.experiment.variants}
    # Not vacuous: errors, tool calls, messages, the judge's columns, repeats and both models are there.
    assert reference["error"].notna().sum() == 4 and reference["tool_calls"].notna().sum() == 8
    text = [c for c in reference.columns if isinstance(reference[c].dtype, pd.StringDtype)]
    assert [c for c in text if reference[c].isna().all()] == []
    assert {"judge.llm_judge.cost_usd", "judge.llm_judge.cached"} <= set(reference.columns)
    assert set(reference["repeat"]) == {0, 1} and set(reference["model"]) == set(MODELS)

    assert result.n_rows == len(reference) == 6 * 2 * 2 * 2
    pd.testing.assert_frame_equal(result.cases, reference)  # dtypes included
    scorers, success = result.experiment.scorers, result.experiment.success
    summary = summarize(reference, scorers, success=success)
    pd.testing.assert_frame_equal(result.summary, summary)  # the summary read only the columns it needs
    pieces = (reference.iloc[start : start + 5] for start in range(0, len(reference), 5))
    pd.testing.assert_frame_equal(summarize(pieces, scorers, success=success), summary)  # tallied a frame at a time


@pytest.mark.parametrize("loaded", [False, True], ids=["from the file", "from the loaded frame"])
def test_read_cases_reads_only_the_columns_and_rows_asked_for(judged_run, loaded):
    result, reference = judged_run
    result = wb.ExperimentResult.of(result)
    result.cases_file = CasesFile(result.cases_path)
    if loaded:
        result.cases  # noqa: B018  (reads every row once)
    columns = ["case_id", "repeat", "output", "score.label_match", "error"]
    for variant in ("zero_shot", "few_shot"):
        for model in MODELS:
            got = result.read_cases(columns, where={"variant": variant, "model": model})
            mask = (reference["variant"] == variant) & (reference["model"] == model)
            pd.testing.assert_frame_equal(got, reference.loc[mask, columns].reset_index(drop=True))
    ok = result.read_cases(["case_id"], where={"error": None, "model": MODELS})
    assert len(ok) == reference["error"].isna().sum()
    low = result.read_cases(["case_id", "score.label_match"], where=pc.field("score.label_match") < 0.5)
    want = reference.loc[reference["score.label_match"] < 0.5, ["case_id", "score.label_match"]]
    pd.testing.assert_frame_equal(low, want.reset_index(drop=True))
    batches = list(result.iter_cases(["case_id", "variant"], batch_rows=20))
    pd.testing.assert_frame_equal(pd.concat(batches, ignore_index=True), reference[["case_id", "variant"]])
    assert result.cases_file.loaded is loaded


def test_comparisons_and_views_read_from_the_file_give_what_the_frame_gives(judged_run):
    result, reference = judged_run
    result = wb.ExperimentResult.of(result)
    result.cases_file = CasesFile(result.cases_path)  # nothing loaded
    cmp = result.compare("zero_shot", "few_shot", model=MODELS[1])
    same = wb.compare(reference, "zero_shot", "few_shot", model=MODELS[1])
    assert cmp.verdicts == same.verdicts and cmp.n_errors_candidate == same.n_errors_candidate == 2
    pd.testing.assert_frame_equal(cmp.pairs, same.pairs)
    assert [c.verdicts for c in result.compare_all(model=MODELS[0])] == [
        c.verdicts for c in wb.compare_many(reference, "zero_shot", model=MODELS[0])
    ]
    shown = result.side_by_side(["zero_shot", "few_shot"], model=MODELS[1], limit=None)
    assert len(shown) == 12 and list(shown.frame["case_id"])[:2] == ["a", "a"]
    assert not result.cases_file.loaded  # none of them needed every column


def test_read_cases_names_what_is_wrong(judged_run):
    result, _ = judged_run
    with pytest.raises(wb.UsageError, match=r"no column\(s\) \['nope'\] in the cases of this run"):
        result.read_cases(["case_id", "nope"])
    with pytest.raises(wb.UsageError, match="where names no column of this run: 'varient'"):
        result.read_cases(where={"varient": "few_shot"})
    with pytest.raises(wb.UsageError, match="a list of names"):
        result.read_cases("case_id")


def test_runs_go_to_the_folder_workbench_runs_names(judged_run, isolated_cache):
    result, _ = judged_run
    runs = isolated_cache.parent / "runs"
    assert result.cases_path.parent.parent == runs
    assert re.fullmatch(r"\d{8}T\d{6}Z-store-[0-9a-f]{6}", result.cases_path.parent.name)
    assert [p.name for p in result.cases_path.parent.iterdir()] == ["cases.parquet"]
