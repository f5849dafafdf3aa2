"""``pmfnas report``: one summary (Markdown + figure) of many ``pmfnas compare`` folders.

Every number comes from the folders' ``runs.csv``, so the summary is regenerated, never edited. A
folder's benchmark, budget and workers come from its ``settings.json`` (keys ``benchmark``, ``budget``,
``workers``, ``methods``, ``seeds``) when it has one; otherwise the benchmark is the name in the first
line of its ``summary.md`` (``# Comparison on NAME``) or the label given for it, the budget is the one
in ``runs.csv`` and the workers are unknown. Folders with the same benchmark, budget and workers are
one group (their runs are merged; a method and seed present twice is an error).
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from benchmarks.files import atomic_output, atomic_write
from harness.preflight import check_output_file
from harness.statistics import ALPHA, final_regrets, holm, mean_ranks, seeds_needed, smallest_one_sided_p

__all__ = ["CompareFolder", "read_folder", "summary_tables", "summary_markdown", "write_summary"]

_TITLE = re.compile(r"^#\s*Comparison on\s+(.+?)\s*$")
REQUIRED_COLUMNS = ("method", "seed", "budget", "regret")


@dataclass(frozen=True)
class CompareFolder:
    """One ``pmfnas compare`` output folder: where it is, its settings and its runs."""

    path: Path
    benchmark: str
    budget: float
    workers: int | None
    runs: pd.DataFrame


def read_folder(path: str | os.PathLike, label: str | None = None) -> CompareFolder:
    """Read ``runs.csv`` and the settings of one compare folder; ``label`` overrides the benchmark name.

    ValueError naming the folder and the problem when it is not a compare folder or its files disagree.
    """
    path = Path(path)
    runs_file = path / "runs.csv"
    if not runs_file.is_file():
        raise ValueError(f"{path} has no runs.csv: not a 'pmfnas compare' output folder")
    try:
        runs = pd.read_csv(runs_file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"{runs_file} cannot be read as CSV: {error}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in runs.columns]
    if missing or runs.empty:
        raise ValueError(f"{runs_file} must have rows and the columns {', '.join(REQUIRED_COLUMNS)}; "
                         f"{'missing ' + ', '.join(missing) if missing else 'it has no rows'}")
    settings = {}
    settings_file = path / "settings.json"
    if settings_file.is_file():
        try:
            settings = json.loads(settings_file.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{settings_file} is not valid JSON: {error}") from None
        if not isinstance(settings, dict):
            raise ValueError(f"{settings_file} must hold a JSON object with benchmark, budget, workers, methods, seeds")
    budgets = runs["budget"].unique()
    if len(budgets) != 1:
        raise ValueError(f"{runs_file} mixes budgets {sorted(budgets.tolist())}; a compare folder has one")
    budget = float(settings.get("budget", budgets[0]))
    if not math.isclose(budget, float(budgets[0]), rel_tol=1e-9):
        raise ValueError(f"{settings_file} says budget {budget:g} but {runs_file} was run with {float(budgets[0]):g}")
    benchmark = label or settings.get("benchmark") or _benchmark_from_summary(path)
    if not benchmark:
        raise ValueError(f"{path} has no settings.json and no summary.md naming its benchmark: give --label for it")
    workers = settings.get("workers")
    return CompareFolder(path, str(benchmark), budget, None if workers is None else int(workers), runs)


def _benchmark_from_summary(path: Path) -> str | None:
    summary = path / "summary.md"
    if not summary.is_file():
        return None
    with summary.open(encoding="utf-8") as handle:
        match = _TITLE.match(handle.readline())
    return match.group(1) if match else None


def _group_key(folder: CompareFolder) -> tuple:
    return folder.benchmark, folder.budget, folder.workers


def _merge(folders: Sequence[CompareFolder]) -> pd.DataFrame:
    seen: dict[tuple[str, int], Path] = {}
    for folder in folders:
        for method, seed in zip(folder.runs["method"], folder.runs["seed"]):
            if (method, seed) in seen:
                raise ValueError(f"{method} seed {seed} is in both {seen[(method, seed)]} and {folder.path} "
                                 "(same benchmark, budget and workers): keep one")
            seen[(method, seed)] = folder.path
    return pd.concat([f.runs for f in folders], ignore_index=True)


def summary_tables(folders: Sequence[CompareFolder]) -> list[tuple[tuple, pd.DataFrame]]:
    """Per group ``(benchmark, budget, workers)``, one row per method.

    Columns: ``runs``, ``regret_mean``, ``regret_std``, ``regret_median``, ``mean_rank`` (by final regret
    among the group's methods on the same seed; 1 = best), ``best_other`` (the other method with the
    best mean rank), ``pairs``, ``median_difference`` (median over seeds of this − best other),
    ``p_better`` and ``p_worse`` (one-sided paired Wilcoxon p that this method has lower / higher
    regret than the best other) and their Holm-adjusted values (``p_better_holm``, ``p_worse_holm``) over
    the distinct directional tests of the group's table (``table.attrs["n_tests"]``).
    """
    groups: dict[tuple, list[CompareFolder]] = {}
    for folder in folders:
        groups.setdefault(_group_key(folder), []).append(folder)
    tables = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], -1 if k[2] is None else k[2])):
        runs = _merge(groups[key])
        regrets = final_regrets(runs)
        ranks = mean_ranks(regrets)
        order = ranks.assign(mean=regrets.mean()).sort_values(["mean_rank", "mean"]).index.tolist()
        rows = []
        for method in order:
            # A method alone in its group (one benchmark × budget × workers) has nothing to be compared with.
            best_other = next((m for m in order if m != method), None)
            pair = regrets[[method]].iloc[:0] if best_other is None else regrets[[method, best_other]].dropna()
            difference = np.zeros(0) if best_other is None else (pair[method] - pair[best_other]).to_numpy(dtype=float)
            tested = np.count_nonzero(difference) > 0
            rows.append({
                "method": method, "runs": int(runs["method"].eq(method).sum()),
                "regret_mean": regrets[method].mean(), "regret_std": regrets[method].std(),
                "regret_median": regrets[method].median(), "mean_rank": ranks.loc[method, "mean_rank"],
                "best_other": best_other, "pairs": len(pair), "nonzero": int(np.count_nonzero(difference)),
                "median_difference": float(np.median(difference)) if len(pair) else float("nan"),
                "p_better": float(stats.wilcoxon(difference, alternative="less").pvalue) if tested else float("nan"),
                "p_worse": float(stats.wilcoxon(difference, alternative="greater").pvalue) if tested else float("nan")})
        table = pd.DataFrame(rows).set_index("method")
        # The best and the runner-up compare with each other: that pair enters the Holm family once.
        family: dict[tuple[str, str], float] = {}
        for method, row in table.iterrows():
            if not pd.isna(row["p_better"]):
                family.setdefault((method, row["best_other"]), row["p_better"])
                family.setdefault((row["best_other"], method), row["p_worse"])
        adjusted = dict(zip(family, holm(list(family.values()))))
        table["p_better_holm"] = [adjusted.get((m, o), np.nan) for m, o in zip(table.index, table["best_other"])]
        table["p_worse_holm"] = [adjusted.get((o, m), np.nan) for m, o in zip(table.index, table["best_other"])]
        table.attrs["n_tests"] = len(family)
        tables.append((key, table))
    return tables


def _fmt(value: float) -> str:
    return "—" if pd.isna(value) else f"{value:.4g}"


def _p(value: float) -> str:
    return "—" if pd.isna(value) else f"{value:.2g}"


def summary_markdown(folders: Sequence[CompareFolder], command: str) -> str:
    """SUMMARY.md: the sources, then one table per benchmark × budget × workers."""
    lines = ["# Summary of comparisons", "",
             f"Generated by `{command}` from the `runs.csv` of each folder below; regenerate it, do not edit it.", "",
             "| folder | benchmark | budget (simulated s) | workers | methods | seeds |", "|---|---|---|---|---|---|"]
    for folder in folders:
        lines.append(f"| {folder.path} | {folder.benchmark} | {folder.budget:,.0f} | "
                     f"{'?' if folder.workers is None else folder.workers} | {folder.runs['method'].nunique()} | "
                     f"{folder.runs['seed'].nunique()} |")
    if any(f.workers is None for f in folders):
        lines += ["", "Workers `?`: the folder has no settings.json, so its number of workers is not known."]
    lines += ["", "Regret is lower-is-better. Mean rank: by final regret among the group's methods on the same seed "
                  "(1 = best; ties share; seeds where a method has no result are left out). Each method is compared "
                  "with the *best other* method (the other with the best mean rank) by one-sided paired Wilcoxon "
                  "signed-rank tests over seeds, both ways: *p better* that it has lower regret, *p worse* that it has "
                  "higher; Holm-adjusted over the distinct tests of its table (the best and the runner-up share theirs). Median diff. = median over seeds of "
                  "its regret − the best other's."]
    for (benchmark, budget, workers), table in summary_tables(folders):
        lines += ["", f"## {benchmark}, budget {budget:,.0f} simulated s, "
                      f"{'workers unknown' if workers is None else f'{workers} worker' + ('s' if workers != 1 else '')}",
                  "", "| method | runs | regret mean ± std | regret median | mean rank | best other | pairs (differing) | "
                      "median diff. | p better (Holm) | p worse (Holm) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for method, row in table.iterrows():
            lines.append(f"| {method} | {row.runs} | {_fmt(row.regret_mean)} ± {_fmt(row.regret_std)} | "
                         f"{_fmt(row.regret_median)} | {_fmt(row.mean_rank)} | {row.best_other or '—'} | {row.pairs} "
                         f"({row.nonzero}) | {_fmt(row.median_difference)} | {_p(row.p_better_holm)} | "
                         f"{_p(row.p_worse_holm)} |")
        n_tests = table.attrs["n_tests"]
        most = int(table["nonzero"].max())
        if n_tests and n_tests * smallest_one_sided_p(most) > ALPHA:
            lines += ["", f"With at most {most} differing seeds per pair and {n_tests} tests, no adjusted p in this "
                          f"table can reach {ALPHA:g} (that needs {seeds_needed(n_tests)} differing seeds)."]
    return "\n".join(lines) + "\n"


def plot_summary(folders: Sequence[CompareFolder], path: Path) -> None:
    """Mean rank ± 1 s.e. of every method, one panel per benchmark × budget × workers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.plots import draw_ranks, method_colours

    tables = summary_tables(folders)
    groups: dict[tuple, list[CompareFolder]] = {}
    for folder in folders:
        groups.setdefault(_group_key(folder), []).append(folder)
    columns = min(2, len(tables))
    rows = math.ceil(len(tables) / columns)
    most = max(len(t) for _, t in tables)
    height = max(2.5, 0.4 * most + 1.3)
    colours = method_colours(list(dict.fromkeys(m for f in folders for m in f.runs["method"])))
    figure, axes = plt.subplots(rows, columns, figsize=(6.5 * columns, height * rows), squeeze=False)
    for axis, (key, _) in zip(axes.flat, tables):
        benchmark, budget, workers = key
        runs = _merge(groups[key])
        draw_ranks(axis, runs, colours=colours, rows=most)
        axis.set_title(f"{benchmark}: budget {budget:,.0f} s, "
                       f"{'? workers' if workers is None else f'W={workers}'}, {runs['seed'].nunique()} seeds",
                       fontsize=10)
    for axis in list(axes.flat)[len(tables):]:
        axis.set_visible(False)
    figure.suptitle("Mean rank by final regret (1 = best, ± 1 s.e. over seeds)")
    figure.tight_layout()
    try:
        with atomic_output(path, suffix=".tmp.png") as tmp:
            figure.savefig(tmp, dpi=120, bbox_inches="tight")
    finally:
        plt.close(figure)


def write_summary(dirs: Sequence[str | os.PathLike], out: str | os.PathLike, command: str,
                  labels: Sequence[str] | None = None) -> tuple[Path, Path]:
    """Read every folder, then write ``out`` (Markdown) and the figure beside it (same name, ``.png``).

    ``labels``, when given, name each folder's benchmark in order. Nothing is written when a folder
    cannot be read.
    """
    if not dirs:
        raise ValueError("give at least one 'pmfnas compare' output folder")
    if labels and len(labels) != len(dirs):
        raise ValueError(f"{len(labels)} labels for {len(dirs)} folders: give one --label per folder, in order")
    folders = [read_folder(d, labels[i] if labels else None) for i, d in enumerate(dirs)]
    out = Path(out)
    if out.suffix != ".md":
        raise ValueError(f"--out {out} must be a Markdown file name ending in .md")
    check_output_file(out, "--out")
    text = summary_markdown(folders, command)  # before any folder is made: a refusal leaves nothing behind
    figure = out.with_suffix(".png")
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_summary(folders, figure)
    atomic_write(out, text)
    return out, figure
