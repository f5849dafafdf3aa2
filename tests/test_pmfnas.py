import numpy as np
import pytest

from benchmarks.oracle import TabularOracle
from benchmarks.spaces.finite import FiniteSpace
from harness.runner import run_tabular
from search.base import Problem
from search.pmfnas import PMFNAS, PMFNASConfig
from tests.conftest import synthetic_table


def setup(n_archs=200, n_epochs=50, seed=0, **config):
    table = synthetic_table(n_archs=n_archs, n_epochs=n_epochs, seed=seed)
    space = FiniteSpace("synthetic", table.arch_ids.tolist(), table.arch_features)
    oracle = TabularOracle(table, space, np.random.default_rng(seed))
    problem = Problem(space, oracle.fidelities, oracle.higher_is_better)
    return table, oracle, PMFNAS(problem, np.random.default_rng(seed + 100), PMFNASConfig(**config))


def test_config_expresses_fidelities_as_fractions_of_max_epochs():
    for epochs in (50, 108, 200):
        _, _, searcher = setup(n_archs=30, n_epochs=epochs)
        assert searcher.low == int(np.ceil(0.1 * epochs)) and searcher.medium == int(np.ceil(0.3 * epochs))
    with pytest.raises(ValueError, match="low_fidelity \\(0.5\\) < medium_fidelity \\(0.3\\)"):
        PMFNASConfig(low_fidelity=0.5)
    with pytest.raises(ValueError, match="n_fine=0 must be at least 1"):
        PMFNASConfig(n_fine=0)


def test_three_stages_in_order_with_resumes():
    table, oracle, searcher = setup()
    result = run_tabular(searcher, oracle, budget=float(table.full_evaluation_seconds().mean() * 12))
    trace = result.trace
    first_round = trace.iloc[:24]
    assert (first_round["epochs"] == searcher.low).all() and not first_round["resume"].any()
    regional = trace.iloc[24:24 + 12]
    assert (regional["epochs"] == searcher.medium).all()
    resumed = regional[regional["resume"]]
    assert len(resumed) == 4 and set(resumed["arch"]) <= set(first_round["arch"])  # centres resumed, not restarted
    fine = trace.iloc[36:39]
    assert (fine["epochs"] == 50).all() and fine["resume"].all()
    # A resume pays only its extra epochs.
    assert (resumed["paid_epochs"] == searcher.medium - searcher.low).all()
    stages = [h["stage"] for h in searcher.history[:3]]
    assert stages == ["global", "regional", "fine"]


def test_stopped_candidates_never_get_more_epochs():
    table, oracle, searcher = setup(seed=3)
    result = run_tabular(searcher, oracle, budget=float(table.full_evaluation_seconds().mean() * 25))
    stopped = {a for a, c in searcher.candidates.items() if c.stopped}
    assert stopped, "the stopping rule should stop some clearly inferior candidates"
    for arch in stopped:
        rows = result.trace[result.trace["arch"] == arch]
        assert rows["epochs"].max() < 50


def test_budget_split_adapts_to_rank_quality():
    table, oracle, searcher = setup(n_archs=400, seed=4)
    run_tabular(searcher, oracle, budget=float(table.full_evaluation_seconds().mean() * 40))
    globals_ = [h for h in searcher.history if h["stage"] == "global"]
    assert len(globals_) >= 3
    assert globals_[0]["jobs"] == 24
    later = globals_[-1]
    expected = max(8, round(24 * (1 - max(later["rank_quality"], 0.0))))
    assert later["jobs"] == expected
    assert later["jobs"] < 24  # the predictor ranks these curves well, so stage 1 shrinks


def test_ablation_switches_change_behaviour():
    table, _, _ = setup()
    budget = float(table.full_evaluation_seconds().mean() * 12)
    traces = {}
    for name, config in {"full": {}, "no_stage2": {"use_stage2": False}, "no_allocator": {"use_allocator": False},
                         "no_predictor": {"use_predictor": False}}.items():
        _, oracle, searcher = setup(**config)
        traces[name] = run_tabular(searcher, oracle, budget).trace
    assert not (traces["no_stage2"]["epochs"] == 15).any()
    assert (traces["full"]["epochs"] == 15).any()
    assert not traces["full"].equals(traces["no_allocator"])


def test_identical_seeds_give_identical_traces_with_four_workers():
    runs = []
    for _ in range(2):
        table, oracle, searcher = setup(seed=7)
        runs.append(run_tabular(searcher, oracle, float(table.full_evaluation_seconds().mean() * 10), n_workers=4).trace)
    assert runs[0].equals(runs[1])
    assert runs[0]["worker"].nunique() == 4


def test_regression_pmfnas_matches_or_beats_hyperband_on_real_curves():
    from harness.comparison import compare

    runs = compare("nbnlp-wt2", ["pmfnas", "hyperband"], seeds=20, processes=2)
    median = runs.groupby("method")["regret"].median()
    assert median["pmfnas"] <= median["hyperband"]
    assert runs["simulated_time"].max() <= runs["budget"].iloc[0]
