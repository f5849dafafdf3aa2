"""The NAS-Bench-101 cell search space (Ying et al. 2019), without torch or TensorFlow.

A cell is a DAG on ``V`` vertices (2 <= V <= 7) given by a strictly upper-triangular 0/1 adjacency
matrix with at most 9 edges, and a list of ``V`` ops: ``ops[0] == "input"``, ``ops[-1] == "output"``,
every other op one of :data:`OPS`.

Architecture key (the string every method takes and returns)::

    "0110000.0001000.0000100.0000010.0000001.0000001.0000000|input,conv3x3-bn-relu,...,output"

i.e. the rows of the adjacency matrix, top to bottom, each written as ``V`` characters ``0``/``1``
(``row[i][j] == "1"`` means an edge from vertex ``i`` to vertex ``j``), joined by ``"."``; then ``"|"``;
then the ``V`` op names joined by ``","``. No spaces. ``NB101Cell.from_string(c.to_string()) == c``
and :meth:`NB101Space.parse` returns exactly that string for a valid cell (it only strips surrounding
whitespace), so ``parse(format(x))`` is the identity.

A key keeps vertices that lie on no input->output path ("dangling" ones), as NAS-Bench-101's
``ModelSpec`` does: :meth:`NB101Space.prune` / :meth:`NB101Space.canonical` remove them with the
official pruning rule (``ModelSpec._prune``), and :meth:`NB101Space.graph_hash` is the official
``hash_module`` of the pruned cell, the key the official dataset is indexed by. The hash is
isomorphism-invariant: two cells that compute the same network share a ``graph_hash`` even when their
canonical (pruned) strings differ because their intermediate vertices are numbered differently.

The hash and the pruning are re-implementations of ``graph_util.hash_module`` and
``ModelSpec._prune`` from google-research/nasbench (Apache-2.0, as shipped in ``nasbench-pytorch``)
that give identical results; ``tests/test_space_nb101.py`` cross-checks them against that package
when it is installed.

One deliberate difference from the official API: the official ``NASBench.is_valid`` counts edges
*after* pruning, so it accepts an unpruned 7x7 matrix with more than 9 edges if pruning leaves at
most 9. Here a key itself may hold at most 9 edges (its pruned form is then always valid too); any
such official cell is reachable here through its pruned form, which has the same ``graph_hash``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from benchmarks.spaces.base import ArchitectureError

INPUT = "input"
OUTPUT = "output"
OPS: tuple[str, ...] = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
"""The intermediate ops, in the canonical order whose indices label them in the official hash."""
MIN_VERTICES = 2
MAX_VERTICES = 7
MAX_EDGES = 9
N_EDGE_SLOTS = MAX_VERTICES * (MAX_VERTICES - 1) // 2  # 21
N_OP_SLOTS = MAX_VERTICES - 2  # 5
ENCODING_LENGTH = N_EDGE_SLOTS + N_OP_SLOTS * len(OPS)  # 36
SIZE_FEATURE_NAMES: tuple[str, ...] = ("vertices", "edges") + OPS
"""The keys of :meth:`NB101Space.size_features`, in order."""

_LABEL = {INPUT: -1, OUTPUT: -2, **{op: i for i, op in enumerate(OPS)}}


@dataclass(frozen=True)
class NB101Cell:
    """One NAS-Bench-101 cell; constructing it validates it (ArchitectureError names the problem)."""

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        _validate(self.matrix, self.ops)

    @property
    def num_vertices(self) -> int:
        return len(self.ops)

    @property
    def num_edges(self) -> int:
        return sum(map(sum, self.matrix))

    def to_string(self) -> str:
        """The architecture key (see the module docstring)."""
        rows = ".".join("".join(str(b) for b in row) for row in self.matrix)
        return f"{rows}|{','.join(self.ops)}"

    @classmethod
    def from_string(cls, text: str) -> "NB101Cell":
        """Parse an architecture key; ArchitectureError names what is wrong with it."""
        if not isinstance(text, str):
            raise ArchitectureError(f"bad syntax: an NB101 key is a string, got {type(text).__name__}")
        text = text.strip()
        parts = text.split("|")
        if len(parts) != 2:
            raise ArchitectureError(f"bad syntax: expected 'ROW.ROW...|OP,OP,...' with exactly one '|', "
                                    f"got {text!r}")
        rows_text, ops_text = parts
        rows = rows_text.split(".")
        if not rows_text or any(not r for r in rows):
            raise ArchitectureError(f"bad syntax: empty matrix row in {rows_text!r} "
                                    f"(rows are 0/1 strings separated by '.')")
        for r in rows:
            bad = set(r) - {"0", "1"}
            if bad:
                raise ArchitectureError(f"matrix entries must be 0 or 1, got {sorted(bad)} in row {r!r}")
        ops = tuple(ops_text.split(",")) if ops_text else ()
        if any(op != op.strip() or not op for op in ops):
            raise ArchitectureError(f"bad syntax: empty op name or stray whitespace in {ops_text!r}")
        return cls(tuple(tuple(int(c) for c in r) for r in rows), ops)

    @classmethod
    def from_matrix(cls, matrix, ops: Sequence[str]) -> "NB101Cell":
        """A cell from a nested sequence or array of 0/1 (or bool) entries and a sequence of op names."""
        try:
            raw = [list(row) for row in (matrix.tolist() if isinstance(matrix, np.ndarray) else matrix)]
        except TypeError:
            raise ArchitectureError("matrix is not square: expected a V x V nested sequence") from None
        rows = []
        for row in raw:
            entries = []
            for x in row:
                if isinstance(x, (bool, np.bool_, int, float, np.integer, np.floating)) and x in (0, 1):
                    entries.append(int(x))
                else:
                    raise ArchitectureError(f"matrix entries must be 0 or 1, got {x!r}")
            rows.append(tuple(entries))
        return cls(tuple(rows), tuple(str(op) for op in ops))


def _validate(matrix: tuple[tuple[int, ...], ...], ops: tuple[str, ...]) -> None:
    v = len(matrix)
    if any(len(row) != v for row in matrix):
        raise ArchitectureError(f"matrix is not square: {v} rows of lengths {[len(r) for r in matrix]}")
    if any(x not in (0, 1) or isinstance(x, bool) for row in matrix for x in row):
        raise ArchitectureError("matrix entries must be 0 or 1 (as int)")
    if not MIN_VERTICES <= v <= MAX_VERTICES:
        raise ArchitectureError(f"{v} vertices; NAS-Bench-101 cells have {MIN_VERTICES} to "
                                f"{MAX_VERTICES} vertices")
    if len(ops) != v:
        raise ArchitectureError(f"ops length {len(ops)} does not match the {v} vertices of the matrix")
    if ops[0] != INPUT or ops[-1] != OUTPUT:
        raise ArchitectureError(f"first op must be {INPUT!r} and last op {OUTPUT!r}, got "
                                f"{ops[0]!r} ... {ops[-1]!r}")
    for i, op in enumerate(ops[1:-1], start=1):
        if op not in OPS:
            raise ArchitectureError(f"unknown op {op!r} at vertex {i}; expected one of {OPS}")
    for i in range(v):
        for j in range(i + 1):
            if matrix[i][j]:
                raise ArchitectureError(f"matrix is not upper-triangular: entry ({i}, {j}) on or below "
                                        f"the diagonal is 1")
    edges = sum(map(sum, matrix))
    if edges > MAX_EDGES:
        raise ArchitectureError(f"{edges} edges; NAS-Bench-101 allows at most {MAX_EDGES}")
    if _kept_vertices(matrix) is None:
        raise ArchitectureError("input is not connected to output (no input->output path), so the cell "
                                "is disconnected and computes nothing")


def _kept_vertices(matrix: Sequence[Sequence[int]]) -> list[int] | None:
    """Vertices on some input->output path (official ``ModelSpec._prune``); None if disconnected."""
    v = len(matrix)
    from_input, frontier = {0}, [0]
    while frontier:
        top = frontier.pop()
        for w in range(top + 1, v):
            if matrix[top][w] and w not in from_input:
                from_input.add(w)
                frontier.append(w)
    to_output, frontier = {v - 1}, [v - 1]
    while frontier:
        top = frontier.pop()
        for w in range(top):
            if matrix[w][top] and w not in to_output:
                to_output.add(w)
                frontier.append(w)
    kept = from_input & to_output
    # As in the official code: fewer than 2 kept vertices means input and output are disconnected.
    if len(kept) < 2:
        return None
    return sorted(kept)


def _prune_cell(cell: NB101Cell) -> NB101Cell:
    kept = _kept_vertices(cell.matrix)
    assert kept is not None  # a validated cell is connected
    matrix = tuple(tuple(cell.matrix[i][j] for j in kept) for i in kept)
    return NB101Cell(matrix, tuple(cell.ops[i] for i in kept))


def hash_module(matrix: Sequence[Sequence[int]], labeling: Sequence[int]) -> str:
    """The official NAS-Bench-101 graph hash (``graph_util.hash_module``), same md5 strings.

    Each vertex starts as md5 of ``str((out_degree, in_degree, label))``; then ``V`` times every vertex
    becomes md5 of ``sorted in-neighbour hashes + "|" + sorted out-neighbour hashes + "|" + own hash``;
    the fingerprint is md5 of ``str(sorted(hashes))``.
    """
    v = len(matrix)
    in_edges = [sum(int(matrix[w][u]) for w in range(v)) for u in range(v)]
    out_edges = [sum(int(x) for x in matrix[u]) for u in range(v)]
    assert len(labeling) == v
    hashes = [hashlib.md5(str((out_edges[u], in_edges[u], int(labeling[u]))).encode("utf-8")).hexdigest()
              for u in range(v)]
    in_nbrs = [[w for w in range(v) if matrix[w][u]] for u in range(v)]
    out_nbrs = [[w for w in range(v) if matrix[u][w]] for u in range(v)]
    for _ in range(v):
        hashes = [hashlib.md5((''.join(sorted(hashes[w] for w in in_nbrs[u])) + '|'
                               + ''.join(sorted(hashes[w] for w in out_nbrs[u])) + '|'
                               + hashes[u]).encode("utf-8")).hexdigest()
                  for u in range(v)]
    return hashlib.md5(str(sorted(hashes)).encode("utf-8")).hexdigest()


@lru_cache(maxsize=65536)
def _cell(arch: str) -> NB101Cell:
    return NB101Cell.from_string(arch)


@lru_cache(maxsize=65536)
def _pruned(arch: str) -> NB101Cell:
    return _prune_cell(_cell(arch))


@lru_cache(maxsize=65536)
def _graph_hash(arch: str) -> str:
    p = _pruned(arch)
    return hash_module(p.matrix, [_LABEL[op] for op in p.ops])


class NB101Space:
    """The NAS-Bench-101 cell space; keys are the strings described in the module docstring."""

    name = "nb101"

    # ---- keys -------------------------------------------------------------------------------------
    def parse(self, text: str) -> str:
        """Validate ``text`` and return its key; ArchitectureError names the problem.

        Rejected: bad syntax, entries other than 0/1, a non-square matrix, fewer than 2 or more than 7
        vertices, ops not matching the vertices, first/last op not input/output, an unknown op, a matrix
        not strictly upper-triangular, more than 9 edges, input not connected to output.
        """
        return self.cell(text).to_string()

    def cell(self, arch: str) -> NB101Cell:
        """The validated :class:`NB101Cell` of a key (surrounding whitespace ignored)."""
        if not isinstance(arch, str):
            raise ArchitectureError(f"bad syntax: an NB101 key is a string, got {type(arch).__name__}")
        return _cell(arch.strip())

    def from_matrix(self, matrix, ops: Sequence[str]) -> str:
        """The key of the cell with this adjacency matrix (nested sequence or array) and ops."""
        return NB101Cell.from_matrix(matrix, ops).to_string()

    def matrix_and_ops(self, arch: str) -> tuple[np.ndarray, list[str]]:
        """``(matrix as a V x V int8 array, list of V op names)`` of a key, unpruned."""
        c = self.cell(arch)
        return np.array(c.matrix, dtype=np.int8), list(c.ops)

    def is_valid(self, arch: str) -> bool:
        try:
            self.cell(arch)
        except ArchitectureError:
            return False
        return True

    # ---- identity ---------------------------------------------------------------------------------
    def prune(self, arch: str) -> str:
        """The key of the cell with every vertex not on an input->output path removed.

        Same result as the official ``ModelSpec._prune`` (kept vertices stay in their order). A
        disconnected cell cannot be a key: :meth:`parse` already raises ArchitectureError for it.
        """
        return _pruned(self.cell(arch).to_string()).to_string()

    def canonical(self, arch: str) -> str:
        """The pruned form of ``arch`` (see :meth:`prune`).

        Cells that differ only in dangling vertices share it. It is *not* an isomorphism class
        representative: isomorphic cells (same network, intermediate vertices numbered differently)
        share :meth:`graph_hash` but their canonical strings may differ. Use :meth:`graph_hash` /
        :meth:`table_key` to identify networks.
        """
        return self.prune(arch)

    def graph_hash(self, arch: str) -> str:
        """The official NAS-Bench-101 hash (``ModelSpec.hash_spec(OPS)``) of the pruned cell."""
        return _graph_hash(self.cell(arch).to_string())

    def table_key(self, arch: str) -> str:
        """The official dataset's key for ``arch``: :meth:`graph_hash`."""
        return self.graph_hash(arch)

    # ---- search moves -----------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> str:
        """A cell drawn as NAS-Bench-101's own examples draw one, using only ``rng``.

        A random strictly upper-triangular 7x7 0/1 matrix (each entry a fair coin) and random
        intermediate ops, redrawn until the cell is valid (at most 9 edges, input connected to
        output): uniform over the valid 7-vertex keys. The key is returned unpruned.
        """
        iu = np.triu_indices(MAX_VERTICES, k=1)
        while True:
            bits = rng.integers(0, 2, size=N_EDGE_SLOTS)
            op_idx = rng.integers(0, len(OPS), size=N_OP_SLOTS)
            if bits.sum() > MAX_EDGES:
                continue
            m = np.zeros((MAX_VERTICES, MAX_VERTICES), dtype=int)
            m[iu] = bits
            if _kept_vertices(m.tolist()) is None:
                continue
            ops = (INPUT,) + tuple(OPS[i] for i in op_idx) + (OUTPUT,)
            return NB101Cell(tuple(tuple(r) for r in m.tolist()), ops).to_string()

    def neighbours(self, arch: str) -> list[str]:
        """Every valid key exactly one thing away from ``arch``, in a fixed order.

        "One thing" is either one edge flipped (an upper-triangular entry 0 <-> 1, the number of
        vertices unchanged) or one intermediate vertex's op changed to another op. Flips come first,
        row by row, then op changes vertex by vertex in :data:`OPS` order. Flips that would exceed 9
        edges or disconnect input from output are left out. Neighbours may share ``graph_hash`` with
        ``arch`` (e.g. an op change on a dangling vertex) but never its key.
        """
        c = self.cell(arch)
        v = c.num_vertices
        out: list[str] = []
        edges = c.num_edges
        for i in range(v):
            for j in range(i + 1, v):
                if not c.matrix[i][j] and edges >= MAX_EDGES:
                    continue
                m = [list(r) for r in c.matrix]
                m[i][j] ^= 1
                if _kept_vertices(m) is None:
                    continue
                out.append(NB101Cell(tuple(map(tuple, m)), c.ops).to_string())
        for k in range(1, v - 1):
            for op in OPS:
                if op != c.ops[k]:
                    ops = c.ops[:k] + (op,) + c.ops[k + 1:]
                    out.append(NB101Cell(c.matrix, ops).to_string())
        return out

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        """A valid key that differs from ``arch`` in exactly one thing: one edge or one op.

        Equivalent to drawing a random single edge flip or op change and redrawing until the result
        is valid and differs: uniform over :meth:`neighbours`. Raises ArchitectureError for a cell with
        no valid neighbour (only the 2-vertex cell input->output has none).
        """
        options = self.neighbours(arch)
        if not options:
            raise ArchitectureError(f"{arch!r} has no valid single-edge or single-op mutation")
        return options[int(rng.integers(len(options)))]

    # ---- features ---------------------------------------------------------------------------------
    def encode(self, arch: str) -> np.ndarray:
        """A float64 vector of length 36 describing the *pruned* cell.

        The pruned cell is padded to 7 vertices by inserting empty vertices just before the output
        (input stays vertex 0, intermediates keep their order at 1.., output becomes vertex 6). Then:

        * ``[0:21]`` — the 21 upper-triangular adjacency bits of the padded 7x7 matrix, row-major
          (``(0,1), (0,2), ..., (0,6), (1,2), ..., (5,6)``);
        * ``[21:36]`` — for each of the 5 intermediate slots (vertices 1..5) a one-hot over
          :data:`OPS` (all zero for an empty slot).

        Cells with the same pruned form share an encoding; isomorphic cells may not.
        """
        p = _pruned(self.cell(arch).to_string())
        v = p.num_vertices
        slot = list(range(v - 1)) + [MAX_VERTICES - 1]  # pruned vertex -> padded index
        padded = np.zeros((MAX_VERTICES, MAX_VERTICES))
        for i in range(v):
            for j in range(v):
                if p.matrix[i][j]:
                    padded[slot[i], slot[j]] = 1.0
        onehot = np.zeros((N_OP_SLOTS, len(OPS)))
        for k in range(1, v - 1):
            onehot[k - 1, OPS.index(p.ops[k])] = 1.0
        return np.concatenate([padded[np.triu_indices(MAX_VERTICES, k=1)], onehot.ravel()])

    def size_features(self, arch: str) -> dict[str, int]:
        """Size of the pruned cell: ``vertices``, ``edges`` and the count of each op in :data:`OPS`."""
        p = _pruned(self.cell(arch).to_string())
        feats = {"vertices": p.num_vertices, "edges": p.num_edges}
        feats.update({op: p.ops.count(op) for op in OPS})
        return feats
