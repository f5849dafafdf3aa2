"""The ``pmfnas`` command line."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from benchmarks.registry import benchmark_names, load_benchmark
from benchmarks.spaces.base import ArchitectureError
from benchmarks.tabular import BenchmarkFormatError

CONVERT_SOURCES = ("nb201-pth", "nats-tss", "nb201-final", "nbnlp-wt2")


class UsageError(ValueError):
    """A wrong command-line value; the CLI prints it and exits 2."""


def _cmd_benchmark_info(args: argparse.Namespace) -> int:
    table = load_benchmark(args.benchmark)
    facts = table.describe()
    width = max(len(k) for k in facts)
    for key, value in facts.items():
        if isinstance(value, float):
            value = f"{value:.6g}"
        elif isinstance(value, list):
            value = ", ".join(value)
        print(f"{key.replace('_', ' '):<{width}}  {value}")
    return 0


def _cmd_benchmark_list(args: argparse.Namespace) -> int:
    for name in benchmark_names():
        print(name)
    return 0


def _cmd_benchmark_convert(args: argparse.Namespace) -> int:
    source = args.source
    if source in ("nb201-pth", "nats-tss"):
        if not args.path or not args.dataset:
            raise UsageError(f"convert {source} needs PATH and --dataset")
        from benchmarks.loaders.nb201_official import convert_official
        table = convert_official(args.path, args.dataset, kind="nb201" if source == "nb201-pth" else "nats-tss")
    elif source == "nb201-final":
        if not args.dataset:
            raise UsageError("convert nb201-final needs --dataset (cifar10-valid, cifar100 or imagenet16-120)")
        from benchmarks.loaders.nb201_final import load_nb201_final
        table = load_nb201_final(args.dataset)
    else:
        from benchmarks.loaders.nbnlp import load_nbnlp
        table = load_nbnlp(args.path)
    written = table.save(args.out)
    print(f"wrote {written}: {len(table)} architectures × {table.epochs.size} fidelities × {table.n_repeat_slots} repeats")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from harness.comparison import compare

    methods = args.methods.split(",")
    runs = compare(args.benchmark, methods, budget=args.budget, seeds=args.seeds, workers=args.workers,
                   out=args.out, resume=args.resume, processes=args.processes, progress=not args.quiet)
    summary = runs.groupby("method", sort=False)["regret"].agg(["mean", "median", "std"])
    print(summary.to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"wrote {args.out}/runs.csv, anytime.csv, summary.md, anytime.png, timing.csv")
    return 0


def _cmd_predictor_eval(args: argparse.Namespace) -> int:
    from harness.predictor_eval import evaluate_predictors, write_predictor_eval

    try:
        fractions = [float(f) for f in args.fraction.split(",")]
    except ValueError:
        raise UsageError(f"--fraction {args.fraction!r} must be comma-separated numbers, e.g. 0.05,0.1,0.25,0.5") from None
    results = evaluate_predictors(args.benchmark, fractions, args.train_archs, args.seeds)
    write_predictor_eval(results, args.out, f"{args.benchmark}: {args.train_archs} training architectures")
    table = results.groupby(["predictor", "fraction"])[["spearman", "kendall", "mae", "coverage90"]].mean()
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {args.out}/results.csv, summary.csv, rank_correlation.png")
    return 0


def _progress_printer(budget: float, metric: str):
    def show(row: dict, best: tuple[str, float] | None, running: int) -> None:
        best_text = f"best {best[1]:.4g} ({best[0]})" if best else "no result yet"
        status = "FAILED" if row["failed"] else f"{metric} {row['value']:.4g}"
        print(f"[{min(row['end'], budget) / budget:6.1%} of budget] {row['arch']} @ {row['epochs']} epochs: {status}; "
              f"{running} running; {best_text}", file=sys.stderr, flush=True)
    return show


def _cmd_search(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.journal import journal_is_empty, journaled
    from harness.seeding import search_streams
    from harness.runner import Runner
    from harness.workers import SimulatedPool
    from search.base import Problem
    from search.registry import make_searcher

    if (args.benchmark is None) == (args.dataset is None):
        raise UsageError("give exactly one of --benchmark B (tabular mode) or --train DATASET (real training)")
    if args.budget_hours is None and args.budget is None:
        raise UsageError("give the budget: --budget-hours H or --budget SECONDS")
    budget = args.budget if args.budget is not None else args.budget_hours * 3600.0
    real = args.dataset is not None
    resume = bool(getattr(args, "resume", False))
    checkpoint_dir = getattr(args, "checkpoint_dir", None)
    journal_path = None
    if not args.no_journal:
        if args.journal is not None:
            journal_path = Path(args.journal)
        elif real and checkpoint_dir is not None:
            journal_path = Path(checkpoint_dir) / "journal.jsonl"
    if resume and real and checkpoint_dir is None and not getattr(args, "_no_torch", False):
        raise UsageError("--resume continues the checkpoints of the interrupted search: give its --checkpoint-dir")
    if resume and not real and journal_path is None:
        raise UsageError("--resume continues the search recorded in --journal FILE: give that file")
    if journal_path is not None and not resume and not journal_is_empty(journal_path):
        raise UsageError(f"the journal {journal_path} already records a search: pass --resume to continue it, "
                         "or remove it")
    processes = bool(getattr(args, "processes", False))
    devices = None
    if getattr(args, "devices", None):
        devices = [d.strip() for d in str(args.devices).split(",") if d.strip()]
        if not devices:
            raise UsageError(f"--devices {args.devices!r} must name devices, e.g. cuda:0,cuda:1")
        if not processes:
            raise UsageError("--devices places worker processes: give --processes too")
    if processes and not real:
        raise UsageError("--processes runs real training in worker processes: give --train DATASET "
                         "(tabular mode simulates its workers)")
    cleanup = []  # what lives only for this search (a temporary checkpoint directory)
    if args.benchmark is not None:
        from benchmarks.oracle import TabularOracle
        from benchmarks.registry import load_benchmark, space_for

        table = load_benchmark(args.benchmark)
        oracle_rng, rng = search_streams(args.seed)
        oracle = TabularOracle(table, space_for(table), oracle_rng)
        pool = SimulatedPool(oracle, args.workers)
        meta = {"method": args.method, "seed": args.seed, "workers": args.workers, "benchmark": args.benchmark,
                "table": table.content_hash()}
    else:
        if getattr(args, "_no_torch", False):
            raise UsageError("real training needs torch: pip install torch, then pip install \".[train]\"")
        from benchmarks.training.commands import trainer_from_args
        from harness.workers import ThreadedPool

        if not processes:
            oracle = trainer_from_args(args)
            pool = ThreadedPool(oracle, args.workers)
        else:
            import argparse as _argparse
            import os
            import tempfile

            from benchmarks.training.factory import TrainerFactory
            from harness.workers import ProcessPool

            # Every worker process and this one share one checkpoint directory and continue its checkpoints:
            # a promotion continues the architecture's checkpoint whichever process trained it before.
            root = checkpoint_dir
            if root is None:
                holder = tempfile.TemporaryDirectory(prefix="pmfnas-search-")
                cleanup.append(holder)
                root = holder.name
            shared = _argparse.Namespace(**vars(args))
            shared.checkpoint_dir, shared.resume = root, True
            oracle = trainer_from_args(shared)  # this process's view: journal replay and --record read it
            if not resume and any(oracle.checkpoint_dir.iterdir()):
                raise UsageError(f"{oracle.checkpoint_dir} already holds checkpoints of these settings, which worker "
                                 "processes would continue instead of training afresh: pass --resume to continue that "
                                 "search, or give an empty --checkpoint-dir")
            factory = TrainerFactory(oracle.config, root, fidelities=oracle.fidelities,
                                     num_threads=max(1, (os.cpu_count() or 1) // args.workers))
            try:
                pool = ProcessPool(factory, args.workers, devices=devices, oracle=oracle)
            except RuntimeError as error:
                raise UsageError(f"the worker processes could not start: {error}") from None
        _, rng = search_streams(args.seed)
        meta = {"method": args.method, "seed": args.seed, "workers": args.workers, "dataset": args.dataset,
                "space": oracle.config.space, "fidelities": list(oracle.fidelities),
                "fingerprint": oracle.config.fingerprint()}
    if journal_path is not None:
        if real and checkpoint_dir is None:
            print(f"note: without --checkpoint-dir the trained networks are not kept, so the journal {journal_path} "
                  "cannot be resumed", file=sys.stderr)
        if resume and journal_is_empty(journal_path):
            print(f"no journal at {journal_path} yet: the search starts from the beginning", file=sys.stderr)
        try:
            pool = journaled(pool, journal_path, resume=resume, meta=meta)
        except BaseException:
            if hasattr(pool, "shutdown"):
                pool.shutdown()
            raise
        journal = pool.resumed_from
        if journal is not None and len(journal.submitted):
            print(f"resuming the search recorded in {journal_path}: {len(journal)} finished jobs are replayed, "
                  f"{len(journal.running)} that were running start again"
                  f"{' from their checkpoints' if real else ''}; the clock goes on from {journal.end_time:.1f} s",
                  file=sys.stderr)
    searcher = make_searcher(args.method, Problem(oracle.space, oracle.fidelities, oracle.higher_is_better), rng)
    runner = Runner(searcher, pool, budget, max_jobs=args.max_jobs,
                    on_result=None if args.quiet else _progress_printer(budget, oracle.metric))
    try:
        result = runner.run()
    except KeyboardInterrupt:
        if journal_path is None:
            raise
        print(f"interrupted; the journal {journal_path} is consistent: run the same command with --resume to "
              "continue the search", file=sys.stderr)
        return 130
    finally:
        if hasattr(pool, "shutdown"):
            pool.shutdown()
    # (A temporary checkpoint directory left behind by an early return or an error is removed when its holder
    # is garbage collected.)
    try:
        if args.record is not None and real:
            # Runs trained by worker processes or by an interrupted session are learnt from their checkpoints.
            oracle.adopt_runs(list(dict.fromkeys(zip(result.trace["arch"], result.trace["repeat"]))))
            oracle.to_table(f"search-{args.method}-seed{args.seed}").save(args.record)
            print(f"recorded the trained curves to {args.record}")
    finally:
        for holder in cleanup:
            holder.cleanup()
    print(f"chosen: {result.chosen_arch} ({oracle.metric} {result.chosen_value:.6g}); "
          f"{result.n_evaluations} evaluations, {result.epochs_paid} epochs, {result.time_used:.1f} s of "
          f"{budget:.1f} s; stopped because: {result.stopped_because}")
    return 0


def _cmd_record(args: argparse.Namespace) -> int:
    if getattr(args, "_no_torch", False):
        raise UsageError("recording trains networks and needs torch: pip install torch, then pip install \".[train]\"")
    from benchmarks.training.commands import record, trainer_from_args

    table = record(trainer_from_args(args), args.archs, args.out, name=args.name)
    print(f"wrote {args.out}: {len(table)} architectures × {table.epochs.size} fidelities")
    return 0


def _add_trainer_arguments(parser: argparse.ArgumentParser, dataset_flag: str) -> None:
    try:
        from benchmarks.training.commands import add_trainer_arguments
    except ImportError:  # torch is not installed: real training is refused with a clear error, tabular mode works
        parser.add_argument(dataset_flag, dest="dataset", default=None, help="dataset to train on (needs torch)")
        parser.set_defaults(_no_torch=True)
        return
    add_trainer_arguments(parser, dataset_flag=dataset_flag)


def _add_build_commands(bench_cmds) -> None:
    """``benchmark build`` and ``benchmark throughput``: their options parse without torch; running them needs it."""
    from benchmarks.training.build import (add_build_arguments, add_throughput_arguments, build_command,
                                           throughput_command)

    def needs_torch(command):
        def run(args: argparse.Namespace) -> int:
            import importlib.util

            if importlib.util.find_spec("torch") is None:
                raise UsageError("building a benchmark trains networks and needs torch: pip install \".[train]\"")
            result = command(args)
            return result if isinstance(result, int) else 0
        return run

    build = bench_cmds.add_parser("build", help="train NB201 cells on Fashion-MNIST into a tabular benchmark (GPU)")
    add_build_arguments(build)
    build.set_defaults(func=needs_torch(build_command))
    throughput = bench_cmds.add_parser("throughput", help="arch-epochs per second: batched vs one-model training")
    add_throughput_arguments(throughput)
    throughput.set_defaults(func=needs_torch(throughput_command))


def _peer_help() -> str:
    from search.registry import installed_peers, peer_class
    peers = installed_peers()
    if not peers:
        return "no peer library installed (pip install '.[peers]')"
    slow = [p for p in peers if peer_class(p).slow]
    return (f"installed peer libraries: {', '.join(peers)}; 'peers' names those not slow"
            + (f" (slow, run only when named: {', '.join(slow)})" if slow else ""))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pmfnas", description="Progressive multi-fidelity NAS harness")
    commands = parser.add_subparsers(dest="command", required=True)

    bench = commands.add_parser("benchmark", help="inspect and convert tabular benchmarks")
    bench_cmds = bench.add_subparsers(dest="benchmark_command", required=True)
    info = bench_cmds.add_parser("info", help="facts about a benchmark")
    info.add_argument("benchmark", help="a built-in name (see 'pmfnas benchmark list') or a table path")
    info.set_defaults(func=_cmd_benchmark_info)
    listing = bench_cmds.add_parser("list", help="built-in benchmark names")
    listing.set_defaults(func=_cmd_benchmark_list)
    convert = bench_cmds.add_parser("convert", help="convert a benchmark into the open tabular format")
    convert.add_argument("source", choices=CONVERT_SOURCES)
    convert.add_argument("path", nargs="?", help="the official file (nb201-pth, nats-tss) or logs.zip (nbnlp-wt2)")
    convert.add_argument("--dataset", help="cifar10-valid, cifar10, cifar100, ImageNet16-120 (imagenet16-120 for nb201-final)")
    convert.add_argument("--out", required=True, help="output: NAME.npz (one compressed file) or a directory")
    convert.set_defaults(func=_cmd_benchmark_convert)
    _add_build_commands(bench_cmds)

    comp = commands.add_parser("compare", help="compare search methods at equal simulated budget")
    comp.add_argument("--benchmark", default="nbnlp-wt2", help="benchmark name or table path (default: nbnlp-wt2)")
    comp.add_argument("--methods", default="random,sh,hyperband,asha,rea,pmfnas",
                      help="comma-separated method names (see search/registry.py); " + _peer_help())
    comp.add_argument("--budget", type=float, default=None,
                      help="simulated seconds per run (default: 30 × the median cost of one full evaluation)")
    comp.add_argument("--seeds", type=int, default=20, help="number of seeds per method (0..N-1)")
    comp.add_argument("--workers", type=int, default=1, help="parallel simulated workers per run")
    comp.add_argument("--processes", type=int, default=None, help="OS processes running runs in parallel (default: 2)")
    comp.add_argument("--out", required=True, help="output directory")
    comp.add_argument("--resume", action="store_true", help="finish only the runs missing from --out")
    comp.add_argument("--quiet", action="store_true", help="no progress bar")
    comp.set_defaults(func=_cmd_compare)

    pe = commands.add_parser("predictor-eval", help="rank quality of the predictors on unseen architectures")
    pe.add_argument("--benchmark", default="nbnlp-wt2", help="benchmark name or table path (default: nbnlp-wt2)")
    pe.add_argument("--fraction", default="0.05,0.1,0.25,0.5", help="fractions of max epochs observed, comma-separated")
    pe.add_argument("--train-archs", type=int, default=50, help="architectures whose complete curves train the predictor")
    pe.add_argument("--seeds", type=int, default=5, help="number of random train/test splits")
    pe.add_argument("--out", required=True, help="output directory")
    pe.set_defaults(func=_cmd_predictor_eval)

    # conflict_handler="resolve": the search's own --resume (below) replaces the trainer's, with a fuller help.
    srch = commands.add_parser("search", help="one search: tabular (--benchmark) or real training (--train)",
                               conflict_handler="resolve")
    srch.add_argument("--method", default="pmfnas", help="a method name of 'pmfnas compare'")
    srch.add_argument("--benchmark", default=None, help="tabular mode: benchmark name or table path")
    srch.add_argument("--budget-hours", type=float, default=None, help="budget in hours (simulated or real)")
    srch.add_argument("--budget", type=float, default=None, help="budget in seconds")
    srch.add_argument("--seed", type=int, default=0)
    srch.add_argument("--workers", type=int, default=1)
    srch.add_argument("--max-jobs", type=int, default=None,
                      help="start no more than this many jobs (a resumed search counts the replayed ones too)")
    srch.add_argument("--record", default=None, help="real mode: save the trained curves to this table (.npz)")
    srch.add_argument("--quiet", action="store_true", help="no line per finished job")
    srch.add_argument("--journal", default=None,
                      help="append every started and finished job to this file (JSON lines) so that an interrupted "
                           "search can be resumed (default in real mode: CHECKPOINT_DIR/journal.jsonl when "
                           "--checkpoint-dir is given); an existing journal is never overwritten")
    srch.add_argument("--no-journal", action="store_true", help="write (and, with --resume, replay) no journal")
    srch.add_argument("--processes", action="store_true",
                      help="real mode: run the --workers as OS processes (one GIL and CUDA context each, so trials "
                           "really run concurrently, also on one GPU) instead of threads; they share --checkpoint-dir "
                           "(default: a temporary directory for the search), so a promoted architecture continues its "
                           "checkpoint on whichever worker it lands")
    srch.add_argument("--devices", default=None,
                      help="with --processes: comma-separated devices assigned to the workers round-robin, e.g. "
                           "cuda:0,cuda:1 (with --device cuda or its default); default: --device for all")
    _add_trainer_arguments(srch, "--train")
    srch.add_argument("--resume", action="store_true",
                      help="continue an interrupted search: replay its --journal with the same method, seed and "
                           "settings (nothing finished is run again; the budget goes on from the journal's last "
                           "time), and in real mode continue the architectures checkpointed in --checkpoint-dir")
    srch.set_defaults(func=_cmd_search, dataset=None)  # no --train means tabular mode

    rec = commands.add_parser("record", help="train architectures for real and save their curves as a table")
    rec.add_argument("archs", nargs="+", help="NAS-Bench-201 architecture strings")
    rec.add_argument("--out", required=True, help="output table (.npz or directory)")
    rec.add_argument("--name", default="recorded", help="the table's name")
    _add_trainer_arguments(rec, "--dataset")
    rec.set_defaults(func=_cmd_record)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, ArchitectureError, BenchmarkFormatError, FileNotFoundError, KeyError, ValueError,
            ImportError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"pmfnas: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
