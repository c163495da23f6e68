"""Windows-safe file handling for the journal: no mmap, rename-then-delete with retry,
atomic replace, and cleanup of leftovers from interrupted deletes/writes.
"""
from __future__ import annotations

import collections
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")

DELETED_SUFFIX = ".deleted"
TMP_SUFFIX = ".tmp"
RETRIES = 6
FIRST_DELAY = 0.005
BACKGROUND_MIN_BYTES = 1 << 20   # a smaller file is removed at once: its unlink costs microseconds


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


class BackgroundRemover:
    """Removes files and folders that were already renamed out of the way (`*.deleted`,
    `*-delete`), one at a time in a daemon thread, while a LogDir that asked for it is open.
    Freeing a big file's blocks is slow: ext4 took 89 ms for a written-back 300 MB segment, so a
    1 GiB segment deleted by retention, or a topic deleted, held every client of the broker for
    a quarter of a second when it was done on the broker's own thread. Kafka, too, renames a
    segment to `.deleted` and removes it later in a background thread. Whatever is still queued
    when the process ends is removed at the next open (clean_leftovers, LogDir.open); a removal
    that fails (Windows: another program holds the file) is left for that too."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: collections.deque[Callable[[], None]] = collections.deque()
        self._users = 0
        self._busy = False
        self._thread: threading.Thread | None = None

    @property
    def in_use(self) -> bool:
        return self._users > 0

    def acquire(self) -> None:
        with self._cond:
            self._users += 1

    def release(self, timeout: float = 10.0) -> bool:
        """One user fewer; the last one waits (at most `timeout` s) for the queue to empty, so a
        clean stop leaves nothing behind. False if something was still queued."""
        with self._cond:
            self._users = max(0, self._users - 1)
            if self._users:
                return True
        return self.drain(timeout)

    def submit(self, remove: Callable[[], None]) -> bool:
        """Queue `remove`; False (nothing queued: the caller removes at once) with no user."""
        with self._cond:
            if not self._users:
                return False
            self._queue.append(remove)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sandbox-remover", daemon=True)
                self._thread.start()
            self._cond.notify_all()
            return True

    def drain(self, timeout: float) -> bool:
        """Wait until everything queued is removed; False if `timeout` s passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue))
                remove = self._queue.popleft()
                self._busy = True
            try:
                remove()
            except OSError:
                pass   # gone already, or left for the next open's cleanup
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


REMOVER = BackgroundRemover()


def safe_delete(path: Path) -> bool:
    """Delete a file by renaming it to `<name>.deleted` first, then removing it (a file of
    BACKGROUND_MIN_BYTES or more in REMOVER's thread, while it has a user).

    Returns True when the file is gone under its name; False when only the rename succeeded (the
    `.deleted` leftover is removed by `clean_leftovers` at the next open). Missing files count as
    gone. The caller must have closed its own handles first.
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
        if REMOVER.in_use and os.stat(target).st_size >= BACKGROUND_MIN_BYTES \
                and REMOVER.submit(lambda: retry(lambda: os.remove(target))):
            return True
        retry(lambda: os.remove(target))
    except FileNotFoundError:
        return True
    except PermissionError:
        return False
    return True


STALE_SUFFIX = ".stale"   # `<file>.stale`: <file> says what is no longer true; readers skip it
MARKS = {"made": False}   # whether this process wrote a stale mark (appends look for one only then)


def remove_or_empty(path: Path) -> bool:
    """Delete a file whose content must not outlive it; while another program holds it (Windows:
    it cannot be removed or renamed then, but it can usually be written) empty it instead, so
    nothing appended to it later finds the old content. A holder that refuses writes too leaves
    a `<file>.stale` mark beside it (a new file can be made meanwhile): offset_files skips the
    file, and whoever writes that file again removes the mark (clear_stale). True if it is gone."""
    path = Path(path)
    try:
        gone = safe_delete(path)
    except PermissionError:
        try:
            with open(path, "r+b") as f:
                f.truncate(0)
        except FileNotFoundError:
            return True
        except OSError:
            try:   # the mark names the file as it is now: written anew later, it is read again
                st = os.stat(path)
                MARKS["made"] = True
                with open(stale_mark(path), "wb") as f:
                    f.write(f"{st.st_size} {st.st_mtime_ns}".encode("ascii"))
            except OSError:   # a full disk as well: nothing more can be done about it now
                pass
            return False
        clear_stale(path)   # empty says nothing untrue
        return False
    clear_stale(path)
    return gone


def stale_mark(path: Path) -> Path:
    return path.with_name(path.name + STALE_SUFFIX)


def is_stale(path: Path) -> bool:
    """`path` is still the file its stale mark names (same size and modification time): what it
    says is untrue. A mark that names another file (the file was removed, emptied or written anew
    since, and the mark could not be removed then) is removed now if it can be, and ignored."""
    try:
        with open(stale_mark(path), "rb") as f:
            size, _, mtime = f.read(64).decode("ascii", "replace").partition(" ")
    except FileNotFoundError:
        return False
    except OSError:   # a mark that cannot be read: the file is taken for stale, never misread
        return True
    if not (size.strip().isdigit() and mtime.strip().isdigit()):
        return True   # a mark whose content was not written (a full disk, a crash): stale, never misread
    try:
        st = os.stat(path)
        if (st.st_size, st.st_mtime_ns) == (int(size), int(mtime)):
            return True
    except OSError:
        pass
    clear_stale(path)
    return False


def clear_stale(path: Path) -> None:
    """`path` holds what is true again (written anew, or gone): its stale mark goes, if any."""
    try:
        os.remove(stale_mark(path))
    except OSError:   # none (the usual case), or held: is_stale tells it names another file
        pass


def safe_delete_later(path: Path) -> bool:
    """safe_delete, except that a file another program holds (Windows) is left for a later call:
    for files nothing reads once newer ones exist (older snapshots). True if it is gone."""
    try:
        return safe_delete(path)
    except PermissionError:
        return False


def safe_rmtree(directory: Path, *, background: bool = False,
                on_refused: Callable[[PermissionError], None] | None = None) -> None:
    """Remove a directory tree, retrying on PermissionError; missing is fine. `background`: in
    REMOVER's thread while it has a user (the caller renamed the folder out of the way first).
    A PermissionError after the retries goes to `on_refused` if given (in REMOVER's thread when
    the removal ran there), else it is raised."""
    directory = Path(directory)

    def _rm() -> None:
        try:
            shutil.rmtree(directory)
        except FileNotFoundError:
            pass

    def _rm_reporting() -> None:
        try:
            retry(_rm)
        except PermissionError as e:
            if on_refused is None:
                raise
            on_refused(e)

    if not (background and REMOVER.submit(_rm_reporting)):
        _rm_reporting()


def fsync_dir(directory: Path) -> None:
    """Make a rename durable on POSIX; a no-op where directories cannot be opened (Windows)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    fsync_and_close([fd])


def fsync_file(path: Path) -> None:
    """fsync a file in place (opened for writing: Windows flushes only through such a handle);
    one that is gone is nothing to do. Raises the OSError an open or fsync met."""
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    """Write data to `<path>.tmp`, fsync, close, then os.replace onto path (with retry). The
    `.tmp` copy is removed again if it cannot be written whole; `path` is untouched then."""
    path = Path(path)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            if sync:
                os.fsync(f.fileno())
    except OSError:   # a full disk: the half-written copy would only take more of what little is left
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
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
    aborted-transaction indexes), oldest first, but those marked stale (remove_or_empty). `listing`: the directory's names, if listed already."""
    out = []
    names = os.listdir(directory) if listing is None else listing
    marked = {n[:-len(STALE_SUFFIX)] for n in names if n.endswith(STALE_SUFFIX)}
    for name in names:
        stem = name[:-len(suffix)]
        if len(stem) == 20 and name.endswith(suffix) and stem.isdigit() and not (
                name in marked and is_stale(directory / name)):
            out.append((int(stem), directory / name))
    return sorted(out)
