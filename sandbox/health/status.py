"""The status model of SPEC.md (`sandbox status --json`): the supervisor's view of its services,
process figures from psutil, and what a client sees over the wire (topics, leaders, groups, lag,
open transactions)."""

from __future__ import annotations

import errno
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

from sandbox.client import KafkaClient, KafkaClientError
from sandbox.folder_probe import try_write

from . import replication
from .deadline import Budget, bounded
from .transactions import transaction_entries


def _disk_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


MIN_FREE_BYTES = 200 * 1024 * 1024  # a journal folder with less free space is a problem
FULL_BYTES = 1024 * 1024            # with less, the disk is told as full (a segment roll needs more)


_SEEN: dict[int, psutil.Process] = {}   # pid -> the Process whose last cpu_percent() call is the baseline
_SEEN_MAX = 256


def _cpu_percent(pid: int) -> float:
    """CPU use of `pid` since the last call for it (psutil's cpu_percent(None) delta: no sleeping);
    the first time a pid is seen (a one-shot `sandbox status`), its average since it started.
    A sleep inside oneshot() read cached times and always gave 0.0."""
    p = _SEEN.get(pid)
    if p is not None and p.is_running():
        return p.cpu_percent(None)
    p = psutil.Process(pid)
    if len(_SEEN) >= _SEEN_MAX:   # forget processes that are gone
        for old in [k for k, v in _SEEN.items() if not v.is_running()] or list(_SEEN)[: _SEEN_MAX // 2]:
            _SEEN.pop(old, None)
    _SEEN[pid] = p
    p.cpu_percent(None)   # the baseline for the next call
    times = p.cpu_times()
    alive_s = max(time.time() - p.create_time(), 1e-3)
    return round(100.0 * (times.user + times.system) / alive_s, 1)


def _proc(pid: int | None) -> tuple[float | None, int | None, int | None]:
    """cpu percent, rss bytes, open files (fds on POSIX, handles on Windows)."""
    if not pid:
        return None, None, None
    try:
        cpu = _cpu_percent(pid)
        p = psutil.Process(pid)
        with p.oneshot():
            files = p.num_handles() if hasattr(p, "num_handles") else p.num_fds()
            return cpu, p.memory_info().rss, files
    except (psutil.Error, OSError):
        _SEEN.pop(pid, None)
        return None, None, None


def _seen_state(pid: int) -> str:
    """'gone', 'paused' or 'alive', as the OS sees the process now."""
    try:
        st = psutil.Process(pid).status()
    except psutil.Error:
        return "gone"
    if st in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
        return "gone"
    # SIGSTOP, or held by a debugger (ptrace): either way it answers nothing
    return "paused" if st in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP) else "alive"


def journal_check(path: Path) -> tuple[bool, int | None, str | None]:
    """(writable, free bytes, problem) of a journal folder: a real write, not just a permission bit,
    because the Windows failure mode of Kafka is a log dir that went offline."""
    try:
        free = shutil.disk_usage(path).free
    except OSError as e:
        return False, None, f"journal folder {path} is unusable: {e.strerror or e}"
    try:
        try_write(path)
    except OSError as e:
        fix = "; free space on that disk" if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) else ""
        return False, free, f"journal folder {path} is not writable: {e.strerror or e}{fix}"
    if free < MIN_FREE_BYTES:
        if free < FULL_BYTES:   # the probe's few bytes fitted (something was freed a moment ago): full all the same
            return True, free, f"journal folder {path}: disk full ({free // 1024} KB free); free space on that disk"
        return True, free, f"journal folder {path} has only {free // (1024 * 1024)} MB free"
    return True, free, None


def _age_s(iso: Any) -> float:
    """Seconds since an ISO UTC time of the state file (0 when unknown)."""
    try:
        then = datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return max((datetime.now(timezone.utc) - then).total_seconds(), 0.0)


def service_entries(state: dict) -> list[dict[str, Any]]:
    out = []
    # the state file is rewritten every few seconds: age its uptimes to now
    age = _age_s(state.get("updated_at")) if state.get("updated_at") else 0.0
    for s in state.get("services", []):
        running = s.get("state") == "running"
        if running and not s.get("container") and s.get("pid"):
            seen = _seen_state(s["pid"])
            if seen == "gone":   # died since the supervisor last wrote its state: never shown as running
                s = {**s, "state": "crashed", "healthy": False, "pid": None}
                running = False
            elif seen == "paused":   # SIGSTOP, a debugger, a suspended console: it answers nothing
                s = {**s, "state": "paused", "healthy": False}
        uptime = s.get("uptime_s")
        if running and uptime is not None:
            uptime = round(uptime + age, 3)
        if s.get("container"):  # docker mode: the watcher measured it inside the engine
            cpu, rss, files = s.get("cpu_percent"), s.get("rss_bytes"), s.get("open_files")
            writable, free, problem = s.get("journal_writable"), s.get("disk_free_bytes"), s.get("journal_problem")
            disk = s.get("disk_bytes")
        else:
            cpu, rss, files = _proc(s.get("pid")) if running else (None, None, None)
            writable, free, problem = journal_check(Path(s["data_dir"])) if s.get("data_dir") else (None, None, None)
            disk = _disk_bytes(Path(s["data_dir"])) if s.get("data_dir") else None
        entry = {
            "name": s["name"], "role": s["role"], "state": s["state"], "problem": s.get("problem"),
            "healthy": bool(s.get("healthy")) and running,
            # a paused process keeps its pid: what a user resumes by hand (or finds in a task list)
            "pid": s.get("pid") if running or s.get("state") in ("orphaned", "paused") else None,
            "port": s.get("port"), "uptime_s": uptime, "restarts": s.get("restarts", 0),
            "cpu_percent": cpu, "rss_bytes": rss, "disk_bytes": disk,
            "latency_ms": s.get("latency_ms"),
            # extra detail (not in SPEC.md)
            "open_files": files, "journal_writable": writable, "disk_free_bytes": free,
            "journal_problem": problem,
        }
        if s.get("container"):
            entry["container"], entry["volume"], entry["host_pid"] = s["container"], s.get("volume"), s.get("host_pid")
        out.append(entry)
    return out


_MIN_ISR_TTL_S = 30.0
_MIN_ISR_MAX = 65536   # entries kept (topics ever seen, deleted ones too)
_MIN_ISR: dict[tuple[str, Any], tuple[float, int]] = {}   # (topic, topic id) -> (read at, min.insync.replicas)


def topic_min_isr(client: KafkaClient, name: str, topic_id: Any = None) -> int | None:
    """The topic's min.insync.replicas (DescribeConfigs), cached for _MIN_ISR_TTL_S per topic id
    (a re-created topic is asked again); None when it cannot be read."""
    key, now = (name, topic_id), time.monotonic()
    hit = _MIN_ISR.get(key)
    if hit is not None and now - hit[0] < _MIN_ISR_TTL_S:
        return hit[1]
    try:
        value = int(client.describe_configs(name)["min.insync.replicas"][0])
    except (KafkaClientError, AttributeError, KeyError, TypeError, ValueError):   # also: a client without it
        return None
    if len(_MIN_ISR) > _MIN_ISR_MAX:
        _MIN_ISR.clear()
    _MIN_ISR[key] = (now, value)
    return value


def _prefetch_min_isr(client: KafkaClient, md: Any) -> None:
    """Read the min.insync.replicas of every listed topic not cached yet with one request (asked
    one by one, a stack of hundreds of topics took a round trip each per status)."""
    now = time.monotonic()
    wanted = {}
    for name, t in md.topics.items():
        hit = _MIN_ISR.get((name, t.topic_id))
        if not (t.internal or t.error_code) and (hit is None or now - hit[0] >= _MIN_ISR_TTL_S):
            wanted[name] = t.topic_id
    if len(wanted) < 2:
        return   # topic_min_isr asks for a single one itself
    try:
        described = client.describe_topic_configs(wanted, keys=["min.insync.replicas"])
    except (KafkaClientError, AttributeError):   # also: a client without it; asked one by one then
        return
    if len(_MIN_ISR) + len(described) > _MIN_ISR_MAX:
        _MIN_ISR.clear()
    for name, configs in described.items():
        try:
            _MIN_ISR[(name, wanted[name])] = (now, int(configs["min.insync.replicas"][0]))
        except (KeyError, TypeError, ValueError):
            pass


def cluster_entries(client: KafkaClient, topics_meta_latency: list[float] | None = None, *,
                    skip: set[int] = frozenset(), brokers_answer: bool = True
                    ) -> tuple[list[dict], list[dict], list[str]]:
    """(topics, groups, problems) as a client sees them. skip: brokers known not to answer
    (paused, crashed): no request goes to them, their partitions' end offsets stay unknown.
    brokers_answer False (the client is the coordinator's): topics only, no offsets or groups."""
    problems: list[str] = []
    topics: list[dict] = []
    groups: list[dict] = []
    md, latency = client.metadata()
    if topics_meta_latency is not None:
        topics_meta_latency.append(latency)
    views = replication.snapshot(md)
    problems += replication.unopenable_problems(views.values())
    by_topic: dict[str, list] = {}
    for (topic, _p), v in views.items():
        by_topic.setdefault(topic, []).append(v)
    _prefetch_min_isr(client, md)
    listed = [name for name in sorted(md.topics)
              if not (md.topics[name].internal or md.topics[name].error_code)]
    askable = {name: [p.index for p in md.topics[name].partitions if p.leader >= 0 and p.leader not in skip]
               for name in listed} if brokers_answer else {}
    askable = {name: ps for name, ps in askable.items() if ps}
    try:   # one ListOffsets per leader for every topic (asked topic by topic: a round trip each)
        ends = client.end_offsets_of(askable, skip=skip) if askable else {}
    except KafkaClientError:
        ends = {}
    for name in listed:
        t = md.topics[name]
        parts = by_topic.get(name, [])
        health = replication.topic_health(parts, topic_min_isr(client, name, t.topic_id))
        per_part = {p: ends[(name, p)] for p in askable.get(name, ()) if (name, p) in ends}
        complete = len(per_part) == len(t.partitions)
        leaderless = health["offline_partitions"]
        if leaderless:
            problems.append(f"topic {name} has {leaderless} partitions without a leader")
        below = health["under_min_isr_partitions"]
        if below:
            rf = len(t.partitions[0].replicas) if t.partitions else 0
            min_isr = health["min_insync_replicas"]
            fix = (f"it has only {rf} replica(s), so no replica can make up the number: lower it with "
                   f"`sandbox topics alter {name} -o min.insync.replicas={rf}`" if isinstance(min_isr, int) and min_isr > rf
                   else "until a replica catches up; bring the missing broker back")
            problems.append(f"topic {name} has {below} partition(s) with fewer in-sync replicas than its "
                            f"min.insync.replicas={min_isr}: acks=all writes are refused (NOT_ENOUGH_REPLICAS); "
                            f"{fix}")
        topics.append({"name": name, "partitions": len(t.partitions),
                       "replication": len(t.partitions[0].replicas) if t.partitions else 0,
                       "end_offsets": sum(per_part.values()) if complete else None,
                       "leaderless_partitions": leaderless, **health,
                       # extra detail (not in SPEC.md): per-partition high watermarks
                       "partition_offsets": [{"partition": p, "end_offset": o}
                                             for p, o in sorted(per_part.items())]})
    try:   # a broker that cannot be listed (it stopped answering) leaves out its groups only
        listed_groups = client.list_groups(skip=skip, failed=problems, failed_nodes=set()) if brokers_answer else ()
        for g in listed_groups:
            try:
                d = client.describe_group(g.group)
                parts = client.group_lag(g.group, skip=skip, known_ends=ends)
                # unknown (None) while a partition's leader is not asked: a partial sum would understate it;
                # none committed yet: no figure ("-"), as kafka-consumer-groups --describe shows it
                lag = None if not parts or any(p.lag is None for p in parts) else sum(max(p.lag, 0) for p in parts)
                groups.append({"group": g.group, "state": d.state, "members": len(d.members), "lag": lag,
                               # extra detail (not in SPEC.md): lag of each committed partition
                               "partitions": [{"topic": p.topic, "partition": p.partition,
                                               "committed": p.committed, "end_offset": p.end,
                                               "lag": p.lag} for p in parts]})
            except KafkaClientError as e:
                groups.append({"group": g.group, "state": g.state, "members": None, "lag": None,
                               "error": str(e)})
                problems.append(f"group {g.group} could not be read: {e}")
    except KafkaClientError as e:
        problems.append(f"groups unavailable: {e}")
    return topics, groups, problems


def _brokers_by_id(services: list[dict]) -> dict[int, dict]:
    return {int(s["name"].rsplit("-", 1)[1]): s for s in services if s.get("role") == "broker"}


def unhealthy_brokers(services: list[dict]) -> set[int]:
    """Ids of the brokers among service_entries() that are not healthy: asking them anything
    would wait out a timeout per request, so status and the groups commands leave them alone."""
    return {n for n, s in _brokers_by_id(services).items() if not s.get("healthy")}


def _answering(client: KafkaClient, services: list[dict], coordinator: tuple[str, int] | None,
               budget: Budget) -> tuple[KafkaClient | None, bool]:
    """(a client of the services that answer, whether it is brokers that answer); the brokers to
    leave alone join budget.skip. All brokers healthy: the given client. Some: a client of the
    healthy ones. None: the coordinator (it answers Metadata from the cluster's own view), if it
    is healthy. Every request of the client keeps to the budget."""
    brokers = _brokers_by_id(services)
    down = unhealthy_brokers(services)
    budget.skip |= down
    if not down:
        return bounded(client, budget), True
    ports = {s["port"] for s in brokers.values() if s["healthy"]}
    up = [a for a in client.addresses if a[1] in ports]
    if up:
        return bounded(KafkaClient(up, client_id=client.client_id, timeout=client.timeout), budget), True
    if coordinator is not None and any(s["role"] == "coordinator" and s["healthy"] for s in services):
        budget.skip |= set(brokers)
        return bounded(KafkaClient([coordinator], client_id=client.client_id, timeout=client.timeout), budget), False
    return None, False


def coordinator_problems(address: tuple[str, int], expected: set[int], timeout: float = 2.0) -> list[str]:
    """The coordinator answers a Metadata round trip and knows every broker of the stack."""
    try:
        with KafkaClient([address], client_id="sandbox-health", timeout=timeout) as c:
            md, _ = c.metadata([])
    except KafkaClientError as e:
        return [f"the coordinator does not answer: {e}"]
    missing = sorted(expected - {b.id for b in md.brokers})
    return [f"the coordinator does not know broker(s) {missing} (not registered or fenced)"] if missing else []


def coordinator_followers(address: tuple[str, int]) -> tuple[str | None, set[int]]:
    """(cluster id, the brokers that have caught up with the journal it serves now) the
    coordinator answers Metadata and DescribeQuorum with; KafkaClientError if it does not answer."""
    with KafkaClient([address], client_id="sandbox-health", timeout=2.0) as c:
        md, _ = c.metadata([])
        followers = c.metadata_followers()
    return md.cluster_id, {b for b, caught_up in followers.items() if caught_up >= 0}


def _unanswered(services: list[dict], budget: Budget) -> list[str]:
    """Problems for the services found not answering during one build (each is then shown not
    healthy) and for a build that ran out of time."""
    ports = {addr[1] for addr in budget.hung}
    names = [s["name"] for s in services if s.get("port") in ports]
    for s in services:
        if s.get("port") in ports:
            s["healthy"] = False
    out = []
    if names:
        out.append(f"{', '.join(names)} did not answer within {budget.request_timeout:g}s although the "
                   f"supervisor's last probe found it healthy (hung?): nothing more was asked of it, so "
                   f"its partitions' end offsets, groups and transactions are not shown; "
                   f"`sandbox restart SERVICE` if it stays so")
    if budget.expired:
        out.append(f"the status took longer than {budget.seconds:g}s: what was not read by then is not shown")
    return out


def build_status(*, name: str, mode: str, bootstrap: str, state: dict | None,
                 client: KafkaClient | None, coordinator: tuple[str, int] | None = None,
                 sasl_bootstrap: str | None = None, budget: Budget | None = None) -> dict[str, Any]:
    """The status of SPEC.md. budget: how long the build may ask the cluster (default: a fresh
    Budget of STATUS_DEADLINE_S)."""
    services = service_entries(state) if state else []
    topics: list[dict] = []
    groups: list[dict] = []
    transactions: list[dict] = []
    problems: list[str] = [s["journal_problem"] for s in services if s.get("journal_problem")]
    problems += [f"{s['name']}: {s['problem']}" for s in services if s.get("problem")]
    metadata_latency = None
    # topics keep being listed while a broker is down: from the brokers that answer (or the
    # coordinator), exactly when a user needs to see which partitions lost a replica. One build
    # keeps to a deadline: a broker that does not answer in time is asked nothing more
    budget = budget or Budget()
    asked, brokers_answer = _answering(client, services, coordinator, budget) if client and services else (None, False)
    down = set(budget.skip)   # not healthy to the supervisor: left alone from the start
    skip = budget.skip        # grows while the build finds brokers that do not answer
    if asked is not None:
        try:
            latencies: list[float] = []
            topics, groups, found = cluster_entries(asked, latencies, skip=skip, brokers_answer=brokers_answer)
            problems += found
            if brokers_answer:
                transactions, found = transaction_entries(asked, skip=skip)
                problems += found
            if down and brokers_answer:
                # asking a broker that does not answer costs a timeout per request: its share is
                # left out, and said so
                problems.append(f"groups and transactions coordinated by broker(s) {sorted(down)} are not "
                                f"shown: not healthy")
            metadata_latency = latencies[0] if latencies and not down and not budget.hung else None
        except KafkaClientError as e:
            problems.append(str(e))
        finally:
            if asked is not client:
                asked.close()
            else:
                asked.budget = None
        if coordinator is not None and any(s["role"] == "coordinator" and s["healthy"] for s in services) \
                and coordinator not in budget.hung and budget.remaining() > 0:
            brokers = {int(s["name"].rsplit("-", 1)[1]) for s in services if s["role"] == "broker"}
            problems += coordinator_problems(coordinator, brokers,
                                             timeout=max(min(budget.request_timeout, budget.remaining()), 0.05))
        problems += _unanswered(services, budget)
    healthy = bool(services) and all(s["healthy"] for s in services) and not problems
    return {"name": name, "mode": mode, "healthy": healthy, "bootstrap": bootstrap, "sasl_bootstrap": sasl_bootstrap,
            "services": services, "topics": topics, "groups": groups, "transactions": transactions,
            "events": list((state or {}).get("events", []))[-50:], "problems": problems,
            "metadata_latency_ms": metadata_latency}
