"""Fixtures for the journal tests, chiefly `windows_files`: Windows file semantics on Linux.

While a file under pytest's temp root is open, removing or renaming it (or a directory holding it)
raises PermissionError, as on Windows where Python opens files without FILE_SHARE_DELETE
(tests/winfiles.py).
"""
from __future__ import annotations

import pytest

from winfiles import install


@pytest.fixture(autouse=True)
def windows_files(monkeypatch, tmp_path_factory):
    sem = install(tmp_path_factory.getbasetemp(), monkeypatch.setattr)
    yield sem
    sem.active = False
