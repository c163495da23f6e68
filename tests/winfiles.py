"""Windows file semantics on Linux, for tests: while a file under a root folder is open, removing
or renaming it (or a directory holding it) raises PermissionError, as on Windows where Python opens
files without FILE_SHARE_DELETE. `install(root, setattr_)` patches builtins, io, os, shutil and
pathlib; tests/log/conftest.py installs it around every journal test (through pytest's
monkeypatch), and tests/winfiles_site/sitecustomize.py into every process of a real stack (when
SANDBOX_TEST_WINDOWS_FILES names the root), where a veto also leaves a line on stderr.

Another program can hold a file too: a virus scanner or the search indexer opens a file just
written, a backup agent or an editor keeps one open, and Windows then refuses to remove or rename
it (or the folder holding it) until that program lets go. `held_by` names a text file listing such
paths, one per line, which every process reads at each remove or rename (scripts/chaos.py
--held-files writes it); those refusals say "held by another program". A line `exclusive<TAB>path`
is held by a program that refuses writers too (a backup agent opening it without write sharing):
opening it for writing is refused as well, while a handle opened before goes on working."""
from __future__ import annotations

import builtins
import io
import os
import shutil
import stat
import sys
import weakref
from pathlib import Path
from typing import Any, Callable

VETO_MARK = "[simulated Windows]"
HELD_MARK = "held by another program"
EXCLUSIVE = "exclusive"   # a held-list line's prefix (and a tab): the holder refuses writers too
_REAL_OPEN = io.open   # before install() patches it


class WindowsFileSemantics:
    """Tracks open files (builtins.open, io.open, os.open) and vetoes deletes/renames of them."""

    def __init__(self, root: str, held_by: str | None = None) -> None:
        self.root = os.path.abspath(root)
        self.held_by = held_by   # a file listing paths another program holds open (or None)
        self._objs: list[tuple[str, weakref.ref]] = []
        self._fds: dict[int, tuple[str, int]] = {}
        self.vetoes = 0
        self.active = True

    def _mine(self, path) -> str | None:
        if isinstance(path, int):
            return None
        p = os.path.abspath(os.fspath(path))
        if isinstance(p, bytes):
            p = os.fsdecode(p)
        return p if p == self.root or p.startswith(self.root + os.sep) else None

    def open_paths(self) -> list[str]:
        alive = []
        self._objs = [(p, r) for p, r in self._objs if r() is not None and not r().closed]
        alive.extend(p for p, _ in self._objs)
        for fd, (p, ino) in list(self._fds.items()):
            try:
                if os.fstat(fd).st_ino != ino:
                    raise OSError
            except OSError:
                del self._fds[fd]
                continue
            alive.append(p)
        return alive

    def held_elsewhere(self) -> list[str]:
        """The paths another program holds open now (read afresh: that program comes and goes)."""
        if not self.held_by:
            return []
        return [p for p, _exclusive in self._held()]

    def _held(self) -> list[tuple[str, bool]]:
        try:
            with _REAL_OPEN(self.held_by, encoding="utf-8") as f:
                lines = [line.strip() for line in f if line.strip()]
        except OSError:
            return []
        out = []
        for line in lines:
            kind, tab, path = line.partition("\t")
            out.append((path, kind == EXCLUSIVE) if tab else (line, False))
        return out

    def check_write_open(self, path) -> None:
        """Opening `path` for writing, refused while a program holds it without write sharing."""
        if not self.active or not self.held_by or isinstance(path, int):
            return
        p = self._mine(path)
        if p is None:
            return
        for held, exclusive in self._held():
            if exclusive and held == p:
                self.vetoes += 1
                raise _sharing_violation(f"[simulated Windows] cannot open for writing: {held} is {HELD_MARK}", p)

    def check(self, path, action: str) -> None:
        if not self.active:
            return
        p = self._mine(path)
        if p is None:
            return
        for held in self.open_paths():
            if held == p or held.startswith(p + os.sep):
                self.vetoes += 1
                raise _sharing_violation(f"[simulated Windows] cannot {action}: {held} is open", p)
        for held in self.held_elsewhere():
            if held == p or held.startswith(p + os.sep):
                self.vetoes += 1
                raise _sharing_violation(f"[simulated Windows] cannot {action}: {held} is {HELD_MARK}", p)

    def track_obj(self, file, f) -> None:
        p = self._mine(file) if not isinstance(file, int) else None
        if p is not None:
            self._objs.append((p, weakref.ref(f)))

    def track_fd(self, path, fd: int) -> None:
        p = self._mine(path)
        if p is None:
            return
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            self._fds[fd] = (p, st.st_ino)


def _sharing_violation(message: str, path: str) -> PermissionError:
    """What Windows raises for a file another handle holds: errno EACCES, winerror 32."""
    e = PermissionError(13, message, path)
    e.winerror = 32   # ERROR_SHARING_VIOLATION (an attribute of OSError on Windows only)
    return e


def install(root: str | os.PathLike, setattr_: Callable[[Any, str, Any], None], *,
            report: bool = False, held_by: str | None = None) -> WindowsFileSemantics:
    """Patch the file functions so that `root`'s open files cannot be removed or renamed; with
    `report`, each veto is also written to stderr (a service's log) with the caller's place."""
    sem = WindowsFileSemantics(str(root), held_by)
    real_open, real_os_open, real_close = io.open, os.open, os.close
    real = {name: getattr(os, name) for name in ("remove", "unlink", "rename", "replace", "rmdir")}
    real_rmtree = shutil.rmtree

    def fake_open(file, *args, **kwargs):
        mode = args[0] if args else kwargs.get("mode", "r")
        if any(c in mode for c in "wax+"):
            sem.check_write_open(file)
        f = real_open(file, *args, **kwargs)
        sem.track_obj(file, f)
        return f

    def fake_os_open(path, flags, mode=0o777, *, dir_fd=None):
        if dir_fd is None and flags & (os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_TRUNC):
            sem.check_write_open(path)
        fd = real_os_open(path, flags, mode, dir_fd=dir_fd)
        if dir_fd is None:
            sem.track_fd(path, fd)
        return fd

    def fake_close(fd):
        sem._fds.pop(fd, None)
        return real_close(fd)

    def deleter(name):
        def fn(path, *args, **kwargs):
            if kwargs.get("dir_fd") is None:
                sem.check(path, name)
            return real[name](path, *args, **kwargs)
        return fn

    def renamer(name):
        def fn(src, dst, *args, **kwargs):
            if kwargs.get("src_dir_fd") is None and kwargs.get("dst_dir_fd") is None:
                sem.check(src, f"{name} (source)")
                if os.path.exists(dst):
                    sem.check(dst, f"{name} (target)")
                    if name == "rename" and sem._mine(dst) is not None and sem.active:
                        raise FileExistsError(17, "[simulated Windows] rename target exists", os.fspath(dst))
            return real[name](src, dst, *args, **kwargs)
        return fn

    def fake_rmtree(path, *args, **kwargs):
        sem.check(path, "rmtree")
        return real_rmtree(path, *args, **kwargs)

    setattr_(builtins, "open", fake_open)
    setattr_(io, "open", fake_open)
    setattr_(os, "open", fake_os_open)
    setattr_(os, "close", fake_close)
    for name in ("remove", "unlink", "rmdir"):
        setattr_(os, name, deleter(name))
    for name in ("rename", "replace"):
        setattr_(os, name, renamer(name))
    setattr_(shutil, "rmtree", fake_rmtree)
    # pathlib delegates to os.* in 3.11, but patch it explicitly in case that changes.
    setattr_(Path, "unlink", lambda self, missing_ok=False: _path_unlink(self, missing_ok))
    setattr_(Path, "rename", lambda self, target: (os.rename(self, target), type(self)(target))[1])
    setattr_(Path, "replace", lambda self, target: (os.replace(self, target), type(self)(target))[1])
    if report:
        check = sem.check

        def reporting_check(path, action):
            try:
                check(path, action)
            except PermissionError as e:
                f = sys._getframe(2)
                sys.stderr.write(f"{VETO_MARK} veto: {e.strerror} (from {f.f_code.co_filename}:{f.f_lineno})\n")
                raise
        sem.check = reporting_check
    return sem


def _path_unlink(path: Path, missing_ok: bool) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        if not missing_ok:
            raise
