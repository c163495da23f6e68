"""The fault campaign's full disk (scripts/chaos.py --disk-full): the project folder lives on a
tmpfs of its own, and the fault fills it to the last byte for a few seconds, then frees the space,
as a developer's laptop disk fills up under a download and is cleaned up again. Every service of
the stack writes there at once: the brokers' journals (leader appends, follower appends, rolls,
checkpoint files), the coordinator's journal, committed offsets, the supervisor's state and logs.

Kafka takes a log directory offline on the first failed write and the broker stops serving it
until restarted. A sandbox whose disk filled up for ten seconds must not need that: it answers
KAFKA_STORAGE_ERROR (or NOT_ENOUGH_REPLICAS) while full, loses nothing it acknowledged, says so in
`status`, and serves again by itself once space is freed. Needs root (mount)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

TMPFS_SIZE = "2g"     # the campaign's journals and logs take a few hundred MB, and status calls
                      # a journal folder with less than 200 MB free a problem
FULL_S = (2.0, 10.0)  # how long the disk stays full
# status is asked at the end of a fill at least this long: the brokers report a failed write
# with their next report (every second) and the supervisor shows it with its next probe
FULL_SHOWN_S = 4.0


def missing() -> str | None:
    """Why the fault cannot run here, or None."""
    if os.name != "posix" or os.geteuid() != 0:
        return "the disk-full fault mounts a tmpfs: run as root on Linux"
    return None


def mount(root: Path) -> None:
    """A tmpfs of its own at `root` (created), so filling it fills nothing else."""
    root.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(root)],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"cannot mount a tmpfs at {root}: {r.stderr.strip()}")


def unmount(root: Path) -> None:
    subprocess.run(["umount", "-l", str(root)], capture_output=True, timeout=30)


def fill(path: Path) -> int:
    """Write `path` until its disk is full (unbuffered, down to single bytes); the bytes written."""
    written = 0
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 20, 65536, 4096, 512, 1):
            chunk = b"\0" * size
            try:
                while True:
                    written += f.write(chunk) or 0
            except OSError:
                pass
    return written


def shown(status: dict) -> bool:
    """Whether `sandbox status --json` tells that a disk is full: not healthy, and a service's
    problem (or the stack's) says so."""
    if status.get("healthy"):
        return False
    texts = [str(s.get("problem") or "") for s in status.get("services", [])]
    texts += [str(p) for p in status.get("problems") or []]
    return any("disk full" in t.lower() or "no space left" in t.lower() for t in texts)
