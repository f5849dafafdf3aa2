"""The NAS-Bench-201 cell search space.

A cell is a DAG of four nodes; node 0 is the cell input, node 3 its output, and every node sums
its incoming edges. Each of the six edges carries one op from :data:`OPS`, giving 5**6 = 15,625
architectures. Architectures are the benchmark's own strings, e.g.
``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``:
one ``+``-separated group per non-input node, one ``|op~j|`` entry per incoming edge from
node ``j``.

Indices follow the official ``nas_201_api`` numbering, so an index here names the same network
as an index in NAS-Bench-201 and NATS-Bench (topology).
"""
from __future__ import annotations

import functools
import itertools
import operator
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.spaces.base import ArchitectureError

__all__ = [
    "EDGES",
    "N_ARCHITECTURES",
    "N_NODES",
    "OPS",
    "SIZE_FEATURES",
    "NB201Space",
]

#: Candidate ops in the official order of ``get_search_spaces('cell', 'nas-bench-201')``.
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")

#: (to_node, from_node) per edge, in the order the edges appear in the official string.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))

N_NODES = 4
N_ARCHITECTURES = len(OPS) ** len(EDGES)

#: Names of the entries of :meth:`NB201Space.size_features`, in order.
SIZE_FEATURES: tuple[str, ...] = (
    "n_conv3x3",
    "n_conv1x1",
    "n_conv3x3_live",
    "n_conv1x1_live",
    "output_reachable",
)

# NAS-Bench-201's generate_meta_info shuffled the enumeration with this seed; the official
# indices are positions in that shuffled list.
_SHUFFLE_SEED = 88

_OP_INDEX = {op: i for i, op in enumerate(OPS)}
_ZERO = "#"


def _format(ops: Sequence[str]) -> str:
    groups = []
    k = 0
    for to_node in range(1, N_NODES):
        groups.append("|" + "|".join(f"{ops[k + j]}~{j}" for j in range(to_node)) + "|")
        k += to_node
    return "+".join(groups)


def _describe(text: str) -> str:
    return repr(text if len(text) <= 120 else text[:117] + "...")


def _parse_ops(text: object) -> tuple[str, ...]:
    """The six ops of ``text`` in EDGES order; raise one ArchitectureError naming the problem."""
    if not isinstance(text, str):
        raise ArchitectureError(
            f"NB201 architecture must be a str, got {type(text).__name__}: {text!r:.120}"
        )
    s = text.strip()
    if not s:
        raise ArchitectureError("empty NB201 architecture string")
    if any(c.isspace() for c in s):
        raise ArchitectureError(
            f"whitespace inside NB201 architecture {_describe(text)}; only surrounding whitespace "
            "is accepted"
        )
    groups = s.split("+")
    if len(groups) != N_NODES - 1:
        raise ArchitectureError(
            f"expected {N_NODES - 1} nodes ('+'-separated groups) in NB201 architecture, "
            f"got {len(groups)}: {_describe(text)}"
        )
    ops: list[str] = []
    for to_node, group in enumerate(groups, start=1):
        if len(group) < 2 or not group.startswith("|") or not group.endswith("|"):
            raise ArchitectureError(
                f"node {to_node} group {group!r} is missing its enclosing '|' bars in "
                f"{_describe(text)}"
            )
        entries = group[1:-1].split("|")
        if len(entries) != to_node:
            raise ArchitectureError(
                f"node {to_node} must have {to_node} incoming edge(s), got {len(entries)} "
                f"in group {group!r}"
            )
        for expected_input, entry in enumerate(entries):
            op, sep, source = entry.partition("~")
            if not sep or "~" in source:
                raise ArchitectureError(
                    f"edge {entry!r} of node {to_node} is not of the form 'op~input_node'"
                )
            if op not in _OP_INDEX:
                raise ArchitectureError(
                    f"unknown op {op!r} on edge {entry!r} of node {to_node}; "
                    f"allowed ops: {', '.join(OPS)}"
                )
            # Inputs are listed in order 0..to_node-1, so the index is fully determined by position.
            if not (source.isascii() and source.isdigit()) or int(source) != expected_input:
                raise ArchitectureError(
                    f"edge {entry!r} of node {to_node} has input node index {source!r}, "
                    f"expected {expected_input}"
                )
            ops.append(op)
    return tuple(ops)


def _product_index(ops: Sequence[str]) -> int:
    # gen_all enumerates like itertools.product(OPS, repeat=6): first edge most significant.
    p = 0
    for op in ops:
        p = p * len(OPS) + _OP_INDEX[op]
    return p


def _unique_key(ops: Sequence[str]) -> str:
    # Structure.to_unique_str(consider_zero=True) from AutoDL-Projects: this rule is what defines
    # the published 6,466 classes, so keep its quirks (see NB201Space.unique_key).
    nodes = {0: "0"}
    k = 0
    for to_node in range(1, N_NODES):
        terms = []
        for from_node in range(to_node):
            op = ops[k]
            k += 1
            source = nodes[from_node]
            if op == "none" or source == _ZERO:
                terms.append(_ZERO)
            elif op == "skip_connect":
                terms.append(source)
            else:
                terms.append(f"({source})@{op}")
        nodes[to_node] = "+".join(sorted(terms))
    return nodes[N_NODES - 1]


def _live_edges(ops: Sequence[str]) -> tuple[list[bool], bool]:
    """Which edges lie on an input-to-output path of non-``none`` edges, and whether one exists."""
    from_input = [True] + [False] * (N_NODES - 1)
    for (to_node, from_node), op in zip(EDGES, ops):
        if op != "none" and from_input[from_node]:
            from_input[to_node] = True
    to_output = [False] * (N_NODES - 1) + [True]
    for (to_node, from_node), op in reversed(list(zip(EDGES, ops))):
        if op != "none" and to_output[to_node]:
            to_output[from_node] = True
    live = [
        op != "none" and from_input[from_node] and to_output[to_node]
        for (to_node, from_node), op in zip(EDGES, ops)
    ]
    return live, from_input[N_NODES - 1]


@dataclass(frozen=True)
class _IndexTables:
    archs: tuple[str, ...]
    index_of: dict[str, int]


@dataclass(frozen=True)
class _ClassTables:
    representative: tuple[int, ...]  # official index -> official index of its class representative
    unique: tuple[str, ...]


@functools.cache
def _index_tables() -> _IndexTables:
    ops_list = list(itertools.product(OPS, repeat=len(EDGES)))
    # A private generator: must not read or disturb the global random state.
    random.Random(_SHUFFLE_SEED).shuffle(ops_list)
    archs = tuple(_format(ops) for ops in ops_list)
    return _IndexTables(archs=archs, index_of={a: i for i, a in enumerate(archs)})


@functools.cache
def _class_tables() -> _ClassTables:
    archs = _index_tables().archs
    first: dict[str, int] = {}
    representative = []
    for i, arch in enumerate(archs):
        key = _unique_key(_parse_ops(arch))
        representative.append(first.setdefault(key, i))
    return _ClassTables(
        representative=tuple(representative),
        unique=tuple(archs[i] for i in first.values()),
    )


class NB201Space:
    """The NAS-Bench-201 / NATS-Bench topology space; keys are official architecture strings."""

    name: str = "nb201"
    n_architectures: int = N_ARCHITECTURES
    ops_choices: tuple[str, ...] = OPS
    edges: tuple[tuple[int, int], ...] = EDGES

    # --- strings -------------------------------------------------------------------------------

    def parse(self, text: str) -> str:
        """Validate ``text`` and return its official string; raise ArchitectureError if malformed.

        Only surrounding whitespace is tolerated; inputs must be listed as ``~0, ~1, ...``.
        """
        return _format(_parse_ops(text))

    def ops(self, arch: str) -> tuple[str, ...]:
        """The six ops of ``arch``, in :data:`EDGES` order."""
        return _parse_ops(arch)

    def from_ops(self, ops: Iterable[str]) -> str:
        """The official string for six ops given in :data:`EDGES` order."""
        ops = tuple(ops)
        if len(ops) != len(EDGES):
            raise ArchitectureError(f"expected {len(EDGES)} ops (one per edge), got {len(ops)}")
        for op in ops:
            if op not in _OP_INDEX:
                raise ArchitectureError(f"unknown op {op!r}; allowed ops: {', '.join(OPS)}")
        return _format(ops)

    def table_key(self, arch: str) -> str:
        """The key NAS-Bench-201 stores ``arch`` under: its official string."""
        return self.parse(arch)

    # --- official indices ----------------------------------------------------------------------

    def index(self, arch: str) -> int:
        """The official ``nas_201_api`` index of ``arch`` (0 .. 15624)."""
        return _index_tables().index_of[self.parse(arch)]

    def from_index(self, i: int) -> str:
        """The architecture with official index ``i``; ValueError when out of range."""
        if isinstance(i, bool):
            raise TypeError(f"architecture index must be an integer, got bool {i!r}")
        i = operator.index(i)
        if not 0 <= i < N_ARCHITECTURES:
            raise ValueError(
                f"architecture index {i} out of range [0, {N_ARCHITECTURES - 1}] "
                f"({N_ARCHITECTURES} NB201 architectures)"
            )
        return _index_tables().archs[i]

    def all_architectures(self) -> list[str]:
        """All 15,625 architectures in official index order."""
        return list(_index_tables().archs)

    # --- search moves --------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> str:
        """One architecture drawn uniformly with ``rng`` (each edge's op uniform, independent)."""
        return _format([OPS[j] for j in rng.integers(0, len(OPS), size=len(EDGES))])

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        """``arch`` with one uniformly chosen edge set to a uniformly chosen different op."""
        ops = list(_parse_ops(arch))
        edge = int(rng.integers(0, len(EDGES)))
        others = [op for op in OPS if op != ops[edge]]
        ops[edge] = others[int(rng.integers(0, len(others)))]
        return _format(ops)

    def neighbours(self, arch: str) -> list[str]:
        """The 24 one-edge changes of ``arch``: edges in EDGES order, new ops in OPS order."""
        ops = _parse_ops(arch)
        result = []
        for edge in range(len(EDGES)):
            for op in OPS:
                if op != ops[edge]:
                    result.append(_format(ops[:edge] + (op,) + ops[edge + 1 :]))
        return result

    # --- features ------------------------------------------------------------------------------

    def encode(self, arch: str) -> np.ndarray:
        """One-hot float64 vector of length 30; entry ``5*e + k`` is 1 iff edge ``e`` has OPS[k]."""
        vec = np.zeros(len(EDGES) * len(OPS), dtype=np.float64)
        for e, op in enumerate(_parse_ops(arch)):
            vec[e * len(OPS) + _OP_INDEX[op]] = 1.0
        return vec

    def size_features(self, arch: str) -> np.ndarray:
        """Cheap size proxies, float64, entries named by :data:`SIZE_FEATURES`.

        0. ``n_conv3x3``: edges with ``nor_conv_3x3``. The benchmark's network builds every edge,
           so the raw conv counts track its recorded parameters and FLOPs.
        1. ``n_conv1x1``: edges with ``nor_conv_1x1``.
        2. ``n_conv3x3_live``: ``nor_conv_3x3`` edges on an input-to-output path of non-``none``
           edges, i.e. the convolutions that can influence the cell's output.
        3. ``n_conv1x1_live``: the same for ``nor_conv_1x1``.
        4. ``output_reachable``: 1.0 if such a path exists at all, else 0.0 (the cell outputs zero).
        """
        ops = _parse_ops(arch)
        live, reachable = _live_edges(ops)
        return np.array(
            [
                sum(op == "nor_conv_3x3" for op in ops),
                sum(op == "nor_conv_1x1" for op in ops),
                sum(op == "nor_conv_3x3" and lv for op, lv in zip(ops, live)),
                sum(op == "nor_conv_1x1" and lv for op, lv in zip(ops, live)),
                float(reachable),
            ],
            dtype=np.float64,
        )

    # --- equivalence ---------------------------------------------------------------------------

    def unique_key(self, arch: str) -> str:
        """A string equal for exactly the architectures NAS-Bench-201 counts as isomorphic.

        This is ``Structure.to_unique_str(consider_zero=True)`` of AutoDL-Projects, the rule behind
        the published 6,466 unique cells. Node by node: a ``none`` edge, or an edge whose source
        string is exactly the zero ``#``, gives ``#``; ``skip_connect`` passes its source string
        through; any other op gives ``(source)@op``; a node is the sorted ``+``-join of its terms.
        Hence edges that cannot reach the output are ignored, ``skip_connect`` is the identity,
        and summation is commutative. The rule is deliberately not a full algebraic
        simplification: zero terms stay in a sum (``x + 0`` differs from ``x``), only a node with
        a single input can become ``#`` (a node whose two inputs are both zero is ``#+#``, not
        zero), and repeated terms count (``x + x`` differs from ``x``). Those are NAS-Bench-201's
        definitions, kept so the class count matches the literature.
        """
        return _unique_key(_parse_ops(arch))

    def is_equivalent(self, a: str, b: str) -> bool:
        """Whether ``a`` and ``b`` fall in the same NAS-Bench-201 isomorphism class."""
        return self.unique_key(a) == self.unique_key(b)

    def canonical(self, arch: str) -> str:
        """The member of ``arch``'s class with the smallest official index."""
        tables = _class_tables()
        return _index_tables().archs[tables.representative[self.index(arch)]]

    def unique_architectures(self) -> list[str]:
        """One representative per class (6,466 of them), in official index order."""
        return list(_class_tables().unique)

    def __repr__(self) -> str:
        return "NB201Space()"
