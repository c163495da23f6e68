"""Windows-safe file helpers under simulated Windows semantics."""
import pytest

from sandbox.log.files import atomic_write, clean_leftovers, safe_delete, safe_rmtree


def test_safe_delete_closed_file(tmp_path):
    p = tmp_path / "00000000000000000000.log"
    p.write_bytes(b"x")
    assert safe_delete(p) is True
    assert list(tmp_path.iterdir()) == []
    assert safe_delete(p) is True  # missing is fine


def test_safe_delete_open_file_refused_and_intact(tmp_path):
    p = tmp_path / "held.log"
    p.write_bytes(b"data")
    with open(p, "rb"):
        with pytest.raises(PermissionError):
            safe_delete(p)
    assert p.read_bytes() == b"data"


def test_atomic_write_replaces_and_leaves_no_tmp(tmp_path):
    p = tmp_path / "cp"
    atomic_write(p, b"one")
    atomic_write(p, b"two")
    assert p.read_bytes() == b"two"
    assert [x.name for x in tmp_path.iterdir()] == ["cp"]


def test_clean_leftovers_and_rmtree(tmp_path):
    (tmp_path / "a.log.deleted").write_bytes(b"x")
    (tmp_path / "b.index.tmp").write_bytes(b"x")
    (tmp_path / "keep.log").write_bytes(b"x")
    assert len(clean_leftovers(tmp_path)) == 2
    assert [x.name for x in tmp_path.iterdir()] == ["keep.log"]
    safe_rmtree(tmp_path)
    safe_rmtree(tmp_path)  # missing is fine
    assert not tmp_path.exists()
