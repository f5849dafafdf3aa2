"""Batched training: K NAS-Bench-201 architectures trained at once as ONE network.

:class:`BatchedNB201` holds K independent NB201 networks (the macro skeleton of
:mod:`benchmarks.training.nb201_model`) side by side along the channel axis: the activation of
architecture k occupies channels ``k*C .. (k+1)*C - 1`` of a ``K*C``-channel tensor (and likewise at
2C and 4C channels in the later stages). Nothing ever mixes channels of different architectures:

* stem: ``Conv2d(in_channels -> K*C)`` without groups: K separate stems stacked (the input image is
  shared), then ``BatchNorm2d(K*C)``;
* residual reduction blocks: grouped convolutions (``groups=K``) and ``BatchNorm2d(K*width)``;
* cells: edge by edge, the architectures are split by the op they use on that edge. Each op present
  runs once, on the channels of the architectures that chose it (gathered with ``index_select``, or a
  plain slice when they are contiguous): ``nor_conv_3x3`` / ``nor_conv_1x1`` are ReLU - grouped conv
  (``groups`` = number of architectures using it) - BN; ``avg_pool_3x3`` and ``skip_connect`` are
  channel-wise anyway; ``none`` multiplies its input by zero exactly as the reference ``Zero`` op does
  (so even the gradient graph is the reference's). The parts are concatenated and put back in
  architecture order with one ``index_select``. This is the one-hot-mask formulation ("each edge
  computes its candidate ops, a K x 5 mask selects one") evaluated sparsely: an op no architecture
  uses on an edge is neither built nor run, so the batch costs the sum of its architectures' own
  FLOPs, not K times the most expensive one, and no parameter exists that no architecture owns;
* ``lastact`` BN-ReLU over ``K*4C`` channels, global average pooling, and a batched classifier
  (weight ``(K, classes, 4C)``, bias ``(K, classes)``, an ``einsum``) giving logits ``(batch, K, classes)``.

BatchNorm is per channel, hence per architecture (batch statistics, running statistics and affine
parameters alike). The loss is the SUM over k of architecture k's mean cross-entropy, so the gradient
of every parameter equals the gradient it would get in its own separate model, and SGD (momentum,
Nesterov, weight decay: all elementwise per parameter entry) over the batched parameters is exactly
K separate SGD optimizers. ``tests/test_training_batched.py`` checks outputs, gradients, three SGD
steps and BN running statistics against K separate :class:`NB201Network` models (float32, CPU;
``atol=1e-5``, relative 1e-4: only summation order differs between a grouped and a plain convolution).

What the K architectures share: the input batches. All K see the same images in the same order with
the same augmentation draws; :func:`train_group` goes further and uses ONE data-order seed for every
group, so every architecture of a table built with it sees the same data stream, whichever group it
was trained in (NAS-Bench-201 likewise trained all cells with the same seeds). Each architecture's
initial weights are those :class:`~benchmarks.training.trainer.TrainerOracle` would draw for it
(``torch.manual_seed(trial_seed(seed, arch))`` then ``build_network``), so an architecture's result
does not depend on which other architectures share its batch (up to floating-point summation order).

A NaN in one architecture stays in its channels (every op is channel-wise or grouped, and the loss is
a sum, whose gradient is 1 for every term), so a diverged architecture does not disturb the others;
:func:`train_group` marks it failed from the epoch it diverged in and keeps training the rest.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.spaces.nb201 import EDGES, OPS, NB201Space
from benchmarks.training.data import DataSplits, draw_augmentation, make_batch, synthetic_splits
from benchmarks.training.nb201_model import NB201Network, build_network
from benchmarks.training.paths import BATCHED, _per_arch_loss, make_steps
from benchmarks.training.trainer import _INIT_LOCK, TrainConfig, trial_seed

__all__ = ["BatchedNB201", "BatchedCell", "BatchedResBlock", "BatchedLinear", "GroupResult", "init_networks",
           "shared_data_seed", "train_group", "measure_throughput"]

_CONV_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}


def _grouped_relu_conv_bn(k: int, channels: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """K copies of ReLU-Conv-BN at ``channels`` channels (module names as in ``ReLUConvBN``: 1 = conv, 2 = BN)."""
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(k * channels, k * channels, kernel, stride=stride, padding=kernel // 2, groups=k, bias=False),
        nn.BatchNorm2d(k * channels, affine=True, track_running_stats=True),
    )


class BatchedCell(nn.Module):
    """K NB201 cells at ``channels`` channels each; input and output ``(batch, K*channels, H, W)``.

    ``members[e][op]`` lists the architectures (0..K-1) that use ``op`` on edge ``e``; ``edges[e][op]``
    holds the grouped conv module of those architectures, in that order.
    """

    def __init__(self, ops_per_arch: Sequence[Sequence[str]], channels: int):
        super().__init__()
        self.K = len(ops_per_arch)
        self.C = channels
        self.members: list[dict[str, list[int]]] = []
        self.edges = nn.ModuleList()
        self._plans: list[tuple[list[tuple[str, object]], torch.Tensor | None]] = []
        for e in range(len(EDGES)):
            members: dict[str, list[int]] = {}
            for k, ops in enumerate(ops_per_arch):
                members.setdefault(ops[e], []).append(k)
            members = {op: members[op] for op in OPS if op in members}  # a fixed order: OPS order
            self.members.append(members)
            modules = nn.ModuleDict()
            plan = []
            for op, ks in members.items():
                if op in _CONV_KERNEL:
                    modules[op] = _grouped_relu_conv_bn(len(ks), channels, _CONV_KERNEL[op])
                if ks == list(range(self.K)):
                    selector = None  # every architecture: the whole tensor
                elif ks == list(range(ks[0], ks[0] + len(ks))):
                    selector = (ks[0], len(ks))  # a contiguous block: a view
                else:
                    name = f"_index_{e}_{op}"
                    self.register_buffer(name, torch.tensor(ks, dtype=torch.long), persistent=False)
                    selector = name
                plan.append((op, selector))
            self.edges.append(modules)
            concatenated = [k for ks in members.values() for k in ks]
            inverse = None
            if concatenated != list(range(self.K)):
                name = f"_inverse_{e}"
                self.register_buffer(name, torch.tensor(np.argsort(concatenated), dtype=torch.long), persistent=False)
                inverse = name
            self._plans.append((plan, inverse))

    def _op(self, e: int, op: str, x: torch.Tensor) -> torch.Tensor:
        if op == "none":
            return x.mul(0.0)  # the reference Zero op, gradient graph included
        if op == "skip_connect":
            return x
        if op == "avg_pool_3x3":
            return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        return self.edges[e][op](x)

    def _edge(self, e: int, x: torch.Tensor) -> torch.Tensor:
        plan, inverse = self._plans[e]
        if len(plan) == 1:
            return self._op(e, plan[0][0], x)
        b, _, h, w = x.shape
        x5 = x.reshape(b, self.K, self.C, h, w)  # a view for contiguous and channels-last layouts
        parts = []
        for op, selector in plan:
            if isinstance(selector, tuple):
                sub = x5.narrow(1, selector[0], selector[1])
            else:
                sub = x5.index_select(1, getattr(self, selector))
            k = sub.shape[1]
            out = self._op(e, op, sub.reshape(b, k * self.C, h, w))
            parts.append(out.reshape(b, k, self.C, h, w))
        dtype = parts[0].dtype
        for part in parts[1:]:
            dtype = torch.promote_types(dtype, part.dtype)
        y = torch.cat([p.to(dtype) for p in parts], dim=1)
        if inverse is not None:
            y = y.index_select(1, getattr(self, inverse))
        return y.reshape(b, self.K * self.C, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        e = 0
        for to_node in range(1, 4):
            total = None
            for from_node in range(to_node):
                term = self._edge(e, nodes[from_node])
                e += 1
                total = term if total is None else total + term
            nodes.append(total)
        return nodes[-1]


class BatchedResBlock(nn.Module):
    """K stride-2 reduction blocks (names as in ``ResNetBasicBlock``), grouped over the K architectures."""

    def __init__(self, K: int, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(K * c_in, K * c_out, 3, stride=2, padding=1, groups=K, bias=False),
            nn.BatchNorm2d(K * c_out, affine=True, track_running_stats=True))
        self.conv_b = _grouped_relu_conv_bn(K, c_out, 3)
        self.downsample = nn.Sequential(nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
                                        nn.Conv2d(K * c_in, K * c_out, 1, stride=1, padding=0, groups=K, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class BatchedLinear(nn.Module):
    """K linear classifiers: ``(batch, K, in) -> (batch, K, out)``; initialised like ``nn.Linear`` each."""

    def __init__(self, K: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(K, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(K, out_features))
        bound = 1.0 / math.sqrt(in_features)
        nn.init.uniform_(self.weight, -bound, bound)  # nn.Linear's kaiming_uniform(a=sqrt(5)) is this bound
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bki,koi->bko", x, self.weight) + self.bias


class BatchedNB201(nn.Module):
    """K NAS-Bench-201 networks in one module; ``forward(x)`` maps ``(batch, in_channels, H, W)`` to
    logits ``(batch, K, num_classes)``.

    Parameters as :class:`~benchmarks.training.nb201_model.NB201Network`; ``archs`` are K architecture
    strings (duplicates allowed: they are simply K independent networks). Module names mirror
    ``NB201Network`` (``stem``, ``cells.i``, ``lastact``, ``classifier``); a cell edge's conv lives at
    ``cells.i.edges.e.<op>``. Use :meth:`load_networks` / :meth:`load_network` to copy separate models
    in, :meth:`network_state_dict` / :meth:`export_network` to get architecture k out, and
    :meth:`split` to cut any batched per-parameter tensors (gradients, optimizer buffers) per architecture.
    """

    def __init__(self, archs: Sequence[str], num_classes: int, C: int = 16, N: int = 5, in_channels: int = 3):
        super().__init__()
        if isinstance(archs, str):
            raise TypeError("archs must be a list of architecture strings, not one string")
        if len(archs) < 1:
            raise ValueError("BatchedNB201 needs at least one architecture")
        if C < 1 or N < 0 or num_classes < 1 or in_channels < 1:
            raise ValueError(f"invalid network shape C={C}, N={N}, num_classes={num_classes}, in_channels={in_channels}")
        space = NB201Space()
        self.archs = [space.parse(a) for a in archs]
        self.K = K = len(self.archs)
        self.num_classes, self.C, self.N, self.in_channels = num_classes, C, N, in_channels
        ops = [space.ops(a) for a in self.archs]
        self.stem = nn.Sequential(nn.Conv2d(in_channels, K * C, kernel_size=3, padding=1, bias=False),
                                  nn.BatchNorm2d(K * C, affine=True, track_running_stats=True))
        cells: list[nn.Module] = []
        c_prev = C
        for stage, width in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                cells.append(BatchedResBlock(K, c_prev, width))
                c_prev = width
            cells.extend(BatchedCell(ops, width) for _ in range(N))
        self.cells = nn.Sequential(*cells)
        self.c_last = c_prev
        self.lastact = nn.Sequential(nn.BatchNorm2d(K * c_prev, affine=True, track_running_stats=True), nn.ReLU(inplace=True))
        self.classifier = BatchedLinear(K, c_prev, num_classes)
        self._reference_shapes: dict[int, dict[str, torch.Size]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        pooled = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(pooled.view(pooled.shape[0], self.K, self.c_last))

    # ------------------------------------------------------------------ per-architecture views
    def reference_shapes(self, k: int) -> dict[str, torch.Size]:
        """Names and shapes of architecture k's separate ``NB201Network`` state dict (built on the meta device)."""
        if k not in self._reference_shapes:
            with torch.device("meta"):
                net = NB201Network(self.archs[k], self.num_classes, C=self.C, N=self.N, in_channels=self.in_channels)
            self._reference_shapes[k] = {name: t.shape for name, t in net.state_dict().items()}
        return self._reference_shapes[k]

    def slot(self, name: str, k: int) -> tuple[str, int]:
        """Where entry ``name`` of architecture k's separate state dict lives: (batched name, position).

        The position indexes blocks of the separate tensor's first dimension (for a cell conv: among the
        architectures that use that op on that edge); for the classifier it is k along the K axis.
        """
        parts = name.split(".")
        if parts[0] == "cells" and parts[2] == "edges":
            cell = self.cells[int(parts[1])]
            e = int(parts[3])
            op = NB201Space().ops(self.archs[k])[e]
            return ".".join(parts[:4] + [op] + parts[4:]), cell.members[e][op].index(k)
        return name, k

    def split(self, k: int, tensors: Mapping[str, torch.Tensor | None]) -> dict[str, torch.Tensor | None]:
        """Architecture k's share of batched tensors keyed by batched parameter/buffer names, keyed by the
        separate model's names (e.g. ``{n: p.grad for n, p in model.named_parameters()}``). Views, not copies.
        """
        result = {}
        for name, shape in self.reference_shapes(k).items():
            bname, pos = self.slot(name, k)
            if bname not in tensors:
                continue
            t = tensors[bname]
            if t is None:
                result[name] = None
            elif name.endswith("num_batches_tracked"):
                result[name] = t
            elif bname.startswith("classifier."):
                result[name] = t[pos]
            else:
                n = shape[0]
                result[name] = t[pos * n:(pos + 1) * n]
        return result

    def network_state_dict(self, k: int) -> dict[str, torch.Tensor]:
        """A state dict loadable into ``NB201Network(archs[k], ...)`` (detached copies)."""
        return {n: t.detach().clone() for n, t in self.split(k, self.state_dict(keep_vars=True)).items()}

    def export_network(self, k: int) -> NB201Network:
        """Architecture k as a separate ``NB201Network`` (on the CPU), weights and BN statistics included."""
        net = NB201Network(self.archs[k], self.num_classes, C=self.C, N=self.N, in_channels=self.in_channels)
        net.load_state_dict({n: t.cpu() for n, t in self.network_state_dict(k).items()})
        return net

    @torch.no_grad()
    def load_network(self, k: int, source: NB201Network | Mapping[str, torch.Tensor]) -> None:
        """Copy a separate model (or its state dict) of ``archs[k]`` into slot k."""
        state = source.state_dict() if isinstance(source, nn.Module) else source
        expected = self.reference_shapes(k)
        if set(state) != set(expected):
            raise ValueError(f"state dict of architecture {k} does not match {self.archs[k]}: "
                             f"missing {sorted(set(expected) - set(state))[:5]}, unexpected {sorted(set(state) - set(expected))[:5]}")
        targets = self.split(k, self.state_dict(keep_vars=True))
        for name, value in state.items():
            if tuple(value.shape) != tuple(expected[name]):
                raise ValueError(f"{name}: shape {tuple(value.shape)} != {tuple(expected[name])} of {self.archs[k]}")
            targets[name].copy_(value)

    def load_networks(self, networks: Sequence[NB201Network | Mapping[str, torch.Tensor]]) -> None:
        """Copy K separate models (in ``archs`` order) in. ``num_batches_tracked`` becomes the last one's
        (it is one counter per batched BN and only matters for ``momentum=None``, which NB201 does not use)."""
        if len(networks) != self.K:
            raise ValueError(f"expected {self.K} networks, got {len(networks)}")
        for k, net in enumerate(networks):
            self.load_network(k, net)


# ============================================================================================ training
def init_networks(archs: Sequence[str], num_classes: int, C: int, N: int, in_channels: int, seed: int) -> list[NB201Network]:
    """The initial separate models, exactly as ``TrainerOracle(seed=seed)`` draws them (global RNG restored)."""
    nets = []
    for arch in archs:
        with _INIT_LOCK, torch.random.fork_rng(devices=[]):
            torch.manual_seed(trial_seed(seed, arch))
            nets.append(build_network(arch, num_classes, C=C, N=N, in_channels=in_channels))
    return nets


def shared_data_seed(seed: int) -> int:
    """The seed of the data order and augmentation that every architecture of a build shares."""
    return trial_seed(seed, "shared data order")


@dataclass
class GroupResult:
    """What :func:`train_group` observed; arrays are (K, epochs), accuracies in percent, float32-rounded.

    ``failed[k]`` / ``reason[k]``: architecture k diverged (non-finite training or validation loss) in
    epoch ``fail_epoch[k]``; its metrics are NaN from that epoch on. ``wall_seconds[e]`` is the batched
    wall time of epoch e+1 (training pass + validation pass of all K, synchronised; not per-architecture cost).
    """

    archs: list[str]
    epochs: int
    curves: dict[str, np.ndarray]
    failed: np.ndarray
    fail_epoch: np.ndarray
    reason: list[str]
    wall_seconds: np.ndarray
    test_seconds: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _use_bf16(config: TrainConfig, device: torch.device) -> bool:
    return bool(config.bf16 and device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def _sgd_step(model, optimizer, scheduler, x, y, bf16: bool):
    """One training step of all K architectures: the summed loss gives each its own gradient."""
    with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(x)
    losses = _per_arch_loss(logits, y, "mean")
    optimizer.zero_grad(set_to_none=True)
    losses.sum().backward()
    optimizer.step()
    scheduler.step()
    return losses, logits


CURVE_KEYS = ("train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "test_acc")


def train_group(archs: Sequence[str], data: DataSplits, config: TrainConfig, *,
                callback: Callable[..., None] | None = None, model_factory=None,
                stop_after: int | None = None) -> GroupResult:
    """Train ``archs`` together for ``config.max_epochs`` epochs with the NB201 recipe of ``config``.

    ``stop_after``: train only the first that many epochs of the ``max_epochs`` schedule (the cosine
    still spans ``max_epochs``, so the curve is the prefix of the full run; later epochs stay NaN) —
    how ``pmfnas benchmark verify`` re-checks a table cheaply.

    Initial weights: :func:`init_networks` (``config.seed``); data order and augmentation: one
    ``torch.Generator`` seeded with :func:`shared_data_seed` (``config.seed``), the same for every call.
    ``data`` must already be on ``config.device``. ``callback(event="epoch", epoch=e, model=..., result=...)``
    is called after each epoch's metrics are recorded (progress reports; tests inject faults there).
    ``model_factory(archs, spec)`` may replace :class:`BatchedNB201` (it must produce ``(batch, K, classes)``
    logits and have a ``K`` attribute).
    """
    device = torch.device(config.device)
    spec = data.spec
    archs = list(archs)
    K = len(archs)
    E = config.max_epochs
    if stop_after is not None and (isinstance(stop_after, bool) or not isinstance(stop_after, int)
                                   or not 1 <= stop_after <= E):
        raise ValueError(f"stop_after={stop_after!r} must be an int from 1 to max_epochs={E}")
    last = E if stop_after is None else stop_after
    bf16 = _use_bf16(config, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not config.deterministic
        torch.backends.cudnn.deterministic = bool(config.deterministic)
    if model_factory is None:
        model = BatchedNB201(archs, spec.num_classes, C=config.C, N=config.N, in_channels=spec.in_channels)
        model.load_networks(init_networks(archs, spec.num_classes, config.C, config.N, spec.in_channels, config.seed))
    else:
        model = model_factory(archs, spec)
    model = model.to(device)
    steps = math.ceil(len(data.train_y) / config.batch_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                                weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=E * steps, eta_min=0.0)
    generator = torch.Generator().manual_seed(shared_data_seed(config.seed))
    steps_runner = make_steps(config.trainer, model, optimizer, scheduler, BATCHED, units=K, batch_size=config.batch_size,
                              eval_batch_size=config.eval_batch_size, device=device, bf16=bf16,
                              channels_last=config.channels_last, compile_mode=config.compile_mode,
                              compile_backend=config.compile_backend)
    curves = {key: np.full((K, E), np.nan, dtype=np.float64) for key in CURVE_KEYS}
    failed = np.zeros(K, dtype=bool)
    fail_epoch = np.zeros(K, dtype=np.int64)
    reasons = [""] * K
    wall = np.full(E, np.nan)
    test_wall = np.zeros(E)
    result = GroupResult(archs, E, curves, failed, fail_epoch, reasons, wall, test_wall)
    for epoch in range(1, last + 1):
        _sync(device)
        mark = time.perf_counter()
        train_loss, train_acc = steps_runner.train_epoch(generator, data)
        valid_loss, valid_acc = steps_runner.evaluate(data, data.valid_x, data.valid_y)
        _sync(device)
        wall[epoch - 1] = time.perf_counter() - mark
        if config.test_every_epoch or epoch == E:
            mark = time.perf_counter()
            test_loss, test_acc = steps_runner.evaluate(data, data.test_x, data.test_y)
            _sync(device)
            test_wall[epoch - 1] = time.perf_counter() - mark
        else:
            test_loss = test_acc = [float("nan")] * K
        for k in range(K):
            if failed[k]:
                continue
            if not (math.isfinite(train_loss[k]) and math.isfinite(valid_loss[k])):
                failed[k] = True
                fail_epoch[k] = epoch
                what = "training" if not math.isfinite(train_loss[k]) else "validation"
                value = train_loss[k] if what == "training" else valid_loss[k]
                reasons[k] = f"diverged: {what} loss became {value} in epoch {epoch}"
                continue
            for key, values in (("train_loss", train_loss), ("train_acc", train_acc), ("valid_loss", valid_loss),
                                ("valid_acc", valid_acc), ("test_loss", test_loss), ("test_acc", test_acc)):
                curves[key][k, epoch - 1] = float(np.float32(values[k]))
        if callback is not None:
            callback(event="epoch", epoch=epoch, model=model, result=result)
        if failed.all():
            break
    del model, optimizer, steps_runner
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


# ========================================================================================== throughput
class _SingleAsBatched(nn.Module):
    """One plain ``NB201Network`` with the batched interface (logits ``(batch, 1, classes)``): the eager baseline."""

    def __init__(self, net: NB201Network):
        super().__init__()
        self.net = net
        self.K = 1

    def forward(self, x):
        return self.net(x)[:, None, :]


def measure_throughput(k_values: Sequence[int] = (1, 8, 32), *, archs: Sequence[str] | None = None,
                       data: DataSplits | None = None, like: str = "fashion-mnist", C: int = 16, N: int = 5,
                       batch_size: int = 256, steps: int = 20, warmup: int = 3, device: str | None = None,
                       bf16: bool = True, epoch_images: int = 30000, eager_archs: int = 8, seed: int = 0,
                       image_size: int | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Training throughput of the batched trainer for each K in ``k_values`` vs the one-model eager loop,
    on the same device in one run.

    Architectures: ``archs`` or a seeded sample of the 6,466 canonical cells (``max(k_values)`` of them);
    batched K uses the first K, the eager loop trains each of the first ``eager_archs`` alone (its
    arch-steps/s is their mean speed; ``speedup_vs_eager`` of K compares with the mean time of the first
    min(K, ``eager_archs``) of them, i.e. the same architectures where possible). Data: ``data`` or synthetic uint8 images shaped like ``like``
    (speed does not depend on pixel values), ``image_size`` pixels a side when given. Each measurement times ``steps`` full training steps
    (augmentation, forward, backward, SGD, LR schedule) after ``warmup`` untimed steps, CUDA-synchronised.
    ``arch_epochs_per_s`` converts arch-steps to epochs of ``epoch_images`` training images (30,000 for
    the Fashion-MNIST split); validation passes are not included. On CUDA the peak memory of each K is
    reported; a K that runs out of memory is reported as ``"oom"`` and the larger ones are skipped.
    """
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    k_values = sorted({int(k) for k in k_values})
    if not k_values or k_values[0] < 1:
        raise ValueError(f"k_values must be positive ints, got {k_values}")
    if archs is None:
        pool = NB201Space().unique_architectures()
        rng = np.random.default_rng(seed)
        archs = [pool[i] for i in rng.choice(len(pool), size=min(max(k_values), len(pool)), replace=False)]
    archs = [NB201Space().parse(a) for a in archs]
    if len(archs) < max(k_values):
        archs = [archs[i % len(archs)] for i in range(max(k_values))]
    if data is None:
        data = synthetic_splits(max(batch_size * (steps + warmup), batch_size), 1, 1, like=like, seed=seed,
                                image_size=image_size)
    data = data.to(dev)
    config = TrainConfig(dataset=data.spec.name, C=C, N=N, max_epochs=1, batch_size=batch_size, device=str(dev), bf16=bf16)
    use_bf16 = _use_bf16(config, dev)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    spec = data.spec
    steps_per_epoch = math.ceil(epoch_images / batch_size)

    def timed(model) -> float:
        model = model.to(dev)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10 * (steps + warmup))
        generator = torch.Generator().manual_seed(seed)
        n = len(data.train_y)
        stats = data.stats()
        model.train()
        start = 0.0
        for step in range(warmup + steps):
            if step == warmup:
                _sync(dev)
                start = time.perf_counter()
            index = torch.randint(0, n, (batch_size,), generator=generator).to(dev)
            offsets, flips = draw_augmentation(batch_size, spec, generator)
            x = make_batch(data.train_x[index], spec, offsets=offsets.to(dev), flips=flips.to(dev), stats=stats)
            y = data.train_y[index]
            _sgd_step(model, optimizer, scheduler, x, y, use_bf16)
        _sync(dev)
        return time.perf_counter() - start

    def report(line):
        if progress:
            progress(line)

    rows = []
    n_eager = max(1, min(eager_archs, len(archs)))
    eager_seconds = []
    for arch in archs[:n_eager]:
        net = build_network(arch, spec.num_classes, C=C, N=N, in_channels=spec.in_channels)
        eager_seconds.append(timed(_SingleAsBatched(net)))
    eager_rate = steps / float(np.mean(eager_seconds))  # arch-steps per second, one model at a time
    report(f"eager (one model at a time, {n_eager} archs): {eager_rate:.2f} arch-steps/s, "
           f"{eager_rate / steps_per_epoch:.4f} arch-epochs/s")
    oom = False
    for k in k_values:
        row = {"K": k}
        if oom:
            row["status"] = "skipped (a smaller K ran out of memory)"
            rows.append(row)
            continue
        try:
            if dev.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(dev)
            model = BatchedNB201(archs[:k], spec.num_classes, C=C, N=N, in_channels=spec.in_channels)
            seconds = timed(model)
            rate = k * steps / seconds
            # The baseline on the same architectures where they were timed alone (their mix sets the cost).
            same = eager_seconds[:min(k, n_eager)]
            baseline = steps / float(np.mean(same))
            row.update(status="ok", seconds=seconds, arch_steps_per_s=rate, arch_epochs_per_s=rate / steps_per_epoch,
                       eager_arch_steps_per_s=baseline, speedup_vs_eager=rate / baseline)
            if dev.type == "cuda":
                row["peak_memory_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
            report(f"batched K={k}: {rate:.2f} arch-steps/s, {rate / steps_per_epoch:.4f} arch-epochs/s, "
                   f"x{rate / baseline:.2f} vs eager" + (f", peak {row['peak_memory_gib']:.1f} GiB" if "peak_memory_gib" in row else ""))
            del model
        except RuntimeError as error:
            if "out of memory" not in str(error).lower():
                raise
            oom = True
            row["status"] = "oom"
            report(f"batched K={k}: out of memory")
        rows.append(row)
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        device_name = torch.cuda.get_device_name(dev)
    else:
        device_name = f"cpu ({torch.get_num_threads()} threads)"
    return {"device": device_name, "torch": torch.__version__, "bf16": use_bf16, "C": C, "N": N,
            "image_size": spec.size,
            "batch_size": batch_size, "steps": steps, "warmup": warmup, "epoch_images": epoch_images,
            "steps_per_epoch": steps_per_epoch, "eager": {"archs": n_eager, "arch_steps_per_s": eager_rate,
                                                          "arch_epochs_per_s": eager_rate / steps_per_epoch,
                                                          "seconds_per_arch": eager_seconds},
            "batched": rows, "archs": archs}
