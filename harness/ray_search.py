"""``pmfnas search --train ... --ray ADDRESS``: the command line's real trainers as a :class:`RayPool`."""
from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_ray_search_arguments", "check_ray_search_arguments", "ray_search_pool"]


def add_ray_search_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ray", default=None, metavar="auto|local|ADDRESS",
                        help="real mode: run the --workers as Ray actors on a cluster: auto (the cluster this machine "
                             "joined with 'ray start'), local (a cluster of this machine for this command) or the head "
                             "node's HOST:PORT; needs --checkpoint-dir on storage every node reads")
    parser.add_argument("--gpus-per-trial", type=float, default=None,
                        help="with --ray: GPUs each trial holds (fractions pack trials: 0.125 runs 8 per GPU; "
                             "default 1 with --device cuda, else 0)")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0, help="with --ray: CPUs each trial holds (default 1)")
    parser.add_argument("--max-retries", type=int, default=1,
                        help="with --ray: times a trial whose worker process or node died runs again from its last "
                             "checkpoint before it is recorded failed (default 1)")


def check_ray_search_arguments(args: argparse.Namespace, real: bool) -> None:
    """ValueError for Ray options that cannot work together with the others."""
    if getattr(args, "ray", None) is None:
        given = [flag for flag, value in (("--gpus-per-trial", args.gpus_per_trial),
                                          ("--cpus-per-trial", None if args.cpus_per_trial == 1.0 else 1),
                                          ("--max-retries", None if args.max_retries == 1 else 1)) if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)} place trials on a Ray cluster: give --ray too")
        return
    if not real:
        raise ValueError("--ray runs real training on a cluster: give --train DATASET (a tabular search simulates "
                         "its workers; 'pmfnas compare --ray' spreads tabular runs over a cluster)")
    if getattr(args, "processes", False) or getattr(args, "devices", None):
        raise ValueError("--ray places the workers itself: drop --processes and --devices")
    if getattr(args, "checkpoint_dir", None) is None:
        raise ValueError("--ray needs --checkpoint-dir on storage every node of the cluster reads (a shared file "
                         "system): a promotion continues its checkpoint on whichever node it lands")


def ray_search_pool(args: argparse.Namespace, resume: bool):
    """(the parent's TrainerOracle, a RayPool of ``args.workers`` trainers) for ``pmfnas search --ray``."""
    from benchmarks.training.commands import trainer_from_args
    from benchmarks.training.factory import TrainerFactory
    from harness.ray_pool import RayPool

    shared = argparse.Namespace(**vars(args))
    shared.resume = True  # every worker continues the checkpoints on the shared directory
    oracle = trainer_from_args(shared)  # this process's view: journal replay and --record read it
    if not resume and any(Path(oracle.checkpoint_dir).iterdir()):
        raise ValueError(f"{oracle.checkpoint_dir} already holds checkpoints of these settings, which the workers "
                         "would continue instead of training afresh: pass --resume to continue that search, or give "
                         "an empty --checkpoint-dir")
    on_gpu = oracle.config.device.startswith("cuda")
    gpus = args.gpus_per_trial if args.gpus_per_trial is not None else (1.0 if on_gpu else 0.0)
    if on_gpu and gpus <= 0:
        raise ValueError(f"--device {oracle.config.device} trains on a GPU: give --gpus-per-trial above 0")
    if not on_gpu and gpus > 0:
        raise ValueError(f"--gpus-per-trial {gpus:g} but the trainer trains on {oracle.config.device}: give --device cuda")
    factory = TrainerFactory(oracle.config, str(args.checkpoint_dir), fidelities=oracle.fidelities,
                             num_threads=max(1, int(args.cpus_per_trial)))
    from harness.ray_pool import import_ray

    try:
        pool = RayPool(factory, args.workers, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=gpus,
                       max_retries=args.max_retries, oracle=oracle, address=args.ray)
    except (RuntimeError, import_ray().exceptions.RayError) as error:  # e.g. pmf-nas or the data missing on a node
        raise ValueError(f"the Ray workers could not start: {error}") from None
    return oracle, pool
