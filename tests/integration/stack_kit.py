"""Helpers for the whole-stack tests (tests/integration/test_stack.py): a temp project folder with a
sandbox.toml on free ports, the `sandbox` CLI run as a subprocess in it, status polling, journal
files, and a teardown that leaves no process of the project behind.

Every wait is bounded by a deadline; all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import psutil

from helpers import listen_port, wait_for  # tests/ is on sys.path (pytest's pythonpath)

CLI_TIMEOUT = 120.0


def sandbox_toml(*, port: int, coordinator_port: int, http_port: int, brokers: int,
                 data_dir: str = ".sandbox", recovery: dict | None = None, topics: str = "",
                 name: str | None = None) -> str:
    lines = ["[sandbox]"]
    if name:
        lines.append(f'name = "{name}"')
    lines += [
        'host = "127.0.0.1"',
        f"port = {port}",
        f"coordinator_port = {coordinator_port}",
        f"http_port = {http_port}",
        f"brokers = {brokers}",
        f'data_dir = "{data_dir}"',
        "",
        "[recovery]",
    ]
    rec = {"max_restarts": 2, "restart_window_s": 30}
    rec.update(recovery or {})
    for k, v in rec.items():
        lines.append(f"{k} = {json.dumps(v)}")
    return "\n".join(lines) + "\n\n" + topics.strip() + "\n"


@dataclass
class Project:
    """One sandbox project folder and the CLI run inside it."""

    root: Path
    brokers: int
    port: int
    coordinator_port: int
    http_port: int
    toml: str
    extra_dirs: list[Path] = field(default_factory=list)   # e.g. an --ephemeral data folder
    seen_pids: set[int] = field(default_factory=set)        # every service/supervisor pid we saw

    @property
    def data_dir(self) -> Path:
        return self.root / ".sandbox"

    @property
    def config_path(self) -> Path:
        return self.root / "sandbox.toml"

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.port + i}" for i in range(self.brokers))

    def broker_port(self, n: int) -> int:
        return self.port + n - 1

    # ---- CLI ---------------------------------------------------------------------------------
    def cli(self, *args: str, timeout: float = CLI_TIMEOUT, input: str | None = None
            ) -> subprocess.CompletedProcess:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("COLUMNS", None)
        return subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=self.root, env=env,
                              capture_output=True, text=True, timeout=timeout, input=input)

    def up(self, *args: str, timeout: float = 90.0) -> subprocess.CompletedProcess:
        r = self.cli("up", "--timeout", "60", *args, timeout=timeout)
        self._remember_pids()
        return r

    def status(self, timeout: float = 60.0) -> tuple[int, dict]:
        r = self.cli("status", "--json", timeout=timeout)
        try:
            data = json.loads(r.stdout)
        except ValueError:
            raise AssertionError(f"status --json printed no JSON (exit {r.returncode}):\n"
                                 f"stdout: {r.stdout}\nstderr: {r.stderr}") from None
        for s in data.get("services", []):
            if s.get("pid"):
                self.seen_pids.add(s["pid"])
        return r.returncode, data

    def state_file(self) -> dict:
        """The supervisor's own state file (what `status` reads)."""
        try:
            return json.loads((self.data_dir / "supervisor.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def supervisor_pid(self) -> int | None:
        try:
            return int(json.loads((self.data_dir / "supervisor.pid").read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _remember_pids(self) -> None:
        sp = self.supervisor_pid()
        if sp:
            self.seen_pids.add(sp)
        for s in self.state_file().get("services", []):
            if s.get("pid"):
                self.seen_pids.add(s["pid"])

    def service_pid(self, name: str) -> int:
        """The pid of a running service, from `status --json`."""
        _, st = self.status()
        svc = service(st, name)
        assert svc["state"] == "running" and svc["pid"], f"{name} is not running: {svc}"
        return svc["pid"]

    def write_toml(self, text: str) -> None:
        self.toml = text
        self.config_path.write_text(text, encoding="utf-8")

    def log_text(self, name: str) -> str:
        try:
            return (self.data_dir / "logs" / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""

    def diagnostics(self) -> str:
        out = []
        for name in ["supervisor", "coordinator"] + [f"broker-{n}" for n in range(1, self.brokers + 1)]:
            lines = self.log_text(name).splitlines()[-25:]
            out.append(f"--- {name}.log (tail) ---\n" + "\n".join(lines))
        return "\n".join(out)

    # ---- teardown ----------------------------------------------------------------------------
    def leftovers(self) -> list[psutil.Process]:
        """Processes that belong to this project: a pid we saw, or the project/data paths in
        their command line, or the project folder as their working directory."""
        marks = [str(self.root), str(self.data_dir)] + [str(d) for d in self.extra_dirs]
        me = os.getpid()
        found = {}
        for p in psutil.process_iter(["pid", "cmdline"]):
            if p.info["pid"] == me:
                continue
            try:
                cmd = " ".join(p.info["cmdline"] or [])
                hit = any(m in cmd for m in marks)
                if not hit and p.info["pid"] in self.seen_pids and "sandbox" in cmd:
                    hit = True
                if not hit:
                    try:
                        hit = p.cwd() == str(self.root) and "sandbox" in cmd
                    except (psutil.AccessDenied, psutil.ZombieProcess):
                        pass
                if hit and p.status() != psutil.STATUS_ZOMBIE:
                    found[p.pid] = p
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return list(found.values())

    def teardown(self) -> list[str]:
        """`sandbox down`, then kill (and report) whatever of this project still runs."""
        problems = []
        sp = self.supervisor_pid()
        was_running = bool(sp) and psutil.pid_exists(sp)
        try:
            r = self.cli("down", timeout=120)
            if r.returncode != 0 and was_running:  # (a project whose toml is invalid never ran)
                problems.append(f"`sandbox down` exited {r.returncode}: {r.stderr.strip()}")
        except subprocess.TimeoutExpired:
            problems.append("`sandbox down` did not return within 120 s")
        # `down` returns when the supervisor is gone; its children are waited for by it
        deadline = time.monotonic() + 5
        left = self.leftovers()
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = self.leftovers()
        if left:
            desc = []
            for p in left:
                try:
                    desc.append(f"pid {p.pid}: {' '.join(p.cmdline())}")
                    p.kill()
                except psutil.Error:
                    pass
            psutil.wait_procs(left, timeout=10)
            problems.append("processes left after `sandbox down` (killed now): " + "; ".join(desc))
        return problems


def make_project(root: Path, *, brokers: int = 1, topics: str = "", recovery: dict | None = None,
                 name: str | None = None) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    base = listen_port(brokers + 2)
    proj = Project(root=root, brokers=brokers, port=base, coordinator_port=base + brokers,
                   http_port=base + brokers + 1, toml="")
    proj.write_toml(sandbox_toml(port=base, coordinator_port=base + brokers, http_port=base + brokers + 1,
                                 brokers=brokers, recovery=recovery, topics=topics, name=name))
    return proj


# ---- status helpers ------------------------------------------------------------------------------

def service(st: dict, name: str) -> dict:
    for s in st.get("services", []):
        if s["name"] == name:
            return s
    raise AssertionError(f"no service {name!r} in status: {[s['name'] for s in st.get('services', [])]}")


def topic(st: dict, name: str) -> dict | None:
    return next((t for t in st.get("topics", []) if t["name"] == name), None)


def events(st: dict, *, service: str | None = None, kind: str | None = None) -> list[dict]:
    return [e for e in st.get("events", [])
            if (service is None or e.get("service") == service) and (kind is None or e.get("kind") == kind)]


def wait_status(proj: Project, pred: Callable[[int, dict], object], timeout: float, what: str,
                interval: float = 0.2) -> tuple[int, dict]:
    """Poll `status --json` until pred(code, status) is truthy; AssertionError after `timeout`."""
    last: tuple[int, dict] = (-1, {})

    def check() -> tuple[int, dict] | None:
        nonlocal last
        last = proj.status()
        return last if pred(*last) else None

    def brief() -> str:
        code, st = last
        b = {"exit": code, "healthy": st.get("healthy"), "problems": st.get("problems"),
             "services": [(s["name"], s["state"], s["healthy"], s["restarts"]) for s in st.get("services", [])],
             "last events": [(e["service"], e["kind"], e["detail"][:160]) for e in st.get("events", [])[-12:]]}
        return f"last status: {json.dumps(b, indent=1)}\n{proj.diagnostics()}"

    return wait_for(check, timeout, interval=interval, what=what, detail=brief)


def all_running_healthy(st: dict) -> bool:
    svcs = st.get("services", [])
    return bool(svcs) and all(s["state"] == "running" and s["healthy"] for s in svcs)



# ---- processes and journal files -----------------------------------------------------------------

def freeze_then_kill(pid: int, between: Callable[[], None] | None = None) -> None:
    """SIGSTOP the process (it can write nothing more), run `between` (e.g. damage its files),
    then SIGKILL it: the files are exactly what a crash at that moment leaves behind."""
    os.kill(pid, signal.SIGSTOP)
    try:
        if between is not None:
            between()
    finally:
        os.kill(pid, signal.SIGKILL)


def segments(partition_dir: Path) -> list[Path]:
    return sorted(partition_dir.glob("*.log"))


def cmdline_data_dir(pid: int) -> Path:
    """The --data-dir a service process was started with."""
    cmd = psutil.Process(pid).cmdline()
    return Path(cmd[cmd.index("--data-dir") + 1])


# ---- clients --------------------------------------------------------------------------------------

def read_partitions(bootstrap: str, topic_name: str, partitions: list[int], timeout: float = 60.0) -> list:
    """Every record of the given partitions, from the log start to the high watermark at call time
    (explicit assignment: no consumer group involved)."""
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{os.getpid()}-{time.monotonic_ns()}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "socket.timeout.ms": 10000, "fetch.wait.max.ms": 100,
                  "topic.metadata.refresh.interval.ms": 2000})
    try:
        ends = {}
        starts = {}
        for p in partitions:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic_name, p), timeout=15, cached=False)
            starts[p], ends[p] = lo, hi
        todo = {p for p in partitions if ends[p] > starts[p]}
        c.assign([TopicPartition(topic_name, p, starts[p]) for p in partitions])
        out = []
        deadline = time.monotonic() + timeout
        while todo and time.monotonic() < deadline:
            for m in c.consume(num_messages=1000, timeout=0.2):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(m.error())
                out.append(m)
                if m.offset() + 1 >= ends[m.partition()]:
                    todo.discard(m.partition())
        assert not todo, (f"partitions {sorted(todo)} of {topic_name} not read to their end "
                          f"{ {p: ends[p] for p in todo} } within {timeout}s")
        return out
    finally:
        c.close()


def partition_leaders(bootstrap: str, topic_name: str, timeout: float = 10.0) -> dict[int, int]:
    """{partition: leader id} of a topic as a client's Metadata shows it."""
    from confluent_kafka.admin import AdminClient

    a = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})
    md = a.list_topics(timeout=timeout)
    t = md.topics.get(topic_name)
    if t is None or t.error is not None:
        return {}
    return {p.id: p.leader for p in t.partitions.values()}


def read_lines_until(proc: subprocess.Popen, lines: list[str], done: Callable[[list[str]], bool],
                     timeout: float) -> None:
    """Append proc's stdout lines (text mode) to `lines` until done(lines); fails with what was
    read when the process exits first or `timeout` passes."""
    def read_one() -> bool:
        if done(lines):
            return True
        assert proc.poll() is None, "".join(lines)
        lines.append(proc.stdout.readline())
        return False

    wait_for(read_one, timeout, interval=0, what="the expected output", detail=lambda: "".join(lines))
