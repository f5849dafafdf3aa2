"""Regenerate ``asha_reference.json``: the decisions of the bracket bookkeeping as it stood before the
incremental rewrite (commit 38a8511), kept so that the rewrite is checked against them.

Run from the repository root: ``PYTHONPATH=$PWD python tests/data/make_asha_reference.py``. Two kinds of
reference, both replayed by ``tests/test_asha_reference.py``:

* ``searches``: the job sequence (arch, epochs, resume) of whole ASHA (and Hyperband) searches on
  synthetic tables, for several seeds and worker counts;
* ``brackets``: a seeded random walk of ``add``/``start``/``report``/``seal`` calls on single brackets
  (asynchronous and synchronous, with tied, failed and NaN scores), with every rung's ``quota``, the
  ``promotions()`` (every rung's ``pending``), ``can_add`` and ``finished`` recorded after every call.

Only regenerate it from code whose decisions are known to be right: the tests compare against it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.oracle import TabularOracle  # noqa: E402
from benchmarks.registry import space_for  # noqa: E402
from harness.runner import run_tabular  # noqa: E402
from search.asha import ASHA  # noqa: E402
from search.base import Problem  # noqa: E402
from search.brackets import Bracket  # noqa: E402
from search.hyperband import Hyperband  # noqa: E402
from tests.conftest import synthetic_table  # noqa: E402

OUT = Path(__file__).with_name("asha_reference.json")

#: (table size, epochs, seeds, workers, budget in full evaluations) of the searches replayed.
SEARCHES = [("asha", 40, 27, (0, 1), (1, 4), 30), ("asha", 400, 27, (0, 1, 2), (1, 8), 40),
            ("hyperband", 400, 27, (0,), (1, 8), 40)]

#: Random walks on single brackets: (rungs, eta, asynchronous, seed, steps).
WALKS = [
    ([(None, 1), (None, 3), (None, 9), (None, 27)], 3, True, 0, 400),
    ([(None, 1), (None, 2), (None, 4)], 2, True, 1, 400),
    ([(None, 1), (6, 3), (2, 9)], 3, True, 2, 300),
    ([(27, 1), (9, 3), (3, 9), (1, 27)], 3, False, 3, 200),
    ([(20, 1), (10, 2), (5, 4)], 2, False, 4, 200),
    *[([(27, 1), (9, 3), (3, 9), (1, 27)], 3, False, seed, 200) for seed in (5, 6, 7, 8)],
]


def search_sequence(method: str, n_archs: int, n_epochs: int, seed: int, workers: int, evaluations: int) -> list[str]:
    """Every job the search started, as ``"arch@epochs"`` with a trailing ``+`` for a resume."""
    table = synthetic_table(n_archs=n_archs, n_epochs=n_epochs, seed=seed)
    space = space_for(table)
    oracle = TabularOracle(table, space, np.random.default_rng(seed))
    problem = Problem(space, oracle.fidelities, oracle.higher_is_better)
    searcher_class = {"asha": ASHA, "hyperband": Hyperband}[method]
    searcher = searcher_class(problem, np.random.default_rng(seed + 100))
    budget = evaluations * float(np.median(table.full_evaluation_seconds()))
    trace = run_tabular(searcher, oracle, budget, n_workers=workers).trace
    return [f"{arch}@{int(epochs)}{'+' if resume else ''}" for arch, epochs, resume in
            zip(trace["arch"], trace["epochs"], trace["resume"])]


def snapshot(bracket: Bracket) -> dict:
    # promotions() is every rung's pending(), highest rung first, so it records them all.
    return {"quota": [bracket.quota(r) for r in range(bracket.n_rungs)],
            "promotions": [list(p) for p in bracket.promotions()],
            "can_add": bracket.can_add(), "finished": bracket.finished}


def walk(rungs, eta: int, asynchronous: bool, seed: int, steps: int) -> list:
    """Random calls on one bracket; each record is the call made and the bracket's answers after it."""
    rng = np.random.default_rng(seed)
    bracket = Bracket(rungs, eta, asynchronous=asynchronous)
    running: list[tuple[int, str]] = []
    records = []
    for step in range(steps):
        promotion = bracket.next_promotion()
        choice = rng.random()
        if promotion is not None and (choice < 0.4 or not (bracket.can_add() or running)):
            # Any pending promotion, not only the best, so that start() out of order is covered too.
            rung = int(promotion[0])
            options = bracket.pending(rung)
            arch = options[int(rng.integers(len(options)))]
            bracket.start(rung, arch)
            running.append((rung, arch))
            call = ["start", rung, arch]
        elif bracket.can_add() and (choice < 0.75 or not running):
            if not asynchronous and rng.random() < 0.03:
                bracket.seal()
                call = ["seal"]
            else:
                arch = f"x{step}"
                bracket.add(arch)
                running.append((0, arch))
                call = ["add", arch]
        elif running:
            rung, arch = running.pop(int(rng.integers(len(running))))
            kind = rng.random()
            # Few distinct scores, so ties are common; some failures (-inf) and NaNs.
            score = float("-inf") if kind < 0.07 else float("nan") if kind < 0.1 else float(rng.integers(0, 12))
            bracket.report(rung, arch, score)
            call = ["report", rung, arch, "nan" if score != score else score]
        else:
            break
        records.append({"call": call, **snapshot(bracket)})
    return records


def main() -> None:
    searches = []
    for method, n_archs, n_epochs, seeds, worker_counts, evaluations in SEARCHES:
        for seed in seeds:
            for workers in worker_counts:
                searches.append({"method": method, "n_archs": n_archs, "n_epochs": n_epochs, "seed": seed,
                                     "workers": workers, "evaluations": evaluations,
                                     "jobs": search_sequence(method, n_archs, n_epochs, seed, workers, evaluations)})
    walks = [{"rungs": [list(r) for r in rungs], "eta": eta, "asynchronous": asynchronous, "seed": seed,
              "steps": steps, "records": walk(rungs, eta, asynchronous, seed, steps)}
             for rungs, eta, asynchronous, seed, steps in WALKS]
    OUT.write_text(json.dumps({"searches": searches, "brackets": walks}, separators=(",", ":")) + "\n")
    print(f"wrote {OUT}: {len(searches)} searches, {sum(len(w['records']) for w in walks)} bracket steps")


if __name__ == "__main__":
    main()
