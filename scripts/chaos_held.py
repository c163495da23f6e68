"""The fault campaign's files held by another program (scripts/chaos.py --held-files, which also
turns on --windows-files): on Windows a virus scanner, the search indexer, a backup agent or an
editor opens a file the sandbox has just written, and for as long as it holds it Windows refuses
to remove or rename that file or the folder holding it ("The process cannot access the file
because it is being used by another process"). Kafka on Windows dies of exactly this.

The fault names a few files the stack wrote in the last seconds (segments, indexes, checkpoint
files, producer snapshots, the coordinator's journal, the supervisor's state, logs) in a list every
process of the stack reads at each remove or rename (tests/winfiles.py), keeps them held for a
while, and lets go. Sometimes a broker is killed meanwhile, so its restart meets them too.

Beyond the campaign's invariants (nothing acknowledged lost, no duplicates, replicas identical,
healthy again): no service crashes or has its journal quarantined for it, and no traceback in any
log ends in such a refusal. A refusal the sandbox meets is expected; what it does next is checked."""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from winfiles import EXCLUSIVE, HELD_MARK, VETO_MARK  # noqa: E402

HELD_S = (0.3, 6.0)       # how long the other program holds them
HELD_FILES = (1, 8)       # how many files
RECENT_S = 10.0           # files written this recently are the ones a scanner opens
KILL_CHANCE = 0.3         # how often a broker is also killed while they are held
EXCLUSIVE_CHANCE = 0.3    # how often a file is held by a program that refuses writers too
BAD_EVENTS = ("crash", "wipe", "crash-loop")
# files the stack writes by replacing them whole (write a temporary, rename it over)
REPLACED = ("supervisor.json", "topics.json", "recovery-point-offset-checkpoint",
            "replication-offset-checkpoint", "log-start-offset-checkpoint", "leader-epoch-checkpoint")
REPLACED_SUFFIXES = ("-checkpoint",)


def list_path(root: Path) -> Path:
    """Where the list of held files lives: next to the project, outside the folder under the rules."""
    return root.parent / f"{root.name}-held-files.txt"


def env(root: Path) -> dict[str, str]:
    return {"SANDBOX_TEST_HELD_FILES": str(list_path(root))}


def recent_files(data: Path, now: float) -> list[Path]:
    out = []
    for dirpath, _dirs, files in os.walk(data):
        for name in files:
            p = Path(dirpath) / name
            try:
                if now - p.stat().st_mtime <= RECENT_S:
                    out.append(p)
            except OSError:
                continue
    return sorted(out)


def hold(root: Path, data: Path, rng: random.Random, during=None) -> tuple[list[Path], set[Path], float]:
    """Hold a few recently written files for a while (calling `during()` once they are held),
    then let go. The files held, those of them held by a program refusing writers too, and for
    how long."""
    candidates = recent_files(data, time.time())
    held = rng.sample(candidates, min(len(candidates), rng.randint(*HELD_FILES)))
    seconds = rng.uniform(*HELD_S)
    # a scanner opens what was just replaced above all: one file the stack rewrites by replacing
    # it (checkpoints, the catalog, the supervisor's state) is among those held, so every hold
    # meets the rules (drawn apart, so a seed's other draws stay what they were); a sample of
    # segments alone, which nothing removes or renames within seconds, made a campaign meet none
    replaced = [p for p in candidates if p.name in REPLACED or p.name.endswith(REPLACED_SUFFIXES)]
    if replaced and not any(p in replaced for p in held):
        held.append(random.Random(f"{seconds!r}-replaced").choice(replaced))
    # which of them refuse writers too: drawn apart, so a seed's other draws stay what they were
    apart = random.Random(f"{seconds!r}")
    exclusive = {p for p in held if apart.random() < EXCLUSIVE_CHANCE}
    lines = [f"{EXCLUSIVE}\t{p}" if p in exclusive else str(p) for p in held]
    path = list_path(root)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    os.replace(tmp, path)
    t0 = time.monotonic()
    try:
        if during is not None:
            during()
        time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
    finally:
        path.write_text("", encoding="utf-8")
    return held, exclusive, seconds


def fault(root: Path, data: Path, pids: dict[str, int], rng: random.Random, violations: list[str]) -> str:
    """The campaign's fault: files the stack just wrote held for a while, a broker killed
    meanwhile sometimes; a crash or quarantine it caused goes to `violations`. What it did."""
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    brokers = sorted(n for n in pids if n.startswith("broker-"))
    victim = rng.choice(brokers) if brokers and rng.random() < KILL_CHANCE else None

    def kill():
        if victim is not None:
            time.sleep(rng.uniform(0.0, 0.5))
            try:
                os.kill(pids[victim], signal.SIGKILL)
            except ProcessLookupError:
                pass
    held, exclusive, seconds = hold(root, data, rng, kill)
    time.sleep(1.5)   # what the services did about it reaches the supervisor's events
    for bad in bad_events(data / "supervisor.json", since, {victim}):
        violations.append(f"a file held by another program for {seconds:.1f} s made {bad}")
    names = [str(p.relative_to(data)) + (" (no writers)" if p in exclusive else "") for p in held]
    return f"{len(held)} held {seconds:.1f} s: {', '.join(names[:4])}{' ...' if len(names) > 4 else ''}" + \
        (f"; {victim} killed" if victim else "")


def bad_events(state_file: Path, since_iso: str, killed: set[str]) -> list[str]:
    """Crashes and quarantines the supervisor recorded since `since_iso` (an ISO time, as its
    events carry) of services the fault did not kill itself."""
    try:
        events = json.loads(state_file.read_text(encoding="utf-8")).get("events", [])
    except (OSError, ValueError):
        return []
    return [f"{e.get('service')} {e.get('kind')}: {str(e.get('detail'))[:200]}" for e in events
            if str(e.get("time", "")) >= since_iso and e.get("kind") in BAD_EVENTS
            and e.get("service") not in killed]


PROGRAMMING_ERRORS = ("AttributeError", "TypeError", "NameError", "UnboundLocalError", "KeyError",
                      "IndexError", "AssertionError", "RecursionError")


def programming_errors(logs: Path) -> list[str]:
    """Tracebacks in the services' logs whose exception is a bug whatever the fault (one of
    PROGRAMMING_ERRORS): a periodic task raising AttributeError every second passed a held-files
    campaign unseen."""
    return [t for t in _traceback_ends(logs) if t.split(": ", 2)[1].split(":")[0].strip() in PROGRAMMING_ERRORS]


def _traceback_ends(logs: Path) -> list[str]:
    """`<service>: <the exception line>` of every traceback in the services' logs."""
    found = []
    for f in sorted(logs.glob("*.log")) if logs.is_dir() else ():
        in_tb = False
        for line in f.read_text(errors="replace").splitlines():
            if line.startswith("Traceback (most recent call last)"):
                in_tb = True
                continue
            if in_tb and not line.startswith(" "):
                in_tb = False
                found.append(f"{f.stem}: {line.strip()[:300]}")
    return found


def tracebacks_from_held(logs: Path) -> list[str]:
    """Tracebacks in the services' logs whose exception is a refusal for a held file."""
    return [t for t in _traceback_ends(logs) if HELD_MARK in t]


def expected_refusal(line: str) -> bool:
    """A refusal only because another program held the file (the fault's own doing)."""
    return VETO_MARK in line and HELD_MARK in line
