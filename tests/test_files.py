"""The atomic-write helper: complete files, shared permissions, nothing left behind on failure."""
import stat

import pytest

from benchmarks.files import atomic_output, atomic_write


def test_atomic_write_replaces_the_file_and_shares_it(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    atomic_write(target, "new,text\n")
    assert target.read_text() == "new,text\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "table.npz"
    target.write_bytes(b"complete")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"complete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.npz"]
