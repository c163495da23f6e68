"""One sandbox's native stack: the service commands built from sandbox.toml, the supervisor
process's main loop (restart, quarantine, topics re-created, live manifest reload) and the
files through which the CLI finds it (pid file, state file, stop file; the topic catalog: catalog.py)."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from sandbox.client import KafkaClient, KafkaClientError, parse_bootstrap
from sandbox.config import ConfigError, SandboxConfig, load_config, parse_config
from sandbox.health.deadline import BoundedClient
from sandbox.health.http import HealthServer
from sandbox.lifecycle import raise_open_files_limit, setup_logging, stop_signals
from sandbox.partition_metadata import folder_topic_id
from sandbox.protocol.extensions import RESTORE_TOPIC_ID
from sandbox.health.metrics import EventCounter, render_metrics
from sandbox.health.replication import ReplicaWatcher
from sandbox.health.status import build_status
from sandbox.runner.detach import read_pid_file, remove_pid_file, same_process, write_pid_file
from sandbox.runner.catalog import (
    CATALOG_FILE, catalog_clocks, catalog_time, desired_topics, forget_topics, restore_acls, restore_broker_configs, restore_cluster_id, restore_configs, restore_group_offsets, save_catalog,
    with_topic_ids,
)
from sandbox.runner.declared import PendingDeclarations
from sandbox.runner.restore_placement import lead_with_longest_logs
from sandbox.runner.manifest import ManifestWatcher, apply_users, event_kind, reconcile
from sandbox.runner import inbox, orphans
from sandbox.runner.native import RecoveryPolicy, Supervisor, kafka_probe
from sandbox.runner.options import broker_defaults, coordinator_defaults
from sandbox.runner.process import ServiceSpec
from sandbox.runner.service import StackSupervising
from sandbox.runner.statefile import LockHeld, hold_lock, read_state
from sandbox.runner.runtime import (  # noqa: F401  (re-exported: the CLI reads them as stack.*)
    RESTART_KEYS, RUNTIME_FILE, _read_runtime, drop_runtime, restart_needed, running_settings, runtime_file,
    runtime_overrides, runtime_running, with_runtime_overrides, write_runtime,
)

log = logging.getLogger("sandbox.runner")

_note_pid = orphans.note_pid   # (tests name it so)

PID_FILE = "supervisor.pid"
STATE_FILE = "supervisor.json"
STOP_FILE = "supervisor.stop"
LOCK_FILE = "supervisor.lock"   # held by the one supervisor of a data folder while it runs
RESTART_FILE = "supervisor.restart"
CATALOG_EVERY_S = 3.0


def bootstrap(cfg: SandboxConfig) -> str:
    h = cfg.connect_host
    return ",".join(f"{h}:{cfg.broker_port(n)}" for n in range(1, cfg.brokers + 1))


def service_specs(cfg: SandboxConfig) -> list[ServiceSpec]:
    py = [sys.executable, "-m", "sandbox"]
    coord_dir = cfg.service_dir("coordinator")
    specs = [ServiceSpec("coordinator", "coordinator",
                         py + ["coordinator", "--port", str(cfg.coordinator_port), "--data-dir", str(coord_dir),
                               "--host", cfg.host, "--seed-acls", str(cfg.data_dir / CATALOG_FILE),
                               *coordinator_defaults(cfg)],
                         cfg.coordinator_port, coord_dir, cfg.logs_dir / "coordinator.log")]
    for n in range(1, cfg.brokers + 1):
        name = f"broker-{n}"
        d = cfg.service_dir(name)
        specs.append(ServiceSpec(name, "broker", py + [
            "broker", "--port", str(cfg.broker_port(n)), "--data-dir", str(d), "--id", str(n),
            "--host", cfg.host, "--advertised-host", cfg.connect_host,
            "--coordinator", f"{cfg.connect_host}:{cfg.coordinator_port}",
            *(["--sasl-port", str(cfg.sasl_broker_port(n))] if cfg.sasl is not None else []), *broker_defaults(cfg)],
            cfg.broker_port(n), d, cfg.logs_dir / f"{name}.log"))
    return specs


def _acls_back(created: int, seeded: int) -> list[str]:
    """What the ACL step of a restore says: those it created, and those the fresh journal began with."""
    out = [f"{created} ACL binding{'s' * (created != 1)}"] if created else []
    if seeded:
        out.append(f"{seeded} ACL binding{'s' * (seeded != 1)} (in the new journal before it served)")
    return out


def policy(cfg: SandboxConfig) -> RecoveryPolicy:
    return RecoveryPolicy(**dataclasses.asdict(cfg.recovery))   # the file's keys, runtime defaults for the rest


def running_pid(cfg: SandboxConfig) -> int | None:
    return read_pid_file(cfg.data_dir / PID_FILE)


def read_status_file(cfg: SandboxConfig) -> dict | None:
    return read_state(cfg.data_dir / STATE_FILE)


# ---- the supervisor process --------------------------------------------------------------
HEARTBEAT_STALE_S = 5.0   # a state file older than this was left by a supervisor that stopped working


def live_state(cfg: SandboxConfig) -> dict | None:
    """The state file if the supervisor that wrote it runs (same pid and create time) and wrote it
    within HEARTBEAT_STALE_S; None otherwise (a state file cannot speak for a dead supervisor)."""
    import psutil

    state = read_status_file(cfg)
    if not state:
        return None
    try:
        proc = psutil.Process(int(state.get("supervisor_pid")))
        if not same_process(proc.pid, state.get("supervisor_create_time"), state.get("supervisor_cmdline")):
            return None
        if proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_STOPPED):
            return None
    except (psutil.Error, TypeError, ValueError):
        return None
    if time.time() - float(state.get("heartbeat") or 0) > HEARTBEAT_STALE_S:
        return None
    return state


def watch_replicas(cfg: SandboxConfig, record_event: Callable[..., Any]) -> ReplicaWatcher:
    """isr-shrink, isr-expand, leader-change events from the coordinator's Metadata (else a broker's)."""
    client = KafkaClient([(cfg.connect_host, cfg.coordinator_port)] + parse_bootstrap(bootstrap(cfg)),
                         client_id="sandbox-replica-watch", timeout=1.5)

    def fetch():
        try:
            return client.metadata()[0]
        finally:
            client.close()   # a fresh connection each time: a paused node cannot wedge a socket

    return ReplicaWatcher(fetch, lambda e: record_event(e["service"], e["kind"], e["detail"])).start()


def http_status(cfg: SandboxConfig, state: dict, client: KafkaClient) -> dict[str, Any]:
    """The JSON of /status: what `sandbox status --json` prints while the supervisor runs (the one
    serving it), `running` and `restart_needed` included (docs/status.md)."""
    st = build_status(name=cfg.name, mode=cfg.mode, bootstrap=bootstrap(cfg), state=state, client=client,
                      coordinator=(cfg.connect_host, cfg.coordinator_port), sasl_bootstrap=cfg.sasl_bootstrap)
    st["running"] = True
    st["restart_needed"] = restart_needed(cfg)
    return st


class StackSupervisor:
    def __init__(self, cfg: SandboxConfig, on_event: Callable[[dict], None] | None = None) -> None:
        """on_event: also handed every event as it happens (`up --foreground` prints them)."""
        self.cfg = cfg
        self.stop = threading.Event()
        self.client = KafkaClient(bootstrap(cfg), client_id="sandbox-supervisor", timeout=5.0)
        counts = self.event_counts = EventCounter()
        if on_event is not None:
            def both(event: dict) -> None:
                counts(event)
                on_event(event)
        else:
            both = counts
        self.sup: StackSupervising
        if cfg.mode == "docker":
            from sandbox.runner.docker import DockerStack
            from sandbox.runner.docker_watch import DockerWatcher

            engine = DockerStack(cfg, image=_read_runtime(runtime_file(cfg)).get("image"))
            self.sup = DockerWatcher(engine, policy(cfg), host=cfg.connect_host, state_path=cfg.data_dir / STATE_FILE,
                                     on_event=both, recreate_topics=self._recreate, recreate_in_thread=True)
        else:
            specs = service_specs(cfg)
            left = orphans.live_services(specs)   # one look for services an earlier supervisor left

            def adopt(spec: ServiceSpec):
                proc = left.pop(spec.name, None)
                return orphans.AdoptedHandle(proc) if proc is not None and proc.is_running() else None

            self.sup = Supervisor(
                specs, policy(cfg), probe=kafka_probe, quarantine_root=cfg.quarantine_dir,
                recreate_topics=self._recreate, state_path=cfg.data_dir / STATE_FILE,
                on_event=both, adopt=adopt, on_spawn=orphans.note_pid, recreate_in_thread=True,
            )
        # /healthz /status /metrics on http_port (127.0.0.1 only), with a client of its own so a
        # scrape never waits behind the catalog refresh; each build keeps to a deadline (a hung
        # broker is asked once, then left alone and reported)
        self.health_client = BoundedClient(bootstrap(cfg), client_id="sandbox-health", timeout=2.0)
        self.http = HealthServer(
            "127.0.0.1", cfg.http_port,
            get_status=lambda: http_status(cfg, self.sup.snapshot(), self.health_client),
            get_metrics=lambda: render_metrics(self.http.status(), event_counts=self.event_counts.counts()))
        self.watcher: ManifestWatcher | None = None
        # [sasl] users and [[acls]] saved in the file, retried while the cluster does not answer
        self.declared = PendingDeclarations(self.client, self.sup.record_event)

    def _recreate(self, service: str) -> list[str]:
        """After a wipe: put back every topic the stack knew, with partitions, configs and (where
        the catalog knows it) placement, so brokers find their journals again."""
        if service == "coordinator":
            self._wait_for_fresh_metadata()
            # first: until they are back, allow.everyone.if.no.acl.found opens what they closed
            self._put_back(service, "ACLs", lambda: _acls_back(*restore_acls(self.cfg, self.client, declared=self.cfg.acls)))
            # before the topics, whose partitions follow them
            self._put_back(service, "broker configs", lambda: restore_broker_configs(self.cfg, self.client))
        desired, moved, renewed = desired_topics(self.cfg), [], set()
        if service == "coordinator":   # every partition is created afresh, led by its first replica
            known = with_topic_ids(desired, self.cfg)
            desired, moved = lead_with_longest_logs(known, self.client, self._folder_id, catalog_time(self.cfg),
                                                    brokers=range(1, self.cfg.brokers + 1),
                                                    broker_clocks=catalog_clocks(self.cfg))
            # put back under a newer id than the catalog's: its offsets are the older topic's
            renewed = {n for n, spec in desired.items()
                       if spec.config.get(RESTORE_TOPIC_ID) != known[n].config.get(RESTORE_TOPIC_ID)}
        if moved:   # the first replica of these would have cut acknowledged records off the others
            self.sup.record_event(service, "leaders-chosen", "; ".join(moved))
        msgs = reconcile(desired, self.client)
        failed = [m for m in msgs if m.startswith("failed")]
        if failed:
            raise RuntimeError("; ".join(failed))
        skipped = [m for m in msgs if " not put back: " in m]   # "topic NAME not put back: ..." (no spaces in names)
        if skipped:   # deleted under the fresh journal meanwhile: out of the catalog (and this retry's list)
            gone = {m.split(" ", 2)[1] for m in skipped}
            forget_topics(self.cfg, gone)
            for m in skipped:
                self.sup.record_event(service, "topic-not-restored", m)
            desired = {n: spec for n, spec in desired.items() if n not in gone}
        try:
            groups = restore_group_offsets(self.cfg, self.client, skip=renewed)
        except (KafkaClientError, OSError) as e:
            groups = []
            self.sup.record_event(service, "offsets-restored", f"failed: {e}")
        if groups:
            self.sup.record_event(service, "offsets-restored", "committed offsets put back for " + ", ".join(groups))
        if service == "coordinator":   # quotas, group and dynamic broker configs: the coordinator's journal only
            self._put_back(service, "quotas and group configs", lambda: restore_configs(self.cfg, self.client))
            if self.cfg.sasl is not None:   # SCRAM credentials live in the coordinator's journal only
                # the fresh journal started with the catalog's credentials (every user, tools' too),
                # up to a refresh (3 s) old: the declared users are set from the file again, as
                # before it had them, so a password saved just before the loss is the one that counts
                for m in apply_users(self.cfg.sasl.users, self.client):
                    self.sup.record_event(service, "configs-restored", m)
                    if m.startswith("failed"):
                        raise RuntimeError(m)
            # last: where the fresh journal did not start with the catalog's id (no id in the
            # catalog's seed), the brokers' Metadata told the fresh journal's id apart from the
            # destroyed one's until now (_wait_for_fresh_metadata), a retry of this re-creation included
            try:
                said = restore_cluster_id(self.cfg, self.client)
            except KafkaClientError as e:
                self.sup.record_event(service, "configs-restored", f"cluster id not put back, will retry: {e}")
                raise
            if said:
                self.sup.record_event(service, "configs-restored", said)
        return sorted(desired)

    def _put_back(self, service: str, what: str, step: Callable[[], list[str]]) -> None:
        """One step of putting back what a destroyed coordinator journal lost, said as an event.
        A failure is re-raised: the re-creation stays pending (retried on the next pass; each step
        puts back only what is missing), so the catalog is not refreshed from the empty journal."""
        try:
            done = step()
        except (KafkaClientError, OSError, KeyError, TypeError, ValueError) as e:
            self.sup.record_event(service, "configs-restored", f"{what} not put back yet, will retry: {e}")
            raise
        if done:
            self.sup.record_event(service, "configs-restored", "put back: " + ", ".join(done))

    def _refresh_catalog(self) -> None:
        """Every CATALOG_EVERY_S, while it is safe (catalog_epoch), the topic catalog from the
        cluster. In a thread of its own with a client of its own: with a broker paused, a request
        that reaches it first waits for its timeout, and neither `sandbox pause`/`kill` requests
        nor a restore should wait behind that."""
        client, asked, last = None, None, float("-inf")
        coordinator = KafkaClient([(self.cfg.connect_host, self.cfg.coordinator_port)],
                                  client_id="sandbox-catalog", timeout=5.0)
        try:
            while not self.stop.wait(0.25):
                self.declared.retry()   # here: never in the main loop's way while the cluster does not answer
                if time.monotonic() - last < CATALOG_EVERY_S:
                    continue
                epoch = self.sup.catalog_epoch()
                if epoch is None:   # asked again in a quarter second: the first refresh comes soon
                    continue
                last = time.monotonic()
                # brokers that are down or paused are asked last, and not for their groups
                down = {int(s["name"].rsplit("-", 1)[1]) for s in self.sup.snapshot().get("services", [])
                        if s.get("role") == "broker" and not s.get("healthy")}
                order = sorted(range(1, self.cfg.brokers + 1), key=lambda n: n in down)
                if order != asked:
                    if client is not None:
                        client.close()
                    client, asked = KafkaClient([(self.cfg.connect_host, self.cfg.broker_port(n)) for n in order],
                                                client_id="sandbox-catalog", timeout=5.0), order
                try:
                    save_catalog(self.cfg, client, lambda: self.sup.catalog_epoch() == epoch, down=down,
                                 topics_from=coordinator)
                except (KafkaClientError, OSError) as e:
                    log.info("topic catalog not refreshed: %s", e)
                except Exception as e:   # noqa: BLE001 - a bug must not stop the refreshes for good
                    log.exception("topic catalog not refreshed")
                    self.sup.record_event("supervisor", "error", f"topic catalog not refreshed: {e!r}")
        finally:
            coordinator.close()
            if client is not None:
                client.close()

    def _folder_id(self, broker: int, topic: str, partition: int) -> tuple[uuid.UUID, float] | None:
        """The topic id a broker's partition folder names (its partition.metadata) and when that
        was written, read from disk; None where it cannot tell (no such folder or file, or docker
        mode: the folders are in the engine's volumes)."""
        if self.cfg.mode == "docker":
            return None
        return folder_topic_id(self.cfg.service_dir(f"broker-{broker}") / f"{topic}-{partition}")

    def _wait_for_fresh_metadata(self) -> None:
        """Before re-creating topics after the coordinator's journal was replaced: every broker
        has registered with the fresh journal (topics are placed on brokers) and follows it. A
        broker still answering with the old metadata lists the lost topics as there, so nothing
        would be re-created, and 10 s later each broker would put the partitions it has on disk
        back on itself alone (RF 1, the other replicas' data left out). Raises (the supervisor asks
        again on its next pass) until then."""
        from sandbox.health.status import coordinator_followers, coordinator_problems

        address = (self.cfg.connect_host, self.cfg.coordinator_port)
        brokers = set(range(1, self.cfg.brokers + 1))
        # registered and unfenced (docker mode too: a broker that has fetched the fresh journal
        # is still fenced until its next heartbeat, and a topic placed meanwhile was refused as
        # INVALID_REPLICA_ASSIGNMENT after the ACL step had run, which the retry said again)
        waiting = coordinator_problems(address, brokers)
        if waiting:
            raise RuntimeError(waiting[0])
        current, followers = coordinator_followers(address)   # published on the host in docker mode too
        # the fresh journal answers with the cluster id clients knew from its start (the catalog
        # seeds it), so the id tells a broker on the old metadata only where there was no seed;
        # the coordinator itself tells which brokers have fetched all of its fresh journal (a
        # fetch carrying the destroyed journal's history id is refused, never counted)
        stale = sorted(b for b, cid in self.client.cluster_ids(brokers).items()
                       if cid != current or b not in followers)
        if stale:
            raise RuntimeError(f"broker(s) {stale} still answer with the metadata of the replaced "
                               f"coordinator journal")

    def _on_manifest(self, new: SandboxConfig) -> None:
        # a reload changes topics, [sasl] users and [[acls]] only; ports, brokers, host and data_dir need
        # `sandbox restart`
        was = self.cfg.sasl.users if self.cfg.sasl is not None else {}
        now = new.sasl.users if new.sasl is not None else {}
        sasl = self.cfg.sasl if self.cfg.sasl is None else dataclasses.replace(self.cfg.sasl, users=now)
        acls_changed = new.acls != self.cfg.acls
        self.cfg = dataclasses.replace(self.cfg, topics=new.topics, sasl=sasl, acls=new.acls)
        write_runtime(self.cfg, config_text=new.source)
        pending = restart_needed(self.cfg)
        if pending:
            self.sup.record_event("supervisor", "restart-needed", pending)
        if acls_changed:   # before new topics: a topic made before its ACLs would be open meanwhile
            self.declared.acls_saved(new.acls)
        for m in reconcile(new.topics, self.client):
            self.sup.record_event("supervisor", event_kind(m), m)
        if sasl is not None:
            self.declared.users_saved(was, now)

    def _on_manifest_error(self, msg: str) -> None:
        self.sup.record_event("supervisor", "manifest-error", f"{msg} (keeping the last good config)")

    def _control(self) -> bool:
        """Requests from the CLI through files (works on Windows without consoles or signals)."""
        data = self.cfg.data_dir
        if (data / STOP_FILE).exists() and inbox.take_file(data / STOP_FILE) is not None:
            return False
        for request in inbox.take(data, refused=lambda why: self.sup.record_event("supervisor", "error", why)):
            self._carry_out(request)   # sandbox kill / sandbox pause
        req = data / RESTART_FILE
        if req.exists() and (text := inbox.take_file(req)) is not None:
            name = text.strip() or None
            try:
                self.sup.restart(name)
            except KeyError as e:
                self.sup.record_event("supervisor", "error", str(e))
            except Exception as e:   # noqa: BLE001 - one bad request is an event, never a dead supervisor
                self.sup.record_event("supervisor", "error", f"restart {name or 'all'}: {e!r}")
        return True

    def _carry_out(self, request: dict) -> None:
        name = command = None
        try:
            name, command = request.get("service"), request.get("command")
            if command == "kill":
                self.sup.kill(name)
            elif command == "pause":
                self.sup.pause(name, float(request.get("seconds", 0)))
            else:
                raise ValueError(f"unknown request {command!r}")
        except Exception as e:   # one sentence in the events: the asking command reports the wait
            self.sup.record_event("supervisor", "error", f"{command} {name}: {e}")

    def run(self) -> int:
        data = self.cfg.data_dir
        write_pid_file(data / PID_FILE)
        inbox.take_file(data / STOP_FILE)
        inbox.take_file(data / RESTART_FILE)   # a restart asked of an earlier supervisor is void
        inbox.take(data)   # requests left for an earlier supervisor are void
        # a state file naming this supervisor before any service starts: from now on `status` and
        # a second `up` agree that this sandbox is running (starting), never one says "not running"
        self.sup.record_event("supervisor", "start", f"pid {os.getpid()}, {self.cfg.brokers} broker(s)")
        for s in stop_signals():
            signal.signal(s, lambda *_: self.stop.set())
        loop = threading.Thread(target=self.sup.run, args=(self.stop,), name="supervisor", daemon=True)
        loop.start()
        try:
            self.http.start()
        except OSError as e:
            self.sup.record_event("supervisor", "unhealthy", f"/healthz /status /metrics not served: port "
                                  f"{self.cfg.http_port} is taken ({e.strerror or e})")
        # watched even when it does not exist yet: a sandbox.toml written after `up` is picked up
        self.watcher = ManifestWatcher(self.cfg.path or self.cfg.root / "sandbox.toml", self._on_manifest,
                                       self._on_manifest_error)
        self.watcher.start()
        replicas = watch_replicas(self.cfg, self.sup.record_event)
        catalog = threading.Thread(target=self._refresh_catalog, name="catalog", daemon=True)
        catalog.start()
        try:
            while not self.stop.wait(0.25):
                if not self._control():
                    break
        finally:
            self.stop.set()
            replicas.stop()
            if self.watcher is not None:
                self.watcher.stop()
            loop.join(60)
            catalog.join(30)
            self.http.stop()
            self.health_client.close()
            self.client.close()
            if read_pid_file(data / PID_FILE) == os.getpid():   # never one a later supervisor wrote
                remove_pid_file(data / PID_FILE)
        return 0


def load_stack_config(config_path: Path | None, cwd: Path, *, last_good: bool = False) -> SandboxConfig:
    """sandbox.toml plus the overrides the running stack was started with (`up --brokers 3`).
    last_good: if the file is broken, use the text the running stack last accepted instead."""
    try:
        cfg = load_config(config_path, cwd=cwd)
    except ConfigError:
        path = Path(config_path) if config_path else Path(cwd) / "sandbox.toml"
        text = _read_runtime(path.parent / RUNTIME_FILE).get("config_text") if last_good else None
        if not isinstance(text, str):
            raise
        cfg = parse_config(text, path, cwd=cwd)
    cfg = with_runtime_overrides(cfg)
    running = runtime_running(cfg)
    if running:   # while the stack runs, it is what it was started as, whatever the file says now
        running.setdefault("broker", {})   # a stack started before [broker] existed ran with none
        running.setdefault("sasl_port", None)   # ... and one started before [sasl] without a SASL listener
        try:
            live = cfg.with_overrides(**running)
        except (ConfigError, TypeError):
            return cfg
        if running_pid(live):
            return live
    return cfg


def supervise_cli(argv: list[str]) -> int:
    """`python -m sandbox supervise [--config PATH]` without the CLI layer; a broken config is
    one sentence and exit 2, as every command gives it."""
    config: Path | None = None
    if argv[:1] == ["--config"] and len(argv) == 2:
        config = Path(argv[1])
    elif argv:
        print(f"error: supervise takes only --config PATH, not {' '.join(argv)}", file=sys.stderr)
        return 2
    try:
        return supervise_main(config, Path.cwd())
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def supervise_main(config_path: Path | None, cwd: Path) -> int:
    cfg = load_stack_config(config_path, cwd)
    cfg.logs_dir.mkdir(parents=True, exist_ok=True)
    try:   # first: two `sandbox up` at once must never run two supervisors over the same services
        lock = hold_lock(cfg.data_dir / LOCK_FILE)
    except LockHeld as e:
        print(f"sandbox {cfg.name} is already running: supervisor pid {e.holder or '?'} holds "
              f"{cfg.data_dir / LOCK_FILE}; this supervisor exits", file=sys.stderr)
        return 0
    try:
        setup_logging("INFO")   # whole lines also after a write a full disk cut short
        raise_open_files_limit(logging.getLogger("sandbox.runner"))   # and the services it starts inherit it
        return StackSupervisor(cfg).run()
    finally:
        lock.close()
