"""The windows_files fixture itself must bite, or every other 'Windows-safe' test proves nothing."""
import os
import shutil

import pytest


def test_rename_open_file_raises(tmp_path, windows_files):
    p = tmp_path / "a.log"
    f = open(p, "wb")
    with pytest.raises(PermissionError):
        os.rename(p, tmp_path / "b.log")
    with pytest.raises(PermissionError):
        p.rename(tmp_path / "c.log")
    with pytest.raises(PermissionError):
        os.replace(p, tmp_path / "d.log")
    f.close()
    os.rename(p, tmp_path / "b.log")
    assert (tmp_path / "b.log").exists()


def test_delete_open_file_and_its_directory_raises(tmp_path):
    d = tmp_path / "topic-0"
    d.mkdir()
    p = d / "x.log"
    p.write_bytes(b"x")
    with open(p, "rb"):
        with pytest.raises(PermissionError):
            os.remove(p)
        with pytest.raises(PermissionError):
            p.unlink()
        with pytest.raises(PermissionError):
            shutil.rmtree(d)
        with pytest.raises(PermissionError):
            os.rename(d, tmp_path / "moved")
    shutil.rmtree(d)
    assert not d.exists()


def test_os_open_fd_tracked(tmp_path):
    p = tmp_path / "lock"
    fd = os.open(p, os.O_CREAT | os.O_WRONLY)
    with pytest.raises(PermissionError):
        os.unlink(p)
    os.close(fd)
    os.unlink(p)


def test_file_closed_by_garbage_collection_is_released(tmp_path):
    p = tmp_path / "gc.log"
    f = open(p, "wb")
    del f
    os.remove(p)


def test_rename_onto_existing_file_raises_like_windows(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    with pytest.raises(FileExistsError):
        os.rename(a, b)
    os.replace(a, b)  # replace is allowed when nothing is open
    assert b.read_bytes() == b"a"
