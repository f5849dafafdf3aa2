"""TrainerOracle on the CPU: learning, exact resume, failures, and the table it records."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks.oracle import FidelityOracle, TabularOracle  # noqa: E402
from benchmarks.spaces.nb201 import NB201Space  # noqa: E402
from benchmarks.tabular import TabularBenchmark  # noqa: E402
from benchmarks.training.trainer import TrainerOracle  # noqa: E402
from tests.conftest import fashion_mnist_or_fail  # noqa: E402

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
TINY = dict(C=4, N=1, batch_size=32, max_epochs=4)


@pytest.fixture(scope="module")
def data():
    return fashion_mnist_or_fail(train_size=256, valid_size=128, test_size=128)


def test_two_epochs_learn_and_are_charged(data, tmp_path):
    oracle = TrainerOracle(data=data, checkpoint_dir=tmp_path, C=8, N=1, batch_size=32, max_epochs=2)
    assert isinstance(oracle, FidelityOracle)
    evaluation = oracle.evaluate(BEST, 2)
    record = oracle.records[BEST]
    assert not evaluation.failed and evaluation.reason == ""
    assert evaluation.epochs.tolist() == [1, 2] and evaluation.values.shape == (2,) and evaluation.losses.shape == (2,)
    assert evaluation.cost > 0 and evaluation.cost == pytest.approx(sum(record.seconds))
    assert record.train_loss[1] < record.train_loss[0] < math.log(10) + 0.1
    assert record.train_acc[1] > 20.0  # 10 classes: chance is 10 %
    assert all(math.isfinite(v) for v in record.test_acc + record.valid_loss)
    assert record.n_params > 0
    assert oracle.epochs_trained(BEST) == 2 and oracle.epochs_trained(RESNET) == 0


def test_resume_equals_one_uninterrupted_run(data, tmp_path):
    resumed = TrainerOracle(data=data, checkpoint_dir=tmp_path / "a", **TINY)
    first = resumed.evaluate(BEST, 2)
    second = resumed.evaluate(BEST, 4, start=2)
    fresh = TrainerOracle(data=data, checkpoint_dir=tmp_path / "b", **TINY)
    whole = fresh.evaluate(BEST, 4)
    assert second.epochs.tolist() == [1, 2, 3, 4]
    assert np.array_equal(second.values, whole.values) and np.array_equal(second.losses, whole.losses)
    assert np.array_equal(first.values, whole.values[:2])
    a, b = resumed.load_checkpoint(BEST)["model"], fresh.load_checkpoint(BEST)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    seconds = resumed.records[BEST].seconds
    assert len(seconds) == 4
    assert first.cost == pytest.approx(sum(seconds[:2])) and second.cost == pytest.approx(sum(seconds[2:]))
    # The oracle keeps no account of what was paid: a run from scratch trains from scratch (and, seeded, repeats).
    again = resumed.evaluate(BEST, 3)
    assert again.cost > 0 and np.array_equal(again.values, whole.values[:3])
    # A new oracle on the same directory continues from the checkpoint on disk.
    restarted = TrainerOracle(data=data, checkpoint_dir=tmp_path / "c", **TINY)
    restarted.evaluate(BEST, 2)
    continued = TrainerOracle(data=data, checkpoint_dir=tmp_path / "c", reuse_checkpoints=True, **TINY)
    assert continued.epochs_trained(BEST) == 0  # nothing is known until the architecture is asked for
    tail = continued.evaluate(BEST, 4, start=2)
    assert np.array_equal(tail.values, whole.values) and continued.epochs_trained(BEST) == 4
    assert tail.cost == pytest.approx(sum(continued.records[BEST].seconds[2:]))


def test_divergence_fails_the_trial_not_the_oracle(data, tmp_path):
    oracle = TrainerOracle(data=data, checkpoint_dir=tmp_path, lr=1e6, **TINY)
    evaluation = oracle.evaluate(BEST, 4)
    assert evaluation.failed and evaluation.reason.startswith("diverged")
    assert np.isnan(evaluation.values[-1]) and evaluation.cost > 0
    stop = evaluation.epoch
    assert oracle.epochs_trained(BEST) == stop
    assert oracle.failure_path(BEST).is_file()  # kept beside the checkpoint, for whoever records the run
    with pytest.raises(ValueError, match="cannot be continued|completed"):  # a failed run cannot be trained further
        oracle.evaluate(BEST, 4, start=max(stop - 1, 1))


def test_exceptions_and_oom_are_reported(data, tmp_path, monkeypatch):
    oracle = TrainerOracle(data=data, checkpoint_dir=tmp_path, **TINY)
    real = oracle._train_epoch
    calls = {"n": 0}

    def flaky(state, split):
        if state[0].arch == BEST:
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("boom")
        if state[0].arch == RESNET:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(state, split)

    monkeypatch.setattr(oracle, "_train_epoch", flaky)
    evaluation = oracle.evaluate(BEST, 4)
    assert evaluation.failed and "RuntimeError in epoch 2: boom" in evaluation.reason
    assert evaluation.epochs.tolist() == [1, 2] and math.isfinite(evaluation.values[0]) and np.isnan(evaluation.values[1])
    oom = oracle.evaluate(RESNET, 2)
    assert oom.failed and oom.reason.startswith("out of memory in epoch 1") and oom.epochs.tolist() == [1]
    other = "|skip_connect~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    assert not oracle.evaluate(other, 1).failed  # the oracle goes on
    table = oracle.to_table("faults")
    assert table.failed[:, 0].tolist() == [True, True, False]
    assert table.metadata.extra["failures"][BEST].endswith("boom")


def test_invalid_requests_raise(data, tmp_path):
    oracle = TrainerOracle(data=data, checkpoint_dir=tmp_path, fidelities=(1, 2, 4), **TINY)
    with pytest.raises(ValueError, match="not a fidelity"):
        oracle.evaluate(BEST, 3)
    with pytest.raises(ValueError):
        oracle.evaluate("not-an-arch", 1)
    with pytest.raises(ValueError, match="nothing has been trained"):
        oracle.to_table()


def test_table_replays_what_was_trained(data, tmp_path):
    oracle = TrainerOracle(data=data, checkpoint_dir=tmp_path / "ckpt", fidelities=(1, 2, 4), test_every_epoch=False, **TINY)
    served = [(BEST, 0, oracle.evaluate(BEST, 1)), (BEST, 1, oracle.evaluate(BEST, 4, start=1)),
              (RESNET, 0, oracle.evaluate(RESNET, 2))]
    table = TabularBenchmark.load(oracle.to_table("fmnist-tiny").save(tmp_path / "t.npz"))
    assert table.metadata.space == "nb201" and table.metadata.metric == "valid_accuracy" and table.higher_is_better
    assert table.epochs.tolist() == [1, 2, 4] and table.arch_ids.tolist() == [BEST, RESNET]
    assert "torch" in table.metadata.provenance and table.metadata.extra["settings"]["C"] == 4
    assert set(table.curves) == {"valid", "valid_loss", "test", "test_loss", "train", "train_loss"}
    # Test accuracy exists where an evaluate() call stopped: epochs 1 and 4 of BEST, 2 of RESNET.
    assert np.isfinite(table.curves["test"][0, 0]).tolist() == [True, False, True]
    assert np.isfinite(table.curves["test"][1, 0]).tolist() == [False, True, False]
    replay = TabularOracle(table, NB201Space(), repeat=0)
    for arch, start, real in served:
        again = replay.evaluate(arch, real.epoch, start=start)
        assert np.array_equal(again.values, real.values) and np.array_equal(again.epochs, real.epochs)
        assert again.cost == pytest.approx(real.cost, rel=1e-6)
    record = oracle.records[BEST].seconds
    assert float(table.seconds[0, 0, 2]) == pytest.approx(record[2] + record[3], rel=1e-6)  # epochs 3-4


def test_failure_between_fidelities_replays_as_served(data, tmp_path, monkeypatch):
    oracle = TrainerOracle(data=data, checkpoint_dir=tmp_path, fidelities=(1, 2, 4), **TINY)
    real = oracle._train_epoch
    calls = {"n": 0}

    def fails_in_epoch_3(state, split):
        calls["n"] += 1
        if calls["n"] == 3:
            raise ValueError("bad batch")
        return real(state, split)

    monkeypatch.setattr(oracle, "_train_epoch", fails_in_epoch_3)
    first = oracle.evaluate(BEST, 2)
    served = oracle.evaluate(BEST, 4, start=2)
    assert not first.failed and served.failed and "epoch 3" in served.reason
    assert served.epochs.tolist() == [1, 2, 4] and np.isnan(served.values[-1]) and served.cost > 0
    table = oracle.to_table()
    replay = TabularOracle(table, NB201Space(), repeat=0)
    again = replay.evaluate(BEST, 4, start=2)
    assert again.failed and again.epochs.tolist() == [1, 2, 4]
    assert np.array_equal(again.values, served.values, equal_nan=True)
    assert again.cost == pytest.approx(served.cost, rel=1e-6)
