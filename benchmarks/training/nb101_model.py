"""The NAS-Bench-101 network built from an architecture key, with ``nasbench-pytorch``'s ``Network``.

Macro skeleton (Ying et al. 2019, and ``nasbench_pytorch.model.Network``): a 3x3 Conv-BN-ReLU stem to
``stem_channels``, then ``num_stacks`` stacks of ``modules_per_stack`` cells, a 2x2 max-pool halving
the resolution and the channels doubling before every stack but the first, global average pooling
and a linear classifier. NAS-Bench-101 itself uses stem 128, 3 stacks of 3 cells.

The cell handed to ``Network`` is the PRUNED cell (:meth:`benchmarks.spaces.nb101.NB101Space.prune`):
vertices on no input->output path compute nothing, so a key and its pruned form give the same network.
``nasbench-pytorch`` would prune too, but its ``ModelSpec`` fails on inputs this module never passes
(disconnected cells); pruning here keeps the network a function of the pruned cell alone.

Parameter counts. ``nasbench-pytorch`` puts a one-element dummy parameter in every ``Placeholder``
(the module standing for "no op" / "no projection"); it is never used in ``forward``. The builder
removes it, so :func:`benchmarks.training.nb201_model.count_parameters` counts exactly the trainable
parameters of the official TensorFlow model (convolutions without bias, BN scale and shift, the
classifier's weight and bias): 2,694,282 for the Inception-like cell of the NAS-Bench-101 colab
(``NASBench.ipynb``) at the default sizes and 10 classes, the ``trainable_parameters`` its dataset
query prints for that cell.

Batch norm keeps ``nasbench-pytorch``'s settings: the stem and the input projections use PyTorch
momentum 0.997 (the official TensorFlow value, but PyTorch's momentum weights the NEW batch, so their
running statistics follow the last batch), the vertex ops PyTorch's default 0.1; eps 1e-5.
"""
from __future__ import annotations

from torch import nn

from benchmarks.spaces.nb101 import NB101Space

__all__ = ["build_nb101_network", "require_nasbench_pytorch"]


def require_nasbench_pytorch():
    """``nasbench_pytorch.model.Network``; ImportError saying how to install it when it is missing."""
    try:
        from nasbench_pytorch.model import Network
    except ImportError as error:
        raise ImportError("NAS-Bench-101 networks are built with nasbench-pytorch, which is not installed: "
                          "pip install nasbench-pytorch (or pip install \".[train]\")") from error
    return Network


def build_nb101_network(arch: str, num_classes: int, in_channels: int = 3, stem_channels: int = 128,
                        num_stacks: int = 3, modules_per_stack: int = 3) -> nn.Module:
    """The NAS-Bench-101 network of cell ``arch`` (an :class:`NB101Space` key, pruned first).

    ``in_channels`` is 3 for CIFAR/ImageNet16 and 1 for Fashion-MNIST. The network's ``arch``
    attribute is the key as given (parsed); its weights are initialised as ``nasbench-pytorch`` does,
    from the global torch RNG.
    """
    for name, value in (("num_classes", num_classes), ("in_channels", in_channels), ("stem_channels", stem_channels),
                        ("num_stacks", num_stacks), ("modules_per_stack", modules_per_stack)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive int")
    Network = require_nasbench_pytorch()
    from nasbench_pytorch.model.model import Placeholder

    space = NB101Space()
    arch = space.parse(arch)
    matrix, ops = space.matrix_and_ops(space.prune(arch))
    network = Network((matrix, ops), num_labels=num_classes, in_channels=in_channels,
                      stem_out_channels=stem_channels, num_stacks=num_stacks, num_modules_per_stack=modules_per_stack)
    for module in network.modules():
        if isinstance(module, Placeholder) and "a" in module._parameters:
            del module.a  # the unused dummy weight (see the module docstring)
    network.arch = arch
    return network
