"""One small real write in a folder, to tell whether it takes writes: a permission bit does not
say it (a full disk, a quota, a read-only mount, a folder Windows refuses). Shared by the broker
(broker/storage.py: are writes back after a failure?), the supervisor (runner/quarantine.py: can
a journal folder be used?) and status (health/status.py: is a journal folder writable?).

Each process (and thread) writes a file of its own, `.write-probe-<pid>-<thread>.tmp`: a
supervisor and a `sandbox status` probing the same folder at once never remove each other's
file, and on Windows one's open handle never makes the other's removal fail. The name ends in
`.tmp`, so a probe a kill left behind in a journal is cleaned at the service's next start."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def probe_path(folder: Path) -> Path:
    return Path(folder) / f".write-probe-{os.getpid()}-{threading.get_ident()}.tmp"


def try_write(folder: Path, size: int = 2) -> None:
    """Write `size` bytes in `folder` and remove them again; raises the OSError a write met (a
    removal that fails after a good write does not count: the write is what was asked)."""
    path = probe_path(folder)
    try:
        with open(path, "wb") as f:
            f.write(b"\0" * size)
            f.flush()
    finally:
        try:
            os.remove(path)
        except OSError:
            pass


# Windows' ERROR_SHARING_VIOLATION and ERROR_LOCK_VIOLATION: another process has the file open
SHARING_VIOLATIONS = (32, 33)


def held_by_another_program(e: OSError, folder: Path) -> bool:
    """Whether an OSError met on a file in `folder` is that file's doing, not the folder's, and
    passes: Windows refuses to remove or rename a file another program holds open (a virus
    scanner, the search indexer, a backup agent, an editor) for as long as it holds it. A sharing
    violation says so itself; on Windows an "access denied" on a file in a folder that takes a
    write is taken for one too (a file being deleted, a read-only one). A file outside the folder,
    a folder that takes no write, or elsewhere a plain permission error is not."""
    if e.filename is None or not _inside(e.filename, folder):
        return False
    if getattr(e, "winerror", None) in SHARING_VIOLATIONS:
        return True
    if os.name != "nt" or not isinstance(e, PermissionError):
        return False
    try:
        try_write(folder)
    except OSError:
        return False
    return True


def _inside(path, folder: Path) -> bool:
    try:
        p, f = os.path.abspath(os.fspath(path)), os.path.abspath(os.fspath(folder))
        return os.path.commonpath([p, f]) == f and p != f
    except (ValueError, TypeError):   # another drive (Windows), bytes and str mixed
        return False
