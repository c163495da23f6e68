"""The running supervisor's inbox: requests from commands (`sandbox kill`, `sandbox pause`) as one
JSON file each in the data folder, written atomically and read oldest first by the supervisor's
loop; files work the same on Windows, without consoles or signals."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

INBOX_DIR = "supervisor.commands"


def send(data_dir: Path, command: str, service: str, **args: Any) -> None:
    """Queue one request: {"command": ..., "service": ..., **args}."""
    folder = Path(data_dir) / INBOX_DIR
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns():020d}-{os.getpid()}"
    tmp = folder / f".{name}.tmp"
    tmp.write_text(json.dumps({"command": command, "service": service, **args}), encoding="utf-8")
    os.replace(tmp, folder / f"{name}.json")


def take(data_dir: Path, refused: Callable[[str], Any] | None = None) -> list[dict]:
    """The queued requests, oldest first, each taken once: claimed by a rename before it is read.
    One another program holds (Windows: a virus scanner reading the new file) cannot be renamed
    nor removed: it stays queued and is taken once let go, never read a second time (read and
    then left in place, a `sandbox kill` was carried out at every pass of the loop meanwhile).
    A file that is not a JSON object is dropped, and said to `refused` (one sentence)."""
    folder = Path(data_dir) / INBOX_DIR
    try:
        files = sorted(folder.glob("*.json"))
        for left in folder.glob("*.taken"):   # a claim whose removal failed: never read again
            _remove(left)
    except OSError:
        return []
    out = []
    for path in files:
        text = take_file(path)   # None: gone, or held (taken at a later pass)
        if text is None:
            continue
        try:
            request = json.loads(text)
        except ValueError:
            request = None
        if isinstance(request, dict):
            out.append(request)
        elif refused is not None:
            refused(f"{path} is not a request (a JSON object with command and service): dropped")
    return out


def take_file(path: Path) -> str | None:
    """What a request file (the stop or restart file) says, taken once as take() takes a
    request; None when there is none, or another program holds it now (taken at a later pass:
    a held one unlinked in place stopped the supervisor with a PermissionError)."""
    claimed = path.with_name(path.name + ".taken")
    try:
        os.replace(path, claimed)
    except OSError:
        return None
    try:
        text = claimed.read_text(encoding="utf-8")
    except OSError:
        text = ""
    _remove(claimed)
    return text


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
