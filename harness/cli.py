"""The ``pmfnas`` command line."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import warnings
from typing import Callable, Sequence

from benchmarks.argtypes import positive_int, positive_number
from benchmarks.registry import benchmark_names, load_benchmark
from benchmarks.spaces.base import ArchitectureError
from benchmarks.tabular import BenchmarkFormatError
from harness.preflight import check_device, check_output_dir, check_output_file, require_torch

# Imports are kept lazy on purpose: `pmfnas --help` and `pmfnas benchmark list` must not load pandas,
# scipy, scikit-learn, matplotlib or torch (seconds), only what they use.

CONVERT_SOURCES = ("nb201-pth", "nats-tss", "nb201-final", "nbnlp-wt2")
INTERRUPTED = 130  # the shell's exit status for Ctrl-C


class UsageError(ValueError):
    """A wrong command-line value; the CLI prints it and exits 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors, no abbreviated options, and help texts computed when help is shown."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # --device must never silently mean --devices
        super().__init__(*args, **kwargs)
        self._late_help: list[tuple[argparse.Action, Callable[[], str]]] = []

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def late_help(self, action: argparse.Action, make_help: Callable[[], str]) -> None:
        """Compute ``action``'s help only when this parser's help is printed (it may need a slow import)."""
        self._late_help.append((action, make_help))

    def format_help(self) -> str:
        for action, make_help in self._late_help:
            action.help = make_help()
        return super().format_help()


def _cmd_benchmark_info(args: argparse.Namespace) -> int:
    table = load_benchmark(args.benchmark)
    facts = table.describe()
    if table.metadata.notes:
        facts["notes"] = table.metadata.notes
    if table.arch_features is not None:
        names = table.metadata.extra.get("feature_names", ())
        facts["architecture features"] = ", ".join(names) or f"{table.arch_features.shape[1]} unnamed"
    width = max(len(k) for k in facts)
    for key, value in facts.items():
        if isinstance(value, float):
            value = f"{value:.6g}"
        elif isinstance(value, list):
            value = ", ".join(value)
        print(f"{key.replace('_', ' '):<{width}}  {value}")
    return 0


def _cmd_benchmark_list(args: argparse.Namespace) -> int:
    from benchmarks.registry import benchmark_names, describe_benchmarks

    header = ("name", "architectures × fidelities", "metric", "direction", "ships", "licence")
    described = describe_benchmarks()
    rows = [(d.name, f"{d.architectures:,} × {d.fidelities}", d.metric, d.direction, d.ships, d.licence)
            for d in described]
    # Benchmarks registered by the user or an installed package: listed without loading them.
    known = {d.name for d in described}
    rows += [(name, "?", "?", "?", "registered", "see its package") for name in benchmark_names() if name not in known]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    return 0


def _cmd_benchmark_convert(args: argparse.Namespace) -> int:
    check_output_file(args.out, "--out", directory_allowed=True)
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
    from harness.comparison import ComparisonInterrupted, compare

    methods = args.methods.split(",")
    try:
        runs = compare(args.benchmark, methods, budget=args.budget, budget_evals=args.budget_evals, seeds=args.seeds,
                       workers=args.workers, out=args.out, resume=args.resume, processes=args.processes,
                       progress=not args.quiet, ray=args.ray)
    except ComparisonInterrupted as interrupted:
        print(f"interrupted: {interrupted.kept} of {interrupted.total} runs kept in {args.out}; rerun with --resume",
              file=sys.stderr)
        return INTERRUPTED
    summary = runs.groupby("method", sort=False)["regret"].agg(["mean", "median", "std"])
    print(summary.to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"wrote {args.out}/settings.json, runs.csv, anytime.csv, summary.md, anytime.png, timing.csv")
    return 0


def _cmd_predictor_eval(args: argparse.Namespace) -> int:
    from harness.predictor_eval import evaluate_predictors, write_predictor_eval

    try:
        fractions = [float(f) for f in args.fraction.split(",")]
    except ValueError:
        raise UsageError(f"--fraction {args.fraction!r} must be comma-separated numbers, e.g. 0.05,0.1,0.25,0.5") from None
    check_output_dir(args.out)
    results = evaluate_predictors(args.benchmark, fractions, args.train_archs, args.seeds, max_test=args.max_test,
                                  progress=not args.quiet)
    # The canonical command line that reproduces these results, stated in summary.md.
    command = shlex.join(["pmfnas", "predictor-eval", "--benchmark", args.benchmark, "--fraction", args.fraction,
                          "--train-archs", str(args.train_archs), "--seeds", str(args.seeds)]
                         + (["--max-test", str(args.max_test)] if args.max_test is not None else [])
                         + ["--out", str(args.out)])
    write_predictor_eval(results, args.out, f"{args.benchmark}: {args.train_archs} training architectures",
                         command=command)
    table = results.groupby(["predictor", "fraction"])[["spearman", "kendall", "mae", "coverage90"]].mean()
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {args.out}/results.csv, summary.csv, summary.md, rank_correlation.png")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from harness.summary import write_summary

    # The canonical command line that regenerates the summary, stated in it.
    command = shlex.join(["pmfnas", "report", *map(str, args.dirs)]
                         + [part for label in (args.label or []) for part in ("--label", label)]
                         + ["--out", str(args.out)])
    markdown, figure = write_summary(args.dirs, args.out, command, labels=args.label)
    print(f"wrote {markdown} and {figure}")
    return 0


def _progress_printer(budget: float, metric: str):
    def show(row: dict, best: tuple[str, float] | None, running: int) -> None:
        best_text = f"best {best[1]:.4g} ({best[0]})" if best else "no result yet"
        status = "FAILED" if row["failed"] else f"{metric} {row['value']:.4g}"
        print(f"[{min(row['end'], budget) / budget:6.1%} of budget] {row['arch']} @ {row['epochs']} epochs: {status}; "
              f"{running} running; {best_text}", file=sys.stderr, flush=True)
    return show


def _check_real_training(args: argparse.Namespace, what: str) -> None:
    """torch installed and the asked device(s) present, before anything is loaded or trained."""
    require_torch(what)
    check_device(args.device)
    import torch

    from benchmarks.training.paths import resolve_trainer

    resolve_trainer(args.trainer, args.device or ("cuda" if torch.cuda.is_available() else "cpu"))  # refuses what cannot run
    if getattr(args, "processes", False):  # --devices without --processes is refused on its own below
        for device in str(args.devices or "").split(","):
            if device.strip():
                check_device(device.strip())


def _check_search_arguments(args: argparse.Namespace) -> None:
    """Every check `pmfnas search` can make before it loads a benchmark or trains anything."""
    from pathlib import Path

    if (args.benchmark is None) == (args.dataset is None):
        raise UsageError("give exactly one of --benchmark B (tabular mode) or --train DATASET (real training)")
    if args.budget_hours is None and args.budget is None and args.budget_evals is None:
        raise UsageError("give the budget: --budget-hours H, --budget SECONDS or --budget-evals N (full evaluations)")
    real = args.dataset is not None
    if real:
        _check_real_training(args, "real training")
        if args.budget_evals is not None:
            raise UsageError("--budget-evals counts full evaluations of a tabular benchmark, whose cost is known only "
                             "from its table: in real mode give --budget-hours or --budget")
    elif args.record is not None:
        raise UsageError("--record saves the curves that real training measured (--train); a tabular search "
                         "replays a table that already holds them")
    journal = args.journal
    if journal is None and real and getattr(args, "checkpoint_dir", None) is not None:
        journal = str(Path(args.checkpoint_dir) / "journal.jsonl")
    if args.resume and not args.no_journal and journal is not None and not Path(journal).is_file():
        raise UsageError(f"--resume: there is no journal at {journal} to continue; check the path, or start the "
                         "search without --resume")
    if journal is not None and not args.no_journal:
        check_output_file(journal, "--journal")
    if args.record is not None:
        check_output_file(args.record, "--record", directory_allowed=True)
        from benchmarks.tabular import check_table_destination

        check_table_destination(args.record)  # refused now, not after the search has trained for hours


def _cmd_search(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.journal import journal_is_empty, journaled
    from harness.seeding import search_streams
    from harness.runner import Runner
    from harness.workers import SimulatedPool
    from search.base import Problem
    from search.registry import make_searcher

    _check_search_arguments(args)
    budget = args.budget if args.budget is not None else None if args.budget_hours is None else args.budget_hours * 3600.0
    real = args.dataset is not None
    resume = bool(getattr(args, "resume", False))
    checkpoint_dir = getattr(args, "checkpoint_dir", None)
    journal_path = None
    if not args.no_journal:
        if args.journal is not None:
            journal_path = Path(args.journal)
        elif real and checkpoint_dir is not None:
            journal_path = Path(checkpoint_dir) / "journal.jsonl"
    if resume and real and checkpoint_dir is None:
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
    from harness.ray_search import check_ray_search_arguments

    check_ray_search_arguments(args, real)
    cleanup = []  # what lives only for this search (a temporary checkpoint directory)
    if args.benchmark is not None:
        from benchmarks.oracle import TabularOracle
        from benchmarks.registry import load_benchmark, space_for
        from benchmarks.tabular import check_searchable

        from harness.comparison import resolve_budget

        table = load_benchmark(args.benchmark)
        check_searchable(table)
        budget = resolve_budget(table, budget, args.budget_evals)
        oracle_rng, rng = search_streams(args.seed)
        oracle = TabularOracle(table, space_for(table), oracle_rng)
        pool = SimulatedPool(oracle, args.workers)
        meta = {"method": args.method, "seed": args.seed, "workers": args.workers, "benchmark": args.benchmark,
                "table": table.content_hash()}
    else:
        from benchmarks.training.commands import trainer_from_args
        from harness.workers import ThreadedPool

        if getattr(args, "ray", None) is not None:
            from harness.ray_search import ray_search_pool

            oracle, pool = ray_search_pool(args, resume)
        elif not processes:
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
    try:  # before the journal is started: a refused method must not leave a journal that blocks the rerun
        searcher = make_searcher(args.method, Problem(oracle.space, oracle.fidelities, oracle.higher_is_better), rng)
    except BaseException:
        if hasattr(pool, "shutdown"):
            pool.shutdown()
        raise
    if journal_path is not None:
        if real and checkpoint_dir is None:
            print(f"note: without --checkpoint-dir the trained networks are not kept, so the journal {journal_path} "
                  "cannot be resumed", file=sys.stderr)
        if resume and journal_is_empty(journal_path):  # it exists (checked above) but holds no job yet
            print(f"the journal {journal_path} records no job yet: the search starts from the beginning",
                  file=sys.stderr)
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
            oracle.to_table(f"search-{args.method}-seed{args.seed}", whole_space=True).save(args.record)
            print(f"recorded the trained curves to {args.record}")
    finally:
        for holder in cleanup:
            holder.cleanup()
    print(f"chosen: {result.chosen_arch} ({oracle.metric} {result.chosen_value:.6g}); "
          f"{result.n_evaluations} evaluations, {result.epochs_paid} epochs, {result.time_used:.1f} s of "
          f"{budget:.1f} s; stopped because: {result.stopped_because}")
    return 0


def _check_record_arguments(args: argparse.Namespace) -> None:
    """Everything `pmfnas record` can check before the first epoch: torch, device, every architecture, --out."""
    _check_real_training(args, "recording (real training)")
    if args.space == "nb101":
        from benchmarks.spaces.nb101 import NB101Space as Space
    else:
        from benchmarks.spaces.nb201 import NB201Space as Space
    space = Space()
    for position, arch in enumerate(args.archs, start=1):
        try:
            space.parse(arch)
        except ArchitectureError as error:
            raise UsageError(f"architecture {position} of {len(args.archs)} ({arch!r}) is not a valid "
                             f"{args.space} architecture: {error}") from None
    check_output_file(args.out, "--out", directory_allowed=True)


def _cmd_record(args: argparse.Namespace) -> int:
    _check_record_arguments(args)
    from benchmarks.training.commands import record, trainer_from_args

    table = record(trainer_from_args(args), args.archs, args.out, name=args.name)
    print(f"wrote {args.out}: {len(table)} architectures × {table.epochs.size} fidelities")
    return 0


def _add_trainer_arguments(parser: argparse.ArgumentParser, dataset_flag: str) -> None:
    # These parse without torch, so that a missing torch is reported as such when training is asked for.
    from benchmarks.training.commands import add_trainer_arguments

    add_trainer_arguments(parser, dataset_flag=dataset_flag)


def _add_build_commands(bench_cmds) -> None:
    """``benchmark build`` and ``benchmark throughput``: their options parse without torch; running them needs it."""
    from benchmarks.training.build import add_build_arguments, build_command
    from benchmarks.training.throughput import add_throughput_arguments, throughput_command
    from benchmarks.training.verify import add_verify_arguments, verify_command

    def needs_torch(command):
        def run(args: argparse.Namespace) -> int:
            require_torch("building a benchmark (real training)")
            check_device(getattr(args, "device", None))
            result = command(args)
            return result if isinstance(result, int) else 0
        return run

    build = bench_cmds.add_parser("build", help="train NB201 cells on Fashion-MNIST into a tabular benchmark (GPU)")
    add_build_arguments(build)
    build.set_defaults(func=needs_torch(build_command))
    throughput = bench_cmds.add_parser("throughput", help="arch-epochs/s and TFLOP/s of every trainer path "
                                                                  "(eager, processes, graph, compiled, batched)")
    add_throughput_arguments(throughput)
    throughput.set_defaults(func=needs_torch(throughput_command))
    verify = bench_cmds.add_parser("verify", help="retrain cells of a built benchmark from scratch and check its curves")
    add_verify_arguments(verify)
    verify.set_defaults(func=needs_torch(verify_command))


def _peer_help() -> str:
    from search.registry import installed_peers, peer_class
    peers = installed_peers()
    if not peers:
        return "no peer library installed (pip install '.[peers]')"
    slow = [p for p in peers if peer_class(p).slow]
    return (f"installed peer libraries: {', '.join(peers)}; 'peers' names those not slow"
            + (f" (slow, run only when named: {', '.join(slow)})" if slow else ""))


def build_parser() -> argparse.ArgumentParser:
    from harness.version import package_version

    parser = Parser(prog="pmfnas", description="Progressive multi-fidelity NAS harness")
    parser.add_argument("--version", action="version", version=f"pmfnas {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    bench = commands.add_parser("benchmark", help="inspect and convert tabular benchmarks")
    bench_cmds = bench.add_subparsers(dest="benchmark_command", required=True)
    info = bench_cmds.add_parser("info", help="facts about a benchmark")
    info.add_argument("benchmark", help="a built-in name (see 'pmfnas benchmark list') or a table path")
    info.set_defaults(func=_cmd_benchmark_info)
    listing = bench_cmds.add_parser("list", help="every shipped and convertible benchmark: size, metric, licence")
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
    methods = comp.add_argument("--methods", default="random,sh,hyperband,asha,rea,pmfnas",
                                help="comma-separated method names")
    comp.late_help(methods, lambda: _methods_help() + "; " + _peer_help())
    comp_budget = comp.add_mutually_exclusive_group()
    comp_budget.add_argument("--budget", type=positive_number, default=None,
                             help="simulated seconds per run (default: 30 full evaluations, see --budget-evals)")
    comp_budget.add_argument("--budget-evals", type=positive_number, default=None, metavar="N",
                             help="budget per run as N × the median cost of one full evaluation of the benchmark")
    comp.add_argument("--seeds", type=positive_int, default=20, help="number of seeds per method (0..N-1)")
    comp.add_argument("--workers", type=positive_int, default=1, help="parallel simulated workers per run")
    comp.add_argument("--processes", type=positive_int, default=None,
                      help="OS processes running runs in parallel (default: 2)")
    comp.add_argument("--out", required=True, help="output directory (its settings.json records what made it)")
    comp.add_argument("--resume", action="store_true",
                      help="finish only the runs missing from --out; refused unless every setting (benchmark and its "
                           "content, methods, budget, workers, seeds, pmfnas version) is the one in settings.json")
    comp.add_argument("--quiet", action="store_true", help="no progress bar")
    comp.add_argument("--ray", default=None, metavar="auto|local|ADDRESS",
                      help="run the (method, seed) runs as tasks on a Ray cluster (auto: the one this machine "
                           "joined; local: this machine; or the head node's HOST:PORT) instead of local processes")
    comp.set_defaults(func=_cmd_compare)

    pe = commands.add_parser("predictor-eval", help="rank quality of the predictors on unseen architectures")
    pe.add_argument("--benchmark", default="nbnlp-wt2", help="benchmark name or table path (default: nbnlp-wt2)")
    pe.add_argument("--fraction", default="0.05,0.1,0.25,0.5", help="fractions of max epochs observed, comma-separated")
    pe.add_argument("--train-archs", type=positive_int, default=50,
                    help="architectures whose complete curves train the predictor")
    pe.add_argument("--seeds", type=positive_int, default=5, help="number of random train/test splits")
    pe.add_argument("--max-test", type=positive_int, default=None,
                    help="test on a seeded random sample of at most this many architectures per split (default: all)")
    pe.add_argument("--out", required=True, help="output directory")
    pe.add_argument("--quiet", action="store_true", help="no progress bar")
    pe.set_defaults(func=_cmd_predictor_eval)

    rep = commands.add_parser("report", help="one SUMMARY.md and figure from several 'pmfnas compare' folders")
    rep.add_argument("dirs", nargs="+", help="output folders of 'pmfnas compare'")
    rep.add_argument("--label", action="append", default=None,
                     help="benchmark name of each folder, in order (repeat once per folder); default: the folder's "
                          "settings.json, else the first line of its summary.md")
    rep.add_argument("--out", default="results/SUMMARY.md",
                     help="the Markdown summary to write; the figure goes beside it as .png (default: results/SUMMARY.md)")
    rep.set_defaults(func=_cmd_report)

    # conflict_handler="resolve": the search's own --resume (below) replaces the trainer's, with a fuller help.
    srch = commands.add_parser("search", help="one search: tabular (--benchmark) or real training (--train)",
                               conflict_handler="resolve")
    method = srch.add_argument("--method", default="pmfnas", help="a method name")
    srch.late_help(method, lambda: _methods_help("a method name"))
    srch.add_argument("--benchmark", default=None, help="tabular mode: benchmark name or table path")
    srch_budget = srch.add_mutually_exclusive_group()
    srch_budget.add_argument("--budget-hours", type=positive_number, default=None,
                             help="budget in hours (simulated or real)")
    srch_budget.add_argument("--budget", type=positive_number, default=None, help="budget in seconds")
    srch_budget.add_argument("--budget-evals", type=positive_number, default=None, metavar="N",
                             help="tabular mode: budget as N × the median cost of one full evaluation of the benchmark")
    srch.add_argument("--seed", type=int, default=0)
    srch.add_argument("--workers", type=positive_int, default=1)
    srch.add_argument("--max-jobs", type=positive_int, default=None,
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
    from harness.ray_search import add_ray_search_arguments

    add_ray_search_arguments(srch)
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


def _methods_help(lead: str = "comma-separated method names") -> str:
    from search.registry import searcher_names

    return f"{lead}: {', '.join(searcher_names())}"


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"pmfnas: warning: {message}", file=sys.stderr, flush=True)


def _error_message(error: BaseException) -> str:
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    if isinstance(error, OSError) and error.strerror:
        names = " -> ".join(str(n) for n in (error.filename, error.filename2) if n is not None)
        return f"{error.strerror}: {names}" if names else error.strerror
    return str(error)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``pmfnas`` command. User errors print one line ``pmfnas: error: ...`` and return 2; Ctrl-C returns 130."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a wrong option (already reported): a status, as below
        return exit_.code if isinstance(exit_.code, int) else 2
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning  # one plain line on stderr, not the file and line of the warning
        try:
            return args.func(args)
        except BrokenPipeError:
            # The reader went away (`pmfnas benchmark info X | head`): not an error of ours. Point stdout at
            # devnull so the interpreter's final flush does not raise again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except (UsageError, ArchitectureError, BenchmarkFormatError, KeyError, ValueError, ImportError,
                OSError) as error:
            print(f"pmfnas: error: {_error_message(error)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
