"""Facts of the nb201-fmnist build so far: cells, failures, spread of final accuracy, low-fidelity rank
correlation, charged seconds, and the CPU the build used (from its manifest).

Usage (from the repository root): python results/nb201-fmnist/facts.py [build-data/nb201-fmnist]
"""
import json
import sys

import numpy as np
from scipy.stats import spearmanr

from benchmarks.spaces.nb201 import EDGES, NB201Space
from benchmarks.training.build import merge_chunks, read_manifest


def has_live_path(ops) -> bool:
    """Whether non-``none`` edges connect the cell's input (node 0) to its output (node 3)."""
    reached = {0}
    for (to_node, from_node), op in zip(EDGES, ops):  # edges are listed in topological order
        if op != "none" and from_node in reached:
            reached.add(to_node)
    return 3 in reached


def main(build: str = "build-data/nb201-fmnist") -> None:
    table, manifest = merge_chunks(build), read_manifest(build)
    space = NB201Space()
    valid = np.asarray(table.curves["valid"])[:, 0, :]
    test = np.asarray(table.curves["test"])[:, 0, -1]
    failed = table.failed[:, 0]
    live = np.array([has_live_path(space.ops(str(a))) for a in table.arch_ids]) & ~failed
    final, epochs = valid[live, -1], valid.shape[1]
    early = max(1, round(0.1 * epochs))
    runs = [r for r in manifest["runs"] if r.get("built")]
    size, n_archs = manifest["settings"]["chunk_size"], manifest["n_archs"]
    # Only chunks with a CPU record (the first runs kept wall seconds only); the last chunk may be short.
    timed = {int(i): c for r in runs for i, c in r.get("chunk_seconds", {}).items() if c.get("process_cpu") is not None}
    chunk_cpu = [c["process_cpu"] for c in timed.values()]
    chunk_wall = [c["wall"] for c in timed.values()]
    cells_timed = sum(min(size, n_archs - i * size) for i in timed)
    facts = {
        "cells": int(len(table)), "of": manifest["n_archs"], "chunks": table.metadata.extra["chunks"],
        "failed": int(failed.sum()), "live_path": int(live.sum()),
        "final_valid_live": {q: round(float(np.percentile(final, p)), 2)
                             for q, p in (("min", 0), ("p10", 10), ("median", 50), ("p90", 90), ("max", 100))},
        "spread_live_points": round(float(final.max() - final.min()), 2),
        "final_valid_dead_path": sorted(round(float(v), 1) for v in valid[~live & ~failed, -1]),
        "final_test_live_median": round(float(np.median(test[live])), 2),
        f"spearman_epoch{early}_final": round(float(spearmanr(valid[live, early - 1], final).statistic), 3),
        "spearman_epoch10_final": round(float(spearmanr(valid[live, 9], final).statistic), 3) if epochs >= 10 else None,
        "charged_seconds_per_epoch": {"min": round(float(np.nanmin(table.seconds)), 3),
                                      "mean": round(float(np.nanmean(table.seconds)), 3),
                                      "max": round(float(np.nanmax(table.seconds)), 3)},
        "cost_model": {k: manifest["cost_model"][k] for k in ("clock", "used", "r2", "rmse", "coefficients")},
        "timed_chunks": len(timed), "timed_cells": cells_timed,
        "build_cpu_seconds_per_cell": round(sum(chunk_cpu) / cells_timed, 2) if chunk_cpu else None,
        "build_wall_seconds_per_cell": round(sum(chunk_wall) / cells_timed, 2) if chunk_wall else None,
        "runs": [{k: r.get(k) for k in ("started", "finished", "status", "seconds", "process_cpu_seconds")}
                 for r in manifest["runs"]],
    }
    if chunk_cpu:
        facts["projected_cpu_hours_all"] = round(facts["build_cpu_seconds_per_cell"] * manifest["n_archs"] / 3600, 2)
    print(json.dumps(facts, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
