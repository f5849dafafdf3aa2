"""Tests for the NAS-Bench-101 cell space (benchmarks/spaces/nb101.py)."""
from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.spaces.base import ArchitectureError, SearchSpace
from benchmarks.spaces.nb101 import ENCODING_LENGTH, OPS, NB101Cell, NB101Space, hash_module

SPACE = NB101Space()
C3, C1, MP = OPS

from tests.nb101_cells import INCEPTION, INCEPTION_AS_STORED  # noqa: E402

# Hashes computed with the official code: graph_util.hash_module / ModelSpec.hash_spec of
# nasbench-pytorch 1.3.1 (a copy of google-research/nasbench's), canonical ops = OPS.
OFFICIAL_HASHES = {
    INCEPTION: "28cfc7874f6d200472e1a9dcd8650aa0",
    "01.00|input,output": "043721b9c7fe8c5fad811d47d83132ec",
    "010.001.000|input,conv3x3-bn-relu,output": "b49ac8c578b4561d79ac7087988f1c61",
}

PROPS = settings(max_examples=100, deadline=None)


# ---- strategies -----------------------------------------------------------------------------------

@st.composite
def built_cells(draw, min_vertices: int = 2) -> str:
    """Any valid cell: a random input->output path (so it is connected) plus random extra edges."""
    v = draw(st.integers(min_vertices, 7))
    inner = draw(st.lists(st.integers(1, v - 2), unique=True, max_size=v - 2)) if v > 2 else []
    path = [0] + sorted(inner) + [v - 1]
    edges = set(zip(path, path[1:]))
    pairs = [(i, j) for i in range(v) for j in range(i + 1, v)]
    for e in draw(st.lists(st.sampled_from(pairs), unique=True, max_size=9)):
        if len(edges) >= 9:
            break
        edges.add(e)
    matrix = [[int((i, j) in edges) for j in range(v)] for i in range(v)]
    ops = ["input"] + draw(st.lists(st.sampled_from(OPS), min_size=v - 2, max_size=v - 2)) + ["output"]
    return SPACE.from_matrix(matrix, ops)


sampled_cells = st.integers(0, 2**32 - 1).map(lambda s: SPACE.sample(np.random.default_rng(s)))
archs = st.one_of(built_cells(), sampled_cells)
archs3 = st.one_of(built_cells(min_vertices=3), sampled_cells)  # cells that have neighbours


def _differences(a: str, b: str) -> int:
    ca, cb = SPACE.cell(a), SPACE.cell(b)
    assert ca.num_vertices == cb.num_vertices
    edges = sum(x != y for ra, rb in zip(ca.matrix, cb.matrix) for x, y in zip(ra, rb))
    ops = sum(x != y for x, y in zip(ca.ops, cb.ops))
    return edges + ops


def _random_topological_relabelling(arch: str, rng: np.random.Generator) -> str:
    """The same cell with its vertices renumbered by a random topological order (input first, output
    last), so the matrix stays upper-triangular."""
    c = SPACE.cell(arch)
    v = c.num_vertices
    indeg = [sum(c.matrix[w][u] for w in range(v)) for u in range(v)]
    order = [0]
    for u in range(v):
        if c.matrix[0][u]:
            indeg[u] -= 1
    remaining = set(range(1, v - 1))
    while remaining:
        ready = sorted(u for u in remaining if indeg[u] == 0)
        u = ready[int(rng.integers(len(ready)))]
        order.append(u)
        remaining.remove(u)
        for w in range(v):
            if c.matrix[u][w]:
                indeg[w] -= 1
    order.append(v - 1)
    new = {old: i for i, old in enumerate(order)}
    matrix = [[0] * v for _ in range(v)]
    for i in range(v):
        for j in range(v):
            if c.matrix[i][j]:
                matrix[new[i]][new[j]] = 1
    return SPACE.from_matrix(matrix, [c.ops[old] for old in order])


# ---- protocol and keys ----------------------------------------------------------------------------

def test_conforms_to_protocol():
    assert isinstance(SPACE, SearchSpace)
    assert SPACE.name == "nb101"


def test_string_format_is_documented_form():
    assert INCEPTION == ("0111010.0000001.0000001.0000100.0000001.0000001.0000000"
                         "|input,conv1x1-bn-relu,conv3x3-bn-relu,conv3x3-bn-relu,conv3x3-bn-relu,"
                         "maxpool3x3,output")
    m, ops = SPACE.matrix_and_ops(INCEPTION)
    assert m.shape == (7, 7) and m[3, 4] == 1 and m[4, 3] == 0 and ops[1] == C1


@PROPS
@given(archs)
def test_format_parse_identity(arch):
    assert SPACE.parse(arch) == arch
    assert SPACE.parse(f"  {arch}\n") == arch
    cell = NB101Cell.from_string(arch)
    assert cell.to_string() == arch
    assert NB101Cell.from_string(cell.to_string()) == cell
    m, ops = SPACE.matrix_and_ops(arch)
    assert SPACE.from_matrix(m, ops) == arch
    assert SPACE.from_matrix(m.astype(bool), ops) == arch
    assert SPACE.is_valid(arch)


# ---- hash ------------------------------------------------------------------------------------------

def _reference_hash(matrix, labels) -> str:
    """The documented NAS-Bench-101 hash, written out independently of the module."""
    md5 = lambda s: hashlib.md5(s.encode("utf-8")).hexdigest()  # noqa: E731
    a = np.array(matrix)
    n = len(a)
    h = [md5(str((int(a[u].sum()), int(a[:, u].sum()), labels[u]))) for u in range(n)]
    for _ in range(n):
        h = [md5("".join(sorted(h[w] for w in range(n) if a[w, u])) + "|"
                 + "".join(sorted(h[w] for w in range(n) if a[u, w])) + "|" + h[u]) for u in range(n)]
    return md5(str(sorted(h)))


def test_exact_official_hashes():
    for arch, expected in OFFICIAL_HASHES.items():
        assert SPACE.graph_hash(arch) == expected
        assert SPACE.table_key(arch) == expected
        p = SPACE.cell(SPACE.prune(arch))
        labels = [-1] + [OPS.index(op) for op in p.ops[1:-1]] + [-2]
        assert _reference_hash(p.matrix, labels) == expected


def test_hash_of_fixed_cell_matches_inline_reference():
    # 0 -> 1 -> 3, 0 -> 2 -> 3, 1 -> 2; vertex 1 conv1x1, vertex 2 maxpool.
    arch = "0110.0011.0001.0000|input,conv1x1-bn-relu,maxpool3x3,output"
    assert SPACE.graph_hash(arch) == _reference_hash(SPACE.matrix_and_ops(arch)[0], [-1, 1, 2, -2])


def test_published_query_and_stored_cell_share_hash():
    assert INCEPTION != INCEPTION_AS_STORED
    assert SPACE.graph_hash(INCEPTION) == SPACE.graph_hash(INCEPTION_AS_STORED)


def test_hash_module_cases_from_official_tests():
    # Cases adapted from google-research/nasbench nasbench/tests/graph_util_test.py (Apache-2.0).
    diamond = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert hash_module(diamond, [-1, 1, 2, -2]) == hash_module(diamond, [-1, 2, 1, -2])
    m1 = [[0, 1, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    m2 = [[0, 1, 0, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    assert hash_module(m1, [-1, 1, 2, 3, -2]) == hash_module(m2, [-1, 2, 3, 1, -2])
    assert hash_module(m1, [-1, 1, 2, 3, -2]) != hash_module(m1, [-1, 2, 3, 1, -2])
    chain = [[0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    assert hash_module(chain, [-1, 1, 0, 0, -2]) != hash_module(chain, [-1, 0, 0, 1, -2])
    skip = [[0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert hash_module(skip, [-1, 1, 0, -2]) != hash_module(skip, [-1, 0, 1, -2])


@PROPS
@given(archs, st.integers(0, 2**32 - 1))
def test_hash_invariant_under_topological_relabelling(arch, seed):
    other = _random_topological_relabelling(arch, np.random.default_rng(seed))
    assert SPACE.is_valid(other)
    assert SPACE.graph_hash(other) == SPACE.graph_hash(arch)
    assert SPACE.size_features(other) == SPACE.size_features(arch)


@PROPS
@given(archs)
def test_hash_equals_hash_of_pruned_form(arch):
    pruned = SPACE.prune(arch)
    assert SPACE.graph_hash(pruned) == SPACE.graph_hash(arch)
    assert SPACE.canonical(arch) == pruned
    assert SPACE.prune(pruned) == pruned
    m, _ = SPACE.matrix_and_ops(pruned)
    v = len(m)
    # No dangling vertex is left: all but the input have an in-edge, all but the output an out-edge.
    assert all(m[:, u].sum() > 0 for u in range(1, v))
    assert all(m[u].sum() > 0 for u in range(v - 1))
    assert np.array_equal(SPACE.encode(arch), SPACE.encode(pruned))


def test_dangling_vertices_are_pruned():
    # vertex 2 has no in-edge, vertex 3 no out-edge: both go; vertex 1 stays.
    arch = "01010.00001.00001.00000.00000|input,conv3x3-bn-relu,maxpool3x3,conv1x1-bn-relu,output"
    assert SPACE.prune(arch) == "010.001.000|input,conv3x3-bn-relu,output"
    assert SPACE.graph_hash(arch) == OFFICIAL_HASHES["010.001.000|input,conv3x3-bn-relu,output"]
    assert SPACE.size_features(arch) == {"vertices": 3, "edges": 2, C3: 1, C1: 0, MP: 0}


# ---- moves ------------------------------------------------------------------------------------------

@PROPS
@given(archs3, st.integers(0, 2**32 - 1))
def test_mutate_changes_exactly_one_thing(arch, seed):
    child = SPACE.mutate(arch, np.random.default_rng(seed))
    assert SPACE.is_valid(child)
    assert child != arch
    assert _differences(arch, child) == 1
    assert child in SPACE.neighbours(arch)
    assert SPACE.mutate(arch, np.random.default_rng(seed)) == child


@PROPS
@given(archs)
def test_neighbours_are_valid_and_one_change_away(arch):
    nbrs = SPACE.neighbours(arch)
    assert len(set(nbrs)) == len(nbrs)
    for n in nbrs:
        assert SPACE.parse(n) == n
        assert _differences(arch, n) == 1
    # Completeness: every valid single change is listed.
    c = SPACE.cell(arch)
    v = c.num_vertices
    expected = 2 * (v - 2)
    for i in range(v):
        for j in range(i + 1, v):
            m = [list(r) for r in c.matrix]
            m[i][j] ^= 1
            try:
                SPACE.from_matrix(m, c.ops)
                expected += 1
            except ArchitectureError:
                pass
    assert len(nbrs) == expected


def test_two_vertex_cell_cannot_mutate():
    assert SPACE.neighbours("01.00|input,output") == []
    with pytest.raises(ArchitectureError, match="no valid"):
        SPACE.mutate("01.00|input,output", np.random.default_rng(0))


def test_sample_is_valid_seven_vertex_and_reproducible():
    a = [SPACE.sample(np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(1)
    drawn = [SPACE.sample(rng) for _ in range(300)]
    assert all(SPACE.is_valid(x) and SPACE.cell(x).num_vertices == 7 for x in drawn)
    assert all(SPACE.cell(x).num_edges <= 9 for x in drawn)
    assert len(set(drawn)) == len(drawn)
    assert len({SPACE.graph_hash(x) for x in drawn}) > 100  # many draws prune to small cells


# ---- features ---------------------------------------------------------------------------------------

def test_encode_layout():
    e = SPACE.encode(INCEPTION)
    assert e.shape == (ENCODING_LENGTH,) == (36,) and e.dtype == np.float64
    m, _ = SPACE.matrix_and_ops(INCEPTION)
    assert np.array_equal(e[:21], m[np.triu_indices(7, k=1)])
    assert np.array_equal(e[21:].reshape(5, 3),
                          [[0, 1, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 0, 1]])
    # A 3-vertex cell: the output moves to slot 6, slots 2..5 are empty.
    small = SPACE.encode("010.001.000|input,maxpool3x3,output")
    padded = np.zeros((7, 7))
    padded[0, 1] = padded[1, 6] = 1
    assert np.array_equal(small[:21], padded[np.triu_indices(7, k=1)])
    assert np.array_equal(small[21:24], [0, 0, 1]) and not small[24:].any()


@PROPS
@given(archs)
def test_encode_is_fixed_length_binary(arch):
    e = SPACE.encode(arch)
    assert e.shape == (36,) and e.dtype == np.float64
    assert set(np.unique(e)) <= {0.0, 1.0}
    f = SPACE.size_features(arch)
    assert e[:21].sum() == f["edges"]
    assert e[21:].sum() == f["vertices"] - 2 == sum(f[op] for op in OPS)


def test_size_features():
    assert SPACE.size_features(INCEPTION) == {"vertices": 7, "edges": 9, C3: 3, C1: 1, MP: 1}


# ---- malformed input --------------------------------------------------------------------------------

SEVEN_OPS = "input," + ",".join([C3] * 5) + ",output"
MALFORMED = [
    ("010.001.000|input,conv5x5-bn-relu,output", r"unknown op 'conv5x5-bn-relu'"),
    ("0111111.0011110.0000000.0000000.0000000.0000000.0000000|" + SEVEN_OPS, r"10 edges"),
    (".".join(["0" * 7 + "1"] + ["0" * 8] * 7) + "|input," + ",".join([C3] * 6) + ",output",
     r"8 vertices"),
    ("010.101.000|input,conv3x3-bn-relu,output", r"not upper-triangular"),
    ("110.001.000|input,conv3x3-bn-relu,output", r"not upper-triangular"),
    ("010.000.000|input,conv3x3-bn-relu,output", r"not connected to output"),
    ("0110.0000.0000.0000|input,conv3x3-bn-relu,maxpool3x3,output", r"not connected to output"),
    ("010.001.000", r"bad syntax"),
    ("010.001.000|input|output", r"bad syntax"),
    ("010..000|input,conv3x3-bn-relu,output", r"bad syntax"),
    ("010.001.000|input,,output", r"bad syntax"),
    ("", r"bad syntax"),
    ("020.001.000|input,conv3x3-bn-relu,output", r"0 or 1"),
    ("01x.001.000|input,conv3x3-bn-relu,output", r"0 or 1"),
    ("010.01.000|input,conv3x3-bn-relu,output", r"not square"),
    ("010.001.000|input,output", r"ops length 2"),
    ("010.001.000|conv3x3-bn-relu,input,output", r"first op must be 'input'"),
    ("010.001.000|input,output,conv3x3-bn-relu", r"last op 'output'"),
    ("1|input", r"1 vertices"),
    ("0|input", r"1 vertices"),
]


@pytest.mark.parametrize("text,problem", MALFORMED)
def test_malformed_raises_naming_the_problem(text, problem):
    with pytest.raises(ArchitectureError, match=problem):
        SPACE.parse(text)
    assert not SPACE.is_valid(text)


def test_malformed_matrices_and_types():
    with pytest.raises(ArchitectureError, match="bad syntax"):
        SPACE.parse(123)  # type: ignore[arg-type]
    with pytest.raises(ArchitectureError, match="0 or 1"):
        SPACE.from_matrix([[0, 2], [0, 0]], ["input", "output"])
    with pytest.raises(ArchitectureError, match="not square"):
        SPACE.from_matrix([[0, 1, 0], [0, 0]], ["input", C3, "output"])
    with pytest.raises(ArchitectureError, match="unknown op"):
        SPACE.from_matrix(np.triu(np.ones((3, 3), dtype=int), 1), ["input", "input", "output"])
    assert isinstance(ArchitectureError("x"), ValueError)


# ---- cross-check against the official implementation ---------------------------------------------

def _random_raw_cells(n: int, seed: int):
    """Random upper-triangular matrices of 2..7 vertices (dangling and disconnected ones included)."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        v = int(rng.integers(2, 8))
        m = np.triu(rng.integers(0, 2, size=(v, v)), 1)
        ops = ["input"] + [OPS[i] for i in rng.integers(0, 3, size=v - 2)] + ["output"]
        yield m, ops


def test_hash_module_matches_official_graph_util_without_torch():
    """graph_util.py of nasbench-pytorch imports only numpy: load it by path, without the package
    ``nasbench_pytorch.model`` (whose __init__ imports torch)."""
    spec = importlib.util.find_spec("nasbench_pytorch")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("nasbench-pytorch is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "model" / "graph_util.py"
    mod_spec = importlib.util.spec_from_file_location("_official_nb101_graph_util", path)
    graph_util = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(graph_util)
    for m, ops in _random_raw_cells(1500, seed=11):
        labels = [-1] + [OPS.index(op) for op in ops[1:-1]] + [-2]
        assert hash_module(m.tolist(), labels) == graph_util.hash_module(m, labels)
    for arch in [INCEPTION, *OFFICIAL_HASHES]:
        m, ops = SPACE.matrix_and_ops(SPACE.prune(arch))
        labels = [-1] + [OPS.index(op) for op in ops[1:-1]] + [-2]
        assert graph_util.hash_module(m, labels) == SPACE.graph_hash(arch)


def _official_prune(ModelSpec, matrix: np.ndarray, ops: list[str]):
    """Run the official ``ModelSpec._prune`` on numpy data. (``ModelSpec.__init__`` then turns the
    pruned matrix into a torch tensor, which fails for a disconnected spec whose matrix is None.)"""
    spec = ModelSpec.__new__(ModelSpec)
    spec.original_matrix, spec.original_ops = matrix.copy(), list(ops)
    spec.matrix, spec.ops, spec.valid_spec = matrix.copy(), list(ops), True
    spec._prune()
    return spec


def test_cross_check_with_nasbench_pytorch():
    pytest.importorskip("torch")
    pytest.importorskip("nasbench_pytorch")
    from nasbench_pytorch.model import ModelSpec, graph_util

    checked = 0
    rng = np.random.default_rng(5)
    sampled = [SPACE.matrix_and_ops(SPACE.sample(rng)) for _ in range(300)]
    for m, ops in [*_random_raw_cells(1500, seed=3), *sampled]:
        if m.sum() > 9:
            continue  # not a key here (see the module docstring)
        spec = _official_prune(ModelSpec, m, ops)
        try:
            arch = SPACE.from_matrix(m, ops)
        except ArchitectureError as err:
            assert not spec.valid_spec, str(err)
            assert "not connected" in str(err)
            continue
        assert spec.valid_spec
        pm, pops = SPACE.matrix_and_ops(SPACE.prune(arch))
        assert np.array_equal(pm, spec.matrix) and pops == spec.ops
        # What ModelSpec.hash_spec(OPS) computes, on the numpy matrix: hash_spec itself passes the
        # torch tensor to np.sum(..., axis=0), which current torch rejects (TypeError).
        labeling = [-1] + [OPS.index(op) for op in spec.ops[1:-1]] + [-2]
        assert SPACE.graph_hash(arch) == graph_util.hash_module(spec.matrix, labeling)
        labels = [-1] + [OPS.index(op) for op in ops[1:-1]] + [-2]
        assert hash_module(m.tolist(), labels) == graph_util.hash_module(m, labels)
        checked += 1
    assert checked > 1000
    for arch in [INCEPTION, INCEPTION_AS_STORED]:
        m, ops = SPACE.matrix_and_ops(arch)
        full = ModelSpec(m, ops)  # the public constructor, as used for training
        assert np.array_equal(np.asarray(full.matrix.tolist()), SPACE.matrix_and_ops(SPACE.prune(arch))[0])
        assert full.ops == SPACE.matrix_and_ops(SPACE.prune(arch))[1]
