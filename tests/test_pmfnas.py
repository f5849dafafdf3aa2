import numpy as np
import pytest

from benchmarks.oracle import TabularOracle
from benchmarks.spaces.finite import FiniteSpace
from benchmarks.tabular import TabularBenchmark
from harness.runner import run_tabular
from search.base import Problem
from search.pmfnas import PMFNAS, PMFNASConfig, rung_epochs
from search.registry import make_searcher
from tests.conftest import synthetic_table


def setup(n_archs=200, n_epochs=54, seed=0, table=None, **config):
    table = table or synthetic_table(n_archs=n_archs, n_epochs=n_epochs, seed=seed)
    space = FiniteSpace("synthetic", table.arch_ids.tolist(), table.arch_features)
    oracle = TabularOracle(table, space, np.random.default_rng(seed))
    problem = Problem(space, oracle.fidelities, oracle.higher_is_better)
    return table, oracle, PMFNAS(problem, np.random.default_rng(seed + 100), PMFNASConfig(**config))


def budget_of(table, full_evaluations):
    return float(np.median(table.full_evaluation_seconds()) * full_evaluations)


def test_rungs_are_fractions_of_max_epochs_rounded_up_to_recorded_fidelities():
    space = FiniteSpace("two", ["a", "b"])
    assert rung_epochs(Problem(space, tuple(range(1, 51)), True), 1 / 27, 3) == (2, 6, 17, 50)
    assert rung_epochs(Problem(space, tuple(range(1, 109)), True), 1 / 27, 3) == (4, 12, 36, 108)
    assert rung_epochs(Problem(space, tuple(range(1, 201)), True), 1 / 27, 3) == (8, 23, 67, 200)
    # A sparsely recorded table: rungs that map to the same recorded epoch are merged.
    assert rung_epochs(Problem(space, (20, 60, 200), True), 1 / 27, 3) == (20, 60, 200)
    with pytest.raises(ValueError, match="low_fidelity=1.5 must lie strictly between 0 and 1"):
        PMFNASConfig(low_fidelity=1.5)
    with pytest.raises(ValueError, match="eta=1 must be an integer >= 2"):
        PMFNASConfig(eta=1)
    with pytest.raises(ValueError, match="candidate_pool=0 must be at least 1"):
        PMFNASConfig(candidate_pool=0)
    # Refused by the config itself, not later by the predictor it configures.
    with pytest.raises(ValueError, match="min_curves=1 must be at least 2"):
        PMFNASConfig(min_curves=1)
    with pytest.raises(ValueError, match=r"fidelities \(1.5, 2.9, 27\) must be whole numbers of epochs"):
        Problem(space, (1.5, 2.9, 27), True)
    assert Problem(space, (np.int64(3), 9.0), True).fidelities == (3, 9)


def test_stages_promote_by_resuming_and_pay_only_the_extra_epochs():
    table, oracle, searcher = setup()
    result = run_tabular(searcher, oracle, budget=budget_of(table, 15))
    trace = result.trace
    rungs = searcher.rungs
    assert rungs == (2, 6, 18, 54)
    fresh, resumed = trace[~trace["resume"]], trace[trace["resume"]]
    assert (fresh["epochs"] == rungs[0]).all() and fresh["arch"].is_unique
    assert set(resumed["epochs"]) == set(rungs[1:])
    for _, row in resumed.iterrows():  # a promotion continues from the rung below: only the new epochs are paid
        below = rungs[rungs.index(row["epochs"]) - 1]
        assert row["paid_epochs"] == row["epochs"] - below
    stages = {h["stage"] for h in searcher.history}
    assert {"global", "regional", "fine"} <= stages
    # The first job to max epochs is promoted into it (stage 3) once rung 2 holds eta = 3 candidates.
    first_full = trace.index[trace["epochs"] == 54][0]
    assert trace.loc[first_full, "resume"] and (trace.loc[:first_full, "epochs"] == 18).sum() == 3


def test_promotions_follow_the_top_third_of_each_rung_until_the_predictor_has_earned_trust():
    table, oracle, searcher = setup(seed=2)
    result = run_tabular(searcher, oracle, budget=budget_of(table, 6))
    assert not any(h["predictor_trusted"] for h in searcher.history)
    values = {}
    for _, row in result.trace.iterrows():
        if row["resume"]:
            below = searcher.rungs[searcher.rungs.index(row["epochs"]) - 1]
            ranked = sorted(values[below], key=lambda a: -values[below][a])
            assert row["arch"] in ranked[: len(ranked) // 3], f"{row['arch']} promoted outside the top third"
        values.setdefault(row["epochs"], {})[row["arch"]] = row["value"]


def test_the_best_architecture_is_never_stopped_for_good():
    # Crossing curves (rates differ eightfold), a 60-architecture space and 40 full evaluations: the space
    # runs out, the allocator keeps promoting by rank, and the known best (a slow starter in some seeds)
    # always reaches max epochs.
    for seed in range(6):
        table, oracle, searcher = setup(n_archs=60, seed=seed)
        best = table.arch_ids[int(np.argmax(table.curves["valid"][:, 0, -1]))]
        result = run_tabular(searcher, oracle, budget=budget_of(table, 40))
        assert result.trace[result.trace["arch"] == best]["epochs"].max() == 54
        assert result.chosen_arch == best
    # Plain ASHA's rule (the no-allocator ablation) ends the search when the space is used up instead.
    table, oracle, searcher = setup(n_archs=60, seed=0, use_allocator=False)
    assert run_tabular(searcher, oracle, budget=budget_of(table, 40)).stopped_because == "searcher finished"


def duplicate_encoding_table(featureless: bool = False):
    """80 architectures with 8 distinct encodings between them, or none at all."""
    base = synthetic_table(n_archs=80, n_epochs=27, seed=9)
    features = None if featureless else np.repeat(np.arange(8.0)[:, None], 10, axis=0) * np.ones((1, 2))
    return TabularBenchmark.from_arrays(base.arch_ids.tolist(), base.epochs, base.curves["valid"], base.seconds,
                                        metric="accuracy", higher_is_better=True, arch_features=features)


@pytest.mark.parametrize("featureless", [False, True])
def test_never_proposes_an_architecture_twice_with_four_workers(featureless):
    table = duplicate_encoding_table(featureless)
    _, oracle, searcher = setup(table=table, seed=1)
    result = run_tabular(searcher, oracle, budget=budget_of(table, 40), n_workers=4)
    fresh = result.trace[~result.trace["resume"]]
    assert fresh["arch"].is_unique
    assert len(fresh) >= 60  # it keeps exploring: the space is 80 architectures


def test_space_filling_proposals_spread_over_distinct_encodings():
    # 8 proposals drawn at random from 8 groups of 10 cover 5.3 groups on average; farthest-point picks more.
    covered = []
    for seed in range(10):
        table = duplicate_encoding_table()
        _, oracle, searcher = setup(table=table, seed=seed)
        trace = run_tabular(searcher, oracle, budget=budget_of(table, 3)).trace
        covered.append(trace[~trace["resume"]]["arch"].iloc[:8].map(lambda a: int(a[1:]) // 10).nunique())
    assert np.mean(covered) >= 6.5


def test_busy_workers_and_identical_traces_for_identical_seeds():
    runs = []
    for _ in range(2):
        table, oracle, searcher = setup(seed=7)
        runs.append(run_tabular(searcher, oracle, budget_of(table, 10), n_workers=4))
    assert runs[0].trace.equals(runs[1].trace)
    trace = runs[0].trace
    assert trace["worker"].nunique() == 4
    busy = (trace["end"] - trace["start"]).sum() / (4 * runs[0].time_used)
    assert busy > 0.95  # no stage waits for its slowest job


def test_rank_quality_is_measured_on_paid_curves_and_keeps_updating():
    table, oracle, searcher = setup(n_archs=400, seed=4)
    run_tabular(searcher, oracle, budget=budget_of(table, 40))
    qualities = [h["rank_quality"] for h in searcher.history]
    assert qualities[0] == 0.0
    assert len(set(qualities)) >= 3  # updated as complete curves arrive, not frozen
    regional = [h for h in searcher.history if h["stage"] == "regional" and h["rung"] == 0]
    assert regional and all(h["rank_quality"] > 0 for h in regional)  # mutants only once ranking is measured


def test_ablation_switches_change_behaviour_and_the_predictor_has_its_own_stream():
    table, _, _ = setup()
    budget = budget_of(table, 40)
    traces = {}
    for name, config in {"full": {}, "no_stage2": {"use_stage2": False}, "no_allocator": {"use_allocator": False},
                         "no_predictor": {"use_predictor": False}}.items():
        _, oracle, searcher = setup(**config)
        traces[name] = run_tabular(searcher, oracle, budget).trace
    for name in ("no_stage2", "no_allocator", "no_predictor"):
        assert not traces["full"].equals(traces[name]), name
    # With the forest never switched on, the full method and the no-predictor ablation are the same search:
    # fitting (or not) a predictor does not move the searcher's random stream.
    same = []
    for config in ({"min_curves": 10_000}, {"min_curves": 10_000, "use_predictor": False}):
        _, oracle, searcher = setup(**config)
        same.append(run_tabular(searcher, oracle, budget).trace)
    assert same[0].equals(same[1])


def test_an_ablation_keeps_its_switch_under_a_config_of_its_own():
    problem = setup()[2].problem
    for name, switch in (("pmfnas-no-predictor", "use_predictor"), ("pmfnas-no-allocator", "use_allocator"),
                         ("pmfnas-no-stage2", "use_stage2")):
        searcher = make_searcher(name, problem, np.random.default_rng(0), config=PMFNASConfig(eta=2, min_curves=3))
        assert getattr(searcher.config, switch) is False, name
        assert (searcher.config.eta, searcher.config.min_curves) == (2, 3), name


def test_regression_pmfnas_beats_asha_and_hyperband_on_real_curves():
    from harness.comparison import compare

    runs = compare("nbnlp-wt2", ["pmfnas", "asha", "hyperband"], seeds=20, processes=2)
    mean = runs.groupby("method")["regret"].mean()
    assert mean["pmfnas"] <= min(mean["asha"], mean["hyperband"])
    assert runs["simulated_time"].max() <= runs["budget"].iloc[0]
