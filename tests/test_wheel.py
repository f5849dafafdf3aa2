"""What ``pip install pmf-nas`` gets: the wheel carries every shipped table with its licence, and
``pmfnas benchmark info`` answers from the installed wheel alone (no checkout on the path)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from benchmarks.registry import SHIPPED_FILES, load_benchmark
from tests.conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    # A copy of the package sources, so that building leaves nothing in the checkout.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for package in ("search", "benchmarks", "harness"):
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(source)], check=True, capture_output=True, text=True)
    (built,) = out.glob("pmf_nas-*.whl")
    return built


def test_the_wheel_carries_every_shipped_table_with_its_licence(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for table in SHIPPED_FILES.values():
        assert f"benchmarks/data/{table}" in names
        assert f"benchmarks/data/{table.removesuffix('.npz')}.LICENSE" in names
    assert "benchmarks/data/NOTICE.md" in names


def _info_from_wheel(wheel, name: str, tmp_path) -> str:
    """``pmfnas benchmark info NAME`` run from the unpacked wheel alone; its stdout."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # a wheel is installed by unpacking it onto the path
    code = ("import benchmarks, sys; from harness.cli import main; "
            "print('from', benchmarks.__file__); sys.exit(main(['benchmark', 'info', sys.argv[1]]))")
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run([sys.executable, "-c", code, name], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"from {site}" in result.stdout  # the wheel's copy answered, not the checkout
    return result.stdout


@pytest.mark.parametrize("name", sorted(SHIPPED_FILES))
def test_benchmark_info_works_from_the_installed_wheel(wheel, name, tmp_path):
    stdout = _info_from_wheel(wheel, name, tmp_path)
    assert f"name                            {name}" in stdout
    info = dict(line.split(None, 1) for line in stdout.splitlines()[1:] if " " in line.strip())
    table = load_benchmark(name)  # the checkout's copy: the wheel's must describe the same table
    assert int(info["architectures"]) == len(table) and int(info["fidelities"]) == len(table.epochs)


def test_the_wheel_has_the_whole_nb201_fmnist_sample(wheel, tmp_path):
    """The own benchmark's Done-when: 1,000 cells × 20 epochs, answered from the wheel."""
    stdout = _info_from_wheel(wheel, "nb201-fmnist", tmp_path)
    assert "architectures                   1000\n" in stdout and "fidelities                      20\n" in stdout
