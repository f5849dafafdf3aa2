import json
import re
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.comparison import _TABLES, compare
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
    full = compare(table_path, ["random"], budget=2000, seeds=4, out=out, processes=1)
    # An interruption leaves some runs finished: remove two to stand for the ones that never finished.
    for name in ("random__seed0001.json", "random__seed0003.json"):
        (out / "runs" / name).unlink()
    kept = {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    resumed = compare(table_path, ["random"], budget=2000, seeds=4, out=out, resume=True, processes=1)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir() if p.name in kept} == kept
    assert len(list((out / "runs").iterdir())) == 4
    pd.testing.assert_frame_equal(resumed, full)
    with pytest.raises(ValueError, match="already holds runs; pass --resume"):
        compare(table_path, ["random"], budget=2000, seeds=4, out=out, processes=1)


@pytest.mark.parametrize("interrupt_after_rename", [False, True])
def test_ctrl_c_during_a_record_write_reports_what_is_on_disk(tmp_path, table_path, monkeypatch,
                                                              interrupt_after_rename):
    # Ctrl-C lands while the second run's record is written: before its rename (the record is lost) or just
    # after it (the record is whole). Either way the message's count is the records a --resume will find.
    import harness.comparison as comparison

    real_write, calls = comparison.atomic_write, []

    def write_then_maybe_interrupt(path, data):
        if Path(path).parent.name != "runs":
            return real_write(path, data)
        calls.append(path)
        if len(calls) == 2 and not interrupt_after_rename:
            raise KeyboardInterrupt
        real_write(path, data)
        if len(calls) == 2:
            raise KeyboardInterrupt

    out = tmp_path / "out"
    monkeypatch.setattr(comparison, "atomic_write", write_then_maybe_interrupt)
    with pytest.raises(comparison.ComparisonInterrupted) as interrupted:
        compare(table_path, ["random"], budget=2000, seeds=4, out=out, processes=1)
    on_disk = [p.name for p in (out / "runs").iterdir()]
    assert interrupted.value.kept == len(on_disk) == (2 if interrupt_after_rename else 1)
    assert all(not name.startswith(".") for name in on_disk)


@pytest.mark.parametrize("change, named", [
    ({"budget": 999}, "budget: 2000.0 in the folder, 999.0 now"),
    ({"seeds": 5}, "seeds: [0, 1, 2, 3] in the folder, [0, 1, 2, 3, 4] now"),
    ({"workers": 4}, "workers: 1 in the folder, 4 now"),
    ({"methods": ["random", "asha"]}, "methods: ['random'] in the folder, ['random', 'asha'] now"),
    ({"benchmark": "other"}, "benchmark_sha256: "),
])
def test_resume_refuses_any_other_setting_and_names_it(tmp_path, table_path, change, named):
    out = tmp_path / "out"
    compare(table_path, ["random"], budget=2000, seeds=4, out=out, processes=1)
    settings = json.loads((out / "settings.json").read_text())
    assert settings["benchmark"] == table_path and settings["budget"] == 2000 and settings["workers"] == 1
    assert settings["methods"] == ["random"] and settings["seeds"] == [0, 1, 2, 3]
    assert len(settings["benchmark_sha256"]) == 64 and settings["pmfnas_version"]
    arguments = {"benchmark": table_path, "methods": ["random"], "budget": 2000, "seeds": 4, "workers": 1}
    if change.get("benchmark") == "other":  # the same path, another content
        synthetic_table(n_archs=80, n_epochs=27, seed=1).save(table_path)
        _TABLES.clear()
        change = {}
    arguments.update(change)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(ValueError, match=re.escape(named)):
        compare(**arguments, out=out, resume=True, processes=1)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_resume_of_a_folder_without_settings_is_refused(tmp_path, table_path):
    out = tmp_path / "old"
    compare(table_path, ["random"], budget=2000, seeds=2, out=out, processes=1)
    (out / "settings.json").unlink()
    with pytest.raises(ValueError, match="no settings.json"):
        compare(table_path, ["random"], budget=2000, seeds=2, out=out, resume=True, processes=1)


def test_budget_in_full_evaluations(tmp_path, table_path):
    from benchmarks.tabular import TabularBenchmark
    from harness.comparison import full_evaluation_cost

    unit = full_evaluation_cost(TabularBenchmark.load(table_path))
    runs = compare(table_path, ["random"], budget_evals=7, seeds=2, out=tmp_path / "o", processes=1)
    assert runs["budget"].tolist() == [pytest.approx(7 * unit)] * 2
    settings = json.loads((tmp_path / "o" / "settings.json").read_text())
    assert settings["budget_evals"] == 7 and settings["budget"] == pytest.approx(7 * unit)
    same = compare(table_path, ["random"], budget=7 * unit, seeds=2, processes=1)
    pd.testing.assert_frame_equal(same, runs)
    with pytest.raises(ValueError, match="give the budget once"):
        compare(table_path, ["random"], budget=100, budget_evals=2, seeds=1)


@pytest.mark.parametrize("budget, message", [
    (1.0, "below one full evaluation"), (float("inf"), "finite positive"), (float("nan"), "finite positive"),
    (0.0, "finite positive"),
])
def test_nonsense_budgets_are_refused(tmp_path, table_path, budget, message):
    with pytest.raises(ValueError, match=message):
        compare(table_path, ["random"], budget=budget, seeds=1, out=tmp_path / "o")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("arguments, message", [
    ({"seeds": 2.5}, r"seeds=2.5 must be a positive count or a list of distinct non-negative ints"),
    ({"seeds": True}, r"seeds=True must be"),
    ({"seeds": [0, 0]}, r"seeds=\[0, 0\] must be .* distinct"),
    ({"seeds": [1.7]}, r"seeds=\[1.7\] must be"),
    ({"workers": 1.5}, r"workers=1.5 must be a whole number, at least 1"),
    ({"workers": "2"}, r"workers='2' must be a whole number"),
    ({"workers": True}, r"workers=True must be a whole number"),
    ({"budget": "100000"}, r"budget='100000' must be a finite positive number"),
    ({"budget_evals": True}, r"budget_evals=True must be a finite positive number"),
    ({"resume": True}, r"resume=True continues the runs kept in a folder: give out"),
])
def test_python_arguments_of_the_wrong_kind_are_refused_by_name(table_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        compare(table_path, ["random"], **{"seeds": 1, **arguments})


def test_methods_may_be_one_comma_separated_string(table_path):
    runs = compare(table_path, "random,asha", budget_evals=3, seeds=1, processes=1)
    assert runs["method"].tolist() == ["random", "asha"]


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_text(p.read_text()[:40]), "is not a readable run record"),
    (lambda p: p.write_text('{"anytime": {}, "wall_seconds": 1}'), "is not a run record \\(no row\\)"),
])
def test_resume_names_a_damaged_run_record(tmp_path, table_path, damage, message):
    out = tmp_path / "o"
    compare(table_path, ["random"], budget_evals=3, seeds=2, out=out, processes=1)
    record = out / "runs" / "random__seed0001.json"
    damage(record)
    with pytest.raises(ValueError, match=f"{record}.* {message}.*delete it"):
        compare(table_path, ["random"], budget_evals=3, seeds=2, out=out, processes=1, resume=True)


def test_resume_of_settings_that_are_not_an_object_is_refused(tmp_path, table_path):
    out = tmp_path / "o"
    compare(table_path, ["random"], budget_evals=3, seeds=1, out=out, processes=1)
    (out / "settings.json").write_text("[1]")
    with pytest.raises(ValueError, match="settings.json holds no settings \\(a JSON list, not an object\\)"):
        compare(table_path, ["random"], budget_evals=3, seeds=1, out=out, processes=1, resume=True)


def test_one_fidelity_table_warns_for_multi_fidelity_methods(tmp_path):
    path = tmp_path / "finals.npz"
    synthetic_table(n_archs=60, n_epochs=1).save(path)
    with pytest.warns(UserWarning, match=r"one fidelity only \(epoch 1\), so sh, asha can only run full evaluations"):
        runs = compare(str(path), ["random", "sh", "asha"], budget_evals=5, seeds=3, out=tmp_path / "o", processes=1)
    # The warning is about this: on one fidelity they behave as random search does.
    assert runs.groupby("method")["regret"].apply(tuple).nunique() == 1
    summary = (tmp_path / "o" / "summary.md").read_text()
    assert "**Warning:**" in summary and "one fidelity only" in summary
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compare(str(path), ["random", "rea"], budget_evals=5, seeds=1)  # single-fidelity methods: no warning


def test_a_second_compare_on_a_folder_in_use_fails_at_once(tmp_path, table_path):
    from harness.comparison import folder_lock

    out = tmp_path / "busy"
    out.mkdir()
    with folder_lock(out):  # as a running compare holds it (flock: another open file description)
        started = time.monotonic()
        with pytest.raises(ValueError, match="in use by another pmfnas compare"):
            compare(table_path, ["random"], budget=2000, seeds=2, out=out, processes=1)
        assert time.monotonic() - started < 30
    assert not (out / "runs").exists()
    compare(table_path, ["random"], budget=2000, seeds=2, out=out, processes=1)  # released: it works


def test_outputs_are_readable_by_everyone(tmp_path, table_path):
    out = tmp_path / "modes"
    compare(table_path, ["random"], budget=2000, seeds=2, out=out, processes=2)
    files = [p for p in out.rglob("*") if p.is_file() and p.name != ".lock"]
    assert {"settings.json", "runs.csv", "anytime.csv", "summary.md", "anytime.png", "timing.csv"} <= {
        p.name for p in files}
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o644)}


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
    assert "argument --budget: must be a finite number above 0, got -5" in capsys.readouterr().err
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
