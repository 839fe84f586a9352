import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from conftest import FakeLLM

import workbench as wb
from workbench.analysis.pareto import cheapest_meeting, pareto_frontier

MINI, BIG, UNPRICED = "openai/gpt-4o-mini", "openai/gpt-4o", "openai/my-finetune-7"


def fixes_not_bad(model, messages):
    """The keyword model, except that few-shot prompts get "Not bad at all" right."""
    if len(messages) > 1 and "Not bad" in messages[-1]["content"]:
        return "positive"
    return FakeLLM().reply(model, messages)


def run(variants, reviews, scorers, models, **kw):
    exp = wb.Experiment(name="charts", variants=variants, dataset=reviews, models=models, scorers=scorers)
    return exp.run(log_to_mlflow=False, progress=False, acompletion=kw.pop("llm", FakeLLM(fixes_not_bad)), **kw)


@pytest.fixture
def result(fake_key, variants, reviews, label_match):
    return run(variants, reviews, [label_match, wb.ExactMatch(expected="label")], [MINI, BIG])


def with_summary(result, **columns):
    """A copy of ``result`` whose summary has hand-picked values per (variant, model)."""
    summary = result.summary.copy()
    for column, values in columns.items():
        summary[column] = [values[(v, m)] for v, m in zip(summary["variant"], summary["model"], strict=True)]
    return dataclasses.replace(result, summary=summary)


def trace(fig, name):
    return next(t for t in fig.data if t.name == name)


# -- pure functions --------------------------------------------------------------------------


def test_pareto_frontier_drops_dominated_points_and_keeps_ties():
    points = pd.DataFrame(
        {
            "cost": [1.0, 2.0, 3.0, 3.0, 2.0, 4.0, math.nan, 0.5],
            "score": [0.5, 0.4, 0.9, 0.9, 0.5, 0.9, 1.0, math.nan],
        },
        index=["a", "worse_and_dearer", "c", "c_tie", "same_score_dearer", "same_score_dearest", "no_cost", "no_score"],
    )
    frontier = pareto_frontier(points, "cost", "score")
    assert list(frontier.index) == ["a", "c", "c_tie"]
    # A point equal in cost but better in score dominates.
    assert list(pareto_frontier(pd.DataFrame({"x": [1, 1], "y": [0.2, 0.3]}), "x", "y").index) == [1]
    assert pareto_frontier(points.iloc[6:], "cost", "score").empty


def test_cheapest_meeting_the_bar():
    points = pd.DataFrame(
        {"variant": ["a", "b", "b_better", "c"], "cost": [1.0, 2.0, 2.0, 3.0], "score": [0.5, 0.8, 0.85, 0.9]}
    )
    assert cheapest_meeting(points, 0.5)["variant"] == "a"
    assert cheapest_meeting(points, 0.75)["variant"] == "b_better"  # equal cost: the better one
    assert cheapest_meeting(points, 0.9)["variant"] == "c"  # the bar itself counts as met
    assert cheapest_meeting(points, 0.95) is None
    renamed = points.rename(columns={"cost": "usd", "score": "acc"})
    assert cheapest_meeting(renamed, 0.75, x="usd", y="acc")["variant"] == "b_better"


# -- cost vs quality -------------------------------------------------------------------------


def test_cost_quality_marks_the_frontier_and_the_cheapest_point_meeting_the_bar(result):
    picked = with_summary(
        result,
        cost_per_success={
            ("zero_shot", MINI): 1.0,
            ("few_shot", MINI): 2.0,
            ("zero_shot", BIG): 3.0,
            ("few_shot", BIG): 4.0,
        },
        label_match={
            ("zero_shot", MINI): 0.8,
            ("few_shot", MINI): 0.9,
            ("zero_shot", BIG): 0.85,
            ("few_shot", BIG): 0.95,
        },
    )
    fig = wb.plot_cost_quality(picked, quality_bar=0.9)
    mini = trace(fig, MINI)
    assert list(mini.x) == [1.0, 2.0] and list(mini.y) == [0.8, 0.9]
    assert list(mini.customdata) == ["zero_shot", "few_shot"]
    frontier = trace(fig, "Pareto frontier")
    # zero_shot on the big model costs more than few_shot on mini and scores less.
    assert list(frontier.x) == [1.0, 2.0, 4.0] and list(frontier.y) == [0.8, 0.9, 0.95]
    star = trace(fig, "cheapest >= 90%")
    assert list(star.x) == [2.0] and list(star.y) == [0.9]
    assert any(f"few_shot @ {MINI}" in a.text for a in fig.layout.annotations)
    assert fig.layout.xaxis.title.text == "cost per successful case (USD)"
    assert [s.y0 for s in fig.layout.shapes] == [0.9]  # the bar itself

    higher = wb.plot_cost_quality(picked, quality_bar=0.92)
    assert list(trace(higher, "cheapest >= 92%").x) == [4.0]

    unreachable = wb.plot_cost_quality(picked, quality_bar=0.99)
    assert not [t for t in unreachable.data if t.name.startswith("cheapest")]
    assert any("no variant x model reaches the bar of 99%" in a.text for a in unreachable.layout.annotations)

    plain = wb.plot_cost_quality(picked)
    assert [t.name for t in plain.data] == [MINI, BIG, "Pareto frontier"]
    assert not plain.layout.annotations


def test_cost_quality_falls_back_to_tokens_when_a_price_is_unknown(monkeypatch, variants, reviews, label_match):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    result = run(variants, reviews, [label_match], [MINI, UNPRICED])
    assert result.summary.set_index("model")["cost_usd"].isna().to_dict() == {MINI: False, UNPRICED: True}
    fig = wb.plot_cost_quality(result)
    title = fig.layout.xaxis.title.text
    assert title.startswith("tokens per successful case") and f"no price for '{UNPRICED}'" in title
    tokens = result.summary.set_index(["variant", "model"])["tokens_per_success"]
    # Every model moves to tokens, the priced one too: dollars and tokens cannot share an axis.
    assert list(trace(fig, MINI).x) == [tokens[("zero_shot", MINI)], tokens[("few_shot", MINI)]]
    assert list(trace(fig, UNPRICED).x) == [tokens[("zero_shot", UNPRICED)], tokens[("few_shot", UNPRICED)]]
    assert not any(np.isnan(x) for t in fig.data for x in t.x)

    total = wb.plot_cost_quality(result, cost="cost_usd")
    assert total.layout.xaxis.title.text.startswith("total tokens (no price for")
    assert sorted(trace(total, MINI).x) == sorted(result.summary.query("model == @MINI")["tokens_total"])


def test_cost_quality_falls_back_to_tokens_when_every_call_was_free(result):
    free = dataclasses.replace(result, summary=result.summary.assign(cost_usd=0.0, cost_per_success=0.0))
    fig = wb.plot_cost_quality(free)
    assert fig.layout.xaxis.title.text == "tokens per successful case (every call was free: tokens instead of USD)"
    assert list(trace(fig, MINI).x) == list(free.summary.query("model == @MINI")["tokens_per_success"])


def test_cost_quality_lists_the_points_it_cannot_place(fake_key, variants, reviews, label_match):
    # A non-retryable error, so the test does not sit through backoff.
    refused = ValueError("refused")
    every_few_shot_call_fails = FakeLLM(fixes_not_bad, fail=lambda messages: refused if len(messages) > 1 else False)
    result = run(variants, reviews, [label_match], [MINI], llm=every_few_shot_call_fails)
    fig = wb.plot_cost_quality(result)
    assert list(trace(fig, MINI).customdata) == ["zero_shot", "few_shot"]
    assert [x for x in trace(fig, "Pareto frontier").x] == [result.summary["cost_per_success"].iloc[0]]
    notes = [a.text for a in fig.layout.annotations]
    assert notes == [f"not shown (no scored or no successful case): few_shot @ {MINI}"]


def test_cost_quality_rejects_an_unknown_cost_measure(result):
    with pytest.raises(ValueError, match="cost must be one of .* got 'dollars'"):
        wb.plot_cost_quality(result, cost="dollars")


# -- latency, confusion ----------------------------------------------------------------------


def test_latency_boxes_hold_every_call_and_mark_p50_p95(result):
    fig = wb.plot_latency(result)
    boxes = [t for t in fig.data if t.type == "box"]
    assert [b.name for b in boxes] == ["zero_shot", "few_shot"]
    for box in boxes:
        calls = result.cases[result.cases["variant"] == box.name]
        assert list(box.y) == list(calls["latency_s"])
        assert list(box.x[0]) == list(calls["model"]) and set(box.x[1]) == {box.name}
        assert box.boxpoints == "all"
    for label, column in (("p50", "latency_p50_s"), ("p95", "latency_p95_s")):
        marks = trace(fig, label)
        assert list(marks.y) == list(result.summary[column])
        assert list(zip(*marks.x, strict=True)) == list(
            zip(result.summary["model"], result.summary["variant"], strict=True)
        )


def test_confusion_heatmap_counts_equal_the_confusion_matrix(result):
    fig = wb.plot_confusion(result, variant="zero_shot", model=MINI)
    heatmap = fig.data[0]
    matrix = result.confusion_matrix(variant="zero_shot", model=MINI)
    assert heatmap.type == "heatmap"
    assert np.array_equal(np.asarray(heatmap.z), matrix.to_numpy())
    assert np.array_equal(np.asarray(heatmap.text), matrix.to_numpy())
    assert list(heatmap.x) == ["positive", "negative", "<unparsed>"] and list(heatmap.y) == ["positive", "negative"]
    # The keyword model reads "Not bad at all" (positive) as negative: 5 of 6 right.
    assert int(matrix.loc["positive", "negative"]) == 1
    assert "83.3% correct of 6" in fig.layout.title.text
    pooled = wb.plot_confusion(result, variant="few_shot")
    assert np.array_equal(np.asarray(pooled.data[0].z), result.confusion_matrix(variant="few_shot").to_numpy())
    assert int(np.asarray(pooled.data[0].z).sum()) == 12  # both models


def test_confusion_needs_a_classification_scorer_and_a_known_variant(result):
    with pytest.raises(ValueError, match=r"scorer 'exact_match' is not a classification scorer.*\['label_match'\]"):
        wb.plot_confusion(result, variant="zero_shot", scorer="exact_match")
    with pytest.raises(ValueError, match="no variant 'ten_shot' in this result"):
        wb.plot_confusion(result, variant="ten_shot")


# -- all of them -----------------------------------------------------------------------------


def test_charts_for_returns_every_applicable_chart(result):
    charts = wb.charts_for(result, quality_bar=0.9)
    assert list(charts) == [
        "scores_label_match",
        "scores_exact_match",
        "cost_quality",
        "latency",
        f"confusion_label_match_zero_shot_{MINI.replace('/', '-')}",
        f"confusion_label_match_zero_shot_{BIG.replace('/', '-')}",
        f"confusion_label_match_few_shot_{MINI.replace('/', '-')}",
        f"confusion_label_match_few_shot_{BIG.replace('/', '-')}",
    ]
    assert charts["scores_exact_match"].layout.yaxis.title.text == "exact_match"
    assert any(t.name == "cheapest >= 90%" for t in charts["cost_quality"].data)


def test_charts_for_one_model_and_no_classifier(fake_key, variants, reviews, label_match):
    one_model = wb.charts_for(run(variants, reviews, [label_match], [MINI]))
    assert list(one_model) == [
        "scores_label_match",
        "cost_quality",
        "latency",
        "confusion_label_match_zero_shot",
        "confusion_label_match_few_shot",
    ]
    no_classifier = wb.charts_for(run(variants, reviews, [wb.ExactMatch(expected="label")], [MINI]))
    assert list(no_classifier) == ["scores_exact_match", "cost_quality", "latency"]


def test_plotlyjs_goes_out_once_per_kernel_through_plotlys_renderer_copies(result):
    """plotly renders with a copy of each renderer: a flag on the copy put plotly.js (4.8 MB) in every
    figure, 28 MB for a report of six charts (issue 19, item 6)."""
    import plotly.io as pio

    from workbench.views.plotly_html import StaticHtmlRenderer

    default = pio.renderers.default
    pio.renderers["workbench-test"] = StaticHtmlRenderer()
    pio.renderers.default = "plotly_mimetype+workbench-test"
    try:
        figures = [wb.plot_cost_quality(result), wb.plot_latency(result), wb.plot_scores(result)]
        bundles = [fig._repr_mimebundle_() for fig in figures]  # what IPython's display calls
    finally:
        pio.renderers.default = default  # the test renderer stays registered: plotly's __delitem__ is broken
    assert all("application/vnd.plotly.v1+json" in b for b in bundles)  # JupyterLab draws from this
    html = [b["text/html"] for b in bundles]
    assert all("Plotly.newPlot" in h for h in html)
    assert [h.count("new DecompressionStream(") for h in html] == [1, 0, 0]  # plotly.js with the first figure only
    assert 1_800_000 < len(html[0]) < 1_900_000  # raw deflate + base85, not 4.8 MB
    assert all(len(h) < 100_000 for h in html[1:])
    assert not any('src="http' in h or 'import "http' in h for h in html)  # offline: no CDN


def test_latency_chart_stays_small_on_big_runs(monkeypatch):
    import pandas as pd

    import workbench.views.charts as charts

    n = 6_000
    cases = pd.DataFrame(
        {
            "variant": ["a"] * n + ["b"] * 10,
            "model": ["m"] * (n + 10),
            "latency_s": [i / n for i in range(n)] + [0.5] * 10,
        }
    )
    summary = pd.DataFrame(
        {"variant": ["a", "b"], "model": ["m", "m"], "n": [n, 10], "latency_p50_s": [0.5, 0.5],
         "latency_p95_s": [0.95, 0.5]}
    )  # fmt: skip

    class Result:
        name = "big"
        experiment = dataclasses.make_dataclass("Spec", ["models", "variants"])(
            ["m"], [dataclasses.make_dataclass("Variant", ["name"])(v) for v in ("a", "b")]
        )

        def read_cases(self, columns=None, where=None):
            rows = cases
            for key, value in (where or {}).items():
                rows = rows[rows[key] == value]
            return rows[columns].reset_index(drop=True)

    result = Result()
    result.summary = summary
    fig = charts.plot_latency(result)
    big, small = fig.data[0], fig.data[1]
    assert big.y is None and big.median == pytest.approx((0.5 * (n - 1) / n,), rel=1e-3)
    assert big.lowerfence == (0.0,) and big.upperfence[0] == pytest.approx((n - 1) / n)
    assert len(small.y) == 10 and small.boxpoints == "all"


def test_the_warm_up_loads_what_logging_a_result_needs():
    """It swallows its own errors (it is only an optimisation), so check what it did."""
    import subprocess
    import sys

    needed = ("scipy.special", "plotly.graph_objs.box._line", "plotly.io.json", "pandas.io.formats.csvs",
              "pandas.io.formats.string")  # fmt: skip
    code = (
        "import sys\n"
        "from workbench.views.warm_up import WarmUp, _build_throwaway_figures\n"
        f"assert not any(m in sys.modules for m in {needed!r})\n"
        "warm = WarmUp()\n"
        "warm.start()\n"
        "warm.wait()\n"
        f"print(all(m in sys.modules for m in {needed!r}))\n"
        "_build_throwaway_figures()\n"  # raises if a figure property is wrong
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True", out.stderr[-2000:]


# -- scores per variant ----------------------------------------------------------------------


def _seven_of_eight_and_none(fake_key, scorers):
    """Eight cases: variant "seven" gets 7 right (87.5%), variant "none" gets 0."""
    cases = wb.Dataset.from_records(
        [{"id": f"c{i}", "review": f"case {i}", "label": "positive"} for i in range(1, 9)], expected=["label"]
    )

    def reply(model, messages):
        text = messages[-1]["content"]
        return "negative" if text.startswith("B:") or "case 8" in text else "positive"

    variants = [
        wb.PromptVariant(name="seven", prompt="A: {{ review }}"),
        wb.PromptVariant(name="none", prompt="B: {{ review }}"),
    ]
    return run(variants, cases, scorers, [MINI], llm=FakeLLM(reply))


def test_score_bars_are_wilson_intervals_within_0_and_1(fake_key, label_match):
    """±1.96·SE (Wald) went past 100% at 7 of 8 and had zero width at 0% (issue 19, item 7)."""
    from scipy.stats import binomtest

    fig = wb.plot_scores(_seven_of_eight_and_none(fake_key, [label_match]))
    bars = fig.data[0]
    means = dict(zip(bars.x, bars.y, strict=True))
    assert means == {"seven": 0.875, "none": 0.0}
    high = dict(zip(bars.x, np.add(bars.y, bars.error_y.array), strict=True))
    low = dict(zip(bars.x, np.subtract(bars.y, bars.error_y.arrayminus), strict=True))
    assert all(0.0 <= low[v] <= means[v] <= high[v] <= 1.0 for v in means)
    assert high["none"] > 0.3  # a 0% variant is not certain to be 0%: its bar has an upper arm
    for variant, k in (("seven", 7), ("none", 0)):
        wilson = binomtest(k, 8).proportion_ci(confidence_level=0.95, method="wilson")
        assert (low[variant], high[variant]) == pytest.approx((wilson.low, wilson.high))
    hover = [row[0] for row in bars.customdata]
    assert hover[0] == "95% Wilson score interval over cases: 52.9% to 97.8%"
    assert "%{customdata[0]}" in bars.hovertemplate


def test_score_bars_of_a_non_binary_scorer_are_bootstrap_intervals(fake_key):
    @wb.scorer
    def first_letter(outputs):
        return 2.0 if outputs.startswith("p") else 0.5

    fig = wb.plot_scores(_seven_of_eight_and_none(fake_key, [first_letter]))
    bars = fig.data[0]
    assert list(bars.y) == pytest.approx([(7 * 2.0 + 0.5) / 8, 0.5])
    assert bars.customdata[0][0].startswith("95% percentile bootstrap over cases: ")
    assert fig.layout.yaxis.tickformat is None  # not a percentage


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 7, 8, 1001, 4096])
def test_numpy_base85_gives_the_standard_librarys_output(size):
    """plotly.js is packed with a numpy base85 encoder (the standard library's peaks at 50 MB);
    the page's decoder was written against the standard one, so the two must agree byte for byte."""
    import base64
    import random

    from workbench.views.plotly_html import _RFC1924, ALPHABET, b85encode

    data = random.Random(size).randbytes(size) + b"\0" * (size % 3)  # zero runs too
    expected = base64.b85encode(data).decode("ascii").translate(str.maketrans(_RFC1924, ALPHABET))
    assert b85encode(data) == expected
