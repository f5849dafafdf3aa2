import pandas as pd
import pytest

from harness.cli import main
from harness.comparison import compare
from tests.conftest import synthetic_table


@pytest.fixture
def table_path(tmp_path):
    path = tmp_path / "synthetic.npz"
    synthetic_table(n_archs=80, n_epochs=27).save(path)
    return str(path)


def test_compare_writes_every_output_and_is_byte_identical(tmp_path, table_path):
    outputs = []
    for name in ("a", "b"):
        out = tmp_path / name
        runs = compare(table_path, ["random", "hyperband", "pmfnas"], budget=3000, seeds=3, out=out, processes=2)
        assert len(runs) == 9 and (runs["regret"] >= 0).all()
        for file in ("runs.csv", "anytime.csv", "summary.md", "anytime.png", "timing.csv"):
            assert (out / file).stat().st_size > 0
        outputs.append(out)
    assert (outputs[0] / "runs.csv").read_bytes() == (outputs[1] / "runs.csv").read_bytes()
    assert (outputs[0] / "anytime.csv").read_bytes() == (outputs[1] / "anytime.csv").read_bytes()
    summary = (outputs[0] / "summary.md").read_text()
    assert "Wilcoxon signed-rank tests at 50% of the budget" in summary and "| pmfnas |" in summary
    runs = pd.read_csv(outputs[0] / "runs.csv")
    assert (runs["simulated_time"] <= 3000 + 1e-9).all()


def test_resume_finishes_only_missing_runs(tmp_path, table_path):
    out = tmp_path / "out"
    compare(table_path, ["random"], budget=2000, seeds=2, out=out, processes=1)
    full = compare(table_path, ["random"], budget=2000, seeds=4, out=tmp_path / "fresh", processes=1)
    first_files = {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    resumed = compare(table_path, ["random"], budget=2000, seeds=4, out=out, resume=True, processes=1)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir() if p.name in first_files} == first_files
    assert len(list((out / "runs").iterdir())) == 4
    pd.testing.assert_frame_equal(resumed, full)
    with pytest.raises(ValueError, match="already holds runs; pass --resume"):
        compare(table_path, ["random"], budget=2000, seeds=4, out=out, processes=1)
    with pytest.raises(ValueError, match="was run with budget 2000.0, not 999.0"):
        compare(table_path, ["random"], budget=999, seeds=4, out=out, resume=True, processes=1)


def test_cli_compare_and_bad_arguments(tmp_path, table_path, capsys):
    out = tmp_path / "cli"
    assert main(["compare", "--benchmark", table_path, "--methods", "random,asha", "--budget", "2000", "--seeds", "2",
                 "--out", str(out), "--quiet"]) == 0
    assert (out / "runs.csv").exists()
    bad = tmp_path / "bad"
    assert main(["compare", "--benchmark", table_path, "--methods", "random,bohb", "--out", str(bad), "--quiet"]) == 2
    assert "unknown method(s) ['bohb']" in capsys.readouterr().err
    assert not bad.exists()
    assert main(["compare", "--benchmark", table_path, "--budget", "-5", "--out", str(bad), "--quiet"]) == 2
    assert "budget=-5.0 must be a positive" in capsys.readouterr().err
    assert not bad.exists()


def test_default_budget_is_a_multiple_of_a_full_evaluation(table_path):
    from benchmarks.tabular import TabularBenchmark
    from harness.comparison import DEFAULT_BUDGET_FULL_EVALUATIONS, default_budget
    import numpy as np

    table = TabularBenchmark.load(table_path)
    assert default_budget(table) == pytest.approx(
        DEFAULT_BUDGET_FULL_EVALUATIONS * np.median(table.full_evaluation_seconds()))


def test_cli_predictor_eval_writes_csv_and_png(tmp_path, capsys, table_path):
    out = tmp_path / "pe"
    assert main(["predictor-eval", "--benchmark", table_path, "--fraction", "0.1,0.5", "--train-archs", "20",
                 "--seeds", "2", "--out", str(out)]) == 0
    results = pd.read_csv(out / "results.csv")
    assert set(results["predictor"]) == {"forest", "last_value", "power_law"}
    assert set(results["fraction"]) == {0.1, 0.5}
    assert (out / "rank_correlation.png").stat().st_size > 0
    assert main(["predictor-eval", "--benchmark", "nb201-final:cifar100", "--out", str(tmp_path / "x")]) == 2
    assert "predictor-eval needs learning curves" in capsys.readouterr().err
