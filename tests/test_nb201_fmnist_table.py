"""Facts of the shipped ``nb201-fmnist`` table: what it holds, where it has NaN, how informative it is,
that equivalent NB201 strings answer the same, and that it is exactly the merge of the committed build.

The exact numbers (percentiles of the final accuracy and everything else) are pinned by the comparison
with a fresh merge of ``build-data/nb201-fmnist``; the other tests check properties any rebuild must keep.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from benchmarks.oracle import TabularOracle
from benchmarks.registry import describe_benchmarks, load_benchmark, space_for
from benchmarks.spaces.nb201 import NB201Space
from benchmarks.training.build import merge_chunks, predict_cost
from harness.cli import main
from tests.conftest import REPO

SPACE = NB201Space()
BUILD = REPO / "build-data" / "nb201-fmnist"
CURVES = ("valid", "valid_loss", "train", "train_loss")  # recorded every epoch; test only after the last one


@pytest.fixture(scope="module")
def table():
    return load_benchmark("nb201-fmnist")


def _curve(table, name):
    return np.asarray(table.curves[name], dtype=np.float64)[:, 0, :]


def test_it_is_the_merge_of_the_committed_build(table):
    if not (BUILD / "manifest.json").is_file():
        pytest.fail(f"the committed build {BUILD} is missing: the shipped table must be its merge")
    fresh = merge_chunks(BUILD)
    assert fresh.arch_ids.tolist() == table.arch_ids.tolist()
    for name in table.curves:
        np.testing.assert_array_equal(np.asarray(fresh.curves[name]), np.asarray(table.curves[name]), err_msg=name)
    np.testing.assert_array_equal(np.asarray(fresh.seconds), np.asarray(table.seconds))
    np.testing.assert_array_equal(fresh.failed, table.failed)
    np.testing.assert_array_equal(fresh.arch_features, table.arch_features)
    assert fresh.metadata.notes == table.metadata.notes
    assert fresh.metadata.extra["manifest"]["cost_model"] == table.metadata.extra["manifest"]["cost_model"]


def test_size_epochs_and_what_it_says_about_being_partial(table):
    extra = table.metadata.extra
    manifest = extra["manifest"]
    assert table.epochs.tolist() == list(range(1, 21)) and manifest["settings"]["epochs"] == 20
    assert len(table) == extra["present"] and extra["expected"] == manifest["settings"]["sample"] == 1000
    assert len(table) == 1000 and extra["chunks"] == list(range(63))  # 62 chunks of 16 and one of 8
    assert ("PARTIAL" in table.metadata.notes) == (len(table) < extra["expected"])
    # One row per canonical class, keyed by its representative.
    assert len({SPACE.canonical(a) for a in table.arch_ids}) == len(table)
    assert all(SPACE.canonical(a) == a for a in table.arch_ids)
    (description,) = [d for d in describe_benchmarks() if d.name == "nb201-fmnist"]
    assert description.architectures == len(table)


def test_nan_only_where_a_run_failed(table):
    failed = table.failed[:, 0]
    for name in CURVES:
        values = _curve(table, name)
        assert np.isfinite(values[~failed]).all(), name
        for row in np.flatnonzero(failed):  # a diverged run: NaN from the epoch it diverged in, to the end
            nan = np.isnan(values[row])
            assert nan.any() and nan[np.argmax(nan):].all(), (name, table.arch_ids[row])
    assert sorted(table.metadata.extra["failures"]) == sorted(table.arch_ids[failed].tolist())
    # The test split is evaluated once, after the last epoch (--test-final-only).
    assert table.metadata.extra["manifest"]["settings"]["test_every_epoch"] is False
    for name in ("test", "test_loss"):
        values = _curve(table, name)
        assert np.isnan(values[:, :-1]).all() and np.isfinite(values[~failed, -1]).all(), name
    seconds = np.asarray(table.seconds, dtype=np.float64)[:, 0, :]
    assert np.isfinite(seconds[~failed]).all() and (seconds[~failed] > 0).all()


def test_seconds_are_the_cost_model_of_one_cell_alone(table):
    cost = table.metadata.extra["manifest"]["cost_model"]
    seconds = np.asarray(table.seconds, dtype=np.float64)[:, 0, :]
    expected = predict_cost(cost, table.arch_ids.tolist())
    np.testing.assert_allclose(seconds, np.repeat(expected[:, None], 20, axis=1), rtol=1e-6)
    measured = [point["seconds_per_epoch"] for point in cost["measured"]]
    assert cost["clock"] == "process" and min(measured) / 2 <= seconds.min() and seconds.max() < 3 * max(measured)


def test_it_is_informative_as_the_issue_requires(table):
    """Spread of final accuracy among cells with a live path >= 5 points; Spearman(10 % of epochs, final) < 0.9."""
    final = _curve(table, "valid")[:, -1]
    live = np.array([SPACE.size_features(a)[4] == 1.0 for a in table.arch_ids])  # output reachable
    ok = live & ~table.failed[:, 0]
    assert ok.sum() >= 0.9 * len(table)
    p5, p50, p95 = np.percentile(final[ok], [5, 50, 95])
    assert final[ok].max() - final[ok].min() >= 5 and p95 - p5 >= 3
    assert 10 < p5 < p50 < p95 < 100  # every live cell learns (chance is 10 %), none is perfect
    early = _curve(table, "valid")[:, 1]  # epoch 2 of 20
    assert scipy.stats.spearmanr(early[ok], final[ok]).statistic < 0.9


def test_equivalent_strings_answer_the_same(table):
    space = space_for(table)
    oracle = TabularOracle(table, space, repeat=0)
    rng = np.random.default_rng(0)
    members: dict[str, list[str]] = {}
    recorded = set(table.arch_ids.tolist())
    for arch in SPACE.all_architectures():
        members.setdefault(SPACE.canonical(arch), []).append(arch)
    checked = 0
    for canonical in rng.permutation(table.arch_ids.tolist()):
        others = [a for a in members[canonical] if a != canonical]
        if not others:
            continue
        other = others[int(rng.integers(len(others)))]
        assert other in space
        a, b = oracle.evaluate(canonical, 20), oracle.evaluate(other, 20)
        assert a.values.tolist() == b.values.tolist() and a.cost == b.cost and a.cost > 0
        checked += 1
        if checked == 25:
            break
    assert checked == 25
    missing = next(a for a in SPACE.all_architectures() if SPACE.canonical(a) not in recorded)
    assert missing not in space
    with pytest.raises(KeyError, match="not in benchmark 'nb201-fmnist'"):
        oracle.evaluate(missing, 20)


def test_benchmark_info_names_it(table, capsys):
    assert main(["benchmark", "info", "nb201-fmnist"]) == 0
    out = capsys.readouterr().out
    assert f"architectures                   {len(table)}" in out and "epochs                          1..20" in out
    assert "CC-BY-4.0" in out and "cost model 'ops'" in out
