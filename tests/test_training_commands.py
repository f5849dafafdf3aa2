"""The functions behind ``pmfnas record`` and ``pmfnas search --train``, at toy sizes."""
import argparse

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks.oracle import TabularOracle  # noqa: E402
from benchmarks.spaces.nb201 import NB201Space  # noqa: E402
from benchmarks.tabular import TabularBenchmark  # noqa: E402
from benchmarks.training.commands import add_trainer_arguments, record, search, trainer_from_args  # noqa: E402

ARCHS = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
         "|avg_pool_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|nor_conv_1x1~2|"]
TOY = ["--epochs", "2", "--C", "4", "--N", "1", "--batch-size", "32", "--train-size", "96", "--valid-size", "64",
       "--test-size", "32", "--device", "cpu"]


def parse(argv):
    parser = argparse.ArgumentParser()
    add_trainer_arguments(parser)
    return parser.parse_args(argv)


def test_record_writes_a_table(tmp_path):
    oracle = trainer_from_args(parse(TOY + ["--checkpoint-dir", str(tmp_path / "ckpt")]))
    lines = []
    record(oracle, ARCHS, tmp_path / "rec.npz", progress=lines.append)
    table = TabularBenchmark.load(tmp_path / "rec.npz")
    assert table.arch_ids.tolist() == ARCHS and table.epochs.tolist() == [1, 2] and len(lines) == 2
    assert np.isfinite(table.curves["valid"]).all() and np.isfinite(table.curves["test"]).all()
    # Restarting the recording on the same checkpoints trains nothing again.
    again = trainer_from_args(parse(TOY + ["--checkpoint-dir", str(tmp_path / "ckpt"), "--resume"]))
    assert again.evaluate(ARCHS[0], 2).cost == 0.0


def test_search_runs_and_records(tmp_path):
    pytest.importorskip("search.registry")
    oracle = trainer_from_args(parse(TOY + ["--fidelities", "1,2"]))
    result = search(oracle, "random", budget=1e6, seed=3, max_jobs=2, record_to=tmp_path / "s.npz")
    assert len(result.trace) == 2 and result.chosen_arch is not None
    replay = TabularOracle(TabularBenchmark.load(tmp_path / "s.npz"), NB201Space(), repeat=0)
    assert replay.evaluate(result.chosen_arch, 2).value == result.chosen_value


def test_cli_record_and_real_search_on_cpu(tmp_path, capsys):
    from harness.cli import main

    table_path = tmp_path / "recorded.npz"
    common = ["--epochs", "2", "--C", "4", "--N", "1", "--train-size", "128", "--valid-size", "128",
              "--test-size", "64", "--batch-size", "64", "--device", "cpu"]
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    assert main(["record", arch, "--out", str(table_path), *common]) == 0
    from benchmarks.tabular import TabularBenchmark
    table = TabularBenchmark.load(table_path)
    assert table.arch_ids.tolist() == [arch] and table.epochs.tolist() == [1, 2]
    capsys.readouterr()
    assert main(["search", "--train", "fashion-mnist", "--method", "random", "--budget", "3600", "--max-jobs", "2",
                 *common]) == 0
    captured = capsys.readouterr()
    assert "of budget]" in captured.err and "chosen: |" in captured.out
