import pytest

from workbench.cli import main


@pytest.mark.local_model
def test_run_prints_summary_and_verdict(capsys):
    code = main(["run", "experiments/sentiment.yaml", "--limit", "6", "--no-mlflow", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "sentiment: 12 calls (6 cases)" in out
    assert "zero_shot" in out and "few_shot" in out
    assert "verdict: " in out and "on label_match" in out


def test_bad_experiment_file_exits_2_with_a_clear_message(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nvariants: []\n")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"error: {path} is not a valid experiment definition" in err
    assert "key 'dataset': required but missing" in err


def test_ui_prints_the_offline_safe_command(capsys):
    assert main(["ui", "--port", "5001"]) == 0
    out = capsys.readouterr().out
    assert "LITELLM_LOCAL_MODEL_COST_MAP=True" in out and "--port 5001" in out


@pytest.mark.local_model
def test_gate_exits_1_on_a_missed_threshold_and_0_otherwise(capsys):
    args = ["gate", "experiments/sentiment.yaml", "--limit", "12", "--no-mlflow", "--quiet"]
    assert main([*args, "--min", "label_match=0.99"]) == 1
    out = capsys.readouterr().out
    assert "Gate FAILED" in out and "below the threshold 99.0%" in out
    assert "few_shot (candidate) vs zero_shot (baseline)" in out
    assert main([*args, "--min", "label_match=0.5"]) == 0  # the cache makes this re-run free
    assert "Gate passed." in capsys.readouterr().out


def test_gate_rejects_a_malformed_threshold(capsys):
    assert main(["gate", "experiments/sentiment.yaml", "--min", "label_match"]) == 2
    assert "must look like scorer=0.85" in capsys.readouterr().err


def test_cache_info_and_clear(capsys, isolated_cache):
    from workbench.engine.cache import CachedResponse, ResponseCache

    ResponseCache(isolated_cache).put("k", CachedResponse("x", 1, 1, 0.0, 0.1))
    assert main(["cache", "info"]) == 0
    assert f"1 cached responses in {isolated_cache}" in capsys.readouterr().out
    assert main(["cache", "clear"]) == 0
    assert "removed 1 cached responses" in capsys.readouterr().out
    assert len(ResponseCache(isolated_cache)) == 0
