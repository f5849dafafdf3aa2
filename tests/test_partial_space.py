"""A table that records only part of its space: searches stay inside the recorded cells.

The searchers are driven here by a small loop that plays the runner (ask, look the curve up in the
table, tell) with three jobs in flight, so the test depends only on the ask/tell interface.
"""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.registry import load_benchmark, space_for
from benchmarks.spaces.base import ArchitectureError
from benchmarks.spaces.nb201 import NB201Space
from benchmarks.spaces.recorded import RecordedSubspace
from benchmarks.tabular import TabularBenchmark
from search.base import Observation, Problem
from search.registry import SEARCHERS, make_searcher

NB201 = NB201Space()


def subset_table(n: int = 20, canonical_keys: bool = False) -> TabularBenchmark:
    """The first ``n`` cells of the shipped NB201 sample, with their real curves and costs."""
    sample = load_benchmark("nb201-c10-sample")
    return TabularBenchmark.from_arrays(
        sample.arch_ids[:n], sample.epochs, sample.curves["valid"][:n], sample.seconds[:n],
        metric=sample.metadata.metric, higher_is_better=True, name=f"nb201-first-{n}", space="nb201",
        canonical_keys=canonical_keys)


def spy_on_mutations(space: RecordedSubspace) -> list[tuple[str, str]]:
    """Record every (parent, child) the space's mutate returns."""
    calls: list[tuple[str, str]] = []
    mutate = space.mutate

    def recording(arch, rng):
        child = mutate(arch, rng)
        calls.append((arch, child))
        return child

    space.mutate = recording
    return calls


def drive(searcher, table: TabularBenchmark, max_jobs: int = 120, workers: int = 3) -> list:
    jobs, in_flight = [], []
    while len(jobs) < max_jobs:
        job = searcher.ask() if len(in_flight) < workers else None
        if job is not None:
            jobs.append(job)
            in_flight.append(job)
            continue
        if not in_flight:
            break
        done = in_flight.pop(0)
        upto = table.fidelity_index(done.epochs) + 1
        values = np.asarray(table.curves["valid"][table.row(done.arch), 0, :upto], dtype=np.float64)
        searcher.tell(done, Observation(table.epochs[:upto], values))
    return jobs


@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_every_searcher_proposes_only_recorded_cells(name):
    table = subset_table(20)
    space = space_for(table)
    assert isinstance(space, RecordedSubspace)
    mutations = spy_on_mutations(space)
    problem = Problem(space, tuple(int(e) for e in table.epochs), True)
    jobs = drive(make_searcher(name, problem, np.random.default_rng(5)), table)
    recorded = set(table.arch_ids.tolist())
    assert len(jobs) >= 20, f"{name} stopped after {len(jobs)} jobs"
    assert {job.arch for job in jobs} <= recorded
    assert len({job.arch for job in jobs}) >= 15  # it explored the recorded cells, not one corner of them
    assert all(child in recorded and child != parent for parent, child in mutations)
    # PMF-NAS's regional proposals come from space.neighbours (checked by the proposals above), not mutate.
    if name == "rea":
        assert mutations, f"{name} never mutated, so this test did not check its mutations"


def test_sampling_draws_recorded_cells_uniformly():
    table = subset_table(20)
    space = space_for(table)
    draws = [space.sample(np.random.default_rng(seed)) for seed in range(4000)]
    counts = np.array([draws.count(a) for a in table.arch_ids])
    assert counts.sum() == 4000 and counts.min() > 140 and counts.max() < 260  # 200 expected each


def edges_differing(a: str, b: str) -> int:
    return sum(x != y for x, y in zip(NB201.ops(a), NB201.ops(b)))


def nearest_recorded(target: str, recorded: set[str], exclude: str) -> set[str]:
    distance = {a: edges_differing(target, a) for a in recorded - {exclude}}
    return {a for a, d in distance.items() if d == min(distance.values())}


def test_neighbours_are_recorded_one_edge_changes_or_the_recorded_cells_nearest_to_one():
    table = load_benchmark("nb201-c10-sample")
    space = space_for(table)
    recorded = set(table.arch_ids.tolist())
    with_one_edge = 0
    for arch in table.arch_ids.tolist()[:60]:
        steps = NB201.neighbours(arch)
        expected = set().union(*(nearest_recorded(step, recorded, arch) for step in steps))
        nearest = space.neighbours(arch)
        assert len(nearest) == len(set(nearest)) and set(nearest) == expected and arch not in nearest
        one_edge = recorded.intersection(steps)
        with_one_edge += bool(one_edge)
        assert one_edge <= set(nearest)
    assert 0 < with_one_edge < 60  # cells with and without a recorded one-edge change were both checked


@pytest.mark.parametrize("row", [0, 7, 42])
def test_mutate_returns_exactly_the_neighbours(row):
    space = space_for(load_benchmark("nb201-c10-sample"))
    arch = space.archs[row]
    children = {space.mutate(arch, np.random.default_rng(seed)) for seed in range(3000)}
    assert children == set(space.neighbours(arch)) and len(children) >= 5


def test_an_unrecorded_cell_mutates_to_the_recorded_cells_nearest_to_its_one_edge_changes():
    table = subset_table(20)
    space = space_for(table)
    recorded = set(table.arch_ids.tolist())
    outside = next(a for a in NB201.all_architectures() if a not in space)
    expected = set().union(*(nearest_recorded(step, recorded, outside) for step in NB201.neighbours(outside)))
    assert set(space.neighbours(outside)) == expected
    assert {space.mutate(outside, np.random.default_rng(seed)) for seed in range(200)} <= expected


def test_the_parent_gives_keys_encodings_and_equivalence():
    table = subset_table(20)
    space = space_for(table)
    arch = table.arch_ids[3]
    assert space.parse("  " + arch + " ") == arch
    np.testing.assert_array_equal(space.encode(arch), NB201.encode(arch))
    assert space.canonical(arch) == NB201.canonical(arch) and space.table_key(arch) == arch
    assert "not-a-cell" not in space
    with pytest.raises(ArchitectureError):
        space.parse("|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|")


def test_space_for_restricts_exactly_the_partial_tables():
    assert isinstance(space_for(load_benchmark("nb201-final:cifar10-valid")), NB201Space)
    partial = space_for(subset_table(20))
    assert isinstance(partial, RecordedSubspace) and len(partial) == 20
    # One row per class: every member of a recorded class is recorded, nothing else is.
    representatives = NB201.unique_architectures()[:30]
    classes = TabularBenchmark.from_arrays(representatives, [1], np.ones((30, 1)), np.ones((30, 1)), metric="m",
                                           higher_is_better=True, space="nb201", canonical_keys=True)
    space = space_for(classes)
    assert isinstance(space, RecordedSubspace) and len(space) == 30
    members = [a for a in NB201.all_architectures() if NB201.canonical(a) in set(representatives)]
    assert len(members) > 30 and all(a in space for a in members)
    assert sum(a in space for a in NB201.all_architectures()) == len(members)
    everything = TabularBenchmark.from_arrays(NB201.unique_architectures(), [1], np.ones((6466, 1)),
                                              np.ones((6466, 1)), metric="m", higher_is_better=True, space="nb201",
                                              canonical_keys=True)
    assert isinstance(space_for(everything), NB201Space)


def test_a_partial_nb101_table_needs_the_cells_behind_its_hashes():
    table = TabularBenchmark.from_arrays(["a" * 32, "b" * 32], [1], np.ones((2, 1)), np.ones((2, 1)), metric="m",
                                         higher_is_better=True, name="two-hashes", space="nb101")
    with pytest.raises(ValueError, match="records 2 of 423,624 NAS-Bench-101 cells by graph hash only"):
        space_for(table)


def test_a_restricted_space_needs_two_distinct_cells():
    arch = NB201.from_index(0)
    with pytest.raises(ValueError, match="at least 2 recorded architectures"):
        RecordedSubspace(NB201, [arch])
    twin = next(a for a in NB201.all_architectures() if a != arch and NB201.canonical(a) == NB201.canonical(arch))
    with pytest.raises(ValueError, match="distinct table keys"):
        RecordedSubspace(NB201, [arch, twin], canonical_keys=True)
