"""BatchedNB201: K architectures in one network are exactly K separate NB201 networks (CPU, float32).

Tolerance: outputs, gradients and weights agree to ``atol=1e-5, rtol=1e-4`` (float32; a grouped
convolution may sum in another order than a plain one, nothing else differs).
"""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from benchmarks.training.batched import (BatchedNB201, _SingleAsBatched, init_networks,  # noqa: E402
                                         measure_throughput, train_group)
from benchmarks.training.data import synthetic_splits  # noqa: E402
from benchmarks.training.nb201_model import NB201Network  # noqa: E402
from benchmarks.training.trainer import TrainConfig  # noqa: E402

ATOL, RTOL = 1e-5, 1e-4
# Edge by edge the three differ; on edge 0, archs 0 and 2 share nor_conv_3x3 (a non-contiguous subset).
ARCHS = ["|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|none~1|none~2|",                       # none edges
         "|avg_pool_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|",  # pool/skip
         "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|nor_conv_3x3~2|"]
SHAPE = dict(num_classes=10, C=4, N=1, in_channels=1)


def separate_and_batched(archs=ARCHS, seed=0):
    torch.manual_seed(seed)
    nets = [NB201Network(a, **SHAPE) for a in archs]
    batched = BatchedNB201(archs, **SHAPE)
    batched.load_networks(nets)
    return nets, batched


def batches(n, seed=1, size=24):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 1, 28, 28, generator=g), torch.randint(0, 10, (size,), generator=g)) for _ in range(n)]


def assert_close(a, b, what):
    assert a.shape == b.shape, what
    assert torch.allclose(a, b, atol=ATOL, rtol=RTOL), f"{what}: max |diff| {(a - b).abs().max().item():.3g}"


def assert_states_equal(nets, batched):
    for k, net in enumerate(nets):
        mine = batched.network_state_dict(k)
        for name, value in net.state_dict().items():
            if name.endswith("num_batches_tracked"):
                assert int(mine[name]) == int(value), name
            else:
                assert_close(mine[name], value, f"arch {k} {name}")


def test_layout_only_builds_ops_in_use():
    _, batched = separate_and_batched()
    names = [n for n, _ in batched.named_parameters()]
    # Edge 0 of cell 0 holds one 3x3 conv for archs 0 and 2 (2 groups) and nothing for arch 1's pool.
    conv = dict(batched.named_parameters())["cells.0.edges.0.nor_conv_3x3.1.weight"]
    assert conv.shape == (2 * 4, 4, 3, 3)
    assert not any(".avg_pool_3x3." in n or ".none." in n or ".skip_connect." in n for n in names)
    total = sum(p.numel() for p in batched.parameters())
    nets, _ = separate_and_batched()
    assert total == sum(sum(p.numel() for p in net.parameters()) for net in nets)


def test_forward_gradients_and_bn_match_separate_networks():
    nets, batched = separate_and_batched()
    (x, y), = batches(1)
    logits = batched(x)
    assert logits.shape == (24, 3, 10)
    losses = [F.cross_entropy(logits[:, k], y) for k in range(3)]
    sum(losses).backward()
    for k, net in enumerate(nets):
        out = net(x)
        assert_close(logits[:, k].detach(), out.detach(), f"logits of arch {k}")
        F.cross_entropy(out, y).backward()
        grads = batched.split(k, {n: p.grad for n, p in batched.named_parameters()})
        for name, p in net.named_parameters():
            assert p.grad is not None and grads[name] is not None, name
            assert_close(grads[name], p.grad, f"grad of arch {k} {name}")
    assert_states_equal(nets, batched)  # BN running statistics after one training forward


def test_three_nesterov_sgd_steps_equal_k_separate_optimizers():
    nets, batched = separate_and_batched(seed=3)
    opt = dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    one = torch.optim.SGD(batched.parameters(), **opt)
    many = [torch.optim.SGD(net.parameters(), **opt) for net in nets]
    for x, y in batches(3, seed=7):
        logits = batched(x)
        loss = sum(F.cross_entropy(logits[:, k], y) for k in range(3))
        one.zero_grad()
        loss.backward()
        one.step()
        for net, o in zip(nets, many):
            o.zero_grad()
            F.cross_entropy(net(x), y).backward()
            o.step()
    assert_states_equal(nets, batched)  # weights, BN affine parameters and running statistics
    # ... and the trained models agree in eval mode (running statistics in use).
    batched.eval()
    x, _ = batches(1, seed=9)[0]
    with torch.no_grad():
        logits = batched(x)
        for k, net in enumerate(nets):
            net.eval()
            assert_close(logits[:, k], net(x), f"eval logits of arch {k}")


def test_export_round_trip_and_duplicates():
    archs = [ARCHS[1], ARCHS[1]]  # every edge: one op for all K (the whole-tensor path)
    nets, batched = separate_and_batched(archs, seed=5)
    for k in range(2):
        exported = batched.export_network(k)
        for name, value in nets[k].state_dict().items():
            assert torch.equal(exported.state_dict()[name], value), name
    x, _ = batches(1)[0]
    batched.eval()
    with torch.no_grad():
        out = batched(x)
        assert not torch.allclose(out[:, 0], out[:, 1])  # two independent networks
        for k in range(2):
            nets[k].eval()
            assert_close(out[:, k], nets[k](x), f"duplicate arch {k}")
    with pytest.raises(ValueError, match="does not match"):
        batched.load_network(0, NB201Network(ARCHS[0], **SHAPE))


def test_nan_in_one_architecture_stays_there():
    nets, batched = separate_and_batched()
    with torch.no_grad():
        dict(batched.named_parameters())["stem.0.weight"][4:8] = float("nan")  # arch 1's stem
    (x, y), = batches(1)
    logits = batched(x)
    assert torch.isnan(logits[:, 1]).all()
    loss = sum(F.cross_entropy(logits[:, k], y) for k in range(3))
    loss.backward()
    for k in (0, 2):
        assert_close(logits[:, k].detach(), nets[k](x).detach(), f"healthy arch {k}")
        grads = batched.split(k, {n: p.grad for n, p in batched.named_parameters()})
        assert all(torch.isfinite(g).all() for g in grads.values()), f"arch {k} got non-finite gradients"


def test_train_group_equals_training_each_architecture_alone():
    data = synthetic_splits(96, 48, 32, like="fashion-mnist", seed=2)
    config = TrainConfig(C=4, N=1, max_epochs=2, batch_size=32, device="cpu")
    together = train_group(ARCHS[:2], data, config)

    def alone_factory(archs, spec):
        return _SingleAsBatched(init_networks(archs, spec.num_classes, config.C, config.N, spec.in_channels, config.seed)[0])

    for k, arch in enumerate(ARCHS[:2]):
        alone = train_group([arch], data, config, model_factory=alone_factory)
        for key in ("train_loss", "valid_loss", "test_loss"):
            np.testing.assert_allclose(together.curves[key][k], alone.curves[key][0], rtol=1e-4, atol=1e-5, err_msg=key)
        for key in ("train_acc", "valid_acc", "test_acc"):  # at most one image may flip on a near-tie
            assert np.abs(together.curves[key][k] - alone.curves[key][0]).max() <= 100 / 32 + 1e-6, key
    assert not together.failed.any() and np.isfinite(together.wall_seconds).all()


def test_train_group_marks_a_diverged_architecture_failed():
    data = synthetic_splits(64, 32, 32, like="fashion-mnist", seed=4)
    config = TrainConfig(C=4, N=1, max_epochs=3, batch_size=32, device="cpu")

    def poison(event, epoch, model, result):
        if epoch == 1:
            with torch.no_grad():
                dict(model.named_parameters())["classifier.weight"][0].fill_(float("nan"))

    result = train_group(ARCHS[:2], data, config, callback=poison)
    assert result.failed.tolist() == [True, False] and result.fail_epoch[0] == 2
    assert "diverged" in result.reason[0]
    assert np.isfinite(result.curves["valid_acc"][0, 0]) and np.isnan(result.curves["valid_acc"][0, 1:]).all()
    assert np.isfinite(result.curves["valid_acc"][1]).all() and np.isfinite(result.curves["test_loss"][1]).all()


def test_measure_throughput_smoke_on_cpu():
    report = measure_throughput((1, 2), C=2, N=1, batch_size=8, steps=2, warmup=1, device="cpu", eager_archs=1)
    assert report["eager"]["arch_steps_per_s"] > 0
    assert [row["K"] for row in report["batched"]] == [1, 2]
    assert all(row["status"] == "ok" and row["arch_epochs_per_s"] > 0 and math.isfinite(row["speedup_vs_eager"])
               for row in report["batched"])
