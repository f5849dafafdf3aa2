"""Users add their own searcher or benchmark without editing pmf-nas (docs/extending.md)."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from search.registry import make_searcher, register_searcher
from tests.conftest import REPO, synthetic_table

EXAMPLE = REPO / "docs" / "examples" / "my_searcher.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("my_searcher_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _python(script: str, cwd, *paths) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh interpreter, as a user's own program would (what it registers stays there)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *map(str, paths)])}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


def test_the_documented_example_searcher_runs_in_compare(tmp_path):
    table = tmp_path / "t.npz"
    synthetic_table(n_archs=60, n_epochs=27).save(table)
    result = _python(f"""
        import sys
        from harness.cli import main
        from search.registry import register_searcher
        from my_searcher import MedianStopping

        register_searcher("median-stop", MedianStopping, multi_fidelity=True)
        status = main(["compare", "--benchmark", {str(table)!r}, "--methods", "random,median-stop",
                       "--budget-evals", "8", "--seeds", "3", "--processes", "2", "--out", "out", "--quiet"])
        if status == 0:
            status = main(["compare", "--help"])
        sys.exit(status)
    """, tmp_path, EXAMPLE.parent)
    assert result.returncode == 0, result.stderr
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    mine = runs[runs["method"] == "median-stop"]
    assert len(mine) == 3 and mine["regret"].notna().all()
    # It stops early: it pays for fewer epochs per evaluation than random search, which trains every one to 27.
    assert (mine["epochs_paid"] < 27 * mine["n_evaluations"]).all()
    assert (runs.loc[runs["method"] == "random", "epochs_paid"] ==
            27 * runs.loc[runs["method"] == "random", "n_evaluations"]).all()
    help_text = re.sub(r"-\n\s*", "-", result.stdout)  # help lines may wrap at a hyphen
    assert "median-stop" in help_text


def test_register_searcher_refuses_what_is_not_a_searcher_or_a_taken_name():
    example = _load_example().MedianStopping
    with pytest.raises(ValueError, match="is not a subclass of search.base.Searcher"):
        register_searcher("not-a-searcher", dict)
    with pytest.raises(ValueError, match="'random' is taken by RandomSearch"):
        register_searcher("random", example)
    with pytest.raises(ValueError, match="without commas"):
        register_searcher("a,b", example)


def test_registering_a_name_again_with_its_own_class_keeps_its_multi_fidelity_mark():
    from search.registry import SEARCHERS, needs_several_fidelities
    register_searcher("pmfnas", SEARCHERS["pmfnas"])
    register_searcher("random", SEARCHERS["random"])
    assert needs_several_fidelities("pmfnas") and not needs_several_fidelities("random")


def test_register_benchmark_gives_a_name_that_works_everywhere(tmp_path):
    synthetic_table(n_archs=30, n_epochs=5, seed=3).save(tmp_path / "t.npz")
    result = _python(f"""
        from benchmarks.registry import benchmark_names, load_benchmark, register_benchmark
        from benchmarks.tabular import TabularBenchmark
        from harness.cli import main

        register_benchmark("my-bench", lambda: TabularBenchmark.load({str(tmp_path / "t.npz")!r}))
        assert "my-bench" in benchmark_names() and len(load_benchmark("my-bench")) == 30
        for name, loader, message in [("nbnlp-wt2", len, "is a built-in one"), ("my-bench", len, "already registered")]:
            try:
                register_benchmark(name, loader)
            except ValueError as error:
                assert message in str(error), error
            else:
                raise AssertionError(name)
        register_benchmark("wrong-type", lambda: "not a table")
        try:
            load_benchmark("wrong-type")
        except ValueError as error:
            assert "returned str, not a TabularBenchmark" in str(error), error
        else:
            raise AssertionError("wrong-type")
        raise SystemExit(main(["benchmark", "info", "my-bench"]))
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "synthetic" in result.stdout and "30" in result.stdout


def test_entry_points_of_an_installed_package_are_found_by_the_command(tmp_path):
    """A package declaring both groups, installed as a .dist-info on the path, used by `pmfnas` unchanged."""
    site = tmp_path / "site"
    site.mkdir()
    synthetic_table(n_archs=50, n_epochs=9).save(tmp_path / "plugin-table.npz")
    (site / "pmfnas_plugin.py").write_text(textwrap.dedent(f"""
        from benchmarks.tabular import TabularBenchmark
        from search.random_search import RandomSearch

        class Plugged(RandomSearch):
            pass

        def load():
            return TabularBenchmark.load({str(tmp_path / "plugin-table.npz")!r})
    """))
    info = site / "pmfnas_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pmfnas-plugin\nVersion: 0.1\n")
    # "broken" is declared first and cannot load: it must not hide "plugged".
    (info / "entry_points.txt").write_text("[pmfnas.searchers]\nbroken = pmfnas_plugin:Missing\n"
                                           "plugged = pmfnas_plugin:Plugged\n\n"
                                           "[pmfnas.benchmarks]\nplugin-bench = pmfnas_plugin:load\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(site)])}

    def pmfnas(*argv):
        return subprocess.run([sys.executable, "-m", "harness.cli", *argv], capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=600)

    listing = pmfnas("benchmark", "list")
    assert listing.returncode == 0 and "plugin-bench" in listing.stdout.split()
    result = pmfnas("compare", "--benchmark", "plugin-bench", "--methods", "random,plugged", "--budget-evals", "5",
                    "--seeds", "2", "--processes", "1", "--out", "out", "--quiet")
    assert result.returncode == 0, result.stderr
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    # The plug-in is random search under another name: same seeds, same choices.
    assert runs[runs["method"] == "plugged"]["chosen_arch"].tolist() == \
        runs[runs["method"] == "random"]["chosen_arch"].tolist()
    asked = pmfnas("compare", "--benchmark", "plugin-bench", "--methods", "broken", "--seeds", "1", "--out", "out2")
    assert asked.returncode != 0 and not (tmp_path / "out2").exists()
    assert "'broken' declared by entry point 'pmfnas_plugin:Missing' cannot be loaded: AttributeError" in asked.stderr


def test_make_searcher_still_names_unknown_methods():
    from benchmarks.spaces.finite import FiniteSpace
    from search.base import Problem

    space = FiniteSpace("toy", ["a", "b"], np.zeros((2, 1)), ("f",))
    with pytest.raises(ValueError, match="unknown searcher 'no-such-method'; known: .*random"):
        make_searcher("no-such-method", Problem(space, (1, 2), True), np.random.default_rng(0))
