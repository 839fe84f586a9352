"""PII kept out of every file a run writes (issue 15, items 5-7).

Reference tests for each recognizer and operator, the settings file, the offline
and lazy loading of Presidio, the recall on a corpus of made-up PII
(``tests/data/pii_corpus.jsonl``), a run whose every written file is scanned for
every corpus value, and the :class:`~workbench.NoPiiLeak` scorer.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient

import workbench as wb
from workbench.core.pii_recognizers import inn_is_valid, luhn_is_valid
from workbench.core.redaction import MASK
from workbench.testing import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).with_name("data") / "pii_corpus.jsonl"
PII = wb.REDACTOR.pii
KEY = "test-pii-key-not-a-secret-0001"


def corpus() -> list[dict]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch):
    """Each test starts from the defaults (no pii.yaml, no key) and leaves them behind."""
    monkeypatch.delenv("WORKBENCH_PII_CONFIG", raising=False)
    monkeypatch.delenv("WORKBENCH_PII_KEY", raising=False)
    PII.reset()
    yield
    PII.reset()


def entities_in(text: str) -> dict[str, list[str]]:
    found = collections.defaultdict(list)
    for finding in PII.find(text):
        found[finding.entity].append(finding.text)
    return dict(found)


# -- recognizers ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("entity", "text", "value"),
    [
        ("PHONE_NUMBER", "звоните +7 (912) 345-67-89 после 10", "+7 (912) 345-67-89"),
        ("PHONE_NUMBER", "тел. 8 (912) 345-67-89", "8 (912) 345-67-89"),
        ("PHONE_NUMBER", "тел 8 912 345 67 89", "8 912 345 67 89"),
        ("PHONE_NUMBER", "тел 8-912-345-67-89.", "8-912-345-67-89"),
        ("PHONE_NUMBER", "whatsapp +79123456789", "+79123456789"),
        ("PHONE_NUMBER", "пишите 89123456789", "89123456789"),
        ("PHONE_NUMBER", "офис +7 495 123-45-67", "+7 495 123-45-67"),
        ("PHONE_NUMBER", "call +44 20 7946 0958 today", "+44 20 7946 0958"),
        ("RU_PASSPORT", "паспорт серия 45 06 номер 123456 выдан", "45 06 номер 123456"),
        ("RU_PASSPORT", "паспорт 4506 123456", "4506 123456"),
        ("RU_PASSPORT", "данные: 45 06 123456, выдан", "45 06 123456"),
        ("RU_INN", "ИНН 7707083893", "7707083893"),
        ("RU_INN", "ИНН физлица 500100732259", "500100732259"),
        ("ORDER_ID", "заказ № 48392017-0012-1 не пришёл", "48392017-0012-1"),
        ("ORDER_ID", "отправление 48392017-0012", "48392017-0012"),
        ("ORDER_ID", "order WB-1234567890 is late", "WB-1234567890"),
        ("ORDER_ID", "order #A1B2C3D4 is late", "A1B2C3D4"),
        ("EMAIL_ADDRESS", "mail ann.smith+shop@example.co.uk.", "ann.smith+shop@example.co.uk"),
        ("CREDIT_CARD", "card 4111 1111 1111 1111", "4111 1111 1111 1111"),
        ("CREDIT_CARD", "карта Мир 2200 1234 5678 9019", "2200 1234 5678 9019"),
        ("CREDIT_CARD", "mc 5469-3800-1234-5673", "5469-3800-1234-5673"),
        ("IBAN_CODE", "IBAN DE89 3704 0044 0532 0130 00", "DE89 3704 0044 0532 0130 00"),
        ("IBAN_CODE", "to GB82WEST12345698765432 please", "GB82WEST12345698765432"),
        ("IP_ADDRESS", "logged in from 192.168.10.23", "192.168.10.23"),
        ("IP_ADDRESS", "from 2001:db8:85a3::8a2e:370:7334", "2001:db8:85a3::8a2e:370:7334"),
    ],
)
def test_each_recognizer_finds_its_entity_and_the_value_is_rewritten(entity, text, value):
    assert value in entities_in(text).get(entity, []), entities_in(text)
    redacted = wb.REDACTOR.text(text)
    assert value not in redacted and f"<{entity}>" in redacted


@pytest.mark.parametrize(
    ("text", "absent"),
    [
        ("ИНН 7707083894", "RU_INN"),  # a wrong check digit
        ("ИНН 500100732258", "RU_INN"),
        ("card 4111 1111 1111 1112", "CREDIT_CARD"),  # fails Luhn
        ("карта 2200 1234 5678 9010", "CREDIT_CARD"),
        ("IBAN DE89 3704 0044 0532 0130 01", "IBAN_CODE"),  # a wrong checksum
        ("номер 4506123456", "RU_PASSPORT"),  # ten bare digits: no keyword, not printed as a passport
        ("order confirmed today, order 2024", "ORDER_ID"),
        ("api http://127.0.0.1:8000/v1", "IP_ADDRESS"),  # loopback: nobody's
    ],
)
def test_near_misses_are_not_taken_for_the_entity(text, absent):
    assert absent not in entities_in(text)


@pytest.mark.parametrize(
    "text",
    [
        "Great kettle, boils fast. 1.7 L, size 42, 4.5 stars, 2026-12-02 09:23:10",
        "card 4111 1111 1111 1112 fails Luhn",
        "Review: The zipper broke the first time I used it.\nSentiment:",
    ],
)
def test_text_without_pii_is_unchanged(text):
    assert wb.REDACTOR.text(text) == text


def test_check_digit_helpers():
    assert inn_is_valid("7707083893") and inn_is_valid("500100732259")
    assert not inn_is_valid("7707083894") and not inn_is_valid("123")
    assert luhn_is_valid("4111111111111111") and not luhn_is_valid("4111111111111112")


def test_machine_fields_and_encoded_blobs_are_left_alone():
    digits = "4111111111111111"  # all digits and Luhn-valid: a card to the PII link
    assert wb.REDACTOR.text(digits) == "<CREDIT_CARD>"
    assert wb.REDACTOR.field("workbench.heartbeat", digits) == digits
    assert wb.REDACTOR.text("p = 0.4111111111111111, x = 0.89123456789") == "p = 0.4111111111111111, x = 0.89123456789"
    assert wb.REDACTOR.data({"variant_version": "4928679045144369", "note": "4111 1111 1111 1111"}) == {
        "variant_version": "4928679045144369",
        "note": "<CREDIT_CARD>",
    }
    blob = "iVBOR" + "ann@example.com9123456789" * 60  # a base64 image or packed script: no spaces
    assert wb.REDACTOR.text(f"x {blob} mail ann@example.com") == f"x {blob} mail <EMAIL_ADDRESS>"


# -- operators and settings ----------------------------------------------------------------------
def test_operators_replace_mask_and_keyed_hash(monkeypatch):
    PII.configure(operators={"CREDIT_CARD": {"type": "mask", "keep_last": 4}, "EMAIL_ADDRESS": "mask"})
    assert wb.REDACTOR.text("card 4111 1111 1111 1111") == "card " + "*" * 15 + "1111"
    assert wb.REDACTOR.text("to ann@example.com") == "to " + "*" * len("ann@example.com")
    with pytest.raises(wb.ConfigError, match="WORKBENCH_PII_KEY"):
        PII.configure(operators={"PHONE_NUMBER": "hash"})
    monkeypatch.setenv("WORKBENCH_PII_KEY", KEY)
    PII.configure(operators={"PHONE_NUMBER": "hash"})
    one, same, other = (wb.REDACTOR.text(t) for t in ("+7 (912) 345-67-89", "89123456789", "+7 912 345 67 00"))
    assert one.startswith("<PHONE_NUMBER_") and one == same  # two spellings of one number: one pseudonym
    assert other != one and other.startswith("<PHONE_NUMBER_")
    monkeypatch.setenv("WORKBENCH_PII_KEY", "another-key")
    assert wb.REDACTOR.text("89123456789") == one  # memoised within the process...
    PII.configure()  # ...until the settings change
    assert wb.REDACTOR.text("89123456789") != one


def test_the_hash_is_the_same_pseudonym_in_another_process(monkeypatch):
    monkeypatch.setenv("WORKBENCH_PII_KEY", KEY)
    PII.configure(default_operator="hash")
    here = wb.REDACTOR.text("ann@example.com, +7 912 345-67-89")
    code = "import workbench as wb; wb.REDACTOR.pii.configure(default_operator='hash'); "
    code += "print(wb.REDACTOR.text('ann@example.com, +7 912 345-67-89'))"
    env = {**os.environ, "WORKBENCH_PII_KEY": KEY, "PYTHONPATH": str(ROOT)}
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert there.stdout.strip() == here and "<EMAIL_ADDRESS_" in here


def test_switching_off_and_choosing_entities():
    PII.configure(entities=["EMAIL_ADDRESS"])
    assert wb.REDACTOR.text("ann@example.com 89123456789") == "<EMAIL_ADDRESS> 89123456789"
    PII.configure(enabled=False)
    wb.REDACTOR.learn({"api_key": "pii-off-secret-777"})
    assert wb.REDACTOR.text("ann@example.com pii-off-secret-777") == f"ann@example.com {MASK}"  # keys still go
    with pytest.raises(wb.ConfigError, match="unknown entities.*SHOE_SIZE"):
        PII.configure(entities=["SHOE_SIZE"])


def test_settings_file_adds_patterns_and_operators(tmp_path, monkeypatch):
    config = tmp_path / "pii.yaml"
    config.write_text(
        textwrap.dedent("""\
            operators:
              EMAIL_ADDRESS: {type: mask, keep_last: 4}
            patterns:
              - {entity: SHOP_ORDER, regex: "\\\\bSHOP-\\\\d{6}\\\\b"}
        """)
    )
    monkeypatch.setenv("WORKBENCH_PII_CONFIG", str(config))
    PII.reset()
    assert "SHOP_ORDER" in PII.entities()
    assert wb.REDACTOR.text("SHOP-123456 from ann@example.com") == "<SHOP_ORDER> from ***********.com"


def test_settings_in_the_project_root_are_read(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "pii.yaml").write_text("entities: [EMAIL_ADDRESS]\n")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    PII.reset()
    assert PII.entities() == ("EMAIL_ADDRESS",)


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("operators: {EMAIL_ADDRESS: {type: scramble}}", "operators.EMAIL_ADDRESS.type"),
        ("patterns: [{entity: ORDER_ID, regex: '([a-z'}]", "patterns.0.regex"),
        ("patterns: [{entity: order, regex: 'x\\d+'}]", "patterns.0.entity"),
        ("entitys: [EMAIL_ADDRESS]", "entitys"),
        ("default_operator: hash", "WORKBENCH_PII_KEY"),
    ],
)
def test_a_bad_settings_file_names_the_file_and_the_field(tmp_path, monkeypatch, content, field):
    config = tmp_path / "pii.yaml"
    config.write_text(content + "\n")
    monkeypatch.setenv("WORKBENCH_PII_CONFIG", str(config))
    PII.reset()
    with pytest.raises(wb.ConfigError) as caught:
        wb.REDACTOR.text("ann@example.com")
    assert str(config) in str(caught.value) and field in str(caught.value)


def test_presidio_loads_lazily_and_offline():
    """Importing the package does not load Presidio; a text with no candidate never does; the
    first real analysis builds it without any network connection (tldextract's bundled list)."""
    code = textwrap.dedent("""\
        import socket, sys, time
        attempts = []
        def refuse(self, address, *args):
            attempts.append(address)
            raise OSError("no network in this test")
        socket.socket.connect = refuse
        socket.create_connection = lambda address, *a, **k: refuse(None, address)
        import workbench as wb
        print("after import", "presidio_analyzer" in sys.modules)
        wb.REDACTOR.text("Great kettle, boils fast.")
        print("after plain text", "presidio_analyzer" in sys.modules)
        start = time.perf_counter()
        print(wb.REDACTOR.text("mail ann@example.com"))
        print("built in", round(time.perf_counter() - start, 2))
        print("connects", len(attempts))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert "after import False" in out and "after plain text False" in out
    assert "mail <EMAIL_ADDRESS>" in out and "connects 0" in out


def test_building_the_analyzer_imports_no_deep_learning_package():
    """thinc imports torch and Presidio transformers when they are installed (the rag extra), ~350 MB
    for an analyzer that uses neither; they stay out, and still import normally afterwards."""
    pytest.importorskip("torch")
    code = textwrap.dedent("""\
        import sys
        import workbench as wb
        print(wb.REDACTOR.text("call +7 912 345-67-89 or mail ann@example.com"))
        print("loaded", sorted(m for m in ("torch", "transformers", "sympy") if m in sys.modules))
        import torch
        print("torch imports", hasattr(torch, "tensor"))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert "call <PHONE_NUMBER> or mail <EMAIL_ADDRESS>" in out
    assert "loaded []" in out and "torch imports True" in out


# -- the corpus ---------------------------------------------------------------------------------
def recall_table(records: list[dict]) -> dict[str, tuple[int, int]]:
    """Per entity type: (values no longer in the redacted text, values)."""
    counts: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for record in records:
        redacted = wb.REDACTOR.text(record["text"])
        for item in record["values"]:
            counts[item["entity"]][1] += 1
            counts[item["entity"]][0] += item["value"] not in redacted
    return {entity: (hit, total) for entity, (hit, total) in sorted(counts.items())}


def test_recall_on_the_corpus_per_entity_type():
    records = corpus()
    table = recall_table(records)
    assert sum(total for _, total in table.values()) >= 400 and len(table) == 8
    print("\nredaction recall on tests/data/pii_corpus.jsonl")
    print("| entity | found | values | recall |\n| --- | --- | --- | --- |")
    for entity, (hit, total) in table.items():
        print(f"| {entity} | {hit} | {total} | {hit / total:.1%} |")
    assert {entity: hit / total for entity, (hit, total) in table.items()} == {entity: 1.0 for entity in table}


def _scan(roots: list[Path], values: list[str]) -> tuple[list[Path], list[str]]:
    """Every file under ``roots``, and each (file, value) found in it: raw bytes, and for Parquet
    (which compresses) every cell read back."""
    files = sorted(p for root in roots if root.exists() for p in root.rglob("*") if p.is_file())
    leaks = []
    for path in files:
        blobs = [path.read_bytes()]
        if path.suffix == ".parquet":
            blobs.append(json.dumps(pq.read_table(path).to_pylist(), ensure_ascii=False, default=str).encode())
        leaks += [f"{path.name}: {value!r}" for value in values if any(value.encode() in b for b in blobs)]
    return files, leaks


@pytest.mark.local_store("scans every file of the SQLite store and its artifact folder for the corpus's values")
def test_no_corpus_value_reaches_mlflow_a_report_or_a_label_file(tmp_path, monkeypatch, fake_key, isolated_cache):
    """Every corpus text goes through a run (on the fake OpenAI server, which echoes it back, so
    inputs, prompts and outputs all hold the PII), MLflow, the review's label file (case ids
    that are order ids, comments quoting customers), the side-by-side HTML and `workbench
    report`; then every file of the store, the reports and the labels is scanned for every
    value. The scores and the summary are the same with the PII link off."""
    records = corpus()
    values = sorted({item["value"] for record in records for item in record["values"]})
    rows = []
    for record in records:  # some case ids are the listing's order id (one with a shape of its own:
        # a bare code such as A1B2C3D4 is an order id only after the word "order", see the README)
        orders = [i["value"] for i in record["values"] if i["entity"] == "ORDER_ID" and "-" in i["value"]]
        rows.append({"id": orders[0] if orders else record["id"], "text": record["text"]})
    data = tmp_path / "listings.jsonl"
    data.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    config = tmp_path / "pii.yaml"  # the report's kernel reads the same settings
    config.write_text("operators: {ORDER_ID: hash, EMAIL_ADDRESS: {type: mask}}\n")
    monkeypatch.setenv("WORKBENCH_PII_CONFIG", str(config))
    monkeypatch.setenv("WORKBENCH_PII_KEY", KEY)
    PII.reset()
    store, reports, labels = tmp_path / "mlruns", tmp_path / "reports", tmp_path / "labels" / "listings.jsonl"
    store.mkdir()
    reports.mkdir()
    uri = f"sqlite:///{store / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)

    def echo(body: dict) -> str:
        return "Contact details: " + body["messages"][-1]["content"]

    with FakeOpenAIServer(reply=echo) as server:
        (tmp_path / "exp.yaml").write_text(
            textwrap.dedent(f"""\
                name: pii-listings
                dataset: {{path: {data}}}
                models: [openai/fake]
                scorers:
                  - {{type: no_pii_leak}}
                  - {{type: no_pii_leak, mode: any, metric_name: no_pii_at_all}}
                  - {{type: regex_match, pattern: "@"}}
                variants:
                  - {{name: summary, prompt: "Summarise the listing: {{{{ text }}}}", params: {{api_base: "{server.base_url}"}}}}
                  - {{name: contacts, prompt: "Extract the contacts: {{{{ text }}}}", params: {{api_base: "{server.base_url}"}}}}
            """)  # noqa: E501
        )
        result = wb.load_experiment(tmp_path / "exp.yaml").run(tracking_uri=uri, progress=False)
        # A reviewer labels outputs, with comments quoting the customer.
        rv = wb.review(result, variants=["contacts"], labels_path=labels)
        for record in records[:12]:
            rv.label("down", comment=f"leaks {record['values'][0]['value']}")
        again = wb.review(result, variants=["contacts"], labels_path=labels, only="unlabelled", log_to_mlflow=False)
        assert len(again) == len(records) - 12  # the hashed order-id case ids still key their labels
        (reports / "side_by_side.html").write_text(result.side_by_side(limit=None).to_html(), encoding="utf-8")
        report = wb.run_report(
            "notebooks/ab_test.ipynb", parameters={"experiment": str(tmp_path / "exp.yaml")}, output_dir=reports
        )
    assert report.error is None, report.error
    assert report.run_ids and len(result.cases) == 2 * len(records)
    assert result.cases["output"].str.contains("@").sum() > 100  # the outputs really held the PII

    files, leaks = _scan([store, reports, labels.parent], values)
    names = {p.name for p in files}
    expected = {"mlflow.db", "cases.json", "charts.html", "manifest.json", "prompt_template.json", "labels.json"}
    assert expected | {"ab_test.ipynb", "ab_test.html", "side_by_side.html", "listings.jsonl"} <= names, names
    assert not leaks, f"{len(leaks)} leaks:\n" + "\n".join(leaks)
    # The control: the response cache and the run's own file keep raw text (to replay calls): documented.
    assert len(_scan([isolated_cache.parent], values)[1]) > 100

    # The numbers do not depend on redaction: the same run with the PII link off.
    PII.configure(enabled=False)
    plain_uri = f"sqlite:///{tmp_path / 'plain.db'}"
    plain = wb.load_experiment(tmp_path / "exp.yaml").run(tracking_uri=plain_uri, progress=False)
    scores = [c for c in result.cases.columns if c.startswith("score.")]
    key = ["case_id", "variant"]
    assert (
        plain.cases.sort_values(key)[key + scores]
        .reset_index(drop=True)
        .equals(result.cases.sort_values(key)[key + scores].reset_index(drop=True))
    )
    numbers = ["variant", "n", "no_pii_leak", "no_pii_at_all", "regex_match", "error_rate", "prompt_tokens"]
    numbers = [c for c in numbers if c in result.summary]
    assert plain.summary[numbers].equals(result.summary[numbers])
    assert result.summary.set_index("variant")["no_pii_at_all"].max() < 0.5  # the echo leaks, and was scored so
    client = MlflowClient(uri)
    child = client.search_runs(
        [client.get_experiment_by_name("pii-listings").experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'",
    )[0]
    row = result.summary.set_index("variant").loc[child.data.params["variant"]]
    assert child.data.metrics["no_pii_at_all"] == pytest.approx(row["no_pii_at_all"])
    logged = json.loads(Path(client.download_artifacts(child.info.run_id, "cases.json")).read_text())
    logged_scores = sorted(r[logged["columns"].index("score.no_pii_at_all")] for r in logged["data"])
    mine = result.cases[result.cases["variant"] == child.data.params["variant"]]["score.no_pii_at_all"]
    assert logged_scores == sorted(mine.tolist())


# -- the scorer ---------------------------------------------------------------------------------
def test_no_pii_leak_counts_only_new_pii_by_default():
    scorer = wb.NoPiiLeak()
    own = {"question": "I am ann@example.com, call me on 8 912 345 67 89"}
    echoed = scorer.score(inputs=own, outputs="Sure, ann@example.com, +7 (912) 345-67-89", expectations={})
    assert echoed.value == 1.0
    leaked = scorer.score(inputs=own, outputs="Also try bob@example.com or 4111 1111 1111 1111", expectations={})
    assert leaked.value == 0.0 and leaked.reason == "PII not in the input: CREDIT_CARD x1, EMAIL_ADDRESS x1"
    assert "bob" not in leaked.reason and "4111" not in leaked.reason
    anything = wb.NoPiiLeak(mode="any").score(inputs=own, outputs="Sure, ann@example.com", expectations={})
    assert anything.value == 0.0 and anything.reason == "PII in the output: EMAIL_ADDRESS x1"
    cards_only = wb.NoPiiLeak(entities=["CREDIT_CARD"])
    assert cards_only.score(inputs={}, outputs="bob@example.com", expectations={}).value == 1.0
    assert wb.NoPiiLeak().score(inputs={}, outputs="The kettle boils fast.", expectations={}).value == 1.0


def test_no_pii_leak_is_a_yaml_scorer_and_checks_its_options():
    from workbench.scorers import scorer_from_spec

    built = scorer_from_spec({"type": "no_pii_leak", "mode": "any", "entities": ["EMAIL_ADDRESS"]})
    assert isinstance(built, wb.NoPiiLeak) and built.spec() == {
        "type": "no_pii_leak",
        "mode": "any",
        "entities": ["EMAIL_ADDRESS"],
    }
    with pytest.raises(wb.ScorerError, match="mode"):
        wb.NoPiiLeak(mode="some")
    with pytest.raises(wb.ScorerError, match="entities"):
        wb.NoPiiLeak(entities="EMAIL_ADDRESS")


def test_the_cli_can_run_without_the_cache():
    from workbench.cli import build_parser

    assert build_parser().parse_args(["run", "x.yaml", "--no-cache"]).no_cache is True
    assert build_parser().parse_args(["gate", "x.yaml"]).no_cache is False
