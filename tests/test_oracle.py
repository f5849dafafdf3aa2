import numpy as np
import pytest

from benchmarks.oracle import FidelityOracle, TabularOracle
from benchmarks.spaces.finite import FiniteSpace
from benchmarks.tabular import TabularBenchmark
from tests.conftest import synthetic_table


def make_oracle(table, seed=0, repeat="sample"):
    space = FiniteSpace("synthetic", table.arch_ids.tolist(), table.arch_features)
    return TabularOracle(table, space, np.random.default_rng(seed), repeat=repeat)


def test_oracle_satisfies_the_interface(table):
    assert isinstance(make_oracle(table), FidelityOracle)


def test_charges_exactly_the_recorded_seconds(table):
    oracle = make_oracle(table)
    row = table.row("a007")
    evaluation = oracle.evaluate("a007", 9)
    assert evaluation.cost == pytest.approx(float(np.sum(table.seconds[row, 0, :9], dtype=np.float64)))
    np.testing.assert_allclose(evaluation.values, table.curves["valid"][row, 0, :9])
    assert evaluation.epochs.tolist() == list(range(1, 10))


def test_a_continued_run_costs_the_epochs_after_its_start_and_a_fresh_one_costs_all(table):
    oracle = make_oracle(table)
    row = table.row("a003")
    first = oracle.evaluate("a003", 3)
    second = oracle.evaluate("a003", 27, start=3)
    seconds = table.seconds[row, 0].astype(np.float64)
    assert first.cost == pytest.approx(seconds[:3].sum())
    assert second.cost == pytest.approx(seconds[3:].sum())
    assert first.cost + second.cost == pytest.approx(seconds.sum())
    assert len(second.values) == 27  # the resumed run shows its whole history
    # The oracle keeps no account: the same question has the same answer and the same price, every time.
    again = oracle.evaluate("a003", 27)
    assert again.cost == pytest.approx(seconds.sum())
    assert oracle.evaluate("a003", 9).cost == pytest.approx(seconds[:9].sum())


def test_start_must_be_a_fidelity_below_the_target(table):
    oracle = make_oracle(table)
    with pytest.raises(ValueError, match="start=9 must be below epochs=9"):
        oracle.evaluate("a003", 9, start=9)
    with pytest.raises(ValueError, match="repeat=-1 must be an integer >= 0"):
        oracle.evaluate("a003", 9, repeat=-1)


def test_each_fresh_run_sees_the_next_recorded_seed():
    table = synthetic_table(n_archs=5, repeats=3)
    oracle = make_oracle(table, seed=1)
    row = table.row("a002")
    runs = [oracle.evaluate("a002", 27, repeat=k).value for k in range(4)]
    recorded = table.curves["valid"][row, :, -1].astype(np.float64).tolist()
    first = recorded.index(runs[0])
    assert runs[:3] == [recorded[(first + k) % 3] for k in range(3)]  # three different recorded seeds
    assert runs[3] == runs[0]  # then round again


def test_unrecorded_epoch_and_unknown_arch_are_refused(table):
    oracle = make_oracle(table)
    with pytest.raises(ValueError, match="epoch 28 is not a recorded fidelity"):
        oracle.evaluate("a001", 28)
    with pytest.raises(ValueError, match="not an architecture of space"):
        oracle.evaluate("zzz", 3)


def test_repeat_sampling_is_seeded_and_order_independent():
    table = synthetic_table(n_archs=30, repeats=3)
    a, b = make_oracle(table, seed=5), make_oracle(table, seed=5)
    forward = [a.evaluate(arch, 4).value for arch in table.arch_ids]
    backward = [b.evaluate(arch, 4).value for arch in table.arch_ids[::-1]][::-1]
    assert forward == backward
    other = make_oracle(table, seed=6)
    assert [other.evaluate(arch, 4).value for arch in table.arch_ids] != forward


def test_mean_policy_averages_available_repeats():
    valid = np.array([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [np.nan, np.nan]]])
    table = TabularBenchmark.from_arrays(["p", "q"], [1, 2], valid, np.ones_like(valid), metric="m",
                                         higher_is_better=True)
    oracle = TabularOracle(table, FiniteSpace("s", ["p", "q"]), repeat="mean")
    np.testing.assert_allclose(oracle.evaluate("p", 2).values, [2.0, 3.0])
    np.testing.assert_allclose(oracle.evaluate("q", 2).values, [5.0, 6.0])


def test_failed_run_stops_where_it_diverged_and_is_charged_until_then():
    valid = np.array([[[1.0, 2.0, 3.0, 4.0]], [[1.0, 1.5, np.nan, np.nan]]])
    seconds = np.array([[[1.0, 1.0, 1.0, 1.0]], [[2.0, 2.0, 2.0, np.nan]]])
    table = TabularBenchmark.from_arrays(["ok", "bad"], [1, 2, 3, 4], valid, seconds, metric="m",
                                         higher_is_better=True, failed=[[False], [True]])
    oracle = TabularOracle(table, FiniteSpace("s", ["ok", "bad"]), np.random.default_rng(0))
    early = oracle.evaluate("bad", 2)
    assert not early.failed and early.cost == 4.0
    late = oracle.evaluate("bad", 4, start=2)
    assert late.failed and "diverged or failed at epoch 3" in late.reason
    assert late.cost == 2.0 and late.epoch == 3
    with pytest.raises(ValueError, match="cannot be continued"):
        oracle.evaluate("bad", 4, start=3)


def test_missing_cost_is_never_invented():
    valid = np.ones((1, 1, 2))
    seconds = np.array([[[1.0, np.nan]]])
    table = TabularBenchmark.from_arrays(["x"], [1, 2], valid, seconds, metric="m", higher_is_better=True)
    oracle = TabularOracle(table, FiniteSpace("s", ["x", "unused"]), np.random.default_rng(0))
    with pytest.raises(ValueError, match="no recorded cost"):
        oracle.evaluate("x", 2)


def test_bad_repeat_policy_is_rejected(table):
    with pytest.raises(ValueError, match="repeat=7 must be"):
        make_oracle(table, repeat=7)
