"""How a training step runs: eager, the whole step in a CUDA graph, or ``torch.compile``.

A *path* trains and evaluates one model (a single :class:`~benchmarks.training.nb201_model.NB201Network`,
or the K cells of a :class:`~benchmarks.training.batched.BatchedNB201`) epoch by epoch with the NB201
recipe; :class:`~benchmarks.training.trainer.TrainerOracle` and
:func:`~benchmarks.training.batched.train_group` build one per trial (per call) with :func:`make_steps` and
call ``train_epoch`` / ``evaluate``. Everything else (model, ``torch.optim.SGD``, cosine scheduler,
data-order generator, checkpoints) is the caller's and is the same for every path, so a checkpoint written
under one path is continued by any other and a promotion still pays only its extra epochs.

* ``eager`` — the reference loop: ``zero_grad``, forward (bf16 autocast where enabled), loss, backward,
  ``optimizer.step()``, ``scheduler.step()`` per batch.
* ``graph`` — the whole step (batch gather from the device-resident data, augmentation, normalisation,
  forward, loss, backward, SGD update, loss/accuracy accumulation) reads only fixed buffers, so on CUDA it
  is captured once in a ``torch.cuda.CUDAGraph`` and replayed per batch; the validation forward likewise.
  The SGD update is :func:`sgd_update`, the arithmetic of ``torch.optim.SGD`` written with
  ``torch._foreach_*`` on the optimizer's own momentum buffers, with the learning rate read from a device
  tensor that is refilled from ``optimizer.param_groups`` before every step (the scheduler keeps
  stepping in Python floats, so the schedule is exactly eager's). The first ``warmup`` steps of each call
  run uncaptured on a side stream (cuDNN autotuning, the momentum buffers' first step), then the step is
  captured. Static shapes: full batches replay the graph; the last partial batch of an epoch runs the
  same step function uncaptured on buffers of its size, so every image is used exactly as in eager and
  the curve has eager's definition. On the CPU nothing is captured: the same step function runs
  uncaptured, and there it is bitwise equal to eager (``tests/test_training_paths.py``), which is what
  the CPU tests check; on CUDA it differs from eager's foreach update only in rounding (the device check
  measures by how much).
* ``compiled`` — the model's forward (and, through AOTAutograd, its backward) compiled by ``torch.compile``
  with ``mode`` (``max-autotune-no-cudagraphs``, or ``reduce-overhead`` = with CUDA graphs, for which
  every step begins with ``torch.compiler.cudagraph_mark_step_begin()`` so no output of a previous replay
  is read after it was overwritten) and ``backend`` (``inductor``; tests on the CPU use ``aot_eager``,
  because inductor's C++ compilation of even a tiny network takes minutes on a small CPU); the loss,
  backward call and optimizer step are eager's. Shapes are static (``dynamic=False``): the partial last
  batch and evaluation compile once more each. Compilation happens inside the first epoch of each call
  and is charged there (the throughput benchmark reports it separately as first-epoch minus steady-state
  seconds). Tolerance against eager: compiled kernels reorder floating-point sums, so curves agree within
  ``COMPILED_RTOL`` relative on the CPU, not bitwise.
* ``batched`` is not a step path: it is the K-cells-in-one-network model of
  :mod:`benchmarks.training.batched`, whose groups run on any of the three paths above.

:func:`resolve_trainer` turns ``--trainer auto`` (or an explicit choice) into a path for a device, with the
one line that says why when it had to fall back to eager.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from benchmarks.training.config import TRAINERS
from benchmarks.training.data import DataSplits, draw_augmentation, make_batch

__all__ = ["Objective", "SINGLE", "BATCHED", "Steps", "EagerSteps", "GraphSteps", "CompiledSteps", "make_steps",
           "resolve_trainer", "sgd_update", "AUTO_ON_CUDA", "COMPILED_RTOL", "GRAPH_WARMUP"]

# The path --trainer auto takes on CUDA. Provisional: chosen because the measured eager trainer is bound by
# kernel launches (results/gpu-h200/README.md), which a graph replay removes; the throughput benchmark
# (benchmarks/gpu_throughput.sh) measures every path on the device and this rule follows its result.
AUTO_ON_CUDA = "graph"
COMPILED_RTOL = 1e-3
GRAPH_WARMUP = 3


def resolve_trainer(requested: str, device: str | torch.device, *, batched: bool = False) -> tuple[str, str | None]:
    """The path to run for ``--trainer requested`` on ``device``, and the one line that says why, or None.

    ``batched=True`` is for commands whose model is the batched K-cell network (``benchmark build``): there
    ``batched`` means its eager step and ``auto`` its fastest step. Elsewhere ``batched`` is refused (a
    trial trains one cell). ``auto`` is :data:`AUTO_ON_CUDA` on CUDA and eager (with a note) on the CPU;
    an explicit ``graph`` off CUDA is refused (the Python API still runs the graph path's step uncaptured
    on the CPU, for tests).
    """
    kind = torch.device(device).type
    if requested == "batched":
        if not batched:
            raise ValueError("--trainer batched trains K cells together as one network: it is for `pmfnas benchmark "
                             "build` and `pmfnas benchmark throughput`; a search trains one cell per trial "
                             "(choose eager, graph or compiled)")
        return "eager", None
    if requested == "auto":
        if kind == "cuda":
            return AUTO_ON_CUDA, None
        return "eager", f"--trainer auto: CUDA graphs need CUDA and the device is {kind}; using eager"
    if requested not in TRAINERS:
        raise ValueError(f"--trainer {requested!r} must be one of auto, {', '.join(TRAINERS)}, batched")
    if requested == "graph" and kind != "cuda":
        raise ValueError(f"--trainer graph captures the training step in a CUDA graph: it needs --device cuda, "
                         f"not {kind}")
    return requested, None


@dataclass(frozen=True)
class Objective:
    """What a model's logits are trained on: the loss to back-propagate and per-unit sums.

    A unit is one architecture: one for a plain network, K for a batched one.
    ``train(logits, y)`` -> (loss to back-propagate, per-unit mean losses ``(units,)``);
    ``eval_sum(logits, y)`` -> per-unit summed losses ``(units,)``; ``correct(logits, y)`` -> per-unit
    counts of correct predictions ``(units,)``.
    """

    train: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    eval_sum: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    correct: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _single_train(logits, y):
    loss = F.cross_entropy(logits.float(), y)
    return loss, loss.reshape(1)


def _per_arch_loss(logits: torch.Tensor, y: torch.Tensor, reduction: str) -> torch.Tensor:
    """(batch, K, classes) logits -> (K,) cross-entropy of each architecture (mean or sum over the batch)."""
    b, k, _ = logits.shape
    log_probs = F.log_softmax(logits.float(), dim=2)
    losses = -log_probs.gather(2, y.view(b, 1, 1).expand(b, k, 1)).squeeze(2)  # (batch, K)
    return losses.mean(0) if reduction == "mean" else losses.sum(0)


def _batched_train(logits, y):
    losses = _per_arch_loss(logits, y, "mean")
    return losses.sum(), losses  # the sum gives every architecture its own gradient


SINGLE = Objective(train=_single_train,
                   eval_sum=lambda logits, y: F.cross_entropy(logits.float(), y, reduction="sum").reshape(1),
                   correct=lambda logits, y: (logits.argmax(1) == y).sum().reshape(1))
BATCHED = Objective(train=_batched_train, eval_sum=lambda logits, y: _per_arch_loss(logits, y, "sum"),
                    correct=lambda logits, y: (logits.argmax(2) == y[:, None]).sum(0))


@torch.no_grad()
def sgd_update(params: Sequence[torch.Tensor], optimizer: torch.optim.SGD, neg_lr: torch.Tensor) -> None:
    """``optimizer.step()`` of ``torch.optim.SGD`` (dampening 0, not maximising), graph-safe.

    The same operations in the same order as torch's SGD (weight decay added to the gradient, momentum
    buffer ``mul_(momentum).add_(grad)``, Nesterov ``grad + momentum * buf``), on the optimizer's own
    momentum buffers, so its ``state_dict`` stays torch's; the step ``param + grad * neg_lr`` reads the
    learning rate from the device tensor ``neg_lr`` (= -lr), which makes the update capturable. A buffer
    that does not exist yet (the first step of a run) is created as torch creates it; that step cannot be
    captured. On the CPU the result is bitwise torch's.
    """
    group = optimizer.param_groups[0]
    if len(optimizer.param_groups) != 1 or group.get("dampening", 0) != 0 or group.get("maximize", False):
        raise ValueError("sgd_update implements one parameter group of SGD without dampening or maximize")
    momentum, nesterov, weight_decay = group["momentum"], group["nesterov"], group["weight_decay"]
    live = [p for p in params if p.grad is not None]
    grads = [p.grad for p in live]
    if weight_decay != 0:
        grads = torch._foreach_add(grads, live, alpha=weight_decay)
    if momentum != 0:
        state = optimizer.state
        missing = [i for i, p in enumerate(live) if state[p].get("momentum_buffer") is None]
        for i in missing:
            state[live[i]]["momentum_buffer"] = grads[i].detach().clone()
        existing = [i for i in range(len(live)) if i not in set(missing)]
        if existing:
            bufs = [state[live[i]]["momentum_buffer"] for i in existing]
            torch._foreach_mul_(bufs, momentum)
            torch._foreach_add_(bufs, [grads[i] for i in existing], alpha=1.0)
        bufs = [state[p]["momentum_buffer"] for p in live]
        if nesterov:
            grads = torch._foreach_add(grads, bufs, alpha=momentum)
        else:
            grads = bufs
    for p, g in zip(live, grads):
        p.addcmul_(g, neg_lr)  # bitwise param.add_(g, alpha=-lr) on the CPU, with lr on the device


def _accumulators(units: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.zeros(units, device=device, dtype=torch.float64), torch.zeros(units, device=device, dtype=torch.int64))


def _finish(loss_sum: torch.Tensor, correct: torch.Tensor, n: int) -> tuple[list[float], list[float]]:
    return (loss_sum / n).tolist(), (100.0 * correct.double() / n).tolist()


class Steps:
    """The epochs of one model under one path (built by :func:`make_steps`).

    ``train_epoch(generator, data)`` trains one epoch over ``data``'s training split in the order and with
    the augmentation drawn from ``generator``; ``evaluate(data, images, labels)`` evaluates without
    augmentation. Both return ``(losses, accuracies)``: lists with one value per unit (architecture),
    mean cross-entropy and percent correct.
    """

    name = "eager"

    def __init__(self, model, optimizer, scheduler, objective: Objective, *, units: int, batch_size: int,
                 eval_batch_size: int, device: torch.device, bf16: bool, channels_last: bool):
        self.model, self.optimizer, self.scheduler, self.objective = model, optimizer, scheduler, objective
        self.units, self.batch_size, self.eval_batch_size = units, batch_size, eval_batch_size
        self.device, self.bf16, self.channels_last = torch.device(device), bf16, channels_last

    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def _epoch_draws(self, generator: torch.Generator, data: DataSplits):
        # All of the epoch's randomness is drawn up front on the CPU and copied once.
        n = len(data.train_y)
        order = torch.randperm(n, generator=generator)
        offsets, flips = draw_augmentation(n, data.spec, generator)
        return n, tuple(t.to(self.device) for t in (order, offsets, flips))


class EagerSteps(Steps):
    """The reference path (see the module docstring)."""

    name = "eager"

    def _forward(self, x):
        return self.model(x)

    def train_epoch(self, generator: torch.Generator, data: DataSplits):
        model, optimizer, scheduler, spec = self.model, self.optimizer, self.scheduler, data.spec
        model.train()
        n, (order, offsets, flips) = self._epoch_draws(generator, data)
        stats = data.stats()
        loss_sum, correct = _accumulators(self.units, self.device)
        b = self.batch_size
        for begin in range(0, n, b):
            index = order[begin: begin + b]
            x = make_batch(data.train_x[index], spec, offsets=offsets[begin: begin + b], flips=flips[begin: begin + b],
                           stats=stats, channels_last=self.channels_last)
            y = data.train_y[index]
            with self._autocast():
                logits = self._forward(x)
            loss, per_unit = self.objective.train(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += per_unit.detach().double() * len(y)
            correct += self.objective.correct(logits.detach(), y)
        return _finish(loss_sum, correct, n)

    @torch.no_grad()
    def evaluate(self, data: DataSplits, images: torch.Tensor, labels: torch.Tensor):
        self.model.eval()
        stats = data.stats()
        loss_sum, correct = _accumulators(self.units, self.device)
        n, b = len(labels), self.eval_batch_size
        for begin in range(0, n, b):
            x = make_batch(images[begin: begin + b], data.spec, stats=stats, channels_last=self.channels_last)
            y = labels[begin: begin + b]
            with self._autocast():
                logits = self._forward(x)
            loss_sum += self.objective.eval_sum(logits, y).double()
            correct += self.objective.correct(logits, y)
        return _finish(loss_sum, correct, n)


class CompiledSteps(EagerSteps):
    """Eager's loop with the model's forward/backward compiled by ``torch.compile`` (see the module docstring)."""

    name = "compiled"

    def __init__(self, *args, mode: str = "max-autotune-no-cudagraphs", backend: str = "inductor", **kwargs):
        super().__init__(*args, **kwargs)
        import torch._dynamo

        # Every architecture is another graph of the same forward code: without room for them all, dynamo
        # would silently fall back to eager after a few trials of one process.
        for limit in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit", "accumulated_cache_size_limit"):
            if hasattr(torch._dynamo.config, limit):
                setattr(torch._dynamo.config, limit, max(getattr(torch._dynamo.config, limit), 4096))
        self.mode, self.backend = mode, backend
        options = {"mode": mode} if backend == "inductor" else {}
        self.compiled = torch.compile(self.model, backend=backend, dynamic=False, **options)
        self.cudagraphs = backend == "inductor" and mode == "reduce-overhead"

    def _forward(self, x):
        if self.cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        return self.compiled(x)


class _Captured:
    """``body()`` run uncaptured for its first ``warmup`` calls (on a side stream on CUDA), then captured in a
    CUDA graph and replayed; never captured when ``capture`` is False. ``prepare()`` runs before every
    uncaptured call and before the capture (outside it)."""

    def __init__(self, body: Callable[[], None], prepare: Callable[[], None], *, capture: bool, warmup: int):
        self.body, self.prepare, self.capture, self.warmup = body, prepare, capture, warmup
        self.calls = 0
        self.graph = None

    def __call__(self) -> None:
        if self.graph is not None:
            self.graph.replay()
            return
        if not self.capture:
            self.prepare()
            self.body()
            return
        if self.calls < self.warmup:
            self.calls += 1
            side, current = torch.cuda.Stream(), torch.cuda.current_stream()
            side.wait_stream(current)
            with torch.cuda.stream(side):
                self.prepare()
                self.body()
            current.wait_stream(side)
            return
        self.prepare()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.body()
        self.graph = graph
        graph.replay()  # capturing records the step without running it


class GraphSteps(Steps):
    """The whole step in a CUDA graph (see the module docstring); ``capture=False`` runs it uncaptured."""

    name = "graph"

    def __init__(self, *args, capture: bool | None = None, warmup: int = GRAPH_WARMUP, **kwargs):
        super().__init__(*args, **kwargs)
        self.capture = (self.device.type == "cuda") if capture is None else bool(capture)
        if self.capture and self.device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device, not {self.device}")
        self.warmup = warmup
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.neg_lr = torch.zeros((), device=self.device)
        self.loss_sum, self.correct = _accumulators(self.units, self.device)
        self._train_steps: dict[int, tuple[dict, _Captured]] = {}  # by batch size: static buffers, step
        self._eval_steps: dict[int, tuple[dict, _Captured]] = {}
        self._data = None
        self._kept_grads = None

    # Static buffers are per batch size: the full batches share one captured step; the partial last batch
    # has its own buffers and is never captured.
    def _train_step(self, size: int, captured: bool):
        if size not in self._train_steps:
            buffers = {"index": torch.zeros(size, dtype=torch.long, device=self.device),
                       "offsets": torch.zeros(size, 2, dtype=torch.long, device=self.device),
                       "flips": torch.zeros(size, dtype=torch.bool, device=self.device)}

            def body(b=buffers):
                data = self._data
                x = make_batch(data.train_x[b["index"]], data.spec, offsets=b["offsets"], flips=b["flips"],
                               stats=data.stats(), channels_last=self.channels_last)
                y = data.train_y[b["index"]]
                with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bf16,
                                    cache_enabled=False):
                    logits = self.model(x)
                loss, per_unit = self.objective.train(logits, y)
                loss.backward()
                sgd_update(self.params, self.optimizer, self.neg_lr)
                self.loss_sum += per_unit.detach().double() * size
                self.correct += self.objective.correct(logits.detach(), y)

            def prepare():
                for p in self.params:
                    p.grad = None  # zero_grad(set_to_none=True): backward assigns, so a replay needs no zeroing

            self._train_steps[size] = (buffers, _Captured(body, prepare, capture=captured, warmup=self.warmup))
        return self._train_steps[size]

    def _eval_step(self, size: int, captured: bool, like: torch.Tensor):
        if size not in self._eval_steps:
            buffers = {"images": torch.zeros((size, *like.shape[1:]), dtype=like.dtype, device=self.device),
                       "labels": torch.zeros(size, dtype=torch.long, device=self.device)}

            def body(b=buffers):
                data = self._data
                x = make_batch(b["images"], data.spec, stats=data.stats(), channels_last=self.channels_last)
                with torch.no_grad(), torch.autocast(device_type=self.device.type, dtype=torch.bfloat16,
                                                     enabled=self.bf16, cache_enabled=False):
                    logits = self.model(x)
                self.loss_sum += self.objective.eval_sum(logits, b["labels"]).double()
                self.correct += self.objective.correct(logits, b["labels"])

            self._eval_steps[size] = (buffers, _Captured(body, lambda: None, capture=captured, warmup=1))
        return self._eval_steps[size]

    def _use(self, data: DataSplits) -> None:
        if self._data is not None and self._data is not data and (self._train_steps or self._eval_steps):
            # Captured graphs read the data tensors by address: another split object must be the same tensors.
            same = all(getattr(self._data, k) is getattr(data, k) for k in ("train_x", "train_y"))
            if not same:
                raise ValueError("a GraphSteps object trains on one DataSplits; build another for other data")
        self._data = data

    def train_epoch(self, generator: torch.Generator, data: DataSplits):
        self._use(data)
        self.model.train()
        n, (order, offsets, flips) = self._epoch_draws(generator, data)
        self.loss_sum.zero_()
        self.correct.zero_()
        b = self.batch_size
        for begin in range(0, n, b):
            size = min(b, n - begin)
            buffers, step = self._train_step(size, captured=self.capture and size == b)
            buffers["index"].copy_(order[begin: begin + size])
            buffers["offsets"].copy_(offsets[begin: begin + size])
            buffers["flips"].copy_(flips[begin: begin + size])
            self.neg_lr.fill_(-self.optimizer.param_groups[0]["lr"])
            step()
            if step.graph is not None and self._kept_grads is None:
                # The graph's gradients live in its private pool: keep them referenced, so an uncaptured
                # partial step (which replaces p.grad) cannot free memory a replay still writes.
                self._kept_grads = [p.grad for p in self.params]
            with warnings.catch_warnings():  # the update is sgd_update, not optimizer.step(), which torch looks for
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
                self.scheduler.step()
        return _finish(self.loss_sum, self.correct, n)

    def evaluate(self, data: DataSplits, images: torch.Tensor, labels: torch.Tensor):
        self._use(data)
        self.model.eval()
        self.loss_sum.zero_()
        self.correct.zero_()
        n, b = len(labels), self.eval_batch_size
        for begin in range(0, n, b):
            size = min(b, n - begin)
            buffers, step = self._eval_step(size, captured=self.capture and size == b, like=images)
            buffers["images"].copy_(images[begin: begin + size])
            buffers["labels"].copy_(labels[begin: begin + size])
            step()
        return _finish(self.loss_sum, self.correct, n)


def make_steps(trainer: str, model, optimizer, scheduler, objective: Objective, *, units: int, batch_size: int,
               eval_batch_size: int, device, bf16: bool, channels_last: bool = False,
               compile_mode: str = "max-autotune-no-cudagraphs", compile_backend: str = "inductor",
               capture: bool | None = None) -> Steps:
    """The :class:`Steps` of path ``trainer`` (``eager``, ``graph`` or ``compiled``) for one model.

    ``capture`` (graph path): None captures on CUDA only; False runs the step uncaptured anywhere.
    """
    common = dict(units=units, batch_size=batch_size, eval_batch_size=eval_batch_size, device=device, bf16=bf16,
                  channels_last=channels_last)
    if trainer == "eager":
        return EagerSteps(model, optimizer, scheduler, objective, **common)
    if trainer == "graph":
        return GraphSteps(model, optimizer, scheduler, objective, capture=capture, **common)
    if trainer == "compiled":
        return CompiledSteps(model, optimizer, scheduler, objective, mode=compile_mode, backend=compile_backend,
                             **common)
    raise ValueError(f"trainer={trainer!r} must be one of {', '.join(TRAINERS)}")

