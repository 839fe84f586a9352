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
