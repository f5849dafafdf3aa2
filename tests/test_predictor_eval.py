"""predictor-eval: the bounded test set, the progress bar and summary.md."""
import pandas as pd
import pytest

from harness.cli import main
from harness.predictor_eval import evaluate_predictors
from tests.conftest import synthetic_table


@pytest.fixture(scope="module")
def table():
    return synthetic_table(n_archs=120, n_epochs=27, seed=5)


def test_max_test_bounds_the_test_set_to_a_seeded_sample(table):
    full = evaluate_predictors(table, fractions=(0.2,), train_archs=20, seeds=2)
    bounded = evaluate_predictors(table, fractions=(0.2,), train_archs=20, seeds=2, max_test=30)
    again = evaluate_predictors(table, fractions=(0.2,), train_archs=20, seeds=2, max_test=30)
    assert set(full["n_test"]) == {100} and set(bounded["n_test"]) == {30}
    pd.testing.assert_frame_equal(bounded, again)
    # Another sample of the test set gives other scores; the training set (and so the forest) is the same.
    assert not bounded["mae"].equals(full["mae"])


@pytest.mark.parametrize("max_test", [0, -3, 2.5, True])
def test_max_test_must_be_a_positive_int(table, max_test):
    with pytest.raises(ValueError, match=f"max_test={max_test!r} must be a positive number"):
        evaluate_predictors(table, fractions=(0.2,), train_archs=20, seeds=1, max_test=max_test)


def test_progress_bar_goes_to_stderr(table, capsys):
    evaluate_predictors(table, fractions=(0.2, 0.5), train_archs=20, seeds=2, progress=True)
    captured = capsys.readouterr()
    assert "predictor-eval" in captured.err and "6/6" in captured.err and captured.out == ""


def test_cli_max_test_and_summary_md(tmp_path, capsys, table):
    path = tmp_path / "t.npz"
    table.save(path)
    out = tmp_path / "pe"
    assert main(["predictor-eval", "--benchmark", str(path), "--fraction", "0.2,0.5", "--train-archs", "20",
                 "--seeds", "2", "--max-test", "25", "--out", str(out), "--quiet"]) == 0
    results = pd.read_csv(out / "results.csv")
    assert set(results["n_test"]) == {25} and len(results) == 2 * 2 * 3
    summary = (out / "summary.md").read_text()
    assert f"--max-test 25 --out {out}" in summary and "2 seeds" in summary and "; 25 test architectures per seed" in summary
    table_rows = [line for line in summary.splitlines() if line.startswith("| 0.")]
    assert [row.split(" | ")[:2] for row in table_rows] == [
        ["| 0.2", p] for p in ("forest", "last_value", "power_law")] + [["| 0.5", p] for p in ("forest", "last_value", "power_law")]
    forest = results[(results["predictor"] == "forest") & (results["fraction"] == 0.2)]["spearman"]
    assert f"{forest.mean():.3f} ± {forest.std():.3f}" in table_rows[0]
    assert main(["predictor-eval", "--benchmark", str(path), "--max-test", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--max-test: must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
