"""The one redaction chain, and the HTML templates that pass every value through it."""

import math

import pandas as pd
import pytest

import workbench as wb
from workbench.core.html import render
from workbench.core.redaction import MASK, Redactor, is_secret, secret_values, without_secrets


@pytest.mark.parametrize("key", ["api_key", "API-KEY", "x-api-key", "Authorization", "token", "access_token",
                                 "aws_secret_access_key", "password", "Cookie"])  # fmt: skip
def test_credential_keys_are_recognised(key):
    assert is_secret(key)


@pytest.mark.parametrize("key", ["max_tokens", "temperature", "stop", "top_p", "response_format"])
def test_model_params_are_not_credentials(key):
    assert not is_secret(key)


def test_keys_are_masked_at_any_depth_and_known_values_everywhere():
    redactor = Redactor()
    params = {"temperature": 0, "extra_headers": {"Authorization": "Bearer tok-AAAA1111", "X-Trace": "t1"},
              "nested": [{"auth": {"token": "zz-nested-secret"}}]}  # fmt: skip
    redactor.learn(params)
    masked = redactor.data(params)
    assert masked["extra_headers"] == {"Authorization": MASK, "X-Trace": "t1"}
    assert masked["nested"] == [{"auth": {"token": MASK}}] and masked["temperature"] == 0
    text = redactor.text("calling with tok-AAAA1111 failed; token zz-nested-secret refused")
    assert "tok-AAAA1111" not in text and "zz-nested-secret" not in text and text.count(MASK) == 2
    assert without_secrets(params) == {"temperature": 0, "extra_headers": {"X-Trace": "t1"}, "nested": [{"auth": {}}]}
    assert secret_values({"a": {"api_key": "short"}}) == set()  # too short to search for in text


def test_environment_secrets_and_key_shaped_text_are_masked(monkeypatch):
    monkeypatch.setenv("ACME_API_KEY", "acme-env-secret-123")
    redactor = Redactor()
    text = redactor.text("env acme-env-secret-123, never seen sk-abcdefghijklmnopqrstu and Bearer abc.def-123456")
    assert "acme-env-secret-123" not in text and "sk-abcdefghijklmnopqrstu" not in text
    assert "abc.def-123456" not in text and text.startswith("env ***")


def test_a_frame_is_redacted_cell_by_cell_and_a_new_link_joins_the_chain():
    redactor = Redactor()
    redactor.learn({"api_key": "frame-secret-99"})

    class Emails:
        def redact_text(self, text: str) -> str:
            return text.replace("ann@example.com", "<email>")

    redactor.add(Emails())
    frame = pd.DataFrame({"output": ["ok frame-secret-99", None, "mail ann@example.com"], "n": [1, 2, 3]})
    out = redactor.frame(frame)
    arrow = pd.DataFrame(  # the engine's results table holds Arrow-backed strings, on any index
        {"output": pd.array(["ok frame-secret-99", None, "clean"], dtype=pd.StringDtype("pyarrow"))}, index=[7, 8, 9]
    )
    assert redactor.frame(arrow)["output"].tolist()[::2] == ["ok ***", "clean"]
    assert redactor.frame(arrow[arrow["output"] == "clean"]) is not None
    clean = arrow.iloc[2:]
    assert redactor.frame(clean) is clean  # nothing to mask: no copy
    assert out["output"].tolist()[0] == "ok ***" and out["output"].tolist()[2] == "mail <email>"
    assert out["output"].isna().tolist()[1] and out["n"].tolist() == [1, 2, 3]
    assert frame["output"].tolist()[0] == "ok frame-secret-99"  # a copy: the caller's frame is untouched


def test_variant_repr_version_and_to_dict_keep_the_key_out():
    plain = wb.PromptVariant(name="v", prompt="{{ x }}", params={"temperature": 0})
    keys = {"api_key": "sk-repr-CANARY-1", "extra_headers": {"x-api-key": "hdr-CANARY-2"}}
    keyed = wb.PromptVariant(name="v", prompt="{{ x }}", params={"temperature": 0, **keys})
    assert "CANARY" not in repr(keyed) and "temperature" in repr(keyed)
    other = {"api_key": "sk-other-key-9", "extra_headers": {"x-api-key": "hdr-other"}}
    other_keys = wb.PromptVariant(name="v", prompt="{{ x }}", params={"temperature": 0, **other})
    assert keyed.version == other_keys.version  # the hash never depends on a credential's value
    assert plain.version != wb.PromptVariant(name="v", prompt="{{ x }}!").version
    assert keyed.to_dict(redacted=True)["params"]["extra_headers"] == {"x-api-key": MASK}
    assert keyed.to_dict()["params"]["api_key"] == "sk-repr-CANARY-1"  # the call itself still gets it


def test_templates_escape_and_redact_every_value():
    wb.REDACTOR.learn({"api_key": "tpl-secret-4242"})
    html = render("message.html.j2", text="<script>alert(1)</script> tpl-secret-4242")
    assert "<script>" not in html and "&lt;script&gt;" in html and "tpl-secret-4242" not in html
    frame = pd.DataFrame({"variant": ["<b>x</b>"], "score": [math.nan]})
    result_html = render("result.html.j2", name="<i>exp</i>", calls=1, table=wb.core.html.frame_html(frame), notes=[])
    assert "<i>exp</i>" not in result_html and "<b>x</b>" not in result_html
