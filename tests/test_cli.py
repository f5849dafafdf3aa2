import subprocess
import sys

import pytest

from benchmarks.tabular import TabularBenchmark
from harness.cli import main


def test_info_nb201_final(capsys):
    assert main(["benchmark", "info", "nb201-final:cifar10-valid"]) == 0
    out = capsys.readouterr().out
    assert "15625" in out and "higher is better" in out and "91.6067" in out
    assert "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|" in out


def test_info_nbnlp(capsys):
    assert main(["benchmark", "info", "nbnlp-wt2"]) == 0
    out = capsys.readouterr().out
    assert "344" in out and "lower is better" in out and "valid_loss" in out and "failed runs" in out


def test_convert_then_info_on_the_file(tmp_path, capsys, raw_nbnlp_logs):
    target = tmp_path / "nlp.npz"
    assert main(["benchmark", "convert", "nbnlp-wt2", str(raw_nbnlp_logs), "--out", str(target)]) == 0
    table = TabularBenchmark.load(target)
    assert len(table) == 344 and table.failed.sum() == 4
    capsys.readouterr()
    assert main(["benchmark", "info", str(target)]) == 0
    assert "nbnlp-wt2" in capsys.readouterr().out


def test_convert_nb201_final_to_directory(tmp_path):
    target = tmp_path / "c100"
    assert main(["benchmark", "convert", "nb201-final", "--dataset", "cifar100", "--out", str(target)]) == 0
    table = TabularBenchmark.load(target)
    assert table.epochs.tolist() == [200] and len(table) == 15625


@pytest.mark.parametrize("argv, message", [
    (["benchmark", "info", "no-such-benchmark"], "neither a built-in name"),
    (["benchmark", "convert", "nb201-final", "--dataset", "mnist", "--out", "X.npz"], "dataset 'mnist' is not one of"),
    (["benchmark", "convert", "nbnlp-wt2", "/absent/logs.zip", "--out", "X.npz"], "NAS-Bench-NLP logs not found"),
])
def test_bad_input_one_error_nonzero_exit_no_output(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("pmfnas: error:") and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_corrupt_table_file(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    assert main(["benchmark", "info", str(bad)]) == 2
    assert "cannot read benchmark" in capsys.readouterr().err


def test_console_script_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "harness.cli", "benchmark", "list"], capture_output=True, text=True)
    assert result.returncode == 0 and "nbnlp-wt2" in result.stdout


def test_search_in_tabular_mode_shows_progress_and_the_choice(capsys):
    assert main(["search", "--benchmark", "nbnlp-wt2", "--method", "asha", "--budget", "50000"]) == 0
    captured = capsys.readouterr()
    assert "of budget]" in captured.err and "best" in captured.err
    assert captured.out.startswith("chosen: ") and "stopped because: budget" in captured.out


def test_search_needs_exactly_one_mode(capsys):
    assert main(["search", "--budget", "10"]) == 2
    assert "exactly one of --benchmark" in capsys.readouterr().err
