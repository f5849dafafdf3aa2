"""The README's "Measured" tables are exactly what results/readme_tables.py computes from the committed
runs.csv files: a number typed by hand, or a result folder regenerated without updating the README, fails."""
from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import REPO


def _load_tables_module():
    spec = importlib.util.spec_from_file_location("readme_tables", REPO / "results" / "readme_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _readme_table(header: str) -> list[str]:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    starts = [i for i, line in enumerate(lines) if line == header]
    assert len(starts) == 1, f"the README has {len(starts)} tables headed {header!r}"
    table = []
    for line in lines[starts[0]:]:
        if not line.startswith("|"):
            break
        table.append(line)
    return table


@pytest.mark.parametrize("which", ["project", "peers"])
def test_the_readme_table_is_recomputed_from_the_committed_runs(which):
    tables = _load_tables_module()
    computed = tables.project_table() if which == "project" else tables.peers_table()
    assert len(computed) > 2, "no committed result folder was found"
    assert _readme_table(computed[0]) == computed


def test_write_replaces_only_the_table_with_that_header():
    tables = _load_tables_module()
    document = "intro\n| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\nafter\n\n| c |\n|---|\n| 9 |\n"
    updated = tables.replace_table(document, ["| a | b |", "|---|---|", "| 5 | 6 |"])
    assert updated == "intro\n| a | b |\n|---|---|\n| 5 | 6 |\nafter\n\n| c |\n|---|\n| 9 |\n"
    with pytest.raises(ValueError, match=r"0 tables headed '\| x \|'"):
        tables.replace_table(document, ["| x |", "|---|"])
