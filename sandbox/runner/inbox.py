"""The running supervisor's inbox: requests from commands (`sandbox kill`, `sandbox pause`) as one
JSON file each in the data folder, written atomically and read oldest first by the supervisor's
loop; files work the same on Windows, without consoles or signals."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

INBOX_DIR = "supervisor.commands"


def send(data_dir: Path, command: str, service: str, **args: Any) -> None:
    """Queue one request: {"command": ..., "service": ..., **args}."""
    folder = Path(data_dir) / INBOX_DIR
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns():020d}-{os.getpid()}"
    tmp = folder / f".{name}.tmp"
    tmp.write_text(json.dumps({"command": command, "service": service, **args}), encoding="utf-8")
    os.replace(tmp, folder / f"{name}.json")


def take(data_dir: Path) -> list[dict]:
    """The queued requests, oldest first, each removed as it is read."""
    folder = Path(data_dir) / INBOX_DIR
    try:
        files = sorted(folder.glob("*.json"))
    except OSError:
        return []
    out = []
    for path in files:
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            pass
        try:
            path.unlink()
        except OSError:
            pass
    return out
