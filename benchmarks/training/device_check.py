"""The device check behind ``python -m benchmarks.device_check --out DIR [--quick]``.

What it measures (a few minutes on one GPU; seconds on a CPU with ``--quick``):

1. ``forward_backward``: one forward/backward pass of the best NB201 cell's network on a batch, with
   finite loss and gradients.
2. ``resume``: the resume equivalence of :class:`~benchmarks.training.trainer.TrainerOracle` on this
   device: ``evaluate(arch, E/2)`` then ``evaluate(arch, E)`` against a fresh oracle's
   ``evaluate(arch, E)``. Run in fp32 with ``deterministic=True`` (cuDNN deterministic kernels, no
   autotuning). Pass criterion (documented tolerance): every weight and buffer ``allclose`` with
   ``rtol=1e-4, atol=1e-5`` and the validation losses within 1e-4 relative; on the CPU the runs are
   expected to be bitwise equal. The same comparison in the fast mode (bf16 autocast + channels_last,
   cuDNN autotuning) is reported for information only (nondeterministic kernels may differ).
3. ``single``: throughput of one trial — best NB201 cell, C=16, N=5, 25,000 training images of 3x32x32
   (synthetic uint8, 10 classes, already on the device; throughput does not depend on pixel values),
   batch 256, bf16 autocast + channels_last where supported, validation pass over 25,000 images per
   epoch as in NAS-Bench-201's cifar10-valid protocol. Reports seconds per epoch (train + valid, what
   the oracle charges) for every epoch; the steady state is the median of the epochs after the first
   (which includes cuDNN autotuning).
3b. ``resume_<path>`` and ``paths_<path>`` for each of ``--trainers`` (default ``graph``; see
   :mod:`benchmarks.training.paths`): the resume equivalence of check 2 with the trainer on that path (same
   tolerance), and the path's curve against eager's from the same seed (fp32, deterministic cuDNN):
   train and validation losses of every epoch within ``PATH_RTOL`` relative, weights within
   ``RESUME_RTOL``/``RESUME_ATOL`` — on the CPU the graph path's step runs uncaptured and must be bitwise eager.
4. ``concurrent``: K trials at once, as K processes (``torch.multiprocessing``, spawn), each with its
   own copy of the data on the device. K = min(--max-concurrent, floor(0.8 * free memory / per-trial
   memory)), where the per-trial memory is the single trial's peak reserved memory plus 1 GiB of CUDA
   context. Reports the aggregate arch-epochs per second (sum over processes of 1 / steady-state
   seconds per epoch, and K * epochs / wall time from a common start barrier).

   The gain over one trial (aggregate / single) is checked for plausibility: K trials sharing one device
   cannot run more than K times as fast as one trial alone (tolerance PLAUSIBLE_EXCESS for noise), and on
   the CPU not more than the number of cores; a gain beyond that means a disturbed measurement (e.g. the
   single trial ran under load) and is flagged in the report rather than taken as a result.

Writes ``DIR/device_check.json`` and ``DIR/device_check.md``; exit status 0 when checks 1, 2 and 3b pass.
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

import torch

from benchmarks.training.data import synthetic_splits
from benchmarks.training.nb201_model import build_network, count_parameters
from benchmarks.files import atomic_write
from benchmarks.training.trainer import TrainerOracle

BEST_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
RESUME_RTOL, RESUME_ATOL = 1e-4, 1e-5
CONTEXT_BYTES = 1 << 30
PATH_RTOL = 1e-3  # a path's losses vs eager's on the GPU: rounding of the update and of reordered sums only
PLAUSIBLE_EXCESS = 1.25  # measured gains up to 25 % above the ideal K× pass as noise


def _sizes(quick: bool) -> dict:
    if quick:
        return {"C": 4, "N": 1, "n_train": 256, "n_valid": 128, "batch": 64, "epochs": 3, "resume_epochs": 2,
                "resume_train": 128}
    return {"C": 16, "N": 5, "n_train": 25_000, "n_valid": 25_000, "batch": 256, "epochs": 4, "resume_epochs": 4,
            "resume_train": 2_048}


def environment(device: torch.device) -> dict:
    info = {"torch": torch.__version__, "python": platform.python_version(), "device": str(device),
            "cpu_threads": torch.get_num_threads(), "cuda_available": torch.cuda.is_available()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        free, total = torch.cuda.mem_get_info(device)
        info.update(name=props.name, capability=f"{props.major}.{props.minor}", total_memory_gib=total / 2**30,
                    free_memory_gib=free / 2**30, bf16_supported=torch.cuda.is_bf16_supported(),
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    else:
        info.update(name=f"cpu ({platform.machine()})")
    return info


def check_forward_backward(device: torch.device, sz: dict) -> dict:
    torch.manual_seed(0)
    model = build_network(BEST_CELL, 10, C=sz["C"], N=sz["N"]).to(device)
    x = torch.randn(sz["batch"], 3, 32, 32, device=device)
    y = torch.randint(0, 10, (sz["batch"],), device=device)
    start = time.perf_counter()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    grads_finite = all(bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None)
    return {"ok": bool(torch.isfinite(loss)) and grads_finite, "loss": float(loss.detach()), "grads_finite": grads_finite,
            "params": count_parameters(model), "seconds": time.perf_counter() - start}


def _compare(a: dict, b: dict) -> tuple[float, bool, bool]:
    worst, close, equal = 0.0, True, True
    for key in a:
        x, y = a[key], b[key]
        if x.is_floating_point():
            diff = float((x.double() - y.double()).abs().max()) if x.numel() else 0.0
            worst = max(worst, diff)
            close &= bool(torch.allclose(x.double(), y.double(), rtol=RESUME_RTOL, atol=RESUME_ATOL))
        equal &= bool(torch.equal(x, y))
    return worst, close, equal


def check_resume(device: torch.device, sz: dict, fast: bool, trainer: str = "eager") -> dict:
    data = synthetic_splits(sz["resume_train"], 512 if not sz.get("quick") else 64, 64, seed=1, device=device)
    epochs = sz["resume_epochs"]
    settings = dict(C=sz["C"], N=sz["N"], max_epochs=epochs, batch_size=sz["batch"], device=str(device),
                    bf16=fast, channels_last=fast, deterministic=not fast, test_every_epoch=False, trainer=trainer)
    with tempfile.TemporaryDirectory() as tmp:
        resumed = TrainerOracle(data=data, checkpoint_dir=Path(tmp) / "a", **settings)
        first = resumed.evaluate(BEST_CELL, epochs // 2)
        second = resumed.evaluate(BEST_CELL, epochs, start=epochs // 2)
        fresh = TrainerOracle(data=data, checkpoint_dir=Path(tmp) / "b", **settings)
        whole = fresh.evaluate(BEST_CELL, epochs)
        worst, close, equal = _compare(resumed.load_checkpoint(BEST_CELL)["model"], fresh.load_checkpoint(BEST_CELL)["model"])
    loss_close = bool(torch.allclose(torch.tensor(second.losses), torch.tensor(whole.losses), rtol=1e-4, atol=1e-6))
    ok = (not second.failed and not whole.failed and close and loss_close
          and abs(second.cost - sum(resumed.records[BEST_CELL].seconds[epochs // 2:])) < 1e-6)
    return {"ok": ok, "trainer": trainer,
            "mode": "bf16+channels_last (informational)" if fast else "fp32 deterministic",
            "epochs": epochs, "first_call_epochs": epochs // 2, "max_abs_weight_diff": worst,
            "weights_bitwise_equal": equal, "weights_allclose": close, "valid_losses_close": loss_close,
            "resumed_valid": second.values.tolist(), "fresh_valid": whole.values.tolist(),
            "resumed_losses": second.losses.tolist(), "fresh_losses": whole.losses.tolist(),
            "first_call_cost": first.cost, "second_call_cost": second.cost, "tolerance": {"rtol": RESUME_RTOL, "atol": RESUME_ATOL}}


def check_path(device: torch.device, sz: dict, trainer: str) -> dict:
    """The curve of ``trainer`` against eager's from the same seed (fp32, deterministic cuDNN)."""
    data = synthetic_splits(sz["resume_train"], 512 if not sz.get("quick") else 64, 64, seed=1, device=device)
    epochs = sz["resume_epochs"]
    settings = dict(C=sz["C"], N=sz["N"], max_epochs=epochs, batch_size=sz["batch"], device=str(device),
                    bf16=False, channels_last=False, deterministic=True, test_every_epoch=False)
    records, weights = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("eager", trainer):
            oracle = TrainerOracle(data=data, checkpoint_dir=Path(tmp) / name, trainer=name, **settings)
            evaluation = oracle.evaluate(BEST_CELL, epochs)
            if evaluation.failed:
                return {"ok": False, "trainer": trainer, "failed": f"{name}: {evaluation.reason}"}
            records[name] = oracle.records[BEST_CELL]
            weights[name] = oracle.load_checkpoint(BEST_CELL)["model"]
    worst, close, equal = _compare(weights["eager"], weights[trainer])
    a, b = records["eager"], records[trainer]
    losses_a = torch.tensor(a.train_loss + a.valid_loss, dtype=torch.float64)
    losses_b = torch.tensor(b.train_loss + b.valid_loss, dtype=torch.float64)
    rel = float(((losses_b - losses_a).abs() / losses_a.abs()).max())
    ok = rel <= PATH_RTOL and close
    return {"ok": ok, "trainer": trainer, "captured": device.type == "cuda" and trainer == "graph",
            "max_rel_loss_diff": rel, "loss_rtol": PATH_RTOL, "max_abs_weight_diff": worst, "weights_allclose": close,
            "weights_bitwise_equal": equal, "eager_valid_loss": a.valid_loss, "path_valid_loss": b.valid_loss,
            "eager_seconds": a.seconds, "path_seconds": b.seconds}


def run_trial(device_name: str, sz: dict, seed: int = 0) -> dict:
    """One throughput trial; returns per-epoch seconds and peak memory."""
    device = torch.device(device_name)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    data = synthetic_splits(sz["n_train"], sz["n_valid"], 16, seed=seed, device=device)
    oracle = TrainerOracle(data=data, C=sz["C"], N=sz["N"], max_epochs=sz["epochs"], batch_size=sz["batch"],
                           device=device_name, bf16=True, channels_last=True, test_every_epoch=False, seed=seed)
    try:
        evaluation = oracle.evaluate(BEST_CELL, sz["epochs"])
        record = oracle.records[BEST_CELL]
        result = {"failed": evaluation.failed, "reason": evaluation.reason, "seconds": list(record.seconds),
                  "bf16": oracle.use_bf16, "params": record.n_params}
    finally:
        oracle.close()
    if device.type == "cuda":
        result["peak_allocated_bytes"] = torch.cuda.max_memory_allocated(device)
        result["peak_reserved_bytes"] = torch.cuda.max_memory_reserved(device)
    steady = result["seconds"][1:] or result["seconds"]
    result["steady_seconds_per_epoch"] = statistics.median(steady)
    result["arch_epochs_per_second"] = 1.0 / result["steady_seconds_per_epoch"]
    return result


def _worker(rank: int, device_name: str, sz: dict, barrier, queue, timeout: float) -> None:
    try:
        if torch.device(device_name).type == "cpu":
            torch.set_num_threads(1)
        # Warm up (CUDA context, cuDNN autotuning) before the common start.
        warm = dict(sz, epochs=1, n_train=min(sz["n_train"], sz["batch"] * 4), n_valid=min(sz["n_valid"], sz["batch"]))
        run_trial(device_name, warm, seed=100 + rank)
        barrier.wait(timeout=timeout)
        start = time.perf_counter()
        result = run_trial(device_name, sz, seed=rank)
        result["wall"] = time.perf_counter() - start
        queue.put((rank, result))
    except BaseException as error:  # report, never hang the parent
        try:
            barrier.abort()
        except Exception:
            pass
        queue.put((rank, {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}))


def check_concurrent(device_name: str, sz: dict, k: int, timeout: float) -> dict:
    ctx = torch.multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(k), ctx.Queue()
    processes = [ctx.Process(target=_worker, args=(rank, device_name, sz, barrier, queue, timeout), daemon=True) for rank in range(k)]
    for p in processes:
        p.start()
    results, deadline = {}, time.monotonic() + timeout
    while len(results) < k and time.monotonic() < deadline:
        try:
            rank, result = queue.get(timeout=1.0)
            results[rank] = result
        except Exception:  # queue.Empty: nothing yet
            if not any(p.is_alive() for p in processes) and queue.empty():
                break
    for p in processes:
        p.join(timeout=5)
        if p.is_alive():
            p.terminate()
    errors = {r: v["error"] for r, v in results.items() if "error" in v}
    good = [v for v in results.values() if "error" not in v and not v.get("failed")]
    out = {"k": k, "completed": len(good), "errors": errors, "per_process": results}
    if good:
        out["aggregate_arch_epochs_per_second"] = sum(v["arch_epochs_per_second"] for v in good)
        out["wall_arch_epochs_per_second"] = len(good) * sz["epochs"] / max(v["wall"] for v in good)
        out["mean_steady_seconds_per_epoch"] = statistics.mean(v["steady_seconds_per_epoch"] for v in good)
    return out


def concurrency_gain(single: dict, concurrent: dict, device_type: str, cpu_count: int | None = None) -> dict:
    """The aggregate throughput of K concurrent trials over one trial's, and why it is implausible (or None).

    K trials sharing a device cannot together exceed K times one trial alone, nor, on the CPU, the number of
    cores times one trial (each trial then gets at most one core's worth more); beyond PLAUSIBLE_EXCESS of that
    bound the measurement was disturbed.
    """
    gain = concurrent["aggregate_arch_epochs_per_second"] / single["arch_epochs_per_second"]
    k = concurrent["completed"]
    bound, why = float(k), f"{k} concurrent trials"
    if device_type == "cpu":
        cores = cpu_count or os.cpu_count() or 1
        if cores < bound:
            bound, why = float(cores), f"{cores} CPU cores"
    implausible = None
    if gain > PLAUSIBLE_EXCESS * bound:
        implausible = (f"a {gain:.1f}x gain from {why} is implausible (at most {bound:g}x): the single-trial "
                       "measurement was probably disturbed (other load, warm-up); rerun the check on an idle device")
    return {"gain_over_single": gain, "bound": bound, "implausible": implausible}


def choose_k(device: torch.device, single: dict, cap: int) -> tuple[int, dict]:
    if device.type != "cuda":
        return max(1, min(cap, 2)), {"rule": "cpu: min(cap, 2)"}
    free, _ = torch.cuda.mem_get_info(device)
    per_trial = single.get("peak_reserved_bytes", 0) + CONTEXT_BYTES
    k = int(0.8 * free // per_trial)
    return max(1, min(cap, k)), {"free_bytes": free, "per_trial_bytes": per_trial, "cap": cap,
                                 "rule": "min(cap, floor(0.8 * free / (peak reserved of one trial + 1 GiB)))"}


def markdown(report: dict) -> str:
    env, lines = report["environment"], []
    lines.append(f"# Device check — {env.get('name')}\n")
    lines.append(f"torch {env['torch']}, device {env['device']}, quick={report['quick']}, sizes {report['sizes']}\n")
    fb = report.get("forward_backward", {})
    lines.append(f"- forward/backward: {'PASS' if fb.get('ok') else 'FAIL'} (loss {fb.get('loss', float('nan')):.4f}, "
                 f"{fb.get('params')} params)")
    for key in ["resume", "resume_fast"] + [k for k in report if k.startswith("resume_") and k != "resume_fast"]:
        r = report.get(key)
        if r:
            verdict = "PASS" if r.get("ok") else ("FAIL" if key == "resume" else "differs (informational)")
            lines.append(f"- resume equivalence, {r.get('trainer', 'eager')} path, {r.get('mode')}: {verdict}; max |Δw| = {r.get('max_abs_weight_diff', float('nan')):.3g}, "
                         f"bitwise equal: {r.get('weights_bitwise_equal')}, tolerance rtol={RESUME_RTOL}, atol={RESUME_ATOL}")
    for key in [k for k in report if k.startswith("paths_")]:
        r = report[key]
        lines.append(f"- {r.get('trainer')} path vs eager (fp32, deterministic, same seed): "
                     f"{'PASS' if r.get('ok') else 'FAIL'}; max relative loss difference "
                     f"{r.get('max_rel_loss_diff', float('nan')):.3g} (tolerance {PATH_RTOL}), max |Δw| = "
                     f"{r.get('max_abs_weight_diff', float('nan')):.3g}, bitwise equal: {r.get('weights_bitwise_equal')}"
                     + (f"; {r['failed']}" if r.get("failed") else ""))
    s = report.get("single")
    if s and "steady_seconds_per_epoch" in s:
        lines.append(f"- one trial (best cell, C={report['sizes']['C']}, N={report['sizes']['N']}, "
                     f"{report['sizes']['n_train']} train + {report['sizes']['n_valid']} valid images, batch "
                     f"{report['sizes']['batch']}, bf16={s.get('bf16')}, channels_last): "
                     f"{s['steady_seconds_per_epoch']:.3f} s/epoch steady, {s['arch_epochs_per_second']:.3f} arch-epochs/s; "
                     f"epochs: {', '.join(f'{x:.3f}' for x in s['seconds'])} s"
                     + (f"; peak reserved {s['peak_reserved_bytes'] / 2**30:.2f} GiB" if "peak_reserved_bytes" in s else ""))
    c = report.get("concurrent")
    if c and "aggregate_arch_epochs_per_second" in c:
        lines.append(f"- {c['k']} concurrent trials (processes): {c['aggregate_arch_epochs_per_second']:.3f} arch-epochs/s "
                     f"aggregate (steady), {c['wall_arch_epochs_per_second']:.3f} by wall time; "
                     f"{c['mean_steady_seconds_per_epoch']:.3f} s/epoch per trial; K rule: {report.get('k_choice', {}).get('rule')}")
        if c.get("gain_over_single") is not None:
            lines.append(f"- gain over one trial: {c['gain_over_single']:.2f}x"
                         + (f" — **IMPLAUSIBLE**: {c['implausible']}" if c.get("implausible") else ""))
    elif c:
        lines.append(f"- concurrent trials: none completed; errors: {c.get('errors')}")
    if report.get("errors"):
        lines.append(f"\nErrors: {report['errors']}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.device_check", description=__doc__.split("\n")[0],
                                     allow_abbrev=False)
    parser.add_argument("--out", required=True, help="directory for device_check.json and device_check.md")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CPU smoke test)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--max-concurrent", type=int, default=8, help="cap on K concurrent trials (default 8)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per throughput trial")
    parser.add_argument("--skip-concurrent", action="store_true")
    parser.add_argument("--trainers", default="graph",
                        help="comma-separated paths whose resume equivalence and curve vs eager are checked "
                             "(graph, compiled; default graph; 'none' for none)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed for the concurrent part")
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    sz = _sizes(args.quick)
    sz["quick"] = args.quick
    if args.epochs:
        sz["epochs"] = max(2, args.epochs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"quick": args.quick, "sizes": sz, "environment": environment(device), "errors": {}}
    started = time.perf_counter()

    def step(name, fn):
        try:
            report[name] = fn()
        except Exception as error:
            report["errors"][name] = f"{type(error).__name__}: {error}\n{traceback.format_exc()}"
        atomic_write(out / "device_check.json", json.dumps(report, indent=2, default=str))

    step("forward_backward", lambda: check_forward_backward(device, sz))
    step("resume", lambda: check_resume(device, sz, fast=False))
    if device.type == "cuda":
        step("resume_fast", lambda: check_resume(device, sz, fast=True))
    trainers = [] if args.trainers.strip() == "none" else [t.strip() for t in args.trainers.split(",") if t.strip()]
    for trainer in trainers:
        if trainer not in ("graph", "compiled"):
            parser.error(f"--trainers {trainer!r}: give graph and/or compiled")
        step(f"resume_{trainer}", lambda: check_resume(device, sz, fast=False, trainer=trainer))
        step(f"paths_{trainer}", lambda: check_path(device, sz, trainer))
    step("single", lambda: run_trial(str(device), sz))
    if not args.skip_concurrent and "single" in report:
        k, rule = choose_k(device, report["single"], args.max_concurrent)
        report["k_choice"] = rule
        step("concurrent", lambda: check_concurrent(str(device), sz, k, args.timeout))
        concurrent = report.get("concurrent", {})
        if "aggregate_arch_epochs_per_second" in concurrent:
            concurrent.update(concurrency_gain(report["single"], concurrent, device.type))
            if concurrent["implausible"]:
                print(f"warning: {concurrent['implausible']}", file=sys.stderr)
    report["total_seconds"] = time.perf_counter() - started
    ok = (bool(report.get("forward_backward", {}).get("ok")) and bool(report.get("resume", {}).get("ok"))
          and all(bool(report.get(f"{kind}_{t}", {}).get("ok")) for t in trainers for kind in ("resume", "paths")))
    report["ok"] = ok
    atomic_write(out / "device_check.json", json.dumps(report, indent=2, default=str))
    atomic_write(out / "device_check.md", markdown(report))
    print(markdown(report))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
