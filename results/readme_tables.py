"""The README's two "Measured" tables, recomputed from the committed runs.csv files (so no number in them is
typed by hand): the project's methods per benchmark, budget and workers, and PMF-NAS against every peer.

Usage (from the repository root, after ``bash results/make_all.sh``):
    python results/readme_tables.py [project|peers] [--write]
prints the table, or with ``--write`` puts it in place of the README's table with the same header.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from benchmarks.files import atomic_write
from harness.statistics import final_regrets, paired_tests

RESULTS = Path(__file__).resolve().parent
BENCHMARKS = ("nbnlp-wt2", "nb201-c10-sample", "nb201-fmnist")
BUDGETS = (10, 30)
BASELINES = ("random", "rea", "sh", "asha", "hyperband")
PROJECT_COLUMNS = ("random", "rea", "sh", "asha", "hyperband", "pmfnas")
ABLATIONS = ("pmfnas-no-predictor", "pmfnas-no-allocator", "pmfnas-no-stage2")
PEERS = ("dehb", "smac-hb", "optuna-tpe-hb", "optuna-tpe-sh", "synetune-asha", "synetune-bohb",
         "synetune-hypertune", "synetune-mobster", "synetune-dyhpo", "neps-hb", "neps-asha")
#: The folders (results/B/PREFIX, results/B/PREFIX-10-full-evals) that hold the peers' runs.
PEER_FOLDERS = ("peers", "peers-neps", "peers-smac", "peers-hypertune", "peers-mobster", "peers-dyhpo")
NAMES = {"random": "random", "rea": "REA", "sh": "SH", "asha": "ASHA", "hyperband": "Hyperband",
         "pmfnas": "PMF-NAS"}


def _folder(benchmark: str, prefix: str, budget: int, workers: int = 1) -> Path:
    return RESULTS / benchmark / (prefix + ("" if budget == 30 else "-10-full-evals") + ("" if workers == 1 else f"-w{workers}"))


def _regrets(folder: Path) -> pd.DataFrame | None:
    runs = folder / "runs.csv"
    return final_regrets(pd.read_csv(runs)) if runs.is_file() else None


def _f(value: float) -> str:
    return "–" if pd.isna(value) else f"{value:.3f}"


def project_table() -> list[str]:
    """Mean regret of every project method; Holm-corrected one-sided p of PMF-NAS against the baseline (random,
    REA, SH, ASHA, Hyperband) with the lowest mean regret, in the direction the data point."""
    lines = ["| benchmark | N | W | random | REA | SH | ASHA | Hyperband | PMF-NAS | p vs best | no-predictor | "
             "no-allocator | no-stage2 |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for benchmark in BENCHMARKS:
        for workers in (1, 4):
            for budget in BUDGETS:
                regrets = _regrets(_folder(benchmark, "compare", budget, workers))
                if regrets is None:
                    continue
                means = regrets.mean()
                best = min(BASELINES, key=lambda m: means[m])
                tests = paired_tests(regrets)
                row = tests[((tests.better == "pmfnas") & (tests.worse == best))
                            | ((tests.better == best) & (tests.worse == "pmfnas"))].iloc[0]
                if pd.isna(row.p_value):
                    verdict = "– (equal)"
                elif row.better == "pmfnas":
                    verdict = f"{row.p_holm:.2g} ({NAMES[best]})"
                else:
                    verdict = f"{NAMES[best]} lower: {row.p_holm:.2g}"
                pmf = _f(means["pmfnas"])
                if not pd.isna(row.p_value) and row.better == "pmfnas" and row.p_holm <= 0.05:
                    pmf = f"**{pmf}**"
                cells = [_f(means[m]) for m in PROJECT_COLUMNS[:-1]] + [pmf, verdict] + [_f(means[m]) for m in ABLATIONS]
                lines.append(f"| {benchmark} | {budget} | {workers} | " + " | ".join(cells) + " |")
    return lines


def peers_table() -> list[str]:
    """Mean regret of PMF-NAS, our ASHA and every peer at W = 1; uncorrected one-sided Wilcoxon of PMF-NAS
    against the best peer, over the seeds both ran."""
    lines = ["| benchmark | N | PMF-NAS | ASHA (ours) | " + " | ".join(PEERS) + " | best peer | pairs (differing) | "
             "p PMF-NAS better | p PMF-NAS worse |", "|---" * (8 + len(PEERS)) + "|"]
    for benchmark in BENCHMARKS:
        for budget in BUDGETS:
            frames = [_regrets(_folder(benchmark, prefix, budget)) for prefix in ("compare", *PEER_FOLDERS)]
            frames = [f for f in frames if f is not None]
            if len(frames) < 2:
                continue
            regrets = pd.concat(frames, axis=1)
            means = regrets.mean()
            present = [p for p in PEERS if p in regrets]
            best = min(present, key=lambda m: means[m])
            pair = regrets[["pmfnas", best]].dropna()
            difference = (pair["pmfnas"] - pair[best]).to_numpy(dtype=float)
            nonzero = int(np.count_nonzero(difference))
            if nonzero:
                better = f"{stats.wilcoxon(difference, alternative='less').pvalue:.2g}"
                worse = f"{stats.wilcoxon(difference, alternative='greater').pvalue:.2g}"
            else:
                better = worse = "– (equal)"
            seeds = {p: int(regrets[p].notna().sum()) for p in ["pmfnas", *present]}
            cells = [(_f(means[p]) + ("" if seeds[p] == seeds["pmfnas"] else f" ({seeds[p]} seeds)"))
                     if p in regrets else "not run" for p in PEERS]
            lines.append(f"| {benchmark} | {budget} | {_f(means['pmfnas'])} | {_f(means['asha'])} | " + " | ".join(cells)
                         + f" | {best} | {len(pair)} ({nonzero}) | {better} | {worse} |")
    return lines


def replace_table(text: str, table: list[str]) -> str:
    """``text`` (a Markdown document) with its one table headed ``table[0]`` replaced by ``table``."""
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if line == table[0]]
    if len(starts) != 1:
        raise ValueError(f"the document has {len(starts)} tables headed {table[0]!r}; expected exactly one")
    end = starts[0]
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join(lines[:starts[0]] + table + lines[end:])


def main(argv: list[str]) -> int:
    write = "--write" in argv
    rest = [a for a in argv if a != "--write"]
    which = rest[0] if rest else "project"
    if which not in ("project", "peers") or len(rest) > 1:
        print(f"readme_tables.py: unknown arguments {rest!r} (project or peers, and --write)", file=sys.stderr)
        return 2
    table = project_table() if which == "project" else peers_table()
    if not write:
        print("\n".join(table))
        return 0
    readme = RESULTS.parent / "README.md"
    try:
        updated = replace_table(readme.read_text(encoding="utf-8"), table)
    except ValueError as error:
        print(f"readme_tables.py: {readme}: {error}", file=sys.stderr)
        return 1
    atomic_write(readme, updated)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
