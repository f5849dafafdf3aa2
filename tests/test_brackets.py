"""Exact-count tests of the Hyperband schedule and of one bracket's rung bookkeeping."""
import math

import numpy as np
import pytest

from search.brackets import Bracket, hyperband_schedule, max_bracket_index

INF = math.inf


def test_schedule_matches_the_papers_table_for_eta3_r81():
    # Li et al., JMLR 2018, Table 1 (R=81, eta=3).
    assert hyperband_schedule(3, 1, 81) == [
        [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
        [(34, 3), (11, 9), (3, 27), (1, 81)],
        [(15, 9), (5, 27), (1, 81)],
        [(8, 27), (2, 81)],
        [(5, 81)],
    ]


def test_schedule_small_eta2_case():
    assert hyperband_schedule(2, 1, 8) == [
        [(8, 1), (4, 2), (2, 4), (1, 8)],
        [(6, 2), (3, 4), (1, 8)],
        [(4, 4), (2, 8)],
        [(4, 8)],
    ]


def test_schedule_with_a_ratio_that_is_not_a_power_of_eta():
    schedule = hyperband_schedule(3, 1, 100)
    assert len(schedule) == 5  # s_max = floor(log3(100)) = 4
    first = schedule[0]
    assert [n for n, _ in first] == [81, 27, 9, 3, 1]
    assert first[0][1] == pytest.approx(100 / 81)
    assert first[-1][1] == 100
    assert all(bracket[-1][1] == 100 for bracket in schedule)


def test_log_is_exact_for_float_min_epochs():
    # 200 / (200 / 27) is 27 only up to rounding; a float log could give 2.9999.
    assert max_bracket_index(3, 200 / 27, 200) == 3
    assert max_bracket_index(3, 1, 1) == 0
    assert hyperband_schedule(3, 5, 5) == [[(1, 5)]]


@pytest.mark.parametrize("eta, low, high, match", [
    (1, 1, 81, "eta=1 must be an integer >= 2"),
    (2.5, 1, 81, "eta=2.5 must be an integer >= 2"),
    (True, 1, 81, "eta=True must be an integer >= 2"),
    (float("inf"), 1, 81, "eta=inf must be an integer >= 2"),
    (float("nan"), 1, 81, "eta=nan must be an integer >= 2"),
    ("3", 1, 81, "eta='3' must be an integer >= 2"),
    (3, 0, 81, "min_epochs=0 must be a positive finite number"),
    (3, -1, 81, "min_epochs=-1 must be a positive finite number"),
    (3, 1, 0, "max_epochs=0 must be a positive finite number"),
    (3, 27, 9, "min_epochs=27 must not exceed max_epochs=9"),
    (3, 1, float("inf"), "max_epochs=inf must be a positive finite number"),
])
def test_schedule_rejects_bad_arguments(eta, low, high, match):
    with pytest.raises(ValueError, match=match):
        hyperband_schedule(eta, low, high)


def test_eta_may_be_any_whole_number_type():
    assert hyperband_schedule(np.int64(3), 1, 9) == hyperband_schedule(3.0, 1, 9) == hyperband_schedule(3, 1, 9)


def fill_rung(bracket, rung, scores):
    for arch, score in scores.items():
        if rung == 0:
            bracket.add(arch)
        else:
            bracket.start(rung, arch)
    for arch, score in scores.items():
        bracket.report(rung, arch, score)


def test_synchronous_bracket_promotes_top_n_next_only_when_the_rung_is_complete():
    bracket = Bracket([(9, 1), (3, 3), (1, 9)], eta=3)
    archs = [f"a{i}" for i in range(9)]
    scores = [5.0, 9.0, 1.0, 7.0, 3.0, 8.0, 2.0, 6.0, 4.0]
    for arch in archs:
        bracket.add(arch)
    assert not bracket.can_add()
    with pytest.raises(ValueError, match="rung 0 is full"):
        bracket.add("extra")
    for arch, score in zip(archs[:-1], scores[:-1]):
        bracket.report(0, arch, score)
        assert bracket.pending(1) == [] and bracket.next_promotion() is None
    assert bracket.running(0) == ["a8"]
    bracket.report(0, "a8", scores[-1])
    assert bracket.rung_complete(0)
    assert bracket.pending(1) == ["a1", "a5", "a3"]
    assert bracket.next_promotion() == (1, "a1")
    bracket.start(1, "a1")
    assert bracket.pending(1) == ["a5", "a3"]
    bracket.start(1, "a5")
    bracket.start(1, "a3")
    assert bracket.next_promotion() is None
    bracket.report(1, "a1", 1.0)
    bracket.report(1, "a5", 3.0)
    assert bracket.pending(2) == []
    bracket.report(1, "a3", 2.0)
    assert bracket.pending(2) == ["a5"]
    bracket.start(2, "a5")
    bracket.report(2, "a5", 0.5)
    assert bracket.finished
    assert bracket.rung_of("a5") == 2 and bracket.rung_of("a2") == 0 and bracket.rung_of("zz") is None


def test_failures_are_never_promoted_and_shrink_the_next_rung():
    bracket = Bracket([(4, 1), (2, 3), (1, 9)], eta=2)
    fill_rung(bracket, 0, {"a": -INF, "b": float("nan"), "c": 1.0, "d": -INF})
    assert bracket.pending(1) == ["c"]
    assert bracket.capacity(1) == 1
    bracket.start(1, "c")
    bracket.report(1, "c", -INF)
    assert bracket.capacity(2) == 0 and bracket.rung_complete(2)
    assert bracket.finished


def test_ties_keep_report_order():
    bracket = Bracket([(4, 1), (2, 3)], eta=2)
    fill_rung(bracket, 0, {"d": 1.0, "c": 2.0, "b": 2.0, "a": 2.0})
    assert bracket.pending(1) == ["c", "b"]


def test_seal_closes_rung_zero_with_what_it_has():
    bracket = Bracket([(9, 1), (3, 3), (1, 9)], eta=3)
    fill_rung(bracket, 0, {"a": 1.0, "b": 2.0})
    assert not bracket.rung_complete(0) and bracket.can_add()
    bracket.seal()
    assert not bracket.can_add() and bracket.rung_complete(0)
    assert [bracket.size(i) for i in range(3)] == [2, 1, 1]  # still halves; one still reaches the top
    assert bracket.pending(1) == ["b"]


def test_sealing_a_large_bracket_keeps_its_shape():
    bracket = Bracket([(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)], eta=3)
    fill_rung(bracket, 0, {f"a{i}": float(i) for i in range(60)})
    bracket.seal()
    assert [bracket.size(i) for i in range(5)] == [60, 20, 6, 2, 1]
    assert bracket.quota(0) == 20 and bracket.pending(1)[:2] == ["a59", "a58"]
    empty = Bracket([(9, 1), (3, 3)], eta=3)
    empty.seal()
    assert empty.finished and [empty.size(0), empty.size(1)] == [0, 0]


def test_asynchronous_bracket_promotes_the_current_top_third():
    bracket = Bracket([(None, 1), (None, 3), (None, 9)], eta=3, asynchronous=True)
    fill_rung(bracket, 0, {"a": 1.0, "b": 5.0})
    assert bracket.next_promotion() is None  # floor(2 / 3) = 0
    fill_rung(bracket, 0, {"c": 3.0})
    assert bracket.next_promotion() == (1, "b")
    bracket.start(1, "b")
    assert bracket.next_promotion() is None
    fill_rung(bracket, 0, {"d": 9.0, "e": -INF, "f": 0.0})
    assert bracket.pending(1) == ["d"]  # top 2 of 6 are d and b; b is already in
    assert bracket.can_add() and not bracket.finished


def test_asynchronous_top_third_never_includes_failures():
    bracket = Bracket([(None, 1), (None, 3)], eta=3, asynchronous=True)
    fill_rung(bracket, 0, {"a": -INF, "b": -INF, "c": -INF})
    assert bracket.next_promotion() is None


def test_bracket_rejects_bad_rungs_and_calls():
    with pytest.raises(ValueError, match="at least one rung"):
        Bracket([], eta=3)
    with pytest.raises(ValueError, match="only an asynchronous bracket"):
        Bracket([(None, 1)], eta=3)
    with pytest.raises(ValueError, match="larger than the rung below"):
        Bracket([(3, 3), (1, 3)], eta=3)
    with pytest.raises(ValueError, match="n=-1 must be a non-negative int"):
        Bracket([(-1, 3)], eta=3)
    with pytest.raises(ValueError, match="eta=1"):
        Bracket([(3, 1)], eta=1)
    bracket = Bracket([(3, 1), (1, 3)], eta=3)
    bracket.add("a")
    with pytest.raises(ValueError, match="already in this bracket"):
        bracket.add("a")
    with pytest.raises(ValueError, match="'a' is not pending for rung 1"):
        bracket.start(1, "a")
    with pytest.raises(ValueError, match="'b' is not running at rung 0"):
        bracket.report(0, "b", 1.0)
    with pytest.raises(ValueError, match=r"rung=2 must be an int in \[0, 2\)"):
        bracket.epochs(2)


def test_promotions_come_highest_rung_first():
    bracket = Bracket([(None, 1), (None, 3), (None, 9)], eta=3, asynchronous=True)
    fill_rung(bracket, 0, {"a": 9.0, "b": 8.0, "c": 7.0, "d": 1.0, "e": 2.0, "f": 3.0, "x": 0.0, "y": 0.0,
                           "z": 0.0})
    fill_rung(bracket, 1, {"a": 1.0, "b": 5.0, "c": 4.0})
    fill_rung(bracket, 0, {"g": 10.0, "h": 0.0, "i": 0.5})
    assert bracket.pending(1) == ["g"]
    assert bracket.promotions() == [(2, "b"), (1, "g")]
    assert bracket.next_promotion() == (2, "b")


def test_asynchronous_candidate_pushed_out_of_the_top_is_no_longer_pending():
    bracket = Bracket([(None, 1), (None, 3)], eta=3, asynchronous=True)
    fill_rung(bracket, 0, {"a": 5.0, "b": 1.0, "c": 2.0})
    assert bracket.pending(1) == ["a"]
    fill_rung(bracket, 0, {"d": 9.0, "e": 0.0})  # 5 reports: the top 1 is now d alone
    assert bracket.pending(1) == ["d"]
    with pytest.raises(ValueError, match="'a' is not pending for rung 1"):
        bracket.start(1, "a")
    fill_rung(bracket, 0, {"f": 0.5})  # 6 reports: the top 2 are d and a again
    assert bracket.pending(1) == ["d", "a"]
    bracket.start(1, "a")
    assert bracket.pending(1) == ["d"] and bracket.next_promotion() == (1, "d")
