"""``pmfnas compare --ray``: the (method, seed) runs of a comparison as Ray tasks spread over a cluster.

Each run is :func:`harness.comparison.run_one` in a Ray task of one CPU. Runs are independent and seeded, so
where they run changes nothing in what they return: ``runs.csv`` is byte-identical to a local comparison with
the same arguments. Every node reads the benchmark by the name or path it was given (a built-in name, or a
table on storage every node can read).
"""
from __future__ import annotations

from typing import Callable, Sequence

from harness.ray_pool import connect, disconnect, import_ray

__all__ = ["run_on_ray"]


def run_on_ray(specs: Sequence, keep: Callable[[object, dict], None], address: str) -> None:
    """Run ``run_one(spec)`` for every spec as a Ray task; call ``keep(spec, outcome)`` as each finishes.

    ``address`` as for :func:`harness.ray_pool.connect`; a cluster joined here is left afterwards. A run that
    raises raises here (as the local comparison does), after the runs already kept.
    """
    from harness.comparison import run_one

    if not specs:
        return
    ray = import_ray()
    joined = connect(address)
    try:
        task = ray.remote(num_cpus=1)(run_one)
        waiting = {task.remote(spec): spec for spec in specs}
        try:
            while waiting:
                ready, _ = ray.wait(list(waiting), num_returns=1)
                for ref in ready:
                    keep(waiting.pop(ref), ray.get(ref))
        finally:
            for ref in waiting:  # an error or Ctrl-C: what has not run yet never will
                ray.cancel(ref)
    finally:
        if joined:
            disconnect()
