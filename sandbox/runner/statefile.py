"""The supervisor's state file: written atomically (tmp + os.replace, retried while Windows holds the
target open) so `sandbox status` in another process always reads a whole snapshot."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable


def write_state(path: Path, data: dict[str, Any], *, attempts: int = 8,
                sleep: Callable[[float], None] = time.sleep) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, default=str)
        f.flush()
    delay = 0.01
    for i in range(attempts):
        try:
            os.replace(tmp, path)
            return
        except PermissionError:  # Windows: a reader has the file open right now
            if i == attempts - 1:
                try:
                    os.remove(tmp)
                except OSError:
                    pass
                raise
            sleep(delay)
            delay = min(delay * 2, 0.5)


def read_state(path: Path, *, attempts: int = 5, sleep: Callable[[float], None] = time.sleep) -> dict | None:
    """The last snapshot, or None when there is none."""
    for i in range(attempts):
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except (PermissionError, ValueError):  # being replaced right now
            if i == attempts - 1:
                return None
            sleep(0.02)
    return None
