"""Windows-safe file handling for the journal: no mmap, rename-then-delete with retry,
atomic replace, and cleanup of leftovers from interrupted deletes/writes.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")

DELETED_SUFFIX = ".deleted"
TMP_SUFFIX = ".tmp"
RETRIES = 6
FIRST_DELAY = 0.005


def retry(fn: Callable[[], T], *, retries: int = RETRIES, delay: float = FIRST_DELAY) -> T:
    """Call fn, retrying with exponential backoff while it raises PermissionError (Windows: a
    handle, antivirus or indexer still holds the file)."""
    for attempt in range(retries):
        try:
            return fn()
        except PermissionError:
            if attempt == retries - 1:
                raise
            time.sleep(delay * (2 ** attempt))
    raise AssertionError("unreachable")


def safe_delete(path: Path) -> bool:
    """Delete a file by renaming it to `<name>.deleted` first, then removing it.

    Returns True when the file is gone; False when only the rename succeeded (the `.deleted`
    leftover is removed by `clean_leftovers` at the next open). Missing files count as gone.
    The caller must have closed its own handles first.
    """
    path = Path(path)
    if path.name.endswith(DELETED_SUFFIX):
        target = path
    else:
        target = path.with_name(path.name + DELETED_SUFFIX)
        try:
            retry(lambda: os.replace(path, target))
        except FileNotFoundError:
            return True
    try:
        retry(lambda: os.remove(target))
    except FileNotFoundError:
        return True
    except PermissionError:
        return False
    return True


def safe_rmtree(directory: Path) -> None:
    """Remove a directory tree, retrying on PermissionError; missing is fine."""
    directory = Path(directory)

    def _rm() -> None:
        try:
            shutil.rmtree(directory)
        except FileNotFoundError:
            pass

    retry(_rm)


def fsync_dir(directory: Path) -> None:
    """Make a rename durable on POSIX; a no-op where directories cannot be opened (Windows)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    fsync_and_close([fd])


def fsync_and_close(fds: list[int]) -> bool:
    """fsync then close each handle; every handle is closed either way. False if an fsync
    failed. For the duplicates from Housekeeping.sync_handles (in a worker thread) a failure is
    left to the flush that follows, which fsyncs the same files and reports it."""
    ok = True
    for fd in fds:
        try:
            os.fsync(fd)
        except OSError:
            ok = False
        finally:
            os.close(fd)
    return ok


def atomic_write(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Write data to `<path>.tmp`, fsync, close, then os.replace onto path (with retry)."""
    path = Path(path)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        if sync:
            os.fsync(f.fileno())
    retry(lambda: os.replace(tmp, path))
    if sync:
        fsync_dir(path.parent)


def clean_leftovers(directory: Path, names: list[str] | None = None) -> list[Path]:
    """Remove `*.deleted` and `*.tmp` files left in directory by an interrupted run (`names`: its
    listing, when the caller has it already)."""
    removed = []
    directory = Path(directory)
    if names is None:
        try:
            names = os.listdir(directory)   # names only: a stat per file costs seconds over 10,000 partitions
        except (FileNotFoundError, NotADirectoryError):
            return removed
    for name in names:
        if not (name.endswith(DELETED_SUFFIX) or name.endswith(TMP_SUFFIX)):
            continue
        p = directory / name
        if p.is_file():
            try:
                retry(lambda: os.remove(p))
                removed.append(p)
            except FileNotFoundError:
                pass
            except PermissionError:
                pass  # still held by someone; try again next open
    return removed


def offset_files(directory: Path, suffix: str, listing: list[str] | None = None) -> list[tuple[int, Path]]:
    """(offset, path) of every `%020d<suffix>` file in directory (e.g. producer snapshots,
    aborted-transaction indexes), oldest first. `listing`: the directory's names, if listed already."""
    out = []
    for name in os.listdir(directory) if listing is None else listing:
        stem = name[:-len(suffix)]
        if len(stem) == 20 and name.endswith(suffix) and stem.isdigit():
            out.append((int(stem), directory / name))
    return sorted(out)
