"""What a new user does first: clone the repository, run the README's first command, get a comparison.

The command is read from README.md's first ```bash block, so the README and this test cannot drift
apart. The clone sits in an empty temporary folder with no ``shared/`` beside it and holds only
committed files, so everything the command needs must be committed and installed by ``pip install .``.
It creates a virtual environment and installs the package with its dependencies (from the package
index or pip's cache), then compares the search methods: slow, but it is the README's promise.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def first_bash_block(readme: Path) -> str:
    match = re.search(r"```bash\n(.*?)```", readme.read_text(), flags=re.S)
    if match is None:
        raise AssertionError(f"{readme} has no ```bash block")
    return match.group(1).strip()


def out_folder(command: str) -> str:
    words = shlex.split(command)
    if "--out" not in words:
        raise AssertionError(f"the README's first command names no --out folder: {command!r}")
    return words[words.index("--out") + 1]


@pytest.mark.slow
def test_readme_first_command_works_in_a_fresh_clone(tmp_path):
    if not (REPO / ".git").exists():
        pytest.fail(f"{REPO} is not a git checkout; this test clones it as a new user would")
    command = first_bash_block(REPO / "README.md")
    assert "pmfnas compare" in command, command
    clone = tmp_path / "fresh" / "pmf-nas"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, capture_output=True)
    assert not (clone.parent / "shared").exists() and not (clone.parent.parent / "shared").exists()
    # A new user's shell: nothing pointing at this checkout or at the raw benchmark files.
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PMFNAS_NBNLP_LOGS", "VIRTUAL_ENV", "PYTHONHOME")}
    result = subprocess.run(["bash", "-c", command], cwd=clone, env=env, capture_output=True, text=True,
                            timeout=3600)
    assert result.returncode == 0, f"{command}\nexit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    out = clone / out_folder(command)
    assert (out / "summary.md").is_file() and (out / "anytime.png").is_file()
    assert "regret" in (out / "summary.md").read_text()
