"""Which share of a process's CPU went into writing files (Linux `perf`, for the benchmarks).

On a virtual machine whose host backs guest memory lazily and takes freed memory back (virtio
balloon free page reporting), every page of page cache a broker writes is new memory to the
host, and the kernel's copy into it costs up to 15 times what it costs in memory used before
(measured: 250 MB in 0.9-1.1 s against 0.06 s). That cost is the machine's, not the broker's:
the same bytes written by `dd` cost the same. `perf record` samples each process's stacks; a
sample whose kernel stack passes through the kernel's buffered file write (the copy into the page
cache) counts as writing; a write to a socket or a pipe does not. The share times
the process's CPU seconds (psutil) gives the CPU spent writing, and the rest is the broker's own.

    rec = PerfRecorder({1: pid1, 2: pid2}, folder)   # starts `perf record` on each pid
    ...                                               # the phase
    shares = rec.stop()                               # {1: 0.41, 2: 0.70}: share of samples writing
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

# the kernel's buffered file writes, whichever system call: generic (ext4, tmpfs and most
# others) and iomap's (xfs, and btrfs's own)
WRITE_CALLS = ("generic_perform_write", "iomap_file_buffered_write", "btrfs_buffered_write")
FREQUENCY = 999   # samples per second of CPU


def available() -> str | None:
    """None if `perf record` can sample this machine's kernel stacks, else why not."""
    if shutil.which("perf") is None:
        return "perf is not installed (Debian: apt-get install linux-perf)"
    try:
        r = subprocess.run(["perf", "record", "-q", "-g", "-o", "/dev/null", "--", "true"],
                           capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"perf record does not run: {e}"
    if r.returncode != 0:
        lines = r.stderr.decode(errors="replace").strip().splitlines()
        return "perf record is refused" + (f": {lines[-1]}" if lines else f" (exit {r.returncode})")
    return None


def write_share(data: Path) -> tuple[int, int]:
    """(samples, samples whose stack passes through a buffered file write) of one perf.data."""
    out = subprocess.run(["perf", "script", "-i", str(data), "-F", "ip,sym"], capture_output=True,
                         timeout=300, text=True, errors="replace").stdout
    return count_writing(out)


def count_writing(script: str) -> tuple[int, int]:
    """(samples, samples writing) in `perf script` output: one stack a sample, blank-line apart."""
    samples = writing = 0
    in_sample = hit = False
    for line in script.splitlines():
        if not line.strip():            # a blank line ends a sample's stack
            if in_sample:
                samples += 1
                writing += hit
            in_sample = hit = False
            continue
        in_sample = True
        hit = hit or any(w in line for w in WRITE_CALLS)
    if in_sample:
        samples += 1
        writing += hit
    return samples, writing


class PerfRecorder:
    def __init__(self, pids: dict[int, int], folder: Path, tag: str = "") -> None:
        self.files = {n: folder / f"perf-{tag}{n}.data" for n in pids}
        self.procs = {n: subprocess.Popen(
            ["perf", "record", "-q", "-F", str(FREQUENCY), "-g", "-p", str(pid), "-o", str(self.files[n])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for n, pid in pids.items()}
        time.sleep(0.5)   # perf attaches before the phase starts

    def stop(self) -> dict[int, float | None]:
        """Each process's share of CPU samples spent in writes (None: perf recorded nothing)."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self.procs.values():
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shares: dict[int, float | None] = {}
        for n, f in self.files.items():
            samples, writing = write_share(f) if f.exists() else (0, 0)
            shares[n] = writing / samples if samples else None
            if not samples:   # its figures are left out of the report: said why
                print(f"perf recorded no samples of process {n} (see `perf record -p` by hand)", file=sys.stderr)
            f.unlink(missing_ok=True)
        return shares
