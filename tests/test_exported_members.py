import workbench


def test_all_is_sorted_and_complete():
    assert workbench.__all__ == sorted(workbench.__all__)
    for name in workbench.__all__:
        assert hasattr(workbench, name), name


def test_importing_sets_offline_defaults():
    import os

    assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
