"""Moving a journal aside into quarantine/<UTC time>-<service>/ (rename, retried while Windows holds
files busy, copy-then-delete as a last resort; never a silent delete) and pruning old quarantines."""

from __future__ import annotations

import errno
import os
import re
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from sandbox.folder_probe import try_write

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
# left in a journal folder whose quarantine could not remove every file (see clear_leftovers)
LEFTOVERS = ".quarantine-leftovers"
_NAME = re.compile(r"^(\d{8}T\d{6}Z)-(.+?)(?:\.(\d+))?$")


class QuarantineError(OSError):
    """The journal could not be moved aside; it is left where it was, untouched or copied."""


def stamp(wall_time: float) -> str:
    return datetime.fromtimestamp(wall_time, timezone.utc).strftime(STAMP_FORMAT)


def _target(root: Path, service: str, wall_time: float) -> Path:
    base = f"{stamp(wall_time)}-{service}"
    target, n = root / base, 1
    while target.exists():
        n += 1
        target = root / f"{base}.{n}"
    return target


def _retry(action: Callable[[], None], sleep: Callable[[float], None], attempts: int) -> bool:
    """Run a delete, retrying with backoff while Windows reports its files busy; True once gone."""
    delay = 0.05
    for i in range(attempts):
        try:
            action()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if i == attempts - 1:
                return False
            sleep(delay)
            delay = min(delay * 2, 1.0)
    return False


def _rmtree_retry(path: Path, sleep: Callable[[float], None], attempts: int) -> bool:
    return _retry(lambda: shutil.rmtree(path), sleep, attempts)


def quarantine(data_dir: Path, root: Path, service: str, wall_time: float, *,
               sleep: Callable[[float], None] = time.sleep, attempts: int = 6,
               rename: Callable[[Path, Path], None] | None = None) -> tuple[Path, str]:
    """Move `data_dir` to `root/<stamp>-<service>/`; returns (where, how) with how in
    {'renamed', 'copied', 'copied (some files still busy in the original)'}. Leaves an empty data_dir."""
    rename = rename or os.rename   # looked up now (a test may stand in Windows' rules for it)
    data_dir, root = Path(data_dir), Path(root)
    root.mkdir(parents=True, exist_ok=True)
    target = _target(root, service, wall_time)
    dest = target
    if data_dir.is_symlink() or (data_dir.exists() and not data_dir.is_dir()):
        # a file or a link where the folder should be: kept, under its own name, in a quarantine folder
        target.mkdir()
        dest = target / data_dir.name
    delay, last = 0.05, None
    for i in range(attempts):
        try:
            rename(data_dir, dest)
            data_dir.mkdir(parents=True, exist_ok=True)
            return target, "renamed"
        except PermissionError as e:  # Windows: a file in it is still open somewhere
            last = e
        except OSError as e:  # e.g. another volume (EXDEV): no point retrying a rename
            last = e
            break
        if i < attempts - 1:
            sleep(delay)
            delay = min(delay * 2, 1.0)
    try:
        if dest is target:
            shutil.copytree(data_dir, target)
        else:
            shutil.copy2(data_dir, dest, follow_symlinks=False)
    except (OSError, shutil.Error) as e:
        # a partial copy would pass for a real quarantine (and prune() would keep it over a whole one)
        shutil.rmtree(target, ignore_errors=True)
        raise QuarantineError(f"could not move or copy {data_dir} to {target}: {copy_failure(e, root)} "
                              f"(a move failed first: {last.strerror if isinstance(last, OSError) else last}); "
                              f"the journal was left in place") from e
    how = "copied"
    if dest is not target:
        if not _remove_retry(data_dir, sleep, attempts):   # a file still in the way: no folder can be made
            raise QuarantineError(f"{data_dir} was copied to {dest} but is still held open by another "
                                  f"program; close it and the service starts clean")
        data_dir.mkdir(parents=True, exist_ok=True)
        return target, how
    try:   # first, so that what cannot be removed is never taken for a clean journal
        with open(data_dir / LEFTOVERS, "wb"):
            pass
    except OSError as e:
        raise QuarantineError(f"{data_dir} was copied to {target} but cannot be emptied ({e}); "
                              f"the journal was left in place") from e
    def cleared() -> None:
        held = clear_leftovers(data_dir)
        if held is not None:
            raise PermissionError(errno.EBUSY, "held by another program", held)
    if _retry(cleared, sleep, attempts):
        return target, how
    return target, "copied (some files still busy in the original)"


def _filesystem(path: Path) -> str:
    """The mount point `path` is on (what a user frees space on)."""
    p = Path(path).absolute()
    while not os.path.ismount(p) and p.parent != p:
        p = p.parent
    return str(p)


def copy_failure(e: BaseException, where: Path) -> str:
    """A failed copy as one short sentence: shutil.Error's list of (source, target, why) per file
    ran to kilobytes. A full disk says so, naming the filesystem, with the count not copied."""
    per_file = e.args[0] if isinstance(e, shutil.Error) and e.args and isinstance(e.args[0], list) else None
    whys = [str(item[2]) for item in per_file if len(item) == 3] if per_file else [str(e)]
    full = getattr(e, "errno", None) == errno.ENOSPC or any("No space left" in w or "Errno 28" in w for w in whys)
    if full:
        count = f" ({len(per_file)} file{'s' * (len(per_file) != 1)} not copied)" if per_file else ""
        return f"no space left on {_filesystem(where)}{count}"
    if per_file:
        more = f" and {len(per_file) - 1} more" if len(per_file) > 1 else ""
        return f"{len(per_file)} file{'s' * (len(per_file) != 1)} not copied: {whys[0]}{more}"
    return getattr(e, "strerror", None) or str(e)


def _rmtree_past_errors(path: Path, refused: list[str]) -> None:
    """Remove a tree, going on past what cannot be removed (noted in `refused`)."""
    note = lambda _fn, where, _exc: refused.append(str(where))   # noqa: E731
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=note)
    else:
        shutil.rmtree(path, onerror=note)


def clear_leftovers(data_dir: Path) -> str | None:
    """A journal whose quarantine was copied aside but could not all be removed (Windows: another
    program still held some of its files) holds LEFTOVERS and what could not go. The service must
    not start on them: a stale checkpoint, segment or coordinator journal file would be read as
    part of its clean journal (a re-created topic's log start set past its records, say). Removes
    what it can now (one attempt); None once the folder is clean (LEFTOVERS removed too), else the
    path of one file still held."""
    data_dir = Path(data_dir)
    mark = data_dir / LEFTOVERS
    if not mark.exists():
        return None
    refused: list[str] = []
    for p in sorted(data_dir.iterdir()):
        if p.name == LEFTOVERS:
            continue
        try:
            if p.is_dir() and not p.is_symlink():   # past a held file: all the rest goes now
                _rmtree_past_errors(p, refused)
            else:
                os.remove(p)
        except FileNotFoundError:
            pass
        except OSError:
            refused.append(str(p))
    held = next((r for r in refused if not os.path.isdir(r)), refused[0]) if refused else None
    if held is None:
        try:
            os.remove(mark)
        except FileNotFoundError:
            pass
        except OSError:
            return str(mark)
    return held


def _remove_retry(path: Path, sleep: Callable[[float], None], attempts: int) -> bool:
    return _retry(lambda: os.remove(path), sleep, attempts)


def quarantines(root: Path, service: str) -> list[Path]:
    """The quarantine folders of one service, oldest first."""
    found = []
    try:
        entries = list(Path(root).iterdir())
    except OSError:
        return []
    for p in entries:
        m = _NAME.match(p.name)
        if m and m.group(2) == service and p.is_dir():
            found.append((m.group(1), int(m.group(3) or 1), p))
    return [p for *_, p in sorted(found)]


def prune(root: Path, service: str, keep: int, *, sleep: Callable[[float], None] = time.sleep) -> list[Path]:
    """Delete all but the newest `keep` quarantines of `service` (the only deletions recovery makes)."""
    folders = quarantines(root, service)
    doomed = folders[:max(len(folders) - keep, 0)]
    removed = []
    for p in doomed:
        if _rmtree_retry(p, sleep, 4):
            removed.append(p)
    return removed


def has_data(data_dir: Path) -> bool:
    """True when the folder holds anything besides a stop file (nothing to keep otherwise)."""
    try:
        return any(p.name not in ("stop", LEFTOVERS) for p in Path(data_dir).iterdir())
    except OSError:
        return False


DISK_FULL = "disk full"   # how path_problem's answer starts when the disk, not the folder, is at fault
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def path_problem(data_dir: Path) -> str | None:
    """Why a journal folder cannot be used as it is (a file or a dangling link in its place, a
    folder that cannot be created or written), in a few words; None when it is usable. A full
    disk (or quota) is no fault of the folder: the answer then starts with DISK_FULL, and the
    journal must stay where it is until there is space again."""
    data_dir = Path(data_dir)
    if data_dir.is_symlink() and not data_dir.exists():
        return "it is a link to a place that does not exist"
    if data_dir.exists() and not data_dir.is_dir():
        return "it is a file, not a folder"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if e.errno in _FULL_ERRNOS:
            return f"{DISK_FULL}: {data_dir} cannot be created ({e.strerror})"
        return f"it cannot be created ({e.strerror or e})"
    try:
        try_write(data_dir)
    except OSError as e:
        if e.errno in _FULL_ERRNOS:
            return f"{DISK_FULL}: nothing can be written in {data_dir} ({e.strerror})"
        return f"it cannot be written ({e.strerror or e})"
    return None
