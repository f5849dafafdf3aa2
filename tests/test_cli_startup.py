"""The command line starts fast: help and listing load none of the heavy libraries (measured by what is imported,
not by timing; `python -X importtime -m harness.cli --help` shows the time). `compare --help` and
`search --help` list the method names, which imports the searchers (scikit-learn): that is what they need."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, synthetic_table

HEAVY = ("pandas", "matplotlib", "sklearn", "scipy", "torch")
PROBE = """
import contextlib, io, json, sys
from harness.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    status = main(sys.argv[1:])
print(json.dumps({"status": status, "loaded": [m for m in %r if m in sys.modules], "out": out.getvalue()}))
""" % (HEAVY,)


def _run(*argv: str) -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["benchmark", "list"], ["benchmark", "--help"],
                                  ["record", "--help"]])
def test_help_and_listing_import_no_heavy_library(argv):
    report = _run(*argv)
    assert report["status"] == 0 and report["out"]
    assert report["loaded"] == []


def test_benchmark_info_imports_no_heavy_library(tmp_path):
    path = tmp_path / "t.npz"
    synthetic_table(n_archs=10, n_epochs=3).save(path)
    report = _run("benchmark", "info", str(path))
    assert report["status"] == 0 and "synthetic" in report["out"]
    assert report["loaded"] == []


def test_compare_help_lists_the_method_names():
    report = _run("compare", "--help")
    text = " ".join(report["out"].split())
    assert report["status"] == 0
    assert "comma-separated method names: asha, hyperband, pmfnas," in text and "random, rea, sh" in text
