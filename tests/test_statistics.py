"""The comparison statistics: Holm, one-sided paired tests with their direction, ranks, attainable p."""
import numpy as np
import pandas as pd
import pytest

from harness.report import paired_tests_markdown
from harness.statistics import holm, mean_ranks, paired_tests, ranks_by_seed, seeds_needed, smallest_one_sided_p


def test_holm_matches_a_hand_computed_example():
    # Sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 -> raised to 0.06 (step-down is monotone).
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_leaves_nan_out_of_the_family_and_caps_at_one():
    # Three tested: 0.02·3 = 0.06, 0.6·2 = 1.2 -> 1, 0.7·1 raised to 1.
    adjusted = holm([0.02, float("nan"), 0.6, 0.7])
    assert adjusted[0] == pytest.approx(0.06) and np.isnan(adjusted[1]) and adjusted[2:].tolist() == [1.0, 1.0]
    assert holm([]).size == 0
    with pytest.raises(ValueError, match="must lie in"):
        holm([0.5, 1.5])


def test_direction_effect_size_and_holm_across_the_table():
    seeds = np.arange(6)
    a = 1.0 + seeds                        # method a
    b = a - 0.1 * (seeds + 1)              # lower than a on all 6 seeds
    c = a - np.array([0, 0.1, 0.15, 0.2, 0.25, 0.3])  # lower than a on 5 seeds, equal on one; above b on all 6
    tests = paired_tests(pd.DataFrame({"a": a, "b": b, "c": c})).set_index(["better", "worse"])
    assert list(tests.index) == [("b", "a"), ("c", "a"), ("b", "c")]
    assert tests.loc[("b", "a"), "median_difference"] == pytest.approx(-0.35)
    assert tests["pairs"].tolist() == [6, 6, 6] and tests["nonzero"].tolist() == [6, 5, 6]
    # Exact one-sided p with n same-sign differences is 2^-n.
    assert tests["p_value"].tolist() == pytest.approx([1 / 64, 1 / 32, 1 / 64])
    # Holm over 6 directional tests {1/64, 1/32, 1/64, and three of 1}: 6/64, max(6/64, 5/64), 4/32.
    assert tests["p_holm"].tolist() == pytest.approx([6 / 64, 4 / 32, 6 / 64])
    assert not tests["significant"].any()


def test_a_clear_winner_with_enough_seeds_is_significant():
    worse = np.arange(10.0)
    tests = paired_tests(pd.DataFrame({"slow": worse + 1, "fast": worse}))
    row = tests.iloc[0]
    assert (row["better"], row["worse"]) == ("fast", "slow") and row["median_difference"] == -1.0
    assert row["p_value"] == pytest.approx(2 ** -10) and row["p_holm"] == pytest.approx(2 * 2 ** -10)
    assert bool(row["significant"])


def test_pairs_that_cannot_be_tested_get_no_p_value():
    regrets = pd.DataFrame({"a": [1.0, 2.0, 3.0], "same": [1.0, 2.0, 3.0], "never": [np.nan] * 3})
    tests = paired_tests(regrets).set_index(["better", "worse"])
    assert tests.loc[("a", "same"), "note"] == "identical regrets on every seed"
    assert tests.loc[("a", "never"), "pairs"] == 0
    assert tests.loc[("a", "never"), "note"] == "no seed where both have an incumbent"
    assert tests["p_value"].isna().all() and tests["p_holm"].isna().all() and not tests["significant"].any()


def test_unreachable_significance_is_noted():
    assert smallest_one_sided_p(5) == 1 / 32 and smallest_one_sided_p(0) == 1.0
    assert seeds_needed(1) == 5 and seeds_needed(6) == 7  # 2^-5 <= 0.05; 6·2^-7 = 0.047 <= 0.05 < 6·2^-6
    five_seeds = np.arange(5.0)
    tests = paired_tests(pd.DataFrame({"a": five_seeds + 1, "b": five_seeds, "c": five_seeds + 3}))
    text = "\n".join(paired_tests_markdown(tests))
    assert "2^-5 = 0.0312" in text and "Holm over the 6 directional tests" in text and "at least 7 seeds" in text
    ten_seeds = np.arange(10.0)
    text = "\n".join(paired_tests_markdown(paired_tests(pd.DataFrame({"a": ten_seeds + 1, "b": ten_seeds}))))
    assert "Note" not in text and "| b | a | 10 (10) | -1 | 0.00098 | 0.002 | better at 0.05 |" in text


def test_ranks_share_ties_and_skip_incomplete_seeds():
    regrets = pd.DataFrame({"x": [0.0, 0.2, 0.1, 0.5], "y": [0.0, 0.1, 0.3, np.nan], "z": [0.3, 0.3, 0.2, 0.1]})
    assert ranks_by_seed(regrets).to_numpy().tolist() == [[1.5, 1.5, 3], [2, 1, 3], [1, 3, 2]]
    ranks = mean_ranks(regrets)
    assert ranks["mean_rank"].tolist() == pytest.approx([1.5, 11 / 6, 8 / 3]) and set(ranks["seeds"]) == {3}
