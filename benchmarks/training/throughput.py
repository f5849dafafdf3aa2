"""``pmfnas benchmark throughput``: arch-epochs per second and achieved TFLOP/s of every trainer path, in one run.

What is measured (one device, one run, so the ratios are like for like):

Workloads (NB201 recipe: SGD Nesterov, cosine lr, batch 256, bf16 autocast + channels_last on CUDA;
synthetic uint8 CIFAR-shaped images already on the device, 10 classes — speed does not depend on pixel
values):

* ``best`` — the best NB201 cell, C=16, N=5, real epochs of 25,000 training + 25,000 validation images;
* ``sample`` — a seeded sample of 32 of the 6,466 canonical cells (``--sample``, ``--seed``). To keep the
  run short each cell trains on ``--sample-steps`` batches (and as many validation images); its per-epoch
  seconds are scaled to a 25,000 + 25,000-image epoch (linear in images: every batch costs the same).

Measurements (each row one path; every cell trains ``--epochs`` epochs, default 2: the first carries the
one-time work — cuDNN autotuning, graph capture, compilation — and is reported as ``setup_s`` = first
epoch minus the steady epoch; the steady epoch is the median of the others):

* ``eager`` / ``graph`` / ``compiled`` (``--compile-modes``, default ``max-autotune-no-cudagraphs`` and
  ``reduce-overhead``) — one cell at a time with :class:`~benchmarks.training.trainer.TrainerOracle`'s own
  loop (what ``pmfnas search --train`` runs; seconds are what it charges: training pass + validation pass);
  ``arch_epochs_per_s`` = cells / sum of their steady epoch seconds;
* ``eager xP`` / ``graph xP`` — P (``--processes``, default 8) such trainers as concurrent OS processes,
  started together after a barrier, the cells dealt round-robin (``best``: each process trains the best
  cell); aggregate = sum over processes of its cells / its summed steady seconds;
* ``batched K`` / ``batched K graph`` — the K cells of the sample (``--k``, default 32) as one batched
  network (:mod:`benchmarks.training.batched`), eager step or captured; per-epoch wall time of the group,
  arch-epochs/s = K / steady epoch seconds. Compiled batched groups take ``--batched-compiled``.

Compiled paths compile once per architecture, so on the sample they run on its first ``--compiled-cells``
cells only (default 2); the row says so.

FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` over one training step (forward + backward, batch 256)
and one validation forward (batch 1024) of each cell's own network on the meta device, scaled to the
epoch's images: training + validation FLOPs per arch-epoch. It counts matrix products and convolutions
(no elementwise ops, no BatchNorm). A batched group's FLOPs are its cells' (it computes exactly their
networks); ``tflops_per_s`` = FLOPs of the arch-epochs done / seconds. Peak memory: the largest
``torch.cuda.max_memory_allocated`` of the measurement's processes (CUDA only).

Each measurement runs in its own spawned process with a timeout (``--timeout``; a process that hangs or
crashes, e.g. a CUDA graph capture error, becomes an error row, and the rest goes on); ``--no-isolate``
runs them in this process (tests). The JSON is rewritten after every row, so a run cut short keeps its
rows. ``--quick``: tiny sizes (C=4, N=1, a few batches, 4 cells, 2 processes) — a CPU smoke test of the
machinery, not a measurement. On a device without CUDA the graph paths are skipped with the reason.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from benchmarks.files import atomic_write

__all__ = ["BEST_CELL", "GOAL_ARCH_EPOCHS_PER_S", "REFERENCE_ARCH_EPOCHS_PER_S", "sizes_for", "plan",
           "run_benchmark", "markdown", "add_throughput_arguments", "throughput_command", "count_flops"]

BEST_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
GOAL_ARCH_EPOCHS_PER_S = 5.0  # issue 14: the 32-cell sample on one H200
REFERENCE_ARCH_EPOCHS_PER_S = 0.90  # eager x8 processes measured on one H200 (results/gpu-h200/README.md)
FULL_IMAGES = 25_000
WORKLOADS = ("best", "sample")


def sizes_for(quick: bool) -> dict:
    """The workload sizes: the NB201 recipe, or tiny ones for a CPU smoke test."""
    if quick:
        return {"C": 4, "N": 1, "batch": 32, "eval_batch": 64, "best_images": 128, "sample_steps": 2,
                "full_images": 128, "sample": 4, "k": 4, "processes": 2, "compiled_cells": 1, "epochs": 2,
                "like": "fashion-mnist"}
    return {"C": 16, "N": 5, "batch": 256, "eval_batch": 1024, "best_images": FULL_IMAGES, "sample_steps": 12,
            "full_images": FULL_IMAGES, "sample": 32, "k": 32, "processes": 8, "compiled_cells": 2, "epochs": 2,
            "like": "cifar10"}


def sample_cells(n: int, seed: int) -> list[str]:
    """A seeded sample of ``n`` canonical NB201 cells (numpy ``default_rng(seed)``, without replacement)."""
    from benchmarks.spaces.nb201 import NB201Space

    pool = NB201Space().unique_architectures()
    rng = np.random.default_rng(seed)
    return [pool[i] for i in rng.choice(len(pool), size=min(n, len(pool)), replace=False)]


def plan(sz: dict, device_type: str, compile_modes: Sequence[str], *, batched_compiled: bool = False,
         paths: Sequence[str] | None = None, workloads: Sequence[str] = WORKLOADS) -> list[dict]:
    """The measurements of one run, most important first (so a run cut short keeps them)."""
    rows = []
    for workload in ("best", "sample"):
        rows.append({"workload": workload, "path": "eager", "trainer": "eager"})
        rows.append({"workload": workload, "path": "graph", "trainer": "graph"})
        rows.append({"workload": workload, "path": f"eager x{sz['processes']}", "trainer": "eager",
                     "processes": sz["processes"]})
        rows.append({"workload": workload, "path": f"graph x{sz['processes']}", "trainer": "graph",
                     "processes": sz["processes"]})
    rows.append({"workload": "sample", "path": f"batched K={sz['k']}", "trainer": "eager", "batched": sz["k"]})
    rows.append({"workload": "sample", "path": f"batched K={sz['k']} graph", "trainer": "graph", "batched": sz["k"]})
    for mode in compile_modes:
        for workload in ("best", "sample"):
            rows.append({"workload": workload, "path": f"compiled {mode}", "trainer": "compiled", "compile_mode": mode})
        if batched_compiled:
            rows.append({"workload": "sample", "path": f"batched K={sz['k']} compiled {mode}", "trainer": "compiled",
                         "compile_mode": mode, "batched": sz["k"]})
    if paths is not None:
        rows = [r for r in rows if ("batched" if r.get("batched") else r["trainer"]) in set(paths)]
    rows = [r for r in rows if r["workload"] in set(workloads)]
    for row in rows:
        if row["trainer"] == "graph" and device_type != "cuda":
            row["skip"] = f"CUDA graphs need CUDA; the device is {device_type}"
    return rows


# ============================================================================================ FLOPs
def count_flops(arch: str, sz: dict, in_channels: int, image_size: int, num_classes: int) -> dict:
    """FLOPs of one cell's network (FlopCounterMode on the meta device): per training step, per validation
    batch, and per arch-epoch of ``full_images`` training + ``full_images`` validation images."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks.training.nb201_model import build_network

    with torch.device("meta"):
        model = build_network(arch, num_classes, C=sz["C"], N=sz["N"], in_channels=in_channels)
        x = torch.empty(sz["batch"], in_channels, image_size, image_size)
        y = torch.zeros(sz["batch"], dtype=torch.long)
        xv = torch.empty(sz["eval_batch"], in_channels, image_size, image_size)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    train = counter.get_total_flops()
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(xv)
    valid = counter.get_total_flops()
    n = sz["full_images"]
    return {"train_step": int(train), "valid_batch": int(valid),
            "per_arch_epoch": float(train / sz["batch"] * n + valid / sz["eval_batch"] * n)}


# ===================================================================================== measurements
def _data(sz: dict, n: int, device: str, seed: int):
    from benchmarks.training.data import synthetic_splits

    return synthetic_splits(n, n, 16, like=sz["like"], seed=seed, device=device)


def _steady(seconds: Sequence[float]) -> tuple[float, float]:
    """(steady epoch seconds, first-epoch setup seconds): the median of the epochs after the first."""
    seconds = list(seconds)
    steady = statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]
    return steady, max(0.0, seconds[0] - steady)


def measure(row: dict, archs: Sequence[str], sz: dict, device: str, seed: int = 0) -> dict:
    """Train ``archs`` as ``row`` says (one at a time, or one batched group) in this process; per-cell seconds."""
    import torch

    from benchmarks.training.config import TrainConfig

    n = sz["best_images"] if row["workload"] == "best" else sz["sample_steps"] * sz["batch"]
    scale = sz["full_images"] / n
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    data = _data(sz, n, device, seed)
    settings = dict(dataset=data.spec.name, C=sz["C"], N=sz["N"], max_epochs=sz["epochs"], batch_size=sz["batch"],
                    eval_batch_size=sz["eval_batch"], device=device, bf16=True,
                    # channels_last as the device check's trial; the batched network is built for NCHW
                    channels_last=dev.type == "cuda" and not row.get("batched"),
                    test_every_epoch=False, trainer=row["trainer"],
                    compile_mode=row.get("compile_mode", "max-autotune-no-cudagraphs"), seed=seed)
    out = {"images_per_epoch_measured": n, "scale_to_full_epoch": scale, "cells": []}
    if row.get("batched"):
        from benchmarks.training.batched import train_group

        result = train_group(list(archs), data, TrainConfig(**settings))
        steady, setup = _steady(result.wall_seconds.tolist())
        out["group"] = {"epoch_seconds": result.wall_seconds.tolist(), "steady_s": steady * scale, "setup_s": setup,
                        "failed": int(result.failed.sum())}
        out["cells"] = [{"arch": a, "steady_s": steady * scale / len(archs)} for a in archs]
    else:
        from benchmarks.training.trainer import TrainerOracle

        with tempfile.TemporaryDirectory(prefix="pmfnas-throughput-") as tmp:
            oracle = TrainerOracle(TrainConfig(**settings), data=data, checkpoint_dir=tmp)
            for arch in archs:
                evaluation = oracle.evaluate(arch, sz["epochs"])
                record = oracle.trials[-1]
                if evaluation.failed:
                    out["cells"].append({"arch": arch, "failed": record.reason})
                    continue
                steady, setup = _steady(record.seconds)
                out["cells"].append({"arch": arch, "epoch_seconds": list(record.seconds), "steady_s": steady * scale,
                                     "setup_s": setup})
            oracle.close()
    if dev.type == "cuda":
        out["peak_allocated_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
    return out


def _worker(target, args, queue, barrier=None, timeout=None) -> None:
    try:
        import torch

        if torch.device(args[3]).type == "cpu":
            torch.set_num_threads(1)
        if barrier is not None:
            barrier.wait(timeout=timeout)
        queue.put(("ok", target(*args)))
    except BaseException as error:  # report, never hang the parent
        if barrier is not None:
            try:
                barrier.abort()
            except Exception:
                pass
        queue.put(("error", f"{type(error).__name__}: {error}\n{traceback.format_exc()[-2000:]}"))


def _spawn(jobs: list[tuple], timeout: float, together: bool) -> list[tuple[str, object]]:
    """Run ``measure(*job)`` for each job in its own spawned process; ``together``: start them at one barrier."""
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queues = [ctx.Queue() for _ in jobs]
    barrier = ctx.Barrier(len(jobs)) if together else None
    procs = [ctx.Process(target=_worker, args=(measure, job, q, barrier, timeout), daemon=True)
             for job, q in zip(jobs, queues)]
    results = []
    try:
        for p in procs:
            p.start()
        deadline = time.monotonic() + timeout
        for p, q in zip(procs, queues):
            try:
                results.append(q.get(timeout=max(0.1, deadline - time.monotonic())))
            except Exception:  # queue.Empty: the process hung or died without a word
                results.append(("error", f"no result within {timeout:.0f} s" if p.is_alive() else
                                f"the process ended with exit code {p.exitcode} and no result"))
    finally:  # also when this process is told to stop: no measurement outlives it on the device
        for p in procs:
            if p.pid is not None:
                p.join(timeout=5)
                if p.is_alive():
                    p.kill()
                    p.join(timeout=5)
    return results


def _summarise(row: dict, parts: list[dict], flops: dict[str, dict]) -> dict:
    """Aggregate one row from the per-process results."""
    done = [c for part in parts for c in part["cells"] if "steady_s" in c]
    failed = [c for part in parts for c in part["cells"] if "failed" in c]
    out = {"cells_timed": len(done), "cells_failed": len(failed)}
    if failed:
        out["failures"] = sorted({c["failed"] for c in failed})[:3]
    if not done:
        return out
    if row.get("batched"):
        group = parts[0]["group"]
        rate = len(done) / group["steady_s"]
        out.update(steady_epoch_s=group["steady_s"], setup_s=group["setup_s"])
    else:
        # Each process trains its cells one after another; the processes run side by side.
        rate = sum(sum(1 for c in part["cells"] if "steady_s" in c) / sum(c["steady_s"] for c in part["cells"] if "steady_s" in c)
                   for part in parts if any("steady_s" in c for c in part["cells"]))
        out.update(steady_epoch_s=statistics.mean(c["steady_s"] for c in done),
                   setup_s=statistics.mean(c["setup_s"] for c in done))
    mean_flops = statistics.mean(flops[c["arch"]]["per_arch_epoch"] for c in done)
    out.update(arch_epochs_per_s=rate, tflops_per_s=rate * mean_flops / 1e12, tflop_per_arch_epoch=mean_flops / 1e12)
    peaks = [p["peak_allocated_gib"] for p in parts if "peak_allocated_gib" in p]
    if peaks:
        out["peak_allocated_gib"] = max(peaks)
        if len(peaks) > 1:
            out["peak_allocated_gib_sum"] = sum(peaks)
    return out


def run_benchmark(out: str | os.PathLike, *, device: str | None = None, quick: bool = False, seed: int = 0,
                  compile_modes: Sequence[str] = ("max-autotune-no-cudagraphs", "reduce-overhead"),
                  paths: Sequence[str] | None = None, isolate: bool = True, timeout: float = 120.0,
                  batched_compiled: bool = False, overrides: dict | None = None, workloads: Sequence[str] = WORKLOADS,
                  progress: Callable[[str], None] | None = print) -> dict:
    """Measure every row of :func:`plan`; write ``OUT/throughput.json`` (after every row) and ``OUT/throughput.md``."""
    import torch

    say = progress or (lambda line: None)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    sz = {**sizes_for(quick), **(overrides or {})}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    from benchmarks.training.data import DATASETS, canonical_name

    spec = DATASETS[canonical_name(sz["like"])]
    cells = {"best": [BEST_CELL], "sample": sample_cells(sz["sample"], seed)}
    flops = {a: count_flops(a, sz, spec.in_channels, spec.size, spec.num_classes)
             for a in dict.fromkeys(cells["best"] + cells["sample"])}
    report = {"quick": quick, "sizes": sz, "seed": seed, "environment": _environment(dev), "cells": cells,
              "flops": flops, "goal_arch_epochs_per_s": GOAL_ARCH_EPOCHS_PER_S,
              "reference_arch_epochs_per_s": REFERENCE_ARCH_EPOCHS_PER_S, "rows": []}
    started = time.perf_counter()
    for row in plan(sz, dev.type, compile_modes, batched_compiled=batched_compiled, paths=paths, workloads=workloads):
        archs = list(cells[row["workload"]])
        if row.get("batched"):
            archs = archs[:row["batched"]]
        elif row["trainer"] == "compiled" and row["workload"] == "sample":
            archs = archs[:sz["compiled_cells"]]
            row["note"] = f"first {len(archs)} cells of the sample (each cell compiles)"
        result = dict(row)
        mark = time.perf_counter()
        if "skip" in row:
            say(f"{row['workload']:6s} {row['path']:34s} skipped: {row['skip']}")
            report["rows"].append(result)
            continue
        processes = row.get("processes", 1)
        if processes > 1:
            shares = [[BEST_CELL] if row["workload"] == "best" else archs[r::processes] for r in range(processes)]
            jobs = [(row, share, sz, str(dev), seed + r) for r, share in enumerate(shares) if share]
            outcomes = _spawn(jobs, timeout, together=True)
        elif isolate:
            outcomes = _spawn([(row, archs, sz, str(dev), seed)], timeout, together=False)
        else:
            try:
                outcomes = [("ok", measure(row, archs, sz, str(dev), seed))]
            except Exception as error:
                outcomes = [("error", f"{type(error).__name__}: {error}")]
        errors = [value for status, value in outcomes if status != "ok"]
        parts = [value for status, value in outcomes if status == "ok"]
        result["wall_s"] = time.perf_counter() - mark
        if errors:
            result["error"] = errors[0] if len(errors) == 1 else f"{len(errors)} of {len(outcomes)} processes: {errors[0]}"
        if parts and not errors:
            result.update(_summarise(row, parts, flops))
            result["detail"] = parts
        line = (f"{row['workload']:6s} {row['path']:34s} "
                + (f"{result['arch_epochs_per_s']:.3f} arch-epochs/s, {result['tflops_per_s']:.3g} TFLOP/s, "
                   f"setup {result['setup_s']:.1f} s" if "arch_epochs_per_s" in result
                   else "ERROR " + str(result.get("error", "no cell finished")).splitlines()[0][:200]))
        say(line)
        report["rows"].append(result)
        report["total_seconds"] = time.perf_counter() - started
        report["summary"] = _verdict(report)
        atomic_write(out / "throughput.json", json.dumps(report, indent=2, default=str))
        atomic_write(out / "throughput.md", markdown(report))
    report["total_seconds"] = time.perf_counter() - started
    report["summary"] = _verdict(report)
    atomic_write(out / "throughput.json", json.dumps(report, indent=2, default=str))
    atomic_write(out / "throughput.md", markdown(report))
    return report


def _environment(dev) -> dict:
    import torch

    info = {"torch": torch.__version__, "python": platform.python_version(), "device": str(dev),
            "cpu_count": os.cpu_count()}
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        info.update(name=props.name, total_memory_gib=props.total_memory / 2**30, cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version())
    else:
        info["name"] = f"cpu ({platform.machine()})"
    return info


def _verdict(report: dict) -> dict:
    """The fastest path on the sample, its ratio to eager xP measured in the same run, and the goal."""
    rows = [r for r in report["rows"] if r["workload"] == "sample" and "arch_epochs_per_s" in r]
    if not rows:
        return {"fastest": None}
    best = max(rows, key=lambda r: r["arch_epochs_per_s"])
    eager_many = next((r for r in rows if r["trainer"] == "eager" and r.get("processes", 1) > 1), None)
    out = {"fastest": best["path"], "fastest_arch_epochs_per_s": best["arch_epochs_per_s"],
           "goal_met": (None if report["quick"] else best["arch_epochs_per_s"] >= report["goal_arch_epochs_per_s"])}
    if eager_many:
        out["ratio_to_eager_processes_same_run"] = best["arch_epochs_per_s"] / eager_many["arch_epochs_per_s"]
        out["eager_processes_path"] = eager_many["path"]
    return out


def markdown(report: dict) -> str:
    """The report as a markdown table (one row per measurement)."""
    env, sz = report["environment"], report["sizes"]
    lines = [f"# Trainer throughput — {env.get('name')}\n",
             f"torch {env['torch']}, device {env['device']}, quick={report['quick']}; C={sz['C']}, N={sz['N']}, batch "
             f"{sz['batch']}, an arch-epoch = {sz['full_images']:,} train + {sz['full_images']:,} valid images; "
             f"`sample` = {len(report['cells']['sample'])} seeded cells (seed {report['seed']}), each timed on "
             f"{sz['sample_steps']} batches and scaled; {sz['epochs']} epochs per cell, the first is setup.\n",
             "| workload | path | arch-epochs/s | TFLOP/s | TFLOP per arch-epoch | steady s/epoch | setup s | peak GiB | note |",
             "|---|---|---|---|---|---|---|---|---|"]

    def f(value, spec):
        return "—" if value is None else format(value, spec)

    for r in report["rows"]:
        note = r.get("skip") or (str(r.get("error")).splitlines()[0][:120] if r.get("error") else r.get("note", ""))
        if r.get("cells_failed"):
            note = f"{r['cells_failed']} cells failed: {r.get('failures')}"
        lines.append(f"| {r['workload']} | {r['path']} | {f(r.get('arch_epochs_per_s'), '.3f')} | "
                     f"{f(r.get('tflops_per_s'), '.3g')} | {f(r.get('tflop_per_arch_epoch'), '.3g')} | "
                     f"{f(r.get('steady_epoch_s'), '.3f')} | {f(r.get('setup_s'), '.1f')} | "
                     f"{f(r.get('peak_allocated_gib'), '.2f')} | {note} |")
    summary = report.get("summary", {})
    if summary.get("fastest"):
        lines.append(f"\nFastest on the sample: **{summary['fastest']}**, {summary['fastest_arch_epochs_per_s']:.3f} "
                     "arch-epochs/s" + (f" = {summary['ratio_to_eager_processes_same_run']:.2f}x "
                                        f"{summary['eager_processes_path']} measured in this run"
                                        if "ratio_to_eager_processes_same_run" in summary else "")
                     + ("" if summary["goal_met"] is None else
                        f"; goal >= {report['goal_arch_epochs_per_s']} arch-epochs/s: "
                        + ("met" if summary["goal_met"] else "NOT met")) + ".")
    lines.append(f"\nTotal {report.get('total_seconds', float('nan')):.0f} s.")
    return "\n".join(lines) + "\n"


# ============================================================================================== CLI
def add_throughput_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``pmfnas benchmark throughput``."""
    from benchmarks.training.config import COMPILE_MODES

    parser.add_argument("--out", required=True, help="directory for throughput.json and throughput.md")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a CPU smoke test, not a measurement")
    parser.add_argument("--seed", type=int, default=0, help="seed of the cell sample and the synthetic data")
    parser.add_argument("--trainer", default=None,
                        help="comma-separated paths to measure: eager, graph, compiled, batched (default all)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help="comma-separated workloads: best (the best cell), sample (the cell sample) (default both)")
    parser.add_argument("--compile-modes", default=",".join(COMPILE_MODES[:2]),
                        help=f"torch.compile modes of the compiled rows (default {','.join(COMPILE_MODES[:2])}; "
                             "'none' for no compiled row)")
    parser.add_argument("--processes", type=int, default=None, help="concurrent processes of the xP rows (default 8)")
    parser.add_argument("--k", type=int, default=None, help="cells per batched group (default 32)")
    parser.add_argument("--sample", type=int, default=None, help="cells in the sample (default 32)")
    parser.add_argument("--sample-steps", type=int, default=None, help="training batches each sample cell is timed on (default 12)")
    parser.add_argument("--compiled-cells", type=int, default=None, help="sample cells the compiled rows compile (default 2)")
    parser.add_argument("--batched-compiled", action="store_true", help="also measure batched groups under torch.compile")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per measurement (default 120)")
    parser.add_argument("--no-isolate", action="store_true", help="measure in this process (no timeout)")


def throughput_command(args: argparse.Namespace) -> int:
    import signal

    from benchmarks.training.config import COMPILE_MODES

    # `timeout` sends SIGTERM: exit through the finally blocks, which end the measurement processes.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    paths = None if not args.trainer else [p.strip() for p in str(args.trainer).split(",") if p.strip()]
    known = ("eager", "graph", "compiled", "batched")
    for p in paths or ():
        if p not in known:
            raise ValueError(f"--trainer {p!r}: the throughput benchmark measures {', '.join(known)}")
    workloads = [w.strip() for w in str(args.workloads).split(",") if w.strip()]
    if not workloads or any(w not in WORKLOADS for w in workloads):
        raise ValueError(f"--workloads {args.workloads!r} must name some of {', '.join(WORKLOADS)}")
    modes = [] if str(args.compile_modes).strip() == "none" else [m.strip() for m in str(args.compile_modes).split(",") if m.strip()]
    for m in modes:
        if m not in COMPILE_MODES:
            raise ValueError(f"--compile-modes {m!r} must be among {', '.join(COMPILE_MODES)}")
    overrides = {}
    for flag, key in (("processes", "processes"), ("k", "k"), ("sample", "sample"), ("sample_steps", "sample_steps"),
                      ("compiled_cells", "compiled_cells")):
        value = getattr(args, flag)
        if value is not None:
            if value < 1:
                raise ValueError(f"--{flag.replace('_', '-')} {value} must be at least 1")
            overrides[key] = value
    report = run_benchmark(args.out, device=args.device, quick=args.quick, seed=args.seed, compile_modes=modes,
                           paths=paths, isolate=not args.no_isolate, timeout=args.timeout,
                           batched_compiled=args.batched_compiled, overrides=overrides, workloads=workloads,
                           progress=lambda line: print(line, flush=True))
    print(markdown(report))
    return 0


def _main(argv=None) -> int:  # python -m benchmarks.training.throughput ...
    parser = argparse.ArgumentParser(prog="python -m benchmarks.training.throughput", allow_abbrev=False,
                                     description=__doc__.split("\n")[0])
    add_throughput_arguments(parser)
    return throughput_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(_main())
