"""The one seeding rule: how a search's seed becomes its random streams, for every entry point.

``pmfnas compare``, tabular ``pmfnas search`` and real ``pmfnas search --train`` all call
:func:`search_streams`, so a real search recorded with ``--record`` and replayed in tabular mode with the
same ``--seed`` makes the same decisions, and a comparison's run for seed S is the search ``--seed S``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["search_streams"]


def search_streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """``(oracle_rng, searcher_rng)`` of search ``seed``: two independent streams spawned from ``SeedSequence(seed)``.

    The oracle's stream picks which recorded repeat a tabular run sees; the searcher's drives every choice
    of the searcher. Independent streams keep methods compared on the same draws of the table.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} must be an integer >= 0")
    oracle_seed, searcher_seed = np.random.SeedSequence(int(seed)).spawn(2)
    return np.random.default_rng(oracle_seed), np.random.default_rng(searcher_seed)
