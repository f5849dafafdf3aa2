"""NAS-Bench-101 networks (nasbench-pytorch) and TrainerOracle(space="nb101") on the CPU."""
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nasbench_pytorch")

from benchmarks.oracle import TabularOracle  # noqa: E402
from benchmarks.spaces.nb101 import OPS, NB101Space  # noqa: E402
from benchmarks.tabular import TabularBenchmark  # noqa: E402
from benchmarks.training.nb101_model import build_nb101_network, require_nasbench_pytorch  # noqa: E402
from benchmarks.training.nb201_model import count_parameters  # noqa: E402
from benchmarks.training.trainer import TrainConfig, TrainerOracle  # noqa: E402

SPACE = NB101Space()
C3, C1, MP = OPS
from tests.nb101_cells import INCEPTION, INCEPTION_AS_STORED  # noqa: E402  (the colab's cell)
from tests.conftest import fashion_mnist_or_fail  # noqa: E402
# Two branches into the output plus a residual input->output edge; vertex 3 of DANGLING is fed by the
# input but feeds nothing, so it prunes away to CHAIN.
CHAIN = SPACE.from_matrix(
    [[0, 1, 1, 1],
     [0, 0, 1, 0],
     [0, 0, 0, 1],
     [0, 0, 0, 0]],
    ["input", C3, MP, "output"])
DANGLING = SPACE.from_matrix(
    [[0, 1, 1, 1, 1],
     [0, 0, 1, 0, 0],
     [0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0],
     [0, 0, 0, 0, 0]],
    ["input", C3, MP, C1, "output"])
SMALL = dict(stem_channels=16, num_stacks=1, modules_per_stack=1)
TINY = dict(space="nb101", nb101_stem_channels=16, nb101_stacks=3, nb101_modules=1, batch_size=32)


@pytest.fixture(scope="module")
def data():
    return fashion_mnist_or_fail(train_size=256, valid_size=128, test_size=128)


@pytest.mark.parametrize("arch", [INCEPTION, INCEPTION_AS_STORED, CHAIN, DANGLING, "01.00|input,output",
                                  "0100.0011.0001.0000|input,conv1x1-bn-relu,conv3x3-bn-relu,output"])
def test_small_networks_classify(arch):
    for in_channels, classes, side in ((1, 10, 28), (3, 7, 16)):
        net = build_nb101_network(arch, classes, in_channels=in_channels, **SMALL)
        assert net.arch == arch
        out = net(torch.randn(2, in_channels, side, side))
        assert out.shape == (2, classes) and torch.isfinite(out).all()
    deep = build_nb101_network(arch, 10, stem_channels=8, num_stacks=3, modules_per_stack=2)
    assert deep(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_dangling_vertex_changes_nothing():
    assert SPACE.prune(DANGLING) == CHAIN
    torch.manual_seed(3)
    pruned = build_nb101_network(CHAIN, 10, **SMALL)
    torch.manual_seed(3)
    unpruned = build_nb101_network(DANGLING, 10, **SMALL)
    assert count_parameters(pruned) == count_parameters(unpruned) > 0
    a, b = pruned.state_dict(), unpruned.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(pruned(x), unpruned(x))


def test_inception_cell_has_the_published_parameter_count():
    # NASBench.ipynb ("Basic usage") prints trainable_parameters: 2694282 for this cell (stem 128,
    # 3 stacks x 3 cells, CIFAR-10). nasbench-pytorch's unused Placeholder weights are not counted.
    for arch in (INCEPTION, INCEPTION_AS_STORED):
        net = build_nb101_network(arch, 10)
        assert count_parameters(net) == sum(p.numel() for p in net.parameters()) == 2_694_282


def test_bad_sizes_and_missing_package(monkeypatch):
    with pytest.raises(ValueError, match="num_stacks=0"):
        build_nb101_network(CHAIN, 10, num_stacks=0)
    with pytest.raises(ValueError, match="space='nb301'"):
        TrainConfig(space="nb301")
    with pytest.raises(ValueError, match="nb101_modules=0"):
        TrainConfig(space="nb101", nb101_modules=0)
    monkeypatch.setitem(sys.modules, "nasbench_pytorch.model", None)  # import now fails
    with pytest.raises(ImportError, match="pip install nasbench-pytorch"):
        require_nasbench_pytorch()
    with pytest.raises(ImportError, match="pip install nasbench-pytorch"):
        TrainerOracle(space="nb101")


def test_two_epochs_learn(data, tmp_path):
    oracle = TrainerOracle(data=data, checkpoint_dir=tmp_path, max_epochs=2, **TINY)
    assert isinstance(oracle.space, NB101Space)
    evaluation = oracle.evaluate(INCEPTION, 2)
    record = oracle.records[INCEPTION]
    assert not evaluation.failed and evaluation.epochs.tolist() == [1, 2] and evaluation.arch == INCEPTION
    assert evaluation.cost > 0 and evaluation.cost == pytest.approx(sum(record.seconds))
    assert record.train_loss[1] < record.train_loss[0]
    assert record.train_acc[1] > 20.0  # 10 classes: chance is 10 %
    assert record.n_params == count_parameters(build_nb101_network(INCEPTION, 10, in_channels=1, stem_channels=16,
                                                                  num_stacks=3, modules_per_stack=1))


def test_resume_equals_one_uninterrupted_run(data, tmp_path):
    resumed = TrainerOracle(data=data, checkpoint_dir=tmp_path / "a", max_epochs=3, **TINY)
    first = resumed.evaluate(CHAIN, 2)
    second = resumed.evaluate(CHAIN, 3, start=2)
    fresh = TrainerOracle(data=data, checkpoint_dir=tmp_path / "b", max_epochs=3, **TINY)
    whole = fresh.evaluate(CHAIN, 3)
    assert second.epochs.tolist() == [1, 2, 3]
    assert np.array_equal(second.values, whole.values) and np.array_equal(second.losses, whole.losses)
    assert np.array_equal(first.values, whole.values[:2])
    a, b = resumed.load_checkpoint(CHAIN)["model"], fresh.load_checkpoint(CHAIN)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    seconds = resumed.records[CHAIN].seconds
    assert first.cost == pytest.approx(sum(seconds[:2])) and second.cost == pytest.approx(sum(seconds[2:]))
    # A new oracle on the same directory continues from the checkpoint on disk, also when an
    # equivalent key (same network, same table key) asks.
    restarted = TrainerOracle(data=data, checkpoint_dir=tmp_path / "c", max_epochs=3, **TINY)
    restarted.evaluate(CHAIN, 2)
    continued = TrainerOracle(data=data, checkpoint_dir=tmp_path / "c", reuse_checkpoints=True, max_epochs=3, **TINY)
    tail = continued.evaluate(DANGLING, 3, start=2)
    assert np.array_equal(tail.values, whole.values) and continued.epochs_trained(CHAIN) == 3
    assert tail.cost == pytest.approx(continued.records[CHAIN].seconds[2])


def test_table_replays_what_was_trained(data, tmp_path):
    oracle = TrainerOracle(data=data, checkpoint_dir=tmp_path / "ckpt", fidelities=(1, 2), max_epochs=2, **TINY)
    served = [(CHAIN, 0, oracle.evaluate(CHAIN, 1)), (CHAIN, 1, oracle.evaluate(CHAIN, 2, start=1)),
              (INCEPTION, 0, oracle.evaluate(INCEPTION, 1))]
    # The same network under other keys is the same trial: it continues the same run from its checkpoint.
    for twin, arch in ((DANGLING, CHAIN), (INCEPTION_AS_STORED, INCEPTION)):
        assert oracle.epochs_trained(twin) == oracle.epochs_trained(arch) and oracle.identify(twin) == oracle.identify(arch)
    assert list(oracle.records) == [CHAIN, INCEPTION]
    assert oracle.checkpoint_path(DANGLING) == oracle.checkpoint_path(CHAIN)
    table = TabularBenchmark.load(oracle.to_table("nb101-tiny").save(tmp_path / "t.npz"))
    assert table.metadata.space == "nb101" and table.epochs.tolist() == [1, 2]
    assert table.arch_ids.tolist() == [SPACE.graph_hash(CHAIN), SPACE.graph_hash(INCEPTION)]
    assert table.metadata.extra["arch_keys"] == {SPACE.graph_hash(CHAIN): CHAIN, SPACE.graph_hash(INCEPTION): INCEPTION}
    assert table.metadata.extra["settings"]["space"] == "nb101" and "stem 16" in table.metadata.provenance
    replay = TabularOracle(table, NB101Space(), repeat=0)
    for arch, start, real in served:
        again = replay.evaluate(arch, real.epoch, start=start)
        assert np.array_equal(again.values, real.values) and np.array_equal(again.epochs, real.epochs)
        assert np.array_equal(again.losses, real.losses)
        assert again.cost == pytest.approx(real.cost, rel=1e-6)
    twin = TabularOracle(table, NB101Space(), repeat=0).evaluate(DANGLING, 2)
    assert np.array_equal(twin.values, served[1][2].values)


def test_command_line_options_reach_the_trainer(tmp_path):
    import argparse

    from benchmarks.training.commands import add_trainer_arguments, trainer_from_args

    parser = argparse.ArgumentParser()
    add_trainer_arguments(parser)
    assert parser.parse_args([]).space == "nb201"
    with pytest.raises(SystemExit):
        parser.parse_args(["--space", "nb301"])
    args = parser.parse_args(["--space", "nb101", "--nb101-stem-channels", "16", "--nb101-stacks", "2",
                              "--nb101-modules", "1", "--epochs", "2", "--train-size", "64", "--valid-size", "32",
                              "--test-size", "32", "--device", "cpu", "--checkpoint-dir", str(tmp_path)])
    oracle = trainer_from_args(args)
    c = oracle.config
    assert isinstance(oracle.space, NB101Space) and (c.space, c.nb101_stem_channels, c.nb101_stacks, c.nb101_modules) == (
        "nb101", 16, 2, 1)
    assert c.fingerprint() != TrainConfig(**{**vars(c), "nb101_stacks": 3}).fingerprint()
    assert c.fingerprint() == TrainConfig(**{**vars(c), "C": 99}).fingerprint()  # NB201 sizes do not matter here
