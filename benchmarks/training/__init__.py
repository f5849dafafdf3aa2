"""Real training of NAS-Bench-201 and NAS-Bench-101 networks with PyTorch, behind the same oracle interface as the tables.

Every torch import of pmf-nas lives in this package; importing ``benchmarks.training`` itself imports
nothing heavy, the modules do:

* :mod:`benchmarks.training.nb201_model` — ``NB201Network`` / ``build_network(arch, num_classes, C=16, N=5,
  in_channels=3)`` and ``count_parameters``;
* :mod:`benchmarks.training.nb101_model` — ``build_nb101_network(arch, num_classes, ...)`` through
  ``nasbench-pytorch`` (pruned cell; the published 2,694,282 parameters of the Inception-like cell);
* :mod:`benchmarks.training.data` — ``load_dataset(name, root=None, split_seed=0, train_size=..., device=...)``
  for fashion-mnist, cifar10, cifar100 and imagenet16-120 (``image_size=`` down-samples at load), tensor
  augmentation, ``synthetic_splits``;
* :mod:`benchmarks.training.trainer` — ``TrainerOracle`` (a ``FidelityOracle`` that trains, checkpoints,
  resumes and records) and ``TrainConfig``; ``TrainerOracle.to_table(name)`` writes what it trained in
  the open tabular format, so a real search can be replayed on its own recording;
* :mod:`benchmarks.training.paths` — how a training step runs: eager, captured in a CUDA graph, or compiled
  (``--trainer``), with ``resolve_trainer`` for ``auto``;
* :mod:`benchmarks.training.throughput` — ``pmfnas benchmark throughput``: arch-epochs/s and TFLOP/s of every path;
* :mod:`benchmarks.training.batched` / :mod:`benchmarks.training.build` — K cells as one network, and the
  resumable chunked build of our own tables (``pmfnas benchmark build``);
* :mod:`benchmarks.training.verify` — ``pmfnas benchmark verify``: retrain cells of a built table, compare;
* :mod:`benchmarks.training.device_check` — the GPU check behind ``python -m benchmarks.device_check``.
"""
