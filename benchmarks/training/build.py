"""Build our own tabular benchmark: every unique NAS-Bench-201 cell trained for real, resumably.

``build_benchmark(out_dir, ...)`` trains a list of architectures (default: the 6,466 canonical NB201
cells of ``NB201Space().unique_architectures()``, in official index order) with the batched trainer
of :mod:`benchmarks.training.batched`, ``batch_k`` architectures at a time (within a chunk, groups are
formed in op-sequence order so that similar cells share a group; results do not depend on grouping), and writes

* ``out_dir/manifest.json`` — hardware, torch/python/numpy versions, git commit, seeds, every setting,
  the fitted cost model and how seconds are derived, and one entry per run (a resumed build has several);
* ``out_dir/chunks/chunk-00012.npz`` — chunk i holds architectures ``archs[i*chunk_size:(i+1)*chunk_size]``
  as a pmfnas-tabular table (one repeat; fidelities = every epoch 1..epochs; curves valid/valid_loss,
  train/train_loss, test/test_loss, accuracies in percent; seconds; failed; ``arch_features`` =
  ``n_params``, ``flops``). Each chunk is written atomically (temporary file + ``os.replace``): a file
  either is a whole chunk or does not exist. A rerun skips every chunk that exists (resume), so a build
  can be stopped at any moment (``max_chunks`` / ``time_budget_s`` stop it cleanly between chunks) and
  continued later, on the same or another machine. Settings that change results must not change
  between runs on one ``out_dir`` (the manifest refuses); ``batch_k`` and ``device`` may.

``merge_chunks(out_dir, name="nb201-fmnist", out=None)`` concatenates the chunks into one table
(space ``nb201``, metric ``valid_accuracy``, higher is better, ``canonical_keys=True``: a
``TabularOracle`` answers any of the 15,625 cells through its canonical representative), with the
manifest as provenance; ``notes`` say how many of the expected architectures are present if partial.

Training. The NB201 recipe of :class:`~benchmarks.training.trainer.TrainConfig` (SGD Nesterov 0.9,
lr 0.1 cosine to 0 over ``epochs`` stepped per iteration, weight decay 5e-4, batch 256, bf16 autocast
on CUDA). Initial weights of each architecture are those ``TrainerOracle(seed=seed)`` would draw; the
data order and augmentation are one seeded stream shared by EVERY architecture of the build (see
:mod:`benchmarks.training.batched`), so a result does not depend on chunking or ``batch_k``. A run whose
training or validation loss becomes non-finite is kept with ``failed=True`` and NaN metrics from the
epoch it diverged in (the seconds of that epoch are charged, later epochs are NaN), as the tabular
format and ``TrainerOracle.to_table`` do. A group that runs out of GPU memory is split in halves and retried.

Seconds — what the table charges. A search replayed on the table must be charged what ONE architecture
costs when trained ALONE on the build's GPU (the way ``pmfnas search --train`` trains), not the batched
wall time divided by K (batching amortises kernel launches and fills the GPU; its per-architecture
share says nothing about one model's cost and depends on the other K-1 architectures). So before the
first chunk the build trains a sample of ``cost_sample`` architectures (default 32, drawn with
``seed`` from the list, plus the list's cheapest and most expensive by FLOPs to anchor the range) alone
with :class:`~benchmarks.training.trainer.TrainerOracle` for ``cost_epochs`` epochs (default 1) on the
same data, device and precision, after one untimed warm-up epoch of a throw-away model (it absorbs the one-time
costs: CUDA context, kernel loading, cuDNN autotuning of the conv shapes, which every NB201 cell shares).
An architecture's measured seconds/epoch is the mean of its charged epochs, each being one training pass
plus one validation pass, CUDA-synchronised, exactly what ``TrainerOracle`` charges. A linear model is fitted by least squares (``numpy.linalg.lstsq``):

* ``cost_features="ops"`` (default): seconds/epoch = a + b3·#nor_conv_3x3 + b1·#nor_conv_1x1 +
  bp·#avg_pool_3x3 + bz·#none (skip_connect is the reference op; the six counts sum to 6). This
  contains the FLOPs and parameter-count models (both are affine in #conv3x3 and #conv1x1 in this
  space) and also captures the per-op launch and memory-traffic costs that dominate small networks on a GPU;
* ``"flops"``: a + b·forward FLOPs; ``"params"``: a + b·parameter count.

A model with as many coefficients as measured architectures (or a rank-deficient one) falls back to
``flops`` and then to a constant (the mean); the manifest records the model requested and used, its
coefficients, R², RMSE, and every measured point. The fit is applied to every architecture of the
table (the sampled ones included, for consistency) and its prediction, clamped below at half the
fastest measured architecture, is the per-epoch seconds of every epoch. The fit is stored once in the
manifest and reused by resumed runs, so all chunks share one cost model. The batched wall time of every
group is kept in the chunk files (``extra.group_wall_seconds``) for information only.

On a CPU shared with other jobs (the project's own ``nb201-fmnist`` is built on a 2-core machine),
``cost_clock="process"`` times the cost sample in CPU seconds of the process instead (each sampled
architecture trained alone by the build's own trainer, epochs 2..cost_epochs+1 of the real schedule,
with one torch thread): the wall clock would add random waits for a core. Every run also records its
wall and CPU seconds per chunk in the manifest. ``sample=n`` builds the seeded uniform sample
:func:`sample_canonical` of the canonical cells, ``image_size`` down-samples the images at load; both are
settings of the manifest.

CLI: :func:`add_build_arguments` / :func:`build_command` implement ``pmfnas benchmark build --out DIR
[--epochs 24 --chunk-size 64 --batch-k 32 --device cuda --C 16 --N 5 ...] [--merge OUT.npz]``;
:func:`add_throughput_arguments` / :func:`throughput_command` run
:func:`benchmarks.training.batched.measure_throughput`. This module imports torch only inside the
functions that train, so the parsers and :func:`merge_chunks` work without it.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import math
import numbers
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from benchmarks.argtypes import positive_int, positive_number
from benchmarks.spaces.nb201 import OPS, NB201Space
from benchmarks.tabular import BenchmarkFormatError, BenchmarkMetadata, TabularBenchmark, check_table_destination
from benchmarks.files import atomic_write

__all__ = ["build_benchmark", "sample_canonical", "merge_chunks", "chunk_path", "read_manifest", "nb201_flops", "nb201_params",
           "cost_features", "fit_cost_model", "predict_cost", "add_build_arguments", "build_command",
           "add_throughput_arguments", "throughput_command", "DEFAULT_NAME", "N_CANONICAL", "LICENCE"]

DEFAULT_NAME = "nb201-fmnist"
N_CANONICAL = 6466
LICENCE = "CC-BY-4.0 (pmf-nas project); Fashion-MNIST data MIT (Zalando)"
MANIFEST_FORMAT = "pmfnas-build-manifest"
MANIFEST_VERSION = 1
FEATURE_NAMES = ("n_params", "flops")
COST_MODELS = ("ops", "flops", "params")
_CHUNK_RE = re.compile(r"^chunk-(\d{5,})\.npz$")
# Settings that may differ between runs on one out_dir (they do not change what is computed).
_FREE_SETTINGS = ("device", "data_root", "batch_k", "eval_batch_size", "cost_sample", "cost_epochs", "cost_features",
                  "cost_clock")
COST_CLOCKS = ("wall", "process")
_REPO = Path(__file__).resolve().parents[2]
_RECIPE_SETTINGS = ("dataset", "data_root", "C", "N", "batch_size", "lr", "momentum", "nesterov", "weight_decay", "seed",
                    "split_seed", "train_size", "valid_size", "test_size", "image_size", "device", "bf16", "deterministic",
                    "test_every_epoch", "eval_batch_size")


# ============================================================================ architecture descriptors
def _stage_geometry(C: int, image_size: int):
    sizes = [image_size]
    for _ in range(2):
        sizes.append((sizes[-1] - 1) // 2 + 1)  # Conv3x3 stride 2 padding 1
    return [(C, sizes[0]), (2 * C, sizes[1]), (4 * C, sizes[2])]


def _op_counts(arch: str) -> dict[str, int]:
    ops = NB201Space().ops(arch)
    return {op: ops.count(op) for op in ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")}


def nb201_flops(arch: str, C: int = 16, N: int = 5, in_channels: int = 3, image_size: int = 32,
                num_classes: int = 10) -> int:
    """Forward FLOPs (2 x multiply-accumulates) of convolutions and the classifier for one image.

    Every edge's conv is counted, dead ones included (the network computes them); BN, ReLU, pooling and
    additions are not. In this space FLOPs are affine in the counts of nor_conv_3x3 and nor_conv_1x1.
    """
    counts = _op_counts(arch)
    stages = _stage_geometry(C, image_size)
    macs = in_channels * C * 9 * image_size ** 2
    for s, (w, size) in enumerate(stages):
        area = size * size
        if s > 0:
            w_in = stages[s - 1][0]
            macs += (9 * w_in * w + 9 * w * w + w_in * w) * area
        macs += N * (counts["nor_conv_3x3"] * 9 * w * w + counts["nor_conv_1x1"] * w * w) * area
    macs += 4 * C * num_classes
    return 2 * macs


def nb201_params(arch: str, C: int = 16, N: int = 5, in_channels: int = 3, num_classes: int = 10) -> int:
    """Trainable parameters of ``NB201Network`` (equals ``count_parameters``; dead edges included)."""
    counts = _op_counts(arch)
    total = in_channels * C * 9 + 2 * C
    widths = (C, 2 * C, 4 * C)
    for s, w in enumerate(widths):
        if s > 0:
            w_in = widths[s - 1]
            total += 9 * w_in * w + 2 * w + 9 * w * w + 2 * w + w_in * w
        total += N * (counts["nor_conv_3x3"] * (9 * w * w + 2 * w) + counts["nor_conv_1x1"] * (w * w + 2 * w))
    return total + 2 * 4 * C + 4 * C * num_classes + num_classes


def cost_features(arch: str, kind: str, *, C: int, N: int, in_channels: int, image_size: int, num_classes: int) -> list[float]:
    """The regressors (without intercept) of cost model ``kind`` for one architecture."""
    if kind == "ops":
        c = _op_counts(arch)
        return [float(c["nor_conv_3x3"]), float(c["nor_conv_1x1"]), float(c["avg_pool_3x3"]), float(c["none"])]
    if kind == "flops":
        return [float(nb201_flops(arch, C, N, in_channels, image_size, num_classes))]
    if kind == "params":
        return [float(nb201_params(arch, C, N, in_channels, num_classes))]
    if kind == "constant":
        return []
    raise ValueError(f"unknown cost model {kind!r}; choose one of {COST_MODELS}")


_REGRESSORS = {"ops": ["n_nor_conv_3x3", "n_nor_conv_1x1", "n_avg_pool_3x3", "n_none"], "flops": ["flops"],
               "params": ["n_params"], "constant": []}


def fit_cost_model(archs: Sequence[str], seconds: Sequence[float], kind: str = "ops", *, C: int, N: int,
                   in_channels: int, image_size: int, num_classes: int) -> dict:
    """Least-squares fit of seconds/epoch on the features of ``kind`` (plus an intercept).

    Falls back to ``flops`` then ``constant`` when the sample cannot determine the requested model
    (no more points than coefficients, or collinear features). Returns a JSON-able description:
    ``used``, ``requested``, ``regressors``, ``coefficients`` (intercept first), ``r2``, ``rmse``, ``n``
    and the measured points.
    """
    if kind not in COST_MODELS:
        raise ValueError(f"unknown cost model {kind!r}; choose one of {COST_MODELS}")
    y = np.asarray(seconds, dtype=np.float64)
    if y.size == 0 or not np.all(np.isfinite(y)):
        raise ValueError("the cost model needs at least one finite measured seconds/epoch")
    geometry = dict(C=C, N=N, in_channels=in_channels, image_size=image_size, num_classes=num_classes)
    candidates = [kind] + [k for k in ("flops", "constant") if k != kind]
    for used in candidates:
        X = np.array([[1.0] + cost_features(a, used, **geometry) for a in archs], dtype=np.float64).reshape(len(archs), -1)
        n_coef = X.shape[1]
        if used != "constant" and (y.size <= n_coef or np.linalg.matrix_rank(X) < n_coef):
            continue
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        pred = X @ coef
        ss_res = float(np.sum((y - pred) ** 2))
        ss_tot = float(np.sum((y - y.mean()) ** 2))
        r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
        return {"requested": kind, "used": used, "regressors": ["intercept"] + _REGRESSORS[used],
                "coefficients": [float(c) for c in coef], "r2": float(r2), "rmse": float(math.sqrt(ss_res / y.size)),
                "n": int(y.size), "floor_seconds": float(0.5 * y.min()), "geometry": geometry,
                "measured": [{"arch": a, "seconds_per_epoch": float(s), "predicted": float(p)}
                             for a, s, p in zip(archs, y.tolist(), pred.tolist())]}
    raise AssertionError("unreachable: the constant model always fits")


def predict_cost(model: dict, archs: Sequence[str]) -> np.ndarray:
    """Per-epoch seconds of ``archs`` under a fitted cost model (clamped at its ``floor_seconds``)."""
    coef = np.asarray(model["coefficients"], dtype=np.float64)
    X = np.array([[1.0] + cost_features(a, model["used"], **model["geometry"]) for a in archs],
                 dtype=np.float64).reshape(len(archs), -1)
    return np.maximum(X @ coef, float(model["floor_seconds"]))


# ================================================================================ environment facts
def _git_commit() -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_REPO, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return {"git_commit": "unknown", "git_dirty": None}
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=_REPO,
                                capture_output=True, text=True, timeout=10)
        dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
        return {"git_commit": commit.stdout.strip() or "unknown", "git_dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "git_dirty": None}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _hardware(device) -> dict:
    import torch

    facts = {"device": str(device), "cpu": _cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
             "platform": platform.platform()}
    if device.type == "cuda":
        facts.update(device_name=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                     cudnn=torch.backends.cudnn.version(),
                     bf16=bool(torch.cuda.is_bf16_supported()))
    else:
        facts["device_name"] = f"CPU: {facts['cpu']}"
    return facts


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ====================================================================================== files
def chunk_path(out_dir: str | os.PathLike, index: int) -> Path:
    return Path(out_dir) / "chunks" / f"chunk-{index:05d}.npz"


def read_manifest(out_dir: str | os.PathLike) -> dict:
    path = Path(out_dir) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {out_dir} is not a benchmark build directory")
    return json.loads(path.read_text())


def _write_json_atomic(path: Path, document: dict) -> None:
    atomic_write(path, json.dumps(document, indent=2, sort_keys=False) + "\n")


def _archs_digest(archs: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(archs).encode()).hexdigest()


def sample_canonical(n: int, seed: int = 0) -> list[str]:
    """A seeded uniform sample of ``n`` of the 6,466 canonical NB201 cells, in the order drawn.

    ``numpy.random.default_rng(seed).permutation(6466)[:n]`` indexes ``NB201Space().unique_architectures()``
    (official index order). The order drawn is kept, so every prefix of the list — the chunks of a build
    built so far — is itself a uniform sample, and a larger ``n`` with the same seed extends a smaller one.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= N_CANONICAL:
        raise ValueError(f"sample={n!r} must be an int from 1 to {N_CANONICAL} (the canonical NB201 cells)")
    pool = NB201Space().unique_architectures()
    return [pool[int(i)] for i in np.random.default_rng(seed).permutation(len(pool))[:int(n)]]


def _resolve_archs(archs: Sequence[str] | None, sample: int | None = None, sample_seed: int = 0) -> tuple[list[str], str]:
    space = NB201Space()
    if sample is not None:
        if archs is not None:
            raise ValueError("give either an architecture list or a sample size, not both")
        return sample_canonical(sample, sample_seed), (
            f"sample: numpy default_rng({sample_seed}).permutation({N_CANONICAL})[:{sample}] over the canonical "
            "cells in official index order, in the order drawn")
    if archs is None:
        return space.unique_architectures(), "canonical"
    if isinstance(archs, str):
        raise TypeError("archs must be a list of architecture strings")
    result, seen = [], set()
    for arch in archs:
        canonical = space.canonical(space.parse(arch))
        if canonical not in seen:
            seen.add(canonical)
            result.append(canonical)
    if not result:
        raise ValueError("no architectures to build")
    return result, "explicit (canonicalised, duplicates dropped)"


SECONDS_DERIVATION = (
    "seconds[arch, epoch] = the per-epoch cost of this architecture trained ALONE on the build's hardware, "
    "predicted by a linear cost model (manifest cost_model) fitted with numpy least squares to a sample of "
    "architectures that were each trained alone with pmf-nas TrainerOracle (same recipe, data, device and "
    "precision; after an untimed warm-up epoch of a throw-away model; measured seconds/epoch = mean of the charged "
    "epochs, each epoch = one training pass + one validation pass, CUDA-synchronised; test evaluation, "
    "checkpoints and model construction not charged). The same value is used for every epoch, clamped below at "
    "half the fastest measured architecture. It is NOT the batched wall time divided by K (that is kept for "
    "information as extra.group_wall_seconds in each chunk file). A failed run is charged up to and including "
    "the epoch it diverged in; later epochs are NaN.")


SECONDS_DERIVATION_PROCESS = (
    "seconds[arch, epoch] = the per-epoch cost of this architecture trained ALONE on the build's hardware, "
    "predicted by a linear cost model (manifest cost_model) fitted with numpy least squares to a sample of "
    "architectures that were each trained alone by the build's own trainer (K=1, same recipe, data and device), "
    "timed in CPU seconds of the process (user + system; time.process_time) over epochs 2..cost_epochs+1 of the "
    "real schedule, each epoch = one training pass + one validation pass, with one torch thread (cost_clock="
    "'process': on a CPU shared with other jobs this is what the cell costs on the core it runs on, without the "
    "time spent waiting for a core, which the wall clock would add at random). The same value is used for every "
    "epoch, clamped below at half the fastest measured architecture. It is NOT a batched wall time divided by K. "
    "A failed run is charged up to and including the epoch it diverged in; later epochs are NaN.")


# ======================================================================================= building
def build_benchmark(out_dir: str | os.PathLike, archs: Sequence[str] | None = None, *, epochs: int = 24,
                    chunk_size: int = 64, batch_k: int = 32, device: str | None = None, C: int = 16, N: int = 5,
                    seed: int = 0, split_seed: int = 0, dataset: str = "fashion-mnist", data_root: str | None = None,
                    train_size: int | None = None, valid_size: int | None = None, test_size: int | None = None,
                    image_size: int | None = None, batch_size: int = 256, lr: float = 0.1, momentum: float = 0.9, nesterov: bool = True,
                    weight_decay: float = 5e-4, bf16: bool = True, deterministic: bool = False,
                    test_every_epoch: bool = True, eval_batch_size: int = 1024, cost_sample: int = 32,
                    cost_epochs: int = 1, cost_features: str = "ops", cost_clock: str = "wall",
                    name: str = DEFAULT_NAME, data=None,
                    trainer: str = "auto", compile_mode: str = "max-autotune-no-cudagraphs",
                    max_chunks: int | None = None, time_budget_s: float | None = None,
                    sample: int | None = None, sample_seed: int = 0, shard: tuple[int, int] | None = None,
                    progress: Callable[[str], None] | None = print, callback: Callable[..., None] | None = None) -> dict:
    """Train ``archs`` (default: the 6,466 canonical NB201 cells) into ``out_dir`` chunk by chunk; resumable.

    ``sample`` / ``sample_seed``: instead of ``archs``, the seeded uniform sample :func:`sample_canonical`
    (recorded in the manifest's settings). ``image_size``: images down-sampled at load (see
    :func:`benchmarks.training.data.load_dataset`).

    See the module docstring for the files, the training and the seconds. ``data``: prebuilt
    :class:`~benchmarks.training.data.DataSplits` (default: ``load_dataset(dataset, data_root, split_seed,
    sizes)`` on ``device``, loaded only if something has to be trained). ``max_chunks`` / ``time_budget_s``:
    build at most that many new chunks / start no new chunk once the elapsed time plus the last chunk's
    duration would exceed the budget. ``shard=(i, n)``: build only the chunks whose index is ``i`` modulo ``n``,
    so ``n`` processes (``pmfnas benchmark build --shard i/n``) can build one ``out_dir`` at the same time;
    they share the manifest under a file lock (the first to start calibrates the cost model, the others
    wait for it) and each records its own run. ``callback(event=..., **info)`` is called with ``event="epoch"``
    (``chunk``, ``epoch``, ``model``, ``result``, ``archs``) after each epoch of each group and
    ``event="chunk"`` (``chunk``, ``path``) after each chunk is written.

    ``trainer`` is how every group's step runs (:func:`benchmarks.training.paths.resolve_trainer` with
    ``batched=True``: ``batched`` = the batched network stepped eagerly, ``graph`` = its whole step in a
    CUDA graph, ``compiled`` = ``torch.compile``, ``auto`` = the fastest the device has, saying why when it
    falls back); the cost-model sample, trained alone, uses the same path, as a search would. It does not
    change results (within the paths' tolerance) and may change between runs on one ``out_dir``.

    Returns a summary: ``built`` / ``skipped`` chunk indices, ``n_chunks``, ``complete``, ``stopped``
    (why it stopped early, or None), ``seconds`` and ``manifest``.
    """
    import torch

    from benchmarks.training.trainer import TrainConfig

    started = time.perf_counter()
    cpu_started = time.process_time()
    out_dir = Path(out_dir)
    say = progress or (lambda line: None)
    archs, source = _resolve_archs(archs, sample, sample_seed)
    for label, value in (("chunk_size", chunk_size), ("batch_k", batch_k), ("cost_sample", cost_sample),
                         ("cost_epochs", cost_epochs), ("epochs", epochs)):
        if not _is_positive_whole(value):
            raise ValueError(f"{label}={value!r} must be a positive int")
    if max_chunks is not None and not _is_positive_whole(max_chunks):
        raise ValueError(f"max_chunks={max_chunks!r} must be a positive int or None")
    if time_budget_s is not None and (isinstance(time_budget_s, bool) or not isinstance(time_budget_s, numbers.Real)
                                      or not 0 < time_budget_s < math.inf):
        raise ValueError(f"time_budget_s={time_budget_s!r} must be a positive number of seconds or None")
    if data is None:
        # Checked before the manifest is written: it records these settings, and a rerun with corrected
        # ones would otherwise be refused as "built with other settings".
        from benchmarks.training.data import DATASETS, resized_spec, canonical_name

        resized_spec(DATASETS[canonical_name(dataset)], image_size)  # the loader's own rule for image_size
        for label, value in (("train_size", train_size), ("valid_size", valid_size), ("test_size", test_size)):
            if value is not None and not _is_positive_whole(value):
                raise ValueError(f"{label}={value!r} must be a positive int or None")
    if cost_features not in COST_MODELS:
        raise ValueError(f"cost_features={cost_features!r} must be one of {COST_MODELS}")
    shard_index, shard_count = _check_shard(shard)
    if cost_clock not in COST_CLOCKS:
        raise ValueError(f"cost_clock={cost_clock!r} must be one of {COST_CLOCKS}")
    if cost_clock == "process" and cost_epochs + 1 >= epochs:
        raise ValueError(f"cost_clock='process' times epochs 2..cost_epochs+1 of the schedule without its last "
                         f"(test) epoch: cost_epochs={cost_epochs} needs epochs > {cost_epochs + 1}, got {epochs}")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    from benchmarks.training.paths import resolve_trainer

    path, note = resolve_trainer(trainer, dev, batched=True)
    if note:
        say(note)
    if data is not None:
        train_size, valid_size, test_size = (data.sizes[k] for k in ("train", "valid", "test"))
        split_seed, dataset = data.split_seed, data.spec.name
        from benchmarks.training.data import DATASETS

        image_size = data.spec.size if data.spec.size != DATASETS[dataset].size else None
    config = TrainConfig(dataset=dataset, data_root=data_root, C=C, N=N, max_epochs=epochs, batch_size=batch_size, lr=lr,
                         momentum=momentum, nesterov=nesterov, weight_decay=weight_decay, seed=seed,
                         split_seed=split_seed, train_size=train_size, valid_size=valid_size, test_size=test_size,
                         image_size=image_size, device=str(dev), bf16=bf16, deterministic=deterministic,
                         test_every_epoch=test_every_epoch, eval_batch_size=eval_batch_size, trainer=path,
                         compile_mode=compile_mode)
    settings = {k: getattr(config, k) for k in _RECIPE_SETTINGS}
    settings.update(epochs=epochs, chunk_size=chunk_size, batch_k=batch_k, cost_sample=cost_sample,
                    cost_epochs=cost_epochs, cost_features=cost_features, cost_clock=cost_clock, n_archs=len(archs),
                    archs_source=source,
                    archs_sha256=_archs_digest(archs))
    if sample is not None:  # absent otherwise, so manifests from before the option compare equal
        settings.update(sample=int(sample), sample_seed=int(sample_seed))
    n_chunks = math.ceil(len(archs) / chunk_size)
    (out_dir / "chunks").mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "manifest.json"
    builders = _join_builders(out_dir)  # held until this build ends: tells later builders it is running
    run = {"id": uuid.uuid4().hex, "started": _now(), "status": "running", "hardware": _hardware(dev),
           "torch": torch.__version__, **_git_commit(), "batch_k": batch_k,
           "shard": None if shard is None else f"{shard_index}/{shard_count}",
           "trainer": {"asked": trainer, "used": path, "note": note, "compile_mode": compile_mode}, "built": []}
    with _manifest_lock(out_dir):
        if manifest_path.is_file():
            manifest = read_manifest(out_dir)
            old = manifest.get("settings", {})
            clash = sorted(k for k in set(old) | set(settings) if k not in _FREE_SETTINGS and old.get(k) != settings.get(k))
            if clash:
                builders.close()
                raise ValueError(f"{out_dir} was built with other settings ({', '.join(f'{k}: {old.get(k)!r} -> {settings.get(k)!r}' for k in clash)}); "
                                 "use a new output directory")
        else:
            from benchmarks.training.batched import shared_data_seed

            manifest = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "name": name, "created": _now(),
                        "settings": settings, "seeds": {
                            "seed": seed, "split_seed": split_seed,
                            "init": "per architecture: torch.manual_seed(trial_seed(seed, arch)) then build_network, "
                                    "as TrainerOracle(seed=seed) (benchmarks.training.trainer.trial_seed)",
                            "data_order_seed": shared_data_seed(seed),
                            "data_order": "one torch.Generator seeded with data_order_seed per training group; every "
                                          "architecture sees the same data order and augmentation draws",
                            "cost_sample": f"numpy default_rng({seed}).choice over the arch list",
                            **({"sample_seed": int(sample_seed)} if sample is not None else {})},
                        "torch": torch.__version__, "python": platform.python_version(), "numpy": np.__version__,
                        **_git_commit(), "n_archs": len(archs), "n_chunks": n_chunks,
                        "expected_of_canonical": N_CANONICAL if source == "canonical" else None,
                        "seconds_derivation": SECONDS_DERIVATION if cost_clock == "wall" else SECONDS_DERIVATION_PROCESS,
                        "cost_model": None, "runs": []}
        manifest.setdefault("runs", []).append(run)
        _write_json_atomic(manifest_path, manifest)

    state = {"data": data}

    def get_data():
        if state["data"] is None:
            from benchmarks.training.data import load_dataset

            say(f"loading {dataset} onto {dev} ...")
            state["data"] = load_dataset(dataset, data_root, split_seed=split_seed, train_size=train_size,
                                         valid_size=valid_size, test_size=test_size, device=dev,
                                         image_size=image_size)
        else:
            state["data"] = state["data"].to(dev)
        return state["data"]

    built, skipped, stopped = [], [], None
    try:
        if manifest.get("cost_model") is None:
            # Under the lock, so that builders started together calibrate once: the others wait, then read it.
            with _manifest_lock(out_dir):
                manifest = read_manifest(out_dir)
                if manifest.get("cost_model") is None:
                    manifest["cost_model"], manifest["hardware"] = _calibrate(archs, config, get_data(), cost_sample,
                                                                              cost_epochs, cost_features, seed, say,
                                                                              cost_clock), run["hardware"]
                    manifest["data"] = {"dataset": config.dataset, "root": get_data().root, "sizes": get_data().sizes,
                                        "split_seed": split_seed}
                    _write_json_atomic(manifest_path, _with_run(manifest, run))
        cost_model = manifest["cost_model"]
        last_duration = 0.0
        for index in range(shard_index, n_chunks, shard_count):
            path = chunk_path(out_dir, index)
            expected = archs[index * chunk_size:(index + 1) * chunk_size]
            if path.is_file():
                if _chunk_is_valid(path, expected, epochs, say):
                    skipped.append(index)
                    continue
            if max_chunks is not None and len(built) >= max_chunks:
                stopped = f"max_chunks={max_chunks} reached"
                break
            elapsed = time.perf_counter() - started
            if time_budget_s is not None and built and elapsed + last_duration > time_budget_s:
                stopped = f"time budget {time_budget_s:.0f} s: {elapsed:.0f} s elapsed, a chunk takes ~{last_duration:.0f} s"
                break
            mark, cpu_mark = time.perf_counter(), time.process_time()
            table = _build_chunk(index, expected, config, get_data(), batch_k, cost_model, name, callback, say)
            table.save(path)
            last_duration = time.perf_counter() - mark
            built.append(index)
            run["built"].append(index)
            run.setdefault("chunk_seconds", {})[str(index)] = {"wall": last_duration,
                                                               "process_cpu": time.process_time() - cpu_mark}
            n_failed = int(table.failed.sum())
            say(f"chunk {index + 1}/{n_chunks}: {len(expected)} archs in {last_duration:.1f} s"
                + (f", {n_failed} failed" if n_failed else "") + f" -> {path.name}")
            if callback is not None:
                callback(event="chunk", chunk=index, path=path)
        run["status"] = "stopped: " + stopped if stopped else "finished"
    except BaseException as error:
        run["status"] = f"interrupted: {type(error).__name__}: {str(error)[:200]}"
        raise
    finally:
        run["finished"] = _now()
        run["seconds"] = time.perf_counter() - started
        # CPU seconds of this process (all its threads): on a shared machine, what the run really used.
        run["process_cpu_seconds"] = time.process_time() - cpu_started
        with _manifest_lock(out_dir):  # re-read: other shards may have recorded their runs meanwhile
            manifest = _with_run(read_manifest(out_dir), run)
            manifest["updated"] = _now()
            _write_json_atomic(manifest_path, manifest)
        builders.close()
    present = sum(chunk_path(out_dir, i).is_file() for i in range(n_chunks))
    return {"out_dir": str(out_dir), "built": built, "skipped": skipped, "n_chunks": n_chunks,
            "complete": present == n_chunks, "stopped": stopped, "seconds": time.perf_counter() - started,
            "manifest": manifest}


def _is_positive_whole(value: object) -> bool:
    """Whether ``value`` is a whole number of at least 1 (3, 3.0, numpy.int64(3); not True, "3" or None)."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
            and value == math.floor(value) and value >= 1)


def _check_shard(shard) -> tuple[int, int]:
    """``(index, count)`` of a build shard (``(0, 1)`` for the whole build); ValueError naming a bad one."""
    if shard is None:
        return 0, 1
    try:
        index, count = (int(v) for v in shard)
        valid = all(int(v) == v and not isinstance(v, bool) for v in shard) and 0 <= index < count
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"shard={shard!r} must be (i, n) with integers 0 <= i < n")
    return index, count


@contextlib.contextmanager
def _manifest_lock(out_dir: Path):
    """Exclusive lock of ``out_dir``'s manifest among builder processes (POSIX advisory lock)."""
    import fcntl

    with open(out_dir / "manifest.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _join_builders(out_dir: Path):
    """Register this process as a builder of ``out_dir``; returns the handle to close when done.

    The first builder (no other holds the shared lock) removes temporary files left by a builder that
    was killed while writing; a later one must not, as they may be the chunks other shards are writing.
    """
    import fcntl

    handle = open(out_dir / "builders.lock", "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for stale in [*(out_dir / "chunks").glob("*.tmp"), *out_dir.glob("manifest.json*.tmp")]:
            stale.unlink(missing_ok=True)
    except BlockingIOError:
        pass
    fcntl.flock(handle, fcntl.LOCK_SH)
    return handle


def _with_run(manifest: dict, run: dict) -> dict:
    """``manifest`` with ``run`` recorded: replacing the entry of the same id, else appended."""
    runs = manifest.setdefault("runs", [])
    same = [i for i, recorded in enumerate(runs) if recorded.get("id") == run["id"]]
    if same:
        runs[same[0]] = run
    else:
        runs.append(run)
    return manifest


def _chunk_is_valid(path: Path, expected: list[str], epochs: int, say) -> bool:
    try:
        table = TabularBenchmark.load(path)
    except BenchmarkFormatError as error:
        say(f"{path.name} is unreadable ({error}); rebuilding it")
        return False
    if table.arch_ids.tolist() != expected or table.epochs.tolist() != list(range(1, epochs + 1)):
        raise ValueError(f"{path} holds other architectures or epochs than this build expects: the output "
                         "directory was built from another architecture list or settings")
    return True


def _process_seconds_alone(arch, data, config, cost_epochs) -> float:
    """CPU seconds (this process, user + system) per epoch of ``arch`` trained alone by the build's trainer.

    Epochs 2 .. cost_epochs + 1 of the real schedule are timed between the per-epoch callbacks, so model
    construction and the first epoch's one-time costs are left out, as the wall clock's warm-up does.
    """
    from benchmarks.training.batched import train_group

    marks = []
    train_group([arch], data, dataclasses.replace(config, test_every_epoch=False),
                callback=lambda **info: marks.append(time.process_time()), stop_after=cost_epochs + 1)
    return (marks[-1] - marks[0]) / cost_epochs


def _calibrate(archs, config, data, cost_sample, cost_epochs, kind, seed, say, clock: str = "wall") -> dict:
    """Train a sample alone and fit the cost model (see the module docstring)."""
    from benchmarks.training.trainer import TrainerOracle

    spec = data.spec
    geometry = dict(C=config.C, N=config.N, in_channels=spec.in_channels, image_size=spec.size,
                    num_classes=spec.num_classes)
    rng = np.random.default_rng(seed)
    picked = set(rng.choice(len(archs), size=min(cost_sample, len(archs)), replace=False).tolist())
    flops = [nb201_flops(a, config.C, config.N, spec.in_channels, spec.size, spec.num_classes) for a in archs]
    if len(archs) > cost_sample:  # anchor the fitted range at the cheapest and the most expensive
        picked |= {int(np.argmin(flops)), int(np.argmax(flops))}
    sample = [archs[i] for i in sorted(picked)]
    say(f"cost model: training {len(sample)} architectures alone for {cost_epochs} epoch(s) each on {config.device} ...")
    cfg = dataclasses.replace(config, max_epochs=cost_epochs, test_every_epoch=False)
    measured_archs, measured, cpu_measured = [], [], []
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if clock == "process":
        _process_seconds_alone(sample[0], data, config, 1)  # untimed warm-up
        for arch in sample:
            measured_archs.append(arch)
            measured.append(_process_seconds_alone(arch, data, config, cost_epochs))
        cpu_measured = list(measured)
    else:
        with tempfile.TemporaryDirectory(prefix="pmfnas-cost-") as tmp:
            warm = TrainerOracle(dataclasses.replace(cfg, max_epochs=1), data=data, checkpoint_dir=Path(tmp) / "warm")
            warm.evaluate(sample[0], 1)
            oracle = TrainerOracle(cfg, data=data, checkpoint_dir=Path(tmp) / "alone")
            for arch in sample:
                cpu_mark = time.process_time()
                evaluation = oracle.evaluate(arch, cost_epochs)
                cpu_seconds = (time.process_time() - cpu_mark) / cost_epochs
                record = oracle.records[arch]
                if evaluation.failed:
                    say(f"  {arch}: failed ({record.reason}); left out of the fit")
                    continue
                measured_archs.append(arch)
                measured.append(float(np.mean(record.seconds)))
                cpu_measured.append(cpu_seconds)
            oracle.close()
            warm.close()
    if not measured:
        raise RuntimeError("every architecture of the cost sample failed: no cost model can be fitted")
    model = fit_cost_model(measured_archs, measured, kind, **geometry)
    model["cost_epochs"] = cost_epochs
    model["clock"] = clock
    model["measured_with"] = ("TrainerOracle (one model at a time), after one untimed warm-up epoch" if clock == "wall" else
                              "process CPU time (user + system, time.process_time) of the build's trainer training each "
                              "architecture alone (K=1), epochs 2..cost_epochs+1 of the real schedule (training pass + "
                              f"validation pass), after an untimed warm-up run; torch threads: {_torch_threads()}")
    # For information. Wall clock: CPU seconds of each whole evaluate call per epoch (model construction,
    # checkpoint and final test pass included); on a shared machine the wall seconds include waiting for a core.
    model["process_cpu_seconds_per_epoch"] = [float(c) for c in cpu_measured]
    model["load_average_1min"] = {"before": load_before,
                                  "after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    say(f"cost model ({model['used']}): R^2 = {model['r2']:.3f}, RMSE {model['rmse']:.4f} s, "
        f"seconds/epoch {min(measured):.3f}..{max(measured):.3f}")
    return model


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _train_groups(archs, data, config, batch_k, callback, chunk, say):
    """Train ``archs`` in groups of ``batch_k``; a group that runs out of memory is split in halves."""
    from benchmarks.training.batched import train_group

    results, oom_splits = [], 0
    pending = [archs[i:i + batch_k] for i in range(0, len(archs), batch_k)]
    while pending:
        group = pending.pop(0)

        def relay(**info):
            if callback is not None:
                callback(chunk=chunk, archs=group, **info)

        try:
            results.append(train_group(group, data, config, callback=relay))
        except RuntimeError as error:
            if "out of memory" not in str(error).lower() or len(group) == 1:
                raise
            import torch

            torch.cuda.empty_cache()
            half = len(group) // 2
            say(f"  out of memory with K={len(group)}; retrying as K={half} + K={len(group) - half}")
            pending[:0] = [group[:half], group[half:]]
            oom_splits += 1
    return results, oom_splits


def _build_chunk(index, archs, config, data, batch_k, cost_model, name, callback, say) -> TabularBenchmark:
    spec = data.spec
    # Groups are formed from the chunk sorted by op sequence: similar cells share a group, so an edge
    # runs fewer distinct ops (fewer, larger kernels). Results do not depend on the grouping.
    space = NB201Space()
    order = sorted(range(len(archs)), key=lambda i: [OPS.index(op) for op in space.ops(archs[i])])
    results, oom_splits = _train_groups([archs[i] for i in order], data, config, batch_k, callback, index, say)
    back = np.argsort(order)  # trained position of each chunk row
    E = config.max_epochs
    keys = {"valid": "valid_acc", "valid_loss": "valid_loss", "test": "test_acc", "test_loss": "test_loss",
            "train": "train_acc", "train_loss": "train_loss"}
    curves = {k: np.concatenate([r.curves[v] for r in results])[back] for k, v in keys.items()}
    failed = np.concatenate([r.failed for r in results])[back]
    fail_epoch = np.concatenate([r.fail_epoch for r in results])[back]
    per_epoch = predict_cost(cost_model, archs)
    seconds = np.repeat(per_epoch[:, None], E, axis=1)
    for row in np.flatnonzero(failed):
        seconds[row, fail_epoch[row]:] = np.nan  # charged up to and including the failing epoch
    reasons = {a: r for res in results for a, r in zip(res.archs, res.reason) if r}
    features = np.array([[nb201_params(a, config.C, config.N, spec.in_channels, spec.num_classes),
                          nb201_flops(a, config.C, config.N, spec.in_channels, spec.size, spec.num_classes)]
                         for a in archs], dtype=np.float64)
    extra = {"chunk": index, "feature_names": list(FEATURE_NAMES), "failures": reasons,
             "fail_epoch": {a: int(e) for a, e, f in zip(archs, fail_epoch, failed) if f},
             "groups": [r.archs for r in results], "oom_splits": oom_splits,
             "group_wall_seconds": [[float(s) for s in r.wall_seconds] for r in results],
             "group_test_seconds": [[float(s) for s in r.test_seconds] for r in results],
             "seconds": "cost model of manifest.json (per architecture trained alone), not the group wall time"}
    return TabularBenchmark.from_arrays(
        archs, np.arange(1, E + 1), curves["valid"], seconds, metric="valid_accuracy", higher_is_better=True,
        name=f"{name}-chunk-{index:05d}", space="nb201", dataset=config.dataset,
        provenance="one chunk of a pmf-nas benchmark build; see manifest.json beside the chunks directory",
        licence=LICENCE if config.dataset == "fashion-mnist" else "CC-BY-4.0 (pmf-nas project); the dataset's own licence applies",
        failed=failed[:, None], canonical_keys=True, arch_features=features, extra=extra,
        notes="accuracies in percent; one repeat per architecture",
        **{k: v for k, v in curves.items() if k != "valid"})


# ========================================================================================== merging
def merge_chunks(out_dir: str | os.PathLike, name: str = DEFAULT_NAME, out: str | os.PathLike | None = None) -> TabularBenchmark:
    """All chunks of ``out_dir`` as one table (saved to ``out`` when given: ``.npz`` = one compressed file)."""
    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir)
    indexed = []
    for path in (out_dir / "chunks").glob("chunk-*.npz"):
        match = _CHUNK_RE.match(path.name)
        if match:
            indexed.append((int(match.group(1)), path))
    indexed.sort()
    if not indexed:
        raise ValueError(f"{out_dir} holds no chunks yet: nothing to merge")
    tables = [TabularBenchmark.load(p) for _, p in indexed]
    epochs = tables[0].epochs
    for (i, p), t in zip(indexed, tables):
        if not np.array_equal(t.epochs, epochs) or set(t.curves) != set(tables[0].curves):
            raise BenchmarkFormatError(f"{p} has other epochs or curves than the first chunk")
    arch_ids = np.concatenate([t.arch_ids for t in tables])
    curves = {k: np.concatenate([np.asarray(t.curves[k]) for t in tables]) for k in tables[0].curves}
    seconds = np.concatenate([np.asarray(t.seconds) for t in tables])
    failed = np.concatenate([t.failed for t in tables])
    features = np.concatenate([np.asarray(t.arch_features) for t in tables])
    failures = {a: r for t in tables for a, r in t.metadata.extra.get("failures", {}).items()}
    present_idx = [i for i, _ in indexed]
    n_chunks = int(manifest.get("n_chunks", len(indexed)))
    missing = sorted(set(range(n_chunks)) - set(present_idx))
    expected = int(manifest.get("n_archs", len(arch_ids)))
    settings = manifest.get("settings", {})
    cost = manifest.get("cost_model") or {}
    hardware = (manifest.get("hardware") or {}).get("device_name", "unknown hardware")
    trained_on = sorted({(run.get("hardware") or {}).get("device_name", "unknown hardware")
                         for run in manifest.get("runs", []) if run.get("built")}) or [hardware]
    notes = ("accuracies in percent; one repeat per architecture; every architecture saw the same data order and "
             "augmentation (extra.manifest.seeds); seconds per epoch come from a cost model fitted to architectures "
             "trained alone (extra.manifest.seconds_derivation)")
    if len(arch_ids) < expected or missing:
        of = (f"{len(arch_ids)} of the {N_CANONICAL:,} canonical NB201 cells" if manifest.get("expected_of_canonical")
              else f"{len(arch_ids)} of the {expected:,} architectures of this build")
        notes = f"PARTIAL: {of} are present ({len(missing)} chunk(s) missing). " + notes
    dataset = settings.get("dataset", "fashion-mnist")
    provenance = (f"pmf-nas benchmark build (benchmarks.training.build, batched NB201 trainer): {dataset}, NB201 recipe "
                  f"(SGD nesterov {settings.get('momentum')}, lr {settings.get('lr')} cosine over {settings.get('epochs')} "
                  f"epochs, wd {settings.get('weight_decay')}, batch {settings.get('batch_size')}; C={settings.get('C')}, "
                  f"N={settings.get('N')}; bf16 autocast on CUDA: {settings.get('bf16')}), split seed "
                  f"{settings.get('split_seed')}, seed {settings.get('seed')}; trained on {' + '.join(trained_on)}, torch "
                  f"{manifest.get('torch')}, git {manifest.get('git_commit')}; seconds: cost model "
                  f"'{cost.get('used')}' fitted to {cost.get('n')} architectures trained alone on {hardware} "
                  f"(R^2 {cost.get('r2', float('nan')):.3f})")
    meta = BenchmarkMetadata(
        name=name, space="nb201", dataset=dataset, metric="valid_accuracy", higher_is_better=True,
        max_epochs=int(epochs[-1]), provenance=provenance,
        licence=LICENCE if dataset == "fashion-mnist" else "CC-BY-4.0 (pmf-nas project); the dataset's own licence applies",
        canonical_keys=True, notes=notes,
        extra={"manifest": manifest, "feature_names": list(FEATURE_NAMES), "failures": failures,
               "present": int(len(arch_ids)), "expected": expected, "chunks": present_idx, "missing_chunks": missing})
    table = TabularBenchmark(arch_ids, epochs, seconds, curves, failed, meta, features)
    if out is not None:
        table.save(out)
    return table


# ============================================================================================== CLI
def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``pmfnas benchmark build`` (defaults: a 24-epoch NB201 recipe on Fashion-MNIST, all 6,466 cells)."""
    parser.add_argument("--out", required=True, help="build directory (manifest.json + chunks/); rerun to resume")
    parser.add_argument("--archs-file", default=None,
                        help="file with one NB201 architecture per line (default: the 6,466 canonical cells)")
    parser.add_argument("--sample", type=int, default=None, metavar="N",
                        help="build a seeded uniform sample of N of the 6,466 canonical cells (instead of all)")
    parser.add_argument("--sample-seed", type=int, default=0, help="seed of --sample (default 0)")
    parser.add_argument("--dataset", default="fashion-mnist", help="dataset (default fashion-mnist)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="down-sample the images to this side at load, e.g. 12 (default: the dataset's own)")
    parser.add_argument("--data-root", default=None, help="dataset directory (default: the dataset's standard place)")
    parser.add_argument("--epochs", type=int, default=24, help="epochs per architecture; the cosine schedule spans them (default 24)")
    parser.add_argument("--chunk-size", type=int, default=64, help="architectures per chunk file (default 64)")
    parser.add_argument("--batch-k", type=int, default=32, help="architectures trained at once (default 32)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--C", type=int, default=16, help="channels of the first stage (default 16)")
    parser.add_argument("--N", type=int, default=5, help="cells per stage (default 5)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights, data order and cost sample")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the train/valid split")
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument("--valid-size", type=int, default=None)
    parser.add_argument("--test-size", type=int, default=None)
    parser.add_argument("--no-bf16", action="store_true", help="no bf16 autocast on CUDA")
    parser.add_argument("--test-final-only", action="store_true", help="evaluate the test split only after the last epoch")
    parser.add_argument("--cost-sample", type=int, default=32, help="architectures timed alone for the cost model (default 32)")
    parser.add_argument("--cost-epochs", type=int, default=1, help="epochs each of them is timed for (default 1)")
    parser.add_argument("--cost-features", default="ops", choices=COST_MODELS, help="cost model regressors (default ops)")
    parser.add_argument("--cost-clock", default="wall", choices=COST_CLOCKS,
                        help="what the cost sample is timed with: wall (TrainerOracle's charged seconds; default) or "
                             "process (CPU seconds of this process: one cell alone on a CPU shared with other jobs; "
                             "use with one torch thread)")
    parser.add_argument("--max-chunks", type=positive_int, default=None,
                        help="build at most this many new chunks, then stop")
    parser.add_argument("--time-budget", type=positive_number, default=None,
                        help="seconds; start no chunk that would not end in time")
    parser.add_argument("--shard", type=_parse_shard, default=None, metavar="I/N",
                        help="build only the chunks whose index is I modulo N, so that N processes can build one "
                             "--out directory together (e.g. --shard 0/2 and --shard 1/2 on two cores)")
    parser.add_argument("--name", default=DEFAULT_NAME, help=f"the merged table's name (default {DEFAULT_NAME})")
    parser.add_argument("--merge", default=None, metavar="OUT.npz", help="afterwards merge all chunks into this table")
    parser.add_argument("--quiet", action="store_true")
    from benchmarks.training.commands import add_path_arguments

    add_path_arguments(parser)


def _parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard {text!r} must be I/N, e.g. 0/2") from None
    try:
        return _check_shard((index, count))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: {error}") from None


def build_command(args: argparse.Namespace) -> int:
    """``pmfnas benchmark build``: build (or resume), then optionally merge. Returns the exit status."""
    archs = None
    if args.archs_file and args.sample is not None:
        raise ValueError("give either --archs-file or --sample, not both")
    if args.archs_file:
        text = Path(args.archs_file).read_text()
        archs = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if args.merge:
        check_table_destination(args.merge)  # before the build, which may take hours, not after it
    say = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    summary = build_benchmark(
        args.out, archs, epochs=args.epochs, chunk_size=args.chunk_size, batch_k=args.batch_k, device=args.device,
        C=args.C, N=args.N, seed=args.seed, split_seed=args.split_seed, dataset=args.dataset, data_root=args.data_root,
        train_size=args.train_size, valid_size=args.valid_size, test_size=args.test_size, batch_size=args.batch_size,
        lr=args.lr, bf16=not args.no_bf16, test_every_epoch=not args.test_final_only, cost_sample=args.cost_sample,
        cost_epochs=args.cost_epochs, cost_features=args.cost_features, cost_clock=args.cost_clock, name=args.name,
        max_chunks=args.max_chunks, time_budget_s=args.time_budget, image_size=args.image_size, sample=args.sample,
        sample_seed=args.sample_seed, shard=args.shard, progress=say, trainer=args.trainer,
        compile_mode=args.compile_mode)
    done = summary["n_chunks"] - sum(not chunk_path(args.out, i).is_file() for i in range(summary["n_chunks"]))
    print(f"{args.out}: {done}/{summary['n_chunks']} chunks ({len(summary['built'])} built now, "
          f"{len(summary['skipped'])} already there)" + (f"; stopped: {summary['stopped']}" if summary["stopped"] else ""))
    if args.merge:
        table = merge_chunks(args.out, name=args.name, out=args.merge)
        print(f"wrote {args.merge}: {len(table)} architectures x {table.epochs.size} epochs"
              + ("" if summary["complete"] else " (partial)"))
    return 0


def add_throughput_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``python -m benchmarks.training.build throughput`` (batched vs one-model training speed at any image size)."""
    parser.add_argument("--k", default="1,8,32", help="comma-separated K values (default 1,8,32)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--C", type=int, default=16)
    parser.add_argument("--N", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before each measurement")
    parser.add_argument("--eager-archs", type=int, default=8, help="architectures timed one at a time for the baseline")
    parser.add_argument("--image-size", type=int, default=None, help="down-sampled image side (default: the dataset's own)")
    parser.add_argument("--epoch-images", type=int, default=30000,
                        help="training images per epoch, to convert steps into arch-epochs (default 30000)")
    parser.add_argument("--no-bf16", action="store_true")
    parser.add_argument("--json", default=None, help="also write the report to this JSON file")


def throughput_command(args: argparse.Namespace) -> int:
    from benchmarks.training.batched import measure_throughput

    k_values = [int(x) for x in str(args.k).split(",") if x.strip()]
    report = measure_throughput(k_values, device=args.device, C=args.C, N=args.N, batch_size=args.batch_size,
                                steps=args.steps, warmup=args.warmup, eager_archs=args.eager_archs,
                                bf16=not args.no_bf16, image_size=args.image_size, epoch_images=args.epoch_images,
                                progress=lambda line: print(line, flush=True))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _main(argv: Sequence[str] | None = None) -> int:  # python -m benchmarks.training.build [throughput] ...
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.training.build", allow_abbrev=False)
    if argv[:1] == ["throughput"]:
        add_throughput_arguments(parser)
        return throughput_command(parser.parse_args(argv[1:]))
    add_build_arguments(parser)
    return build_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(_main())
