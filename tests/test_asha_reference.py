"""The bracket bookkeeping makes the same decisions as the reference recorded by
``tests/data/make_asha_reference.py`` (from the implementation before the incremental rewrite)."""
import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.oracle import TabularOracle
from benchmarks.registry import space_for
from harness.runner import run_tabular
from search.asha import ASHA
from search.base import Problem
from search.brackets import Bracket
from search.hyperband import Hyperband
from tests.conftest import synthetic_table

REFERENCE = json.loads((Path(__file__).parent / "data" / "asha_reference.json").read_text())


def _search_id(case):
    return f"{case['method']}-{case['n_archs']}archs-seed{case['seed']}-W{case['workers']}"


@pytest.mark.parametrize("case", REFERENCE["searches"], ids=_search_id)
def test_searches_start_the_reference_jobs(case):
    table = synthetic_table(n_archs=case["n_archs"], n_epochs=case["n_epochs"], seed=case["seed"])
    space = space_for(table)
    oracle = TabularOracle(table, space, np.random.default_rng(case["seed"]))
    problem = Problem(space, oracle.fidelities, oracle.higher_is_better)
    searcher = {"asha": ASHA, "hyperband": Hyperband}[case["method"]](problem, np.random.default_rng(case["seed"] + 100))
    budget = case["evaluations"] * float(np.median(table.full_evaluation_seconds()))
    trace = run_tabular(searcher, oracle, budget, n_workers=case["workers"]).trace
    jobs = [f"{a}@{int(e)}{'+' if r else ''}" for a, e, r in zip(trace["arch"], trace["epochs"], trace["resume"])]
    # The searcher's decisions are the jobs it was told about, in order; the jobs still running at the deadline
    # (cut, never told) are the same set, listed in the order the runner stopped them.
    told = int(trace["counted"].sum())
    assert jobs[:told] == case["jobs"][:told]
    assert sorted(jobs[told:]) == sorted(case["jobs"][told:])


def _walk_id(walk):
    return f"{'async' if walk['asynchronous'] else 'sync'}-eta{walk['eta']}-seed{walk['seed']}"


@pytest.mark.parametrize("walk", REFERENCE["brackets"], ids=_walk_id)
def test_bracket_walks_give_the_reference_answers(walk):
    bracket = Bracket([tuple(r) for r in walk["rungs"]], walk["eta"], asynchronous=walk["asynchronous"])
    for step, record in enumerate(walk["records"]):
        call = record["call"]
        if call[0] == "add":
            bracket.add(call[1])
        elif call[0] == "start":
            bracket.start(call[1], call[2])
        elif call[0] == "report":
            bracket.report(call[1], call[2], float(call[3]))
        else:
            bracket.seal()
        answers = {"quota": [bracket.quota(r) for r in range(bracket.n_rungs)],
                   "promotions": [list(p) for p in bracket.promotions()],
                   "can_add": bracket.can_add(), "finished": bracket.finished}
        expected = {key: record[key] for key in answers}
        assert answers == expected, f"step {step} ({call})"
        top = record["promotions"][0] if record["promotions"] else None
        assert bracket.next_promotion() == (None if top is None else tuple(top))
        for rung in range(1, bracket.n_rungs):
            assert bracket.pending(rung) == [a for r, a in record["promotions"] if r == rung]
