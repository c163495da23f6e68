#!/usr/bin/env python3
"""A fault campaign against a real native stack (`sandbox up`, 3 brokers) under an idempotent
acks=all producer, a transactional producer (chaos_txn.py) and two consumer groups committing what
they processed (chaos_group.py): a seeded random sequence of faults
(SIGKILL or SIGSTOP/SIGCONT of any service and of the supervisor followed by `sandbox up`, torn
journal tails, a journal folder deleted or replaced by a file, the coordinator's journal
destroyed; with --moves also a partition's leader reassigned out of its replicas and back; with --churn also a
broker down while one topic is deleted and another deleted and made again (chaos_churn.py); with
--compound also overlapping faults (every process killed at once, two brokers at once, a broker
while a destroyed coordinator journal is put back); with --network also every TCP connection of a service reset, and a service cut off:
every packet to its port dropped for up to 12 s, longer than the brokers' 9 s session), checking
after each step that the stack heals and that `sandbox status` never shows a dead process as
running (nor a service cut off for 3 s or more as healthy), and at the end that no acknowledged
record was lost (unless a quarantine event says so and the bytes are in quarantine, or the fault
itself destroyed that journal), none is duplicated, read_committed shows every committed
transaction whole and nothing of an aborted one, no acknowledged group commit is lost (asked after
every fault), no group skipped a record or was handed one the log does not keep, the groups catch up
and status shows their lag as 0, every broker answers with the cluster id it had before the faults
(asked twice a second throughout, scripts/chaos_ids.py: clients are never told another), every partition is back in sync and (after a clean stop) its replicas hold the same bytes, and
nothing is left after `down`.

    python scripts/chaos.py --faults 200 --seed 7      # a long campaign; prints the figures
    python scripts/chaos.py --network --seed 7         # network faults too (root: ss, iptables)
    python scripts/chaos.py --moves --seed 7           # leaders moved by reassignment too

Only 127.0.0.1; every loop is bounded in count and time. Exit 1 when an invariant broke.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import chaos_acl  # noqa: E402
import chaos_churn  # noqa: E402
import chaos_disk  # noqa: E402
import chaos_group  # noqa: E402
import chaos_held  # noqa: E402
import chaos_ids  # noqa: E402
import chaos_txn  # noqa: E402

FAULTS = ("kill-broker", "kill-coordinator", "pause-service", "kill-supervisor", "pause-supervisor",
          "torn-tail", "journal-deleted", "journal-replaced-by-file", "coordinator-journal-destroyed")
# with --moves (apart, so the seeds kept as regressions keep their schedules)
MOVE_FAULTS = ("move-leader",)
# with --churn (apart too): a broker down while topics are deleted and made again (chaos_churn.py)
CHURN_FAULTS = ("churn-while-down",)
# with --compound (apart too): faults that overlap, as they do when a machine has a bad moment:
# every process of the stack killed at once (Task Manager's "end process tree", a closed terminal)
# and `sandbox up` again; two brokers killed together (acks=all with min.insync.replicas 2 must
# wait, not lose); a broker killed while a destroyed coordinator journal is being put back
# (and, in chaos_churn.py, a broker paused while a topic is deleted and made again and the
# coordinator's journal destroyed before it is resumed)
COMPOUND_FAULTS = ("kill-all", "kill-two-brokers", "kill-broker-during-restore", "churn-through-lost-journal")
REASSIGN_BOUND_S = 60.0  # a reassignment of a live cluster finishes within this long
TOPIC = "chaos"
PARTITIONS = 6
# small segments: a partition rolls every second or two, so kills, pauses and torn tails land
# while a rolled segment's fsync is still running in the broker's worker thread
SEGMENTS = 'config = { "segment.bytes" = "16384" }\n'
HEAL_BOUND_S = 10.0      # healthy within this long after a fault ends (the promise)
HEAL_GIVE_UP_S = 60.0    # past this the campaign records a violation and stops waiting
STATUS_TRUTH_S = 2.0     # a dead process is never shown as running for longer than this
# needs root, `ss` (iproute2) and `iptables`; a seed's schedule differs with and without them
NETWORK_FAULTS = ("reset-connections", "cut-off-service")
# with --disk-full (apart too): the project's own tmpfs filled to the last byte for a while (chaos_disk.py)
DISK_FAULTS = ("disk-full",)
# with --held-files (apart too; turns on --windows-files): files the stack just wrote held open by
# another program, a virus scanner say, for a while (chaos_held.py)
HELD_FAULTS = ("held-files",)
# with --ports (apart too): a broker killed and its port bound by another program (a dev server)
# before the supervisor starts it again, held 1-8 s, then let go: the broker must come back by itself
# and status must not call it healthy meanwhile
PORT_FAULTS = ("port-taken",)
PORT_HOLD_S = (1.0, 8.0)
CUT_OFF_S = (1.0, 12.0)  # how long a service's port drops every packet (the session is 9 s)
# status is asked at the end of a cut at least this long: the supervisor probes every second with
# a 1 s timeout, so a shorter cut may end before any probe could fail
CUT_OFF_SHOWN_S = 3.0
# what the loads must have done before they stop, so the invariants check something: a slow
# machine runs a short schedule in fewer transactions, so the loads go on after the last fault
# past it, for at most WORKLOAD_WAIT_S (a load that never gets there is reported)
WORKLOAD_FLOOR = {"acked": 500, "committed": 20, "aborted": 0, "group commits": 20,   # more than these
                  "denied writes refused": 10}
WORKLOAD_WAIT_S = 60.0
WINFILES_SITE = Path(__file__).resolve().parents[1] / "tests" / "winfiles_site"
VETO_MARK = "[simulated Windows]"


def windows_refusals(logs: Path) -> tuple[list[str], list[str]]:
    """(services whose log shows the file rules on, the refusals the logs show)."""
    ruled, refused = [], []
    for f in sorted(logs.glob("*.log")) if logs.is_dir() else ():
        for line in f.read_text(errors="replace").splitlines():
            if VETO_MARK not in line:
                continue
            if "file rules on" in line:
                ruled.append(f.stem)
            else:
                refused.append(f"{f.stem}: {line.strip()}")
    return sorted(set(ruled)), refused


def network_faults_missing() -> str | None:
    """Why the network faults cannot run here, or None."""
    if os.name != "posix" or os.geteuid() != 0:
        return "the network faults need root (iptables, ss -K)"
    for tool in ("ss", "iptables"):
        if shutil.which(tool) is None:
            return f"the network faults need `{tool}` (apt-get install iproute2 iptables)"
    return None


def _drop_rule(port: int) -> list[str]:
    return ["INPUT", "-i", "lo", "-p", "tcp", "--dport", str(port), "-j", "DROP",
            "-m", "comment", "--comment", "sandbox-chaos"]


def reset_connections(port: int) -> None:
    """Destroy every TCP connection to or from 127.0.0.1:port (both ends get a reset): what a
    dropped connection looks like to the services and their clients."""
    subprocess.run(["ss", "-K", "-t", "state", "established", "(", "sport", "=", f":{port}", "or",
                    "dport", "=", f":{port}", ")"], capture_output=True, timeout=30, check=False)


def cut_off(port: int, seconds: float, during=None) -> None:
    """Drop every packet sent to the port for `seconds` (connections stall, new ones time out),
    then let them through again; the rule is removed even if this is interrupted. `during()` is
    called while the port is cut off (not counted in `seconds`)."""
    subprocess.run(["iptables", "-I", *_drop_rule(port)], capture_output=True, timeout=30, check=True)
    try:
        time.sleep(seconds)
        if during is not None:
            during()
    finally:
        while subprocess.run(["iptables", "-D", *_drop_rule(port)], capture_output=True,
                             timeout=30).returncode == 0:
            pass   # every copy of the rule, should one have been left by an interrupted run


def free_ports(n: int) -> int:
    """A block of n free ports below the kernel's ephemeral range (tests/helpers.listen_port)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from helpers import listen_port
    return listen_port(n)


@dataclass
class Report:
    seed: int
    faults: list[str] = field(default_factory=list)
    acked: int = 0
    lost: int = 0
    destroyed: int = 0        # lost with a journal the fault itself deleted or replaced
    quarantined: int = 0      # lost from service but kept in a quarantine a wipe event names
    duplicates: int = 0
    txns_committed: int = 0   # transactions whose commit the client saw succeed
    txns_aborted: int = 0
    heal_s: list[float] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    replicas_compared: int = 0   # partitions whose replicas were compared byte for byte after `down`
    group_commits: int = 0       # commits the consumer groups saw acknowledged
    acl_refused: int = 0         # writes the probe saw refused as the DENY ACL says (chaos_acl.py)
    held_refused: int = 0        # removes, renames and writes refused because another program held the file

    @property
    def worst_heal_s(self) -> float:
        return max(self.heal_s, default=0.0)

    def line(self) -> str:
        return (f"seed {self.seed}: {len(self.faults)} faults, {self.acked} acked records, {self.lost} lost "
                f"({self.destroyed} with a journal the fault destroyed, {self.quarantined} kept in a quarantine, "
                f"{self.lost - self.destroyed - self.quarantined} otherwise), {self.duplicates} duplicates, "
                f"{self.txns_committed} committed and {self.txns_aborted} aborted transactions, "
                f"{self.group_commits} acknowledged group commits, {self.acl_refused} denied writes refused, "
                f"{self.held_refused} removes, renames or writes refused for a held file, "
                f"worst time to healthy {self.worst_heal_s:.1f} s, replicas of {self.replicas_compared} "
                f"partitions compared, {len(self.violations)} violations")


class Stack:
    """One sandbox project in a temp folder, driven through the CLI as a user would."""

    def __init__(self, root: Path, brokers: int, windows_files: bool = False) -> None:
        self.root, self.brokers = root, brokers
        # every process of the stack under Windows' file rules (tests/winfiles_site/sitecustomize.py)
        self.env_extra = {} if not windows_files else {
            "SANDBOX_TEST_WINDOWS_FILES": str(root), **chaos_held.env(root),
            "PYTHONPATH": os.pathsep.join(p for p in (str(WINFILES_SITE), os.environ.get("PYTHONPATH")) if p)}
        self.last_unhealthy: tuple = ([], None)   # (services not healthy, problems) at the last check
        base = free_ports(2 * brokers + 2)   # the brokers' ports, the coordinator's, HTTP, the SASL listeners
        self.port, self.coordinator_port, self.http_port = base, base + brokers, base + brokers + 1
        self.sasl_port = base + brokers + 2
        root.mkdir(parents=True, exist_ok=True)
        (root / "sandbox.toml").write_text(
            "[sandbox]\n" f'name = "chaos"\nhost = "127.0.0.1"\nport = {base}\n'
            f"coordinator_port = {self.coordinator_port}\nhttp_port = {self.http_port}\nbrokers = {brokers}\n"
            "\n[recovery]\nmax_restarts = 5\nrestart_window_s = 30\nunhealthy_after_s = 3\n"
            f"\n[topics.{TOPIC}]\npartitions = {PARTITIONS}\n{SEGMENTS}"
            f"\n[topics.{chaos_txn.TXN_TOPIC}]\npartitions = {chaos_txn.TXN_PARTITIONS}\n{SEGMENTS}"
            + chaos_acl.toml(self.sasl_port), encoding="utf-8")

    @property
    def data(self) -> Path:
        return self.root / ".sandbox"

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.port + i}" for i in range(self.brokers))

    @property
    def sasl_bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.sasl_port + i}" for i in range(self.brokers))

    def pause(self, service: str, seconds: float) -> subprocess.Popen:
        """`sandbox pause SERVICE --for Ns`, left running (it returns once the service is resumed);
        a second one cuts the first's pause short."""
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env_extra)
        return subprocess.Popen([sys.executable, "-m", "sandbox", "pause", service, "--for", f"{seconds:g}s"],
                                cwd=self.root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env_extra)
        return subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=self.root, env=env,
                              capture_output=True, text=True, timeout=timeout)

    def status(self) -> tuple[int, dict]:
        r = self.cli("status", "--json", timeout=60)
        try:
            return r.returncode, json.loads(r.stdout)
        except ValueError:
            return r.returncode, {}

    def state(self) -> dict:
        try:
            return json.loads((self.data / "supervisor.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def supervisor_pid(self) -> int | None:
        try:
            return int(json.loads((self.data / "supervisor.pid").read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def service_pids(self) -> dict[str, int]:
        return {s["name"]: s["pid"] for s in self.state().get("services", []) if s.get("pid")}

    def healthy(self) -> bool:
        code, st = self.status()
        svcs = st.get("services", [])
        self.last_unhealthy = [(s["name"], s["state"], s["healthy"]) for s in svcs
                               if s["state"] != "running" or not s["healthy"]], st.get("problems")
        return code == 0 and bool(svcs) and all(s["state"] == "running" and s["healthy"] for s in svcs) \
            and any(t["name"] == TOPIC and t["partitions"] == PARTITIONS and t["leaderless_partitions"] == 0
                    for t in st.get("topics", []))

    def leftovers(self) -> list[psutil.Process]:
        mark = str(self.root)
        found = []
        for p in psutil.process_iter(["cmdline"]):
            try:
                if p.pid != os.getpid() and mark in " ".join(p.info["cmdline"] or []) \
                        and p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p)
            except psutil.Error:
                continue
        return found


class Load:
    """An idempotent acks=all producer writing numbered records at a bounded rate."""

    def __init__(self, bootstrap: str, rate: int = 200, limit: int = 200_000) -> None:
        self.bootstrap, self.rate, self.limit = bootstrap, rate, limit
        self.acked: dict[bytes, tuple[int, int]] = {}
        self.stop = threading.Event()
        self.fatal: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _producer(self):
        from confluent_kafka import Producer
        return Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5, "message.timeout.ms": 120000, "retry.backoff.ms": 200,
                         "socket.timeout.ms": 10000, "topic.metadata.refresh.interval.ms": 2000})

    def _run(self) -> None:
        from confluent_kafka import KafkaException
        p = self._producer()
        n = 0

        def done(err, msg):
            if err is None:
                self.acked[msg.value()] = (msg.partition(), msg.offset())
            elif err.fatal():
                self.fatal.append(str(err))

        t0 = time.monotonic()
        while not self.stop.is_set() and n < self.limit:
            if self.fatal:   # e.g. a journal destroyed under an idempotent producer: start a new one
                p.flush(30)
                p = self._producer()
                self.fatal.clear()
            try:
                p.produce(TOPIC, value=f"r{n:09d}".encode(), partition=n % PARTITIONS, on_delivery=done)
                n += 1
            except (BufferError, KafkaException):
                p.poll(0.1)
                continue
            p.poll(0)
            ahead = n / self.rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
        p.flush(150)


def _journal_partitions(stack: Stack, broker: str) -> list[Path]:
    d = stack.data / broker
    try:
        return sorted(p for p in d.iterdir() if p.is_dir() and p.name.startswith(f"{TOPIC}-"))
    except OSError:
        return []


def _read_json(path: Path) -> dict:
    """A JSON file's object; {} if it is missing, being replaced, or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _freeze_then_kill(pid: int, between) -> None:
    os.kill(pid, signal.SIGSTOP)
    try:
        between()
    finally:
        os.kill(pid, signal.SIGKILL)


class Campaign:
    def __init__(self, stack: Stack, rng: random.Random, report: Report, say,
                 heal_bound_s: float | None = HEAL_BOUND_S) -> None:
        self.stack, self.rng, self.report, self.say = stack, rng, report, say
        self.heal_bound_s = heal_bound_s
        self.destroyed: list[tuple[str, float]] = []   # (broker, when) whose journal a fault destroyed
        self.trash = stack.root / "chaos-trash"
        self.churned: list[dict] = []   # chaos_churn's records, checked at the end

    def _check_status_truth(self, dead: list[int]) -> None:
        if not dead:
            return
        time.sleep(STATUS_TRUTH_S + 0.2)
        _, st = self.stack.status()
        for s in st.get("services", []):
            if s.get("pid") in dead and s.get("state") == "running":
                self.report.violations.append(f"status showed dead pid {s['pid']} ({s['name']}) as running "
                                              f"{STATUS_TRUTH_S:g} s after it died")

    @staticmethod
    def _garble(folder: Path) -> None:
        """Overwrite the start of every file of a journal (the coordinator's: it cannot repair that)."""
        for f in folder.rglob("*"):
            if f.is_file() and f.name != "stop":
                with open(f, "r+b") as fh:
                    fh.write(b"\xa5" * max(1, min(64, f.stat().st_size)))

    def _check_cut_off_shown(self, name: str) -> None:
        """A service nobody can reach is not shown as healthy (status asked while it is cut off)."""
        _, st = self.stack.status()
        for s in st.get("services", []):
            if s.get("name") == name and s.get("healthy"):
                self.report.violations.append(f"status showed {name} healthy while its port dropped every packet")
        if st.get("healthy"):
            self.report.violations.append(f"status said the stack is healthy while {name} was cut off")

    def _up_again(self, after: str) -> None:
        r = self.stack.cli("up", "--timeout", "60")
        if r.returncode != 0:
            self.report.violations.append(f"`sandbox up` after {after} exited {r.returncode}: "
                                          f"{r.stderr.strip()[-300:]}")

    def fault(self, kind: str) -> None:
        self.detail = ""   # what the fault hit, for the report line (network faults)
        st = self.stack
        pids = st.service_pids()
        brokers = sorted(n for n in pids if n.startswith("broker-"))
        dead: list[int] = []
        if kind in ("kill-broker", "kill-coordinator"):
            name = self.rng.choice(brokers) if kind == "kill-broker" else "coordinator"
            if name in pids:
                os.kill(pids[name], signal.SIGKILL)
                dead.append(pids[name])
        elif kind == "pause-service":
            name = self.rng.choice(sorted(pids))
            os.kill(pids[name], signal.SIGSTOP)
            time.sleep(self.rng.uniform(0.5, 3.0))
            try:
                os.kill(pids[name], signal.SIGCONT)
            except ProcessLookupError:
                pass   # the supervisor replaced it meanwhile
        elif kind == "kill-supervisor":
            sp = st.supervisor_pid()
            if sp:
                os.kill(sp, signal.SIGKILL)
                time.sleep(self.rng.uniform(0.0, 2.0))
            self._up_again("a killed supervisor")
        elif kind == "pause-supervisor":
            sp = st.supervisor_pid()
            if sp:
                os.kill(sp, signal.SIGSTOP)
                time.sleep(self.rng.uniform(0.5, 3.0))
                os.kill(sp, signal.SIGCONT)
        elif kind == "torn-tail" and brokers:
            name = self.rng.choice(brokers)
            parts = _journal_partitions(st, name)

            def tear():
                if parts:
                    segs = sorted(self.rng.choice(parts).glob("*.log"))
                    if segs:
                        with open(segs[-1], "ab") as f:
                            f.write(bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 300))))
            _freeze_then_kill(pids[name], tear)
            dead.append(pids[name])
        elif kind in ("journal-deleted", "journal-replaced-by-file") and brokers:
            name = self.rng.choice(brokers)
            journal = st.data / name

            def destroy():
                self.trash.mkdir(exist_ok=True)
                # "deleted": moved where the broker cannot see it (kept only for the final accounting)
                shutil.move(str(journal), str(self.trash / f"{name}-{time.time():.3f}"))
                if kind == "journal-replaced-by-file":
                    journal.write_text("what a half-finished copy leaves behind")
            self.destroyed.append((name, time.time()))
            _freeze_then_kill(pids[name], destroy)
            dead.append(pids[name])
        elif kind in NETWORK_FAULTS:
            ports = {f"broker-{i + 1}": st.port + i for i in range(st.brokers)}
            ports["coordinator"] = st.coordinator_port
            name = self.rng.choice(sorted(ports))
            if kind == "reset-connections":
                reset_connections(ports[name])
                self.detail = name
            else:
                seconds = self.rng.uniform(*CUT_OFF_S)
                cut_off(ports[name], seconds,
                        (lambda: self._check_cut_off_shown(name)) if seconds >= CUT_OFF_SHOWN_S else None)
                self.detail = f"{name} for {seconds:.1f} s"
        elif kind == "move-leader":
            self.detail = self._move_leader()
        elif kind == "disk-full":
            self.detail = self._fill_disk()
        elif kind == "port-taken" and brokers:
            name = self.rng.choice(brokers)
            self.detail = self._take_port(name, pids[name])
            dead.append(pids[name])
        elif kind == "held-files":
            self.detail = chaos_held.fault(self.stack.root, self.stack.data, self.stack.service_pids(), self.rng,
                                           self.report.violations)
        elif kind in ("churn-while-down", "churn-through-lost-journal"):
            lost = None
            if kind == "churn-through-lost-journal" and "coordinator" in pids:
                def destroy():
                    _freeze_then_kill(pids["coordinator"], lambda: self._garble(st.data / "coordinator"))
                    dead.append(pids["coordinator"])
                lost = (st.pause, destroy, lambda: set(_read_json(st.data / "topics.json").get("topics", {})))
            try:
                self.detail, record, killed = chaos_churn.fault(
                    st.bootstrap, st.supervisor_pid(), {b: pids[b] for b in brokers}, self.rng,
                    len(self.report.faults), lambda topics: _in_sync(st.bootstrap, topics, 30), lost)
            except Exception as e:   # noqa: BLE001 - an admin call refused: reported, the campaign goes on
                self.report.violations.append(f"topic churn failed: {e!r}")
                record, killed = None, None
            if record is not None:
                self.churned.append(record)
            if killed is not None:
                dead.append(killed)
        elif kind in ("coordinator-journal-destroyed", "kill-broker-during-restore") and "coordinator" in pids:
            _freeze_then_kill(pids["coordinator"], lambda: self._garble(st.data / "coordinator"))
            dead.append(pids["coordinator"])
            if kind == "kill-broker-during-restore" and brokers:
                # while the supervisor puts the journal back: the coordinator restarted, brokers
                # registering again, topics being re-created
                time.sleep(self.rng.uniform(0.5, 4.0))
                name = self.rng.choice(brokers)
                self.detail = f"{name} killed"
                try:
                    os.kill(st.service_pids().get(name, pids[name]), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        elif kind == "kill-two-brokers" and len(brokers) >= 2:
            names = self.rng.sample(brokers, 2)
            self.detail = " and ".join(names)
            for name in names:
                os.kill(pids[name], signal.SIGKILL)
                dead.append(pids[name])
        elif kind == "kill-all":
            sp = st.supervisor_pid()
            for pid in ([sp] if sp else []) + [pids[n] for n in sorted(pids)]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            dead += [pids[n] for n in sorted(pids)]
            time.sleep(self.rng.uniform(0.0, 2.0))
            self._up_again("every process was killed")
        self.fault_ended = time.monotonic()
        self._check_status_truth(dead)

    def _take_port(self, name: str, pid: int) -> str:
        """Kill broker `name` and bind its port the moment its listener is gone, as a program
        started meanwhile would; hold it, asking status halfway (the broker must not be shown
        healthy, nor the stack), then let it go. How soon it is healthy again is heal()'s."""
        port = self.stack.port + int(name.split("-")[1]) - 1
        hold = self.rng.uniform(*PORT_HOLD_S)
        holder = socket.socket()
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while True:
                try:
                    holder.bind(("127.0.0.1", port))
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        return f"{name}: its port never came free"
                    time.sleep(0.005)
            holder.listen()
            time.sleep(hold / 2)
            _, st = self.stack.status()
            for s in st.get("services", []):
                if s.get("name") == name and s.get("healthy"):
                    self.report.violations.append(f"status showed {name} healthy while another program held "
                                                  f"its port {port}")
            if st.get("healthy"):
                self.report.violations.append(f"status said the stack is healthy while {name}'s port was held")
            said = [e for e in st.get("events", []) if e.get("service") == name and e.get("kind") == "port-in-use"]
            time.sleep(hold / 2)
        finally:
            holder.close()
        return f"{name} for {hold:.1f} s" + (" (port-in-use said)" if said else "")

    def _fill_disk(self) -> str:
        """Fill the project's tmpfs to the last byte, hold it full, free it again. Status, asked
        at the end of a long enough fill, must say the disk is full and not call the stack healthy."""
        filler = self.stack.root / "chaos-filler"
        seconds = self.rng.uniform(*chaos_disk.FULL_S)
        # half the time a broker also crashes while the disk is full (as a process does when a
        # write it cannot handle fails): the supervisor restarts it onto the full disk
        pids = self.stack.service_pids()
        victim = self.rng.choice(sorted(n for n in pids if n.startswith("broker-"))) if self.rng.random() < 0.5 else None
        t0 = time.monotonic()
        try:
            written = chaos_disk.fill(filler)
            if victim is not None:
                time.sleep(min(1.0, seconds / 3))
                try:
                    os.kill(pids[victim], signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
            if seconds >= chaos_disk.FULL_SHOWN_S:
                _, st = self.stack.status()
                if not chaos_disk.shown(st):
                    self.report.violations.append(
                        f"status did not tell a full disk after {seconds:.1f} s: healthy {st.get('healthy')}, "
                        f"problems {st.get('problems')}")
        finally:
            filler.unlink(missing_ok=True)
        return f"{written >> 20} MiB for {seconds:.1f} s" + (f", {victim} killed meanwhile" if victim else "")

    def _move_leader(self) -> str:
        """A partition's leader taken out of its replicas by a reassignment (leadership moves at
        once, by the coordinator's decision, while writes are in flight), then put back as a
        follower that copies the partition again. Done with kafka-python's admin client, as
        kafka-reassign-partitions does."""
        from kafka import KafkaAdminClient
        from kafka.structs import TopicPartition
        from sandbox.client import KafkaClient, KafkaClientError
        try:
            with KafkaClient(self.stack.bootstrap) as c:
                md, _ = c.metadata([TOPIC])
        except KafkaClientError as e:
            return f"skipped: no metadata ({e})"
        parts = [p for p in md.topics[TOPIC].partitions if p.leader >= 0 and len(p.replicas) >= 2]
        if not parts:
            return "skipped: no partition with a leader and a follower"
        p = self.rng.choice(parts)
        others = [r for r in p.replicas if r != p.leader]
        tp = TopicPartition(TOPIC, p.index)
        admin = KafkaAdminClient(bootstrap_servers=self.stack.bootstrap, request_timeout_ms=10000)
        try:
            for replicas, what in ((others, "away from"), (others + [p.leader], "back to")):
                admin.alter_partition_reassignments({tp: replicas})
                deadline = time.monotonic() + REASSIGN_BOUND_S
                while admin.list_partition_reassignments() and time.monotonic() < deadline:
                    time.sleep(0.2)
                if admin.list_partition_reassignments():
                    self.report.violations.append(f"{TOPIC}-{p.index}: the reassignment {what} broker {p.leader} "
                                                  f"did not finish within {REASSIGN_BOUND_S:g} s")
                    break
        except Exception as e:   # noqa: BLE001 - an admin call refused: reported, the campaign goes on
            self.report.violations.append(f"{TOPIC}-{p.index}: reassignment failed: {e!r}")
        finally:
            admin.close()
        return f"{TOPIC}-{p.index} led by broker {p.leader}, moved to {others} and back"

    def heal(self, t0: float) -> None:
        """Wait until healthy; the time counts from t0, when the fault ended."""
        seen: list = []   # what status said while unhealthy, once per change, for the report
        while time.monotonic() - t0 < HEAL_GIVE_UP_S:
            if self.stack.healthy():
                took = time.monotonic() - t0
                self.report.heal_s.append(took)
                if self.heal_bound_s is not None and took > self.heal_bound_s:
                    self.report.violations.append(f"healthy only {took:.1f} s after fault "
                                                  f"{len(self.report.faults)} ({self.report.faults[-1]}); "
                                                  f"meanwhile: {seen}")
                return
            if not seen or seen[-1][1:] != self.stack.last_unhealthy:
                seen.append((round(time.monotonic() - t0, 1), *self.stack.last_unhealthy))
            time.sleep(0.3)
        self.report.heal_s.append(HEAL_GIVE_UP_S)
        _, st = self.stack.status()
        brief = [(s["name"], s["state"], s["healthy"]) for s in st.get("services", [])]
        self.report.violations.append(f"not healthy {HEAL_GIVE_UP_S:g} s after fault {len(self.report.faults)} "
                                      f"({self.report.faults[-1]}): {brief}; problems {st.get('problems')}")


def _read_all(bootstrap: str, timeout: float = 90) -> dict[int, list[tuple[int, bytes]]]:
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"chaos-check-{time.time()}",
                  "enable.auto.commit": False, "enable.partition.eof": True, "fetch.queue.backoff.ms": 10})
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    out: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(PARTITIONS)}
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(at_end) < PARTITIONS and time.monotonic() < deadline:
            for m in c.consume(1000, timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        at_end.add(m.partition())
                    continue
                out[m.partition()].append((m.offset(), m.value()))
    finally:
        c.close()
    return out


def _in_sync(bootstrap: str, topics: dict[str, int], timeout: float = 60) -> list[str]:
    """Wait until every partition of `topics` has its whole replica set in sync; the ones that
    are not after `timeout`, described."""
    from sandbox.client import KafkaClient, KafkaClientError
    deadline = time.monotonic() + timeout
    behind: list[str] = ["no metadata"]
    while time.monotonic() < deadline:
        try:
            with KafkaClient(bootstrap, timeout=5.0) as c:
                md, _ = c.metadata(list(topics))
            behind = [f"{t}-{p.index} (replicas {sorted(p.replicas)}, in sync {sorted(p.isr)}, leader {p.leader})"
                      for t in topics for p in (md.topics[t].partitions if t in md.topics else [])
                      if p.leader < 0 or sorted(p.isr) != sorted(p.replicas)]
            behind += [f"{t} missing" for t in topics if t not in md.topics]
        except KafkaClientError as e:
            behind = [str(e)]
        if not behind:
            return []
        time.sleep(0.5)
    return behind


def cluster_ids(bootstrap: str, brokers: int) -> dict[int, str | None]:
    from sandbox.client import KafkaClient, KafkaClientError
    try:
        with KafkaClient(bootstrap, timeout=5.0) as c:
            return c.cluster_ids(range(1, brokers + 1))
    except KafkaClientError:
        return {}


def cluster_id_kept(bootstrap: str, brokers: int, before: str | None, timeout: float = 30) -> list[str]:
    """Every broker answers with the cluster id it had before the faults (a destroyed coordinator
    journal makes a fresh one, and the restore puts the old one back last)."""
    deadline = time.monotonic() + timeout
    while True:
        now = cluster_ids(bootstrap, brokers)
        if before is not None and set(now.values()) == {before} and len(now) == brokers:
            return []
        if time.monotonic() >= deadline:
            return [f"the cluster id changed: {before} before the faults, {now} after"]
        time.sleep(0.5)


def replicas_disagree(data: Path, brokers: int, topics: dict[str, int]) -> tuple[list[str], int]:
    """After a clean stop: the partitions whose replicas hold different bytes anywhere in the
    offsets they all hold (followers append the leader's batches as they are, so every replica
    of a partition must be byte for byte the same there), and how many partitions were compared."""
    from sandbox.log import LogConfig, PartitionLog
    out, compared = [], 0
    for topic, count in topics.items():
        for index in range(count):
            held: dict[int, tuple[int, int, PartitionLog]] = {}
            try:
                for b in range(1, brokers + 1):
                    d = data / f"broker-{b}" / f"{topic}-{index}"
                    if d.is_dir():
                        log = PartitionLog(d, LogConfig())
                        held[b] = (log.log_start_offset, log.log_end_offset, log)
                if len(held) < 2:
                    continue
                start = max(s for s, _e, _l in held.values())
                end = min(e for _s, e, _l in held.values())
                if end <= start:
                    continue
                data_of = {b: log.read(start, 1 << 31, max_offset=end).tobytes() for b, (_s, _e, log) in held.items()}
                compared += 1
                if len(set(data_of.values())) > 1:
                    out.append(f"replicas of {topic}-{index} differ within offsets {start}-{end}: "
                               f"{ {b: len(v) for b, v in data_of.items()} } bytes")
            finally:
                for _s, _e, log in held.values():
                    log.close()
    return out, compared


def _kept_in(folder: Path, value: bytes, topic: str = TOPIC) -> bool:
    """Whether a segment of `topic` somewhere under `folder` holds these bytes."""
    for f in folder.rglob(f"{topic}-*/*.log") if folder.exists() else ():
        try:
            if value in f.read_bytes():
                return True
        except OSError:
            continue
    return False


def wait_for_workload(done: Callable[[], dict[str, int]], say=print, wait_s: float = WORKLOAD_WAIT_S,
                      floor: dict[str, int] | None = None) -> dict[str, int]:
    """Keep the loads going until each count is more than its WORKLOAD_FLOOR, or wait_s has passed;
    the counts at the end (what fell short is said, and the caller's checks see it)."""
    floor = WORKLOAD_FLOOR if floor is None else floor
    deadline = time.monotonic() + wait_s
    while True:
        counts = done()
        short = {k: n for k, n in counts.items() if n <= floor.get(k, -1)}
        if not short or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if short:
        say("  the loads fell short after the faults: " + ", ".join(f"{n} {k} (wanted more than {floor[k]})" for k, n in short.items()))
    return counts


def run(seed: int, faults: int, root: Path, brokers: int = 3, say=print, network: bool = False,
        moves: bool = False, windows_files: bool = False, churn: bool = False, compound: bool = False,
        heal_bound_s: float | None = HEAL_BOUND_S, disk_full: bool = False, keep_files: bool = False,
        only: tuple[str, ...] = (), held_files: bool = False, ports: bool = False) -> Report:
    """One seeded campaign (_run); with disk_full, in a tmpfs of its own mounted at `root` for it
    and unmounted after, whatever happens (keep_files: a copy is kept next to it)."""
    args = dict(brokers=brokers, say=say, network=network, moves=moves, windows_files=windows_files, churn=churn,
                compound=compound, heal_bound_s=heal_bound_s, disk_full=disk_full, only=only, held_files=held_files,
                ports=ports)
    if not disk_full:
        return _run(seed, faults, root, **args)
    chaos_disk.mount(root)
    report = None
    try:
        report = _run(seed, faults, root, **args)
        return report
    finally:
        try:
            if keep_files:   # the tmpfs goes with the unmount: what --keep keeps is a copy
                shutil.copytree(root, root.with_name(root.name + "-kept"), symlinks=True, dirs_exist_ok=True)
            elif report is None or report.violations:   # the services' logs, to tell what went wrong
                for logs in root.glob("**/logs"):
                    shutil.copytree(logs, root.with_name(root.name + "-logs"), dirs_exist_ok=True)
                    say(f"the services' logs are kept in {root.with_name(root.name + '-logs')}")
        finally:
            chaos_disk.unmount(root)


def _run(seed: int, faults: int, root: Path, brokers: int = 3, say=print, network: bool = False,
        moves: bool = False, windows_files: bool = False, churn: bool = False, compound: bool = False,
        heal_bound_s: float | None = HEAL_BOUND_S, disk_full: bool = False,
        only: tuple[str, ...] = (), held_files: bool = False, ports: bool = False) -> Report:
    """One seeded campaign. A heal slower than heal_bound_s is a violation; None only reports
    the times (the test suite's choice: a wall-clock bound is a benchmark figure on a shared,
    noisy machine, while never healing within HEAL_GIVE_UP_S stays a violation)."""
    rng = random.Random(seed)
    kinds = FAULTS + (NETWORK_FAULTS if network else ()) + (MOVE_FAULTS if moves else ()) + \
        (CHURN_FAULTS if churn else ()) + (COMPOUND_FAULTS if compound else ()) + (DISK_FAULTS if disk_full else ()) + \
        (HELD_FAULTS if held_files else ()) + (PORT_FAULTS if ports else ())
    windows_files = windows_files or held_files
    if only:   # a campaign of these faults alone (each must be one the flags allow)
        unknown = [k for k in only if k not in kinds]
        if unknown:
            raise ValueError(f"not faults of this campaign: {unknown}; choose from {list(kinds)}")
        kinds = tuple(only)
    report = Report(seed)
    stack = Stack(root, brokers, windows_files)
    load = txns = groups = acl = ids = None
    compare = False   # set once the campaign ran to its end: then the replicas are compared after `down`
    try:
        r = stack.cli("up", "--timeout", "60")
        if r.returncode != 0:
            report.violations.append(f"`sandbox up` failed: {r.stderr.strip()[-500:]}")
            return report
        cluster_id = cluster_ids(stack.bootstrap, brokers).get(1)
        load = Load(stack.bootstrap)
        load.thread.start()
        txns = chaos_txn.TxnLoad(stack.bootstrap, seed)
        txns.thread.start()
        groups = chaos_group.GroupLoad(stack.bootstrap, TOPIC)
        groups.start()
        doing = [""]   # what the campaign is at, for an ACL violation's message
        acl = chaos_acl.AclProbe(stack.sasl_bootstrap, lambda: doing[0])
        acl.thread.start()
        # the supervisor's catalog holds the cluster id before the first fault: a destroyed
        # coordinator journal's replacement starts with it, and clients never see another
        catalog = stack.data / "topics.json"
        deadline = time.monotonic() + 30
        while cluster_id and time.monotonic() < deadline and \
                cluster_id not in (catalog.read_text(errors="replace") if catalog.exists() else ""):
            time.sleep(0.25)
        if cluster_id:
            ids = chaos_ids.ClusterIdWatch(stack.bootstrap, brokers, cluster_id, lambda: doing[0])
            ids.thread.start()
        time.sleep(1.0)
        camp = Campaign(stack, rng, report, say, heal_bound_s)
        for i in range(faults):
            kind = rng.choice(kinds)
            report.faults.append(kind)
            doing[0] = f"during fault {i + 1} ({kind})"
            camp.fault(kind)
            camp.heal(camp.fault_ended)
            doing[0] = f"after fault {i + 1} ({kind})"
            what = f" ({camp.detail})" if camp.detail else ""
            say(f"  fault {i + 1}/{faults} {kind}{what}: healthy after {report.heal_s[-1]:.1f} s")
            report.violations += chaos_group.check_commits_kept(groups, range(PARTITIONS),
                                                                f"after fault {i + 1} ({kind})")
            time.sleep(rng.uniform(0.2, 1.5))
        wait_for_workload(lambda: {"acked": len(load.acked), "committed": len(txns.committed),
                                   "aborted": len(txns.aborted), "group commits": sum(list(groups.commits.values())),
                                   "denied writes refused": acl.refused},
                          say)
        load.stop.set()
        txns.stop.set()
        acl.stop.set()
        acl.thread.join(30)
        report.acl_refused = acl.refused
        report.violations += acl.violations
        load.thread.join(180)
        txns.thread.join(180)
        if not stack.healthy():
            camp.heal(time.monotonic())
        if ids is not None:
            ids.stop.set()
            ids.thread.join(30)
            report.violations += ids.violations()
        report.violations += cluster_id_kept(stack.bootstrap, brokers, cluster_id)
        got = _read_all(stack.bootstrap)
        ends = {p: (recs[-1][0] + 1 if recs else 0) for p, recs in got.items()}
        behind = chaos_group.wait_caught_up(groups, ends)
        report.violations += behind
        groups.finish()
        report.group_commits = sum(groups.commits.values())
        report.violations += chaos_group.check_final(
            groups, got, ((v, p, off) for v, (p, off) in load.acked.items()),
            lambda v: any(_kept_in(where, v) for where in (camp.trash, stack.data / "quarantine")))
        if not behind:   # what status says of groups that caught up
            report.violations += chaos_group.check_status_lag(stack.status()[1])
        if any("group chaos-" in v for v in report.violations):
            chaos_group.dump(groups, stack.root / "groups.json")
        report.acked = len(load.acked)
        report.txns_committed, report.txns_aborted = len(txns.committed), len(txns.aborted)
        report.violations += chaos_txn.check(
            txns, chaos_txn.read_committed(stack.bootstrap),
            lambda v: any(_kept_in(where, v, chaos_txn.TXN_TOPIC) for where in (camp.trash, stack.data / "quarantine")))
        counts = {p: len(v) for p, v in got.items()}
        seen: dict[bytes, list[tuple[int, int]]] = {}
        for p, recs in got.items():
            for off, v in recs:
                seen.setdefault(v, []).append((p, off))
        report.duplicates = sum(len(v) - 1 for v in seen.values() if len(v) > 1)
        if report.duplicates:
            sample = [f"{v[:24]!r} at {where}" for v, where in seen.items() if len(where) > 1][:5]
            report.violations.append(f"{report.duplicates} duplicated records, e.g. {'; '.join(sample)}")
        for value, (p, off) in load.acked.items():
            if value in seen:
                continue
            report.lost += 1
            if _kept_in(camp.trash, value):
                report.destroyed += 1
            elif _kept_in(stack.data / "quarantine", value):
                report.quarantined += 1
            else:
                if not any("lost and in no quarantine" in v for v in report.violations):
                    _, final = stack.status()
                    report.violations.append(
                        f"records read per partition {counts}; final status: healthy {final.get('healthy')}, "
                        f"topics {[(t['name'], t['partitions'], t['leaderless_partitions'], t['end_offsets']) for t in final.get('topics', [])]}, "
                        f"problems {final.get('problems')}, last events "
                        f"{[(e['service'], e['kind'], e['detail'][:80]) for e in final.get('events', [])[-8:]]}")
                report.violations.append(f"acknowledged record {value.decode()} (partition {p} offset {off}) "
                                         f"is lost and in no quarantine")
        # every replica back in sync, then (after a clean stop) byte for byte the same
        report.violations += chaos_churn.check(stack.bootstrap, camp.churned)
        topics = {TOPIC: PARTITIONS, chaos_txn.TXN_TOPIC: chaos_txn.TXN_PARTITIONS,
                  **{c["again"]: 1 for c in camp.churned}}
        behind = _in_sync(stack.bootstrap, topics)
        if behind:
            report.violations.append(f"not back in sync 60 s after the campaign: {behind[:6]}")
        compare = True
    finally:
        for loader in (load, txns, groups, acl, ids):
            if loader is not None:
                loader.stop.set()
        r = stack.cli("down", timeout=180)
        if compare and r.returncode == 0:
            differ, report.replicas_compared = replicas_disagree(stack.data, brokers, topics)
            report.violations += differ
        if windows_files:
            ruled, refused = windows_refusals(stack.data / "logs")
            if "broker-1" not in ruled:
                report.violations.append(f"the Windows file rules were not on (services that had them: {ruled})")
            report.held_refused = sum(chaos_held.expected_refusal(r) for r in refused)
            report.violations += [f"refused under Windows' file rules: {r[:300]}" for r in
                                  [r for r in refused if not chaos_held.expected_refusal(r)][:20]]
            report.violations += [f"a traceback for a file held by another program: {t}"
                                  for t in chaos_held.tracebacks_from_held(stack.data / "logs")[:10]]
        report.violations += [f"a programming error in a service's log: {t}"
                              for t in chaos_held.programming_errors(stack.data / "logs")[:10]]
        left = stack.leftovers()
        if left:
            report.violations.append(f"processes left after `sandbox down`: {[p.pid for p in left]}")
            for p in left:
                try:
                    p.kill()
                except psutil.Error:
                    pass
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faults", type=int, default=20)
    ap.add_argument("--seed", type=int, action="append", help="repeatable; default 1")
    ap.add_argument("--brokers", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the project folder (logs, quarantines)")
    ap.add_argument("--network", action="store_true",
                    help="also reset and cut off services' connections (root, ss, iptables)")
    ap.add_argument("--moves", action="store_true",
                    help="also move partition leaders by reassignment (out of the replicas and back)")
    ap.add_argument("--churn", action="store_true",
                    help="also delete topics, and delete and make them again, while a broker is down")
    ap.add_argument("--compound", action="store_true",
                    help="also overlapping faults: every process killed at once, two brokers at once, a broker "
                         "while a destroyed coordinator journal is put back")
    ap.add_argument("--disk-full", action="store_true",
                    help="also fill the disk the project is on (its own tmpfs; root) for 2-10 s, then free it")
    ap.add_argument("--held-files", action="store_true",
                    help="also hold files the stack just wrote open as another program would (a virus scanner), "
                         "so Windows refuses to remove or rename them for 0.3-6 s; turns on --windows-files")
    ap.add_argument("--ports", action="store_true",
                    help="also kill a broker and bind its port as another program would before it is started "
                         "again, for 1-8 s, then let it go")
    ap.add_argument("--only", action="append", default=[], metavar="FAULT",
                    help="repeatable: only these faults (e.g. --disk-full --only disk-full)")
    ap.add_argument("--windows-files", action="store_true",
                    help="run every process of the stack under Windows' file rules (an open file cannot be "
                         "removed or renamed); any refusal is a violation")
    args = ap.parse_args()
    if args.network and network_faults_missing():
        print(f"{network_faults_missing()}; run without --network, or as root with them installed.")
        return 2
    if args.disk_full and chaos_disk.missing():
        print(f"{chaos_disk.missing()}; run without --disk-full.")
        return 2
    bad = 0
    for seed in args.seed or [1]:
        root = Path(tempfile.mkdtemp(prefix=f"sandbox-chaos-{seed}-"))
        print(f"seed {seed}: {args.faults} faults on {args.brokers} brokers in {root}")
        rep = run(seed, args.faults, root / "proj", args.brokers, network=args.network, moves=args.moves,
                  windows_files=args.windows_files, churn=args.churn, compound=args.compound,
                  disk_full=args.disk_full, keep_files=args.keep, only=tuple(args.only),
                  held_files=args.held_files, ports=args.ports)
        print(rep.line())
        for v in rep.violations[:20]:
            print(f"  VIOLATION {v}")
        bad += bool(rep.violations)
        if not args.keep and not rep.violations:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
