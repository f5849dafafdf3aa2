"""``pmfnas record`` and ``pmfnas search --train`` at toy sizes, and record -> replay through the command line."""
import argparse

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks.tabular import TabularBenchmark  # noqa: E402
from benchmarks.training.commands import add_trainer_arguments, record, trainer_from_args  # noqa: E402
from harness.cli import main  # noqa: E402
from harness.journal import read_journal  # noqa: E402

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


def jobs_of(journal_path):
    journal = read_journal(journal_path)
    return [(job.arch, job.epochs, job.resume, *where) for job, where in zip(journal.submitted, journal.dispatched)]


@pytest.mark.parametrize("method", ["asha", "random"])
def test_a_real_search_replays_job_for_job_from_its_recording_through_the_cli(tmp_path, capsys, method):
    """One seeding rule: ``search --train ... --record T --seed S`` then ``search --benchmark T --seed S`` agree."""
    real, replay, table = tmp_path / "real.jsonl", tmp_path / "replay.jsonl", tmp_path / "recorded.npz"
    common = ["--method", method, "--seed", "3", "--budget", "1e6", "--max-jobs", "7", "--quiet"]
    assert main(["search", "--train", "fashion-mnist", *TOY, "--epochs", "4", "--fidelities", "1,2,4",
                 "--record", str(table), "--journal", str(real), *common]) == 0
    assert main(["search", "--benchmark", str(table), "--journal", str(replay), *common]) == 0
    capsys.readouterr()
    assert len(jobs_of(real)) == 7
    assert jobs_of(replay) == jobs_of(real)
    assert [e.evaluation.values.tolist() for e in read_journal(replay).completions] == \
        [e.evaluation.values.tolist() for e in read_journal(real).completions]


def test_cli_record_and_real_search_on_cpu(tmp_path, capsys):
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


@pytest.mark.parametrize("processes", [False, True])
def test_a_real_cpu_search_returns_within_an_epoch_of_its_deadline(tmp_path, processes):
    import time

    from benchmarks.training.factory import TrainerFactory
    from harness.runner import Runner
    from harness.workers import ProcessPool, ThreadedPool
    from search.base import Problem
    from search.registry import make_searcher

    # 400 epochs: a toy epoch takes about 0.07 s on an idle 2-core CPU, so a job outlasts the 3 s budget many
    # times over (with 40, two jobs finished inside it in a CI run).
    oracle = trainer_from_args(parse(TOY + ["--epochs", "400", "--checkpoint-dir", str(tmp_path)]))
    if processes:
        factory = TrainerFactory(oracle.config, str(tmp_path), fidelities=oracle.fidelities, num_threads=1)
        pool = ProcessPool(factory, 2, oracle=factory.trainer())
    else:
        pool = ThreadedPool(oracle, 2)
    searcher = make_searcher("random", Problem(oracle.space, oracle.fidelities, True), np.random.default_rng(0))
    budget = 3.0
    started = time.monotonic()
    try:
        result = Runner(searcher, pool, budget).run()
        took = time.monotonic() - started
    finally:
        pool.shutdown()
    assert result.stopped_because == "budget" and result.time_used >= budget
    # Both jobs were stopped, never counted, and the run ended within about one epoch of the deadline.
    assert len(result.trace) == 2 and not result.trace["counted"].any()
    assert took < budget + 1.5 and result.time_used < budget + 1.5
