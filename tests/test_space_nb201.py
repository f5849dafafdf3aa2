"""Tests for the NAS-Bench-201 cell space: parsing, official indices, moves, features, classes."""
from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.spaces import nb201
from benchmarks.spaces.base import ArchitectureError, SearchSpace
from benchmarks.spaces.nb201 import EDGES, N_ARCHITECTURES, OPS, SIZE_FEATURES, NB201Space

SPACE = NB201Space()

op_lists = st.lists(st.sampled_from(OPS), min_size=6, max_size=6)
archs = op_lists.map(SPACE.from_ops)
indices = st.integers(0, N_ARCHITECTURES - 1)
seeds = st.integers(0, 2**32 - 1)

E10, E20, E21, E30, E31, E32 = range(6)  # positions of EDGES, named (to, from)


def with_op(arch: str, edge: int, op: str) -> str:
    ops = list(SPACE.ops(arch))
    ops[edge] = op
    return SPACE.from_ops(ops)


def n_diff(a: str, b: str) -> int:
    return sum(x != y for x, y in zip(SPACE.ops(a), SPACE.ops(b)))


# --- constants and protocol ---------------------------------------------------------------------


def test_constants_and_protocol():
    assert OPS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert EDGES == ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
    assert SPACE.name == "nb201"
    assert SPACE.n_architectures == N_ARCHITECTURES == 15625
    assert isinstance(SPACE, SearchSpace)


def test_edge_order_matches_string_layout():
    arch = SPACE.from_ops(OPS[:5] + ("none",))
    assert arch == (
        "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"
    )
    for op, (to_node, from_node) in zip(SPACE.ops(arch), EDGES):
        group = arch.split("+")[to_node - 1]
        assert f"|{op}~{from_node}|" in group


# --- parsing ------------------------------------------------------------------------------------


@given(archs)
def test_parse_is_identity_on_official_strings(arch):
    assert SPACE.parse(arch) == arch
    assert SPACE.table_key(arch) == arch
    assert SPACE.from_ops(SPACE.ops(arch)) == arch


@given(archs, st.sampled_from(["", " ", "\n", "\t ", "  \r\n"]), st.sampled_from(["", " ", "\n"]))
def test_parse_strips_surrounding_whitespace(arch, left, right):
    assert SPACE.parse(left + arch + right) == arch


GOOD = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        (None, "must be a str, got NoneType"),
        (42, "must be a str, got int"),
        (GOOD.replace("avg_pool_3x3", "conv_5x5"), r"unknown op 'conv_5x5'.*allowed ops: none, skip_connect"),
        (GOOD.replace("avg_pool_3x3", "AVG_POOL_3X3"), "unknown op 'AVG_POOL_3X3'"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "expected 3 nodes.*got 2"),
        (GOOD + "+|none~0|", "expected 3 nodes.*got 4"),
        (
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|+|none~0|none~1|none~2|",
            "node 2 must have 2 incoming edge.*got 3",
        ),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 must have 2 incoming edge.*got 1"),
        (GOOD.replace("skip_connect~2", "skip_connect~5"), "input node index '5', expected 2"),
        (GOOD.replace("avg_pool_3x3~1", "avg_pool_3x3~0"), "input node index '0', expected 1"),
        (GOOD.replace("nor_conv_3x3~0|+", "nor_conv_3x3~x|+", 1), "input node index 'x', expected 0"),
        (GOOD[1:], r"missing its enclosing '\|' bars"),
        (GOOD[:-1], r"missing its enclosing '\|' bars"),
        (GOOD.replace("|+|", "+"), r"missing its enclosing '\|' bars"),
        (GOOD.replace("skip_connect~2", "skip_connect"), "not of the form 'op~input_node'"),
        (GOOD.replace("skip_connect~2", "skip_connect~2~2"), "not of the form 'op~input_node'"),
        (GOOD.replace("|+|", "| + |"), "whitespace inside"),
    ],
)
def test_malformed_strings_raise_one_named_error(text, match):
    with pytest.raises(ArchitectureError, match=match) as info:
        SPACE.parse(text)
    # One error naming the problem, not a wrapped chain of internal failures.
    assert info.value.__cause__ is None
    assert isinstance(info.value, ValueError)


def test_every_entry_point_validates():
    bad = GOOD.replace("avg_pool_3x3", "conv_5x5")
    rng = np.random.default_rng(0)
    for call in (
        SPACE.index, SPACE.ops, SPACE.encode, SPACE.size_features, SPACE.canonical,
        SPACE.unique_key, SPACE.neighbours, SPACE.table_key, lambda a: SPACE.mutate(a, rng),
    ):
        with pytest.raises(ArchitectureError, match="unknown op 'conv_5x5'"):
            call(bad)


def test_from_ops_validates():
    with pytest.raises(ArchitectureError, match="expected 6 ops.*got 5"):
        SPACE.from_ops(OPS)
    with pytest.raises(ArchitectureError, match="unknown op 'conv'"):
        SPACE.from_ops(["conv"] * 6)


# --- official indices ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("i", "arch"),
    [
        (0, "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"),
        (9, "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"),
        (123, "|avg_pool_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"),
    ],
)
def test_official_index_anchors(i, arch):
    assert SPACE.from_index(i) == arch
    assert SPACE.index(arch) == i


def test_all_architectures_is_the_shuffled_product():
    everything = SPACE.all_architectures()
    assert len(everything) == len(set(everything)) == 15625
    expected = [SPACE.from_ops(ops) for ops in itertools.product(OPS, repeat=6)]
    random.Random(88).shuffle(expected)
    assert everything == expected
    assert everything == [SPACE.from_index(i) for i in range(15625)]
    # A copy: callers cannot corrupt the cached table.
    everything.clear()
    assert len(SPACE.all_architectures()) == 15625


def test_tables_leave_global_random_state_alone():
    nb201._index_tables.cache_clear()
    nb201._class_tables.cache_clear()
    py_state = random.getstate()
    np_state = np.random.get_state()[1].copy()
    SPACE.from_index(0)
    SPACE.canonical(SPACE.from_index(0))
    SPACE.sample(np.random.default_rng(1))
    assert random.getstate() == py_state
    assert np.array_equal(np.random.get_state()[1], np_state)


@given(archs)
def test_index_round_trip_from_arch(arch):
    assert SPACE.from_index(SPACE.index(arch)) == arch


@given(indices)
def test_index_round_trip_from_index(i):
    assert SPACE.index(SPACE.from_index(i)) == i
    assert SPACE.index(SPACE.from_index(np.int64(i))) == i


@pytest.mark.parametrize("bad", [-1, 15625, 10**9])
def test_from_index_out_of_range(bad):
    with pytest.raises(ValueError, match=rf"index {bad} out of range \[0, 15624\]"):
        SPACE.from_index(bad)


@pytest.mark.parametrize("bad", [1.0, "3", True])
def test_from_index_rejects_non_integers(bad):
    with pytest.raises(TypeError):
        SPACE.from_index(bad)


# --- moves --------------------------------------------------------------------------------------


@given(seeds)
def test_sample_is_valid_and_reproducible(seed):
    first = np.random.default_rng(seed)
    second = np.random.default_rng(seed)
    run1 = [SPACE.sample(first) for _ in range(5)]
    run2 = [SPACE.sample(second) for _ in range(5)]
    assert run1 == run2
    assert all(SPACE.parse(x) == x for x in run1)


def test_sample_is_roughly_uniform_per_edge():
    rng = np.random.default_rng(2024)
    counts = np.zeros((6, 5))
    n = 5000
    for _ in range(n):
        counts += SPACE.encode(SPACE.sample(rng)).reshape(6, 5)
    # Each cell ~ Binomial(5000, 0.2): sd ~ 28; 6 sd bounds never fail by chance in practice.
    assert np.all(np.abs(counts - n / 5) < 170)


@given(archs, seeds)
def test_mutate_changes_exactly_one_edge(arch, seed):
    child = SPACE.mutate(arch, np.random.default_rng(seed))
    assert SPACE.parse(child) == child
    assert n_diff(arch, child) == 1
    assert child in SPACE.neighbours(arch)


@given(archs, seeds)
def test_mutate_is_reproducible(arch, seed):
    assert SPACE.mutate(arch, np.random.default_rng(seed)) == SPACE.mutate(
        arch, np.random.default_rng(seed)
    )


@given(archs)
def test_neighbours(arch):
    nbrs = SPACE.neighbours(arch)
    assert len(nbrs) == len(set(nbrs)) == 24
    assert arch not in nbrs
    assert all(n_diff(arch, n) == 1 for n in nbrs)
    assert nbrs == SPACE.neighbours(arch)


def test_neighbours_order():
    arch = SPACE.from_ops(["none"] * 6)
    nbrs = SPACE.neighbours(arch)
    assert nbrs[0] == with_op(arch, 0, "skip_connect")
    assert nbrs[3] == with_op(arch, 0, "avg_pool_3x3")
    assert nbrs[4] == with_op(arch, 1, "skip_connect")
    assert nbrs[-1] == with_op(arch, 5, "avg_pool_3x3")


# --- features -----------------------------------------------------------------------------------


@given(archs)
def test_encode_is_one_hot(arch):
    vec = SPACE.encode(arch)
    assert vec.dtype == np.float64 and vec.shape == (30,)
    grid = vec.reshape(6, 5)
    assert np.array_equal(grid.sum(axis=1), np.ones(6))
    assert [OPS[k] for k in grid.argmax(axis=1)] == list(SPACE.ops(arch))


def test_encode_distinguishes_all_architectures():
    vecs = {SPACE.encode(a).tobytes() for a in SPACE.all_architectures()[:2000]}
    assert len(vecs) == 2000


@pytest.mark.parametrize(
    ("arch", "expected"),
    [
        # conv3x3 on node 2 feeds the output through skip; conv1x1 on edge 1->2 hangs off a dead node 1.
        ("|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|none~0|none~1|skip_connect~2|", [1, 1, 1, 0, 1]),
        # Node 2 never reaches the output: its convs are built but dead.
        ("|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|nor_conv_1x1~1|none~2|", [2, 2, 0, 2, 1]),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|", [3, 0, 0, 0, 0]),
        ("|none~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_1x1~2|", [1, 1, 0, 0, 0]),
    ],
)
def test_size_features(arch, expected):
    feats = SPACE.size_features(arch)
    assert feats.dtype == np.float64 and feats.shape == (len(SIZE_FEATURES),)
    assert feats.tolist() == expected


@given(archs)
def test_size_features_are_consistent(arch):
    n3, n1, n3_live, n1_live, reachable = SPACE.size_features(arch)
    ops = SPACE.ops(arch)
    assert (n3, n1) == (ops.count("nor_conv_3x3"), ops.count("nor_conv_1x1"))
    assert 0 <= n3_live <= n3 and 0 <= n1_live <= n1
    assert reachable in (0.0, 1.0)
    if not reachable:
        assert n3_live == n1_live == 0


# --- equivalence classes ------------------------------------------------------------------------


def test_unique_class_count_is_the_published_6466():
    everything = SPACE.all_architectures()
    keys = {SPACE.unique_key(a) for a in everything}
    unique = SPACE.unique_architectures()
    assert len(keys) == len(unique) == 6466
    assert {SPACE.unique_key(a) for a in unique} == keys
    assert len({SPACE.canonical(a) for a in everything}) == 6466


def test_unique_architectures_are_the_smallest_index_of_each_class():
    unique = SPACE.unique_architectures()
    idx = [SPACE.index(a) for a in unique]
    assert idx == sorted(idx)
    assert idx[0] == 0
    assert all(SPACE.canonical(a) == a for a in unique)
    best: dict[str, int] = {}
    for i, a in enumerate(SPACE.all_architectures()):
        best.setdefault(SPACE.unique_key(a), i)
    assert sorted(best.values()) == idx


def test_unique_key_follows_the_published_rule():
    arch = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|skip_connect~2|"
    assert SPACE.unique_key(arch) == "#+((0)@nor_conv_3x3)@avg_pool_3x3+((0)@nor_conv_3x3)@nor_conv_1x1+0"


@given(archs)
def test_canonical_is_idempotent_and_in_class(arch):
    c = SPACE.canonical(arch)
    assert SPACE.canonical(c) == c
    assert SPACE.is_equivalent(arch, c)
    assert SPACE.unique_key(c) == SPACE.unique_key(arch)
    assert SPACE.index(c) <= SPACE.index(arch)
    assert SPACE.parse(c) == c


@given(archs, archs)
def test_is_equivalent_matches_canonical(a, b):
    assert SPACE.is_equivalent(a, b) == (SPACE.canonical(a) == SPACE.canonical(b))
    assert SPACE.is_equivalent(a, b) == SPACE.is_equivalent(b, a)


@given(op_lists, st.sampled_from(OPS))
def test_node1_that_cannot_reach_output_is_ignored(ops, op):
    ops[E21] = ops[E31] = "none"
    arch = SPACE.from_ops(ops)
    assert SPACE.canonical(with_op(arch, E10, op)) == SPACE.canonical(arch)


@given(op_lists, st.sampled_from(OPS), st.sampled_from(OPS))
def test_node2_that_cannot_reach_output_is_ignored(ops, op20, op21):
    ops[E32] = "none"
    arch = SPACE.from_ops(ops)
    changed = with_op(with_op(arch, E20, op20), E21, op21)
    assert SPACE.canonical(changed) == SPACE.canonical(arch)


@given(op_lists, st.sampled_from(OPS), st.sampled_from(OPS))
def test_edges_from_a_zero_node_are_ignored(ops, op21, op31):
    ops[E10] = "none"  # node 1 is identically zero
    arch = SPACE.from_ops(ops)
    changed = with_op(with_op(arch, E21, op21), E31, op31)
    assert SPACE.canonical(changed) == SPACE.canonical(arch)


@given(op_lists, st.sampled_from([(E20, E21), (E30, E31)]))
def test_skip_makes_node1_interchangeable_with_the_input(ops, pair):
    # With node 1 = skip(node 0) the two nodes carry the same tensor, and sums commute, so
    # swapping the ops of a node's edges from 0 and from 1 builds the same network.
    ops[E10] = "skip_connect"
    arch = SPACE.from_ops(ops)
    a, b = pair
    swapped = with_op(with_op(arch, a, ops[b]), b, ops[a])
    assert SPACE.canonical(swapped) == SPACE.canonical(arch)


def test_distinct_networks_are_not_merged():
    base = ["none"] * 6
    by_op = {}
    for op in OPS[1:]:
        ops = list(base)
        ops[E30] = op
        by_op[op] = SPACE.unique_key(SPACE.from_ops(ops))
    assert len(set(by_op.values())) == 4
    # Order of ops along a path matters.
    a = SPACE.from_ops(["nor_conv_3x3", "none", "none", "none", "nor_conv_1x1", "none"])
    b = SPACE.from_ops(["nor_conv_1x1", "none", "none", "none", "nor_conv_3x3", "none"])
    assert not SPACE.is_equivalent(a, b)


def test_published_rule_does_not_simplify_zero_summands():
    # Both cells compute the identity, but the published rule keeps the zero terms of node 2's
    # and node 3's sums, so they are distinct classes; the count of 6,466 depends on this.
    via_node2 = SPACE.from_ops(["none", "skip_connect", "none", "none", "none", "skip_connect"])
    direct = SPACE.from_ops(["none", "none", "none", "skip_connect", "none", "none"])
    assert not SPACE.is_equivalent(via_node2, direct)
