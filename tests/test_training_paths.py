"""The trainer paths (eager, graph, compiled; batched groups on each) give eager's curves; resume is unchanged.

CPU tests: the graph path's step runs uncaptured (what a CUDA graph would replay), and must equal eager
bitwise; the compiled path runs through dynamo + AOTAutograd with the ``aot_eager`` backend (inductor's C++
build of a network takes minutes on this class of CPU) and must agree within ``COMPILED_RTOL``. The CUDA
tests run the captured graph and inductor against eager on a GPU and skip without one.
"""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks.training.batched import train_group  # noqa: E402
from benchmarks.training.config import TrainConfig  # noqa: E402
from benchmarks.training.data import synthetic_splits  # noqa: E402
from benchmarks.training.paths import COMPILED_RTOL, resolve_trainer, sgd_update  # noqa: E402
from benchmarks.training.trainer import TrainerOracle  # noqa: E402
from tests.conftest import fashion_mnist_or_fail  # noqa: E402

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
MIXED = "|avg_pool_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
# 136 training images in batches of 64: two full batches and a partial one of 8, so the graph path
# replays full batches and runs the partial batch uncaptured, as it does on a GPU.
TINY = dict(C=4, N=1, batch_size=64, eval_batch_size=48, max_epochs=2, test_every_epoch=False)
CURVES = ("train_loss", "train_acc", "valid_loss", "valid_acc")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (CUDA graphs, inductor on GPU)")


@pytest.fixture(scope="module")
def data():
    return fashion_mnist_or_fail(train_size=136, valid_size=64, test_size=64)


def _curves(data, tmp_path, trainer, arch=BEST, epochs=2, **extra):
    oracle = TrainerOracle(data=data, checkpoint_dir=tmp_path / trainer, trainer=trainer, **{**TINY, **extra})
    evaluation = oracle.evaluate(arch, epochs)
    assert not evaluation.failed, evaluation.reason
    record = oracle.records[arch]
    return {k: getattr(record, k) for k in CURVES}, oracle.load_checkpoint(arch)


def test_graph_step_uncaptured_is_eager_bitwise_on_cpu(data, tmp_path):
    eager, eager_ckpt = _curves(data, tmp_path, "eager")
    graph, graph_ckpt = _curves(data, tmp_path, "graph")
    assert graph == eager  # every epoch's losses and accuracies, as float32, identical
    for name, tensor in eager_ckpt["model"].items():
        assert torch.equal(tensor, graph_ckpt["model"][name]), name
    for index, state in eager_ckpt["optimizer"]["state"].items():  # the momentum buffers too: same optimizer state
        assert torch.equal(state["momentum_buffer"], graph_ckpt["optimizer"]["state"][index]["momentum_buffer"])
    assert graph_ckpt["scheduler"]["last_epoch"] == eager_ckpt["scheduler"]["last_epoch"] == 2 * 3  # 3 steps/epoch


def test_graph_path_resumes_bitwise_and_continues_eager_checkpoints(data, tmp_path):
    whole, _ = _curves(data, tmp_path / "whole", "graph", arch=MIXED)
    resumed = TrainerOracle(data=data, checkpoint_dir=tmp_path / "ckpt", trainer="graph", **TINY)
    first = resumed.evaluate(MIXED, 1)
    second = resumed.evaluate(MIXED, 2, start=1)
    record = resumed.records[MIXED]
    assert {k: getattr(record, k) for k in CURVES} == whole
    assert second.cost == pytest.approx(record.seconds[1])  # the promotion pays only epoch 2
    assert first.cost == pytest.approx(record.seconds[0])
    # A checkpoint written by the eager path is continued by the graph path (and the other way round):
    # the settings fingerprint ignores the path, and the optimizer state is torch's SGD state in both.
    eager = TrainerOracle(data=data, checkpoint_dir=tmp_path / "mixed", trainer="eager", **TINY)
    eager.evaluate(MIXED, 1)
    graph = TrainerOracle(data=data, checkpoint_dir=tmp_path / "mixed", trainer="graph", reuse_checkpoints=True, **TINY)
    assert graph.checkpoint_dir == eager.checkpoint_dir
    graph.adopt_checkpoints([MIXED])
    continued = graph.evaluate(MIXED, 2, start=1)
    assert continued.values.tolist() == second.values.tolist()
    assert continued.cost == pytest.approx(graph.records[MIXED].seconds[1])


def test_sgd_update_is_torch_sgd_bitwise():
    torch.manual_seed(0)
    shapes = [(7, 3), (5,), (2, 3, 3, 3)]
    a = [torch.randn(s, requires_grad=True) for s in shapes]
    b = [t.detach().clone().requires_grad_(True) for t in a]
    for nesterov, momentum in ((True, 0.9), (False, 0.5)):
        ref = torch.optim.SGD(a, lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=5e-4)
        mine = torch.optim.SGD(b, lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=5e-4)
        neg_lr = torch.zeros(())
        for step in range(4):
            grads = [torch.randn(s) for s in shapes]
            for p, q, g in zip(a, b, grads):
                p.grad, q.grad = g.clone(), g.clone()
            lr = 0.1 * (1 + math.cos(math.pi * step / 4)) / 2
            ref.param_groups[0]["lr"] = mine.param_groups[0]["lr"] = lr
            ref.step()
            neg_lr.fill_(-lr)
            sgd_update(b, mine, neg_lr)
            for p, q in zip(a, b):
                assert torch.equal(p, q)
            for p, q in zip(a, b):
                assert torch.equal(ref.state[p]["momentum_buffer"], mine.state[q]["momentum_buffer"])


def test_batched_group_on_graph_path_equals_eager(data):
    archs = [BEST, MIXED, "|skip_connect~0|+|none~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|"]
    base = TrainConfig(dataset=data.spec.name, C=4, N=1, max_epochs=1, batch_size=64, eval_batch_size=48, seed=3)
    eager = train_group(archs, data, base)
    graph = train_group(archs, data, TrainConfig(**{**vars(base), "trainer": "graph"}))
    for key in eager.curves:
        np.testing.assert_array_equal(graph.curves[key], eager.curves[key], err_msg=key)
    assert not eager.failed.any()


def test_compiled_path_matches_eager_within_tolerance(data, tmp_path):
    """Dynamo + AOTAutograd (backend aot_eager): the compiled graphs of forward and backward, decomposed ops."""
    pytest.importorskip("torch._dynamo")
    small = dict(max_epochs=1, batch_size=68, eval_batch_size=64)  # no partial batch: one compiled shape each (train, eval)
    eager, _ = _curves(data, tmp_path, "eager", epochs=1, **small)
    compiled, _ = _curves(data, tmp_path, "compiled", epochs=1, compile_backend="aot_eager", **small)
    for key in CURVES:
        np.testing.assert_allclose(compiled[key], eager[key], rtol=COMPILED_RTOL, err_msg=key)


def test_resolve_trainer_auto_and_refusals():
    assert resolve_trainer("auto", "cpu") == ("eager", "--trainer auto: CUDA graphs need CUDA and the device is cpu; using eager")
    assert resolve_trainer("eager", "cpu") == ("eager", None)
    assert resolve_trainer("compiled", "cpu") == ("compiled", None)
    assert resolve_trainer("batched", "cpu", batched=True) == ("eager", None)
    with pytest.raises(ValueError, match="needs --device cuda"):
        resolve_trainer("graph", "cpu")
    with pytest.raises(ValueError, match="benchmark build"):
        resolve_trainer("batched", "cpu")
    with pytest.raises(ValueError, match="must be one of"):
        resolve_trainer("fast", "cpu")
    with pytest.raises(ValueError, match="trainer='auto'"):
        TrainConfig(trainer="auto")  # a config holds a resolved path
    assert TrainConfig(trainer="graph").fingerprint() == TrainConfig().fingerprint()  # checkpoints are shared


@needs_cuda
def test_cuda_graph_path_close_to_eager(tmp_path):
    cuda = synthetic_splits(1000, 512, 64, seed=1, device="cuda")
    settings = dict(C=8, N=2, batch_size=128, eval_batch_size=256, max_epochs=2, device="cuda", bf16=False,
                    deterministic=True, test_every_epoch=False)
    out = {}
    for trainer in ("eager", "graph"):
        oracle = TrainerOracle(data=cuda, checkpoint_dir=tmp_path / trainer, trainer=trainer, **settings)
        evaluation = oracle.evaluate(BEST, 2)
        assert not evaluation.failed, evaluation.reason
        out[trainer] = oracle.records[BEST]
    np.testing.assert_allclose(out["graph"].train_loss, out["eager"].train_loss, rtol=1e-3)
    np.testing.assert_allclose(out["graph"].valid_loss, out["eager"].valid_loss, rtol=1e-3)


@needs_cuda
def test_cuda_compiled_inductor_close_to_eager(tmp_path):
    cuda = synthetic_splits(512, 256, 64, seed=1, device="cuda")
    settings = dict(C=4, N=1, batch_size=128, eval_batch_size=256, max_epochs=1, device="cuda", bf16=False,
                    test_every_epoch=False, compile_mode="default")  # inductor without autotuning: seconds
    losses = {}
    for trainer in ("eager", "compiled"):
        oracle = TrainerOracle(data=cuda, checkpoint_dir=tmp_path / trainer, trainer=trainer, **settings)
        evaluation = oracle.evaluate(BEST, 1)
        assert not evaluation.failed, evaluation.reason
        losses[trainer] = oracle.records[BEST].train_loss
    np.testing.assert_allclose(losses["compiled"], losses["eager"], rtol=1e-2)


# ---------------------------------------------------------------------------------------------- command line
def test_cli_auto_on_cpu_says_eager_in_one_line(data, capsys):
    import argparse

    from benchmarks.training.commands import add_trainer_arguments, trainer_from_args

    parser = argparse.ArgumentParser()
    add_trainer_arguments(parser)
    args = parser.parse_args(["--device", "cpu", "--C", "4", "--N", "1", "--train-size", "64", "--valid-size", "32",
                              "--test-size", "32"])
    assert args.trainer == "auto"
    oracle = trainer_from_args(args)
    assert oracle.config.trainer == "eager"
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["--trainer auto: CUDA graphs need CUDA and the device is cpu; using eager"]
    oracle.close()


@pytest.mark.parametrize("argv, message", [
    (["search", "--train", "fashion-mnist", "--trainer", "graph"], "--trainer graph captures the training step in a CUDA graph"),
    (["search", "--train", "fashion-mnist", "--trainer", "batched"], "pmfnas benchmark build"),
    (["record", BEST, "--trainer", "graph"], "needs --device cuda"),
])
def test_cli_refuses_a_path_the_device_cannot_run(argv, message, tmp_path, capsys):
    from harness.cli import main

    extra = ["--device", "cpu", "--checkpoint-dir", str(tmp_path / "ckpt")]
    extra += ["--out", str(tmp_path / "out.npz")] if argv[0] == "record" else ["--budget", "5", "--method", "random"]
    assert main(argv + extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("pmfnas: error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "ckpt").exists() and not (tmp_path / "out.npz").exists()


def test_build_refuses_graph_on_cpu_before_writing(tmp_path, capsys):
    from harness.cli import main

    assert main(["benchmark", "build", "--out", str(tmp_path / "b"), "--trainer", "graph", "--device", "cpu"]) == 2
    assert "needs --device cuda" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
