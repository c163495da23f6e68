"""The coordinator as a network service: asyncio sockets, framing, dispatch to handlers/, the
session-expiry tick, the `__cluster_metadata` feed, and graceful stop (signals or a stop file).

One connection has one request in flight, so replies keep request order; bad input closes only
the offending connection, with one log line. One event loop owns all state: no locks.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from sandbox import lifecycle
from sandbox.lifecycle import serve_until_stopped, setup_logging  # noqa: F401  (setup_logging: re-exported)
from sandbox.protocol import CLOSE, FrameBuffer, FrameError

from .controller import Coordinator
from .model import CoordinatorError
from .feed import DEFAULT_CAPACITY, MetadataFeed
from .handlers import REGISTRY
from .quorum import Observers

log = logging.getLogger("sandbox.coordinator")
emit_event = lifecycle.event_emitter(log)   # the coordinator's EVENT lines

READ_CHUNK = 1 << 16
MAX_REQUEST_BYTES = 100 * 1024 * 1024


SESSION_LOST_GRACE_S = 1.5   # > the brokers' heartbeat interval (0.5 s) plus a reconnect


@dataclass
class CoordinatorConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 9093
    session_timeout_ms: int = 9000
    default_partitions: int = 1
    default_replication_factor: int = 1   # sandbox.toml [sandbox] replication
    min_insync_replicas: int = 1          # sandbox.toml [sandbox] min_insync_replicas
    tick_interval_s: float = 0.25
    # Kafka's auto.leader.rebalance.enable and leader.imbalance.check.interval.seconds: preferred
    # leaders come back on their own
    auto_leader_rebalance: bool = True
    leader_imbalance_check_interval_s: float = 300.0
    feed_capacity: int = DEFAULT_CAPACITY
    snapshot_every: int = 1000
    max_request_bytes: int = MAX_REQUEST_BYTES
    # broker settings it shows and enforces as Kafka's controller does (delete.topic.enable, the
    # log.* topic defaults): server_properties.SHOWN_BY_COORDINATOR
    settings: dict[str, str] = field(default_factory=dict)
    # a JSON file whose "acls" (7-element bindings) a fresh journal starts with: the supervisor's
    # catalog, so a destroyed journal's replacement never serves without the ACLs it had
    seed_acls: Path | None = None


def read_seed(path: Path | None) -> dict:
    """A seed file (the supervisor's catalog) as a dict; empty if there is no such file or it
    cannot be read (a seed is a head start for a fresh journal, never a reason not to start)."""
    if path is None:
        return {}
    for delay in (0.01, 0.05, 0.2, None):
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
            break
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            if isinstance(e, PermissionError) and delay is not None:   # Windows: being replaced right now
                time.sleep(delay)
                continue
            log.warning("the seed %s cannot be read (%s): a fresh journal starts without its ACL bindings "
                        "and cluster id", path, e)
            return {}
    return raw if isinstance(raw, dict) else {}


def read_seed_acls(path: Path | None) -> list:
    """The "acls" list of a seed file (see read_seed)."""
    return _acls_of(read_seed(path))


def _acls_of(seed: dict) -> list:
    found = seed.get("acls")
    return found if isinstance(found, list) else []


class CoordinatorServer(lifecycle.Service):
    """start() binds and opens the journal; serve_forever() until request_stop(); stop()."""

    def __init__(self, config: CoordinatorConfig) -> None:
        self.config = config
        self.data_dir = Path(config.data_dir)
        self.session_timeout_ms = config.session_timeout_ms
        self.default_partitions = config.default_partitions
        self.coordinator: Coordinator | None = None
        self.feed: MetadataFeed | None = None
        self.sessions: dict[int, int] = {}  # broker id -> epoch, registered with THIS process
        # broker id -> the connection (peer) its session last spoke on: when that connection
        # closes and the broker does not come back on another within SESSION_LOST_GRACE_S, the
        # process is gone (a SIGKILLed broker's sockets are closed by its OS): fence it now
        # instead of after the session timeout, so its leaderships move within a second or two
        self.session_peers: dict[int, str] = {}
        self.observers = Observers()  # brokers following the metadata, for DescribeQuorum
        self._server: asyncio.base_events.Server | None = None
        self._tasks: list[asyncio.Task] = []
        self._conns: dict[asyncio.StreamWriter, asyncio.Task] = {}
        self._stopping = asyncio.Event()
        self._stopped = False

    @property
    def port(self) -> int:
        return self.config.port

    async def start(self) -> None:
        t0 = time.monotonic()
        cfg = self.config
        self._server = await asyncio.start_server(
            self._serve, cfg.host, cfg.port, reuse_address=True, limit=READ_CHUNK,
            start_serving=False)  # OSError (port in use) propagates, journal untouched
        try:
            if cfg.port == 0:
                cfg.port = self._server.sockets[0].getsockname()[1]
            self.open()
        except BaseException:
            self._server.close()
            raise
        await self._server.start_serving()
        self._tasks = [
            asyncio.create_task(lifecycle.every(cfg.tick_interval_s, self._fence_expired, log)),
            asyncio.create_task(lifecycle.watch_stop_file(self.data_dir, self.request_stop, log,
                                                          cfg.tick_interval_s)),
        ]
        if cfg.auto_leader_rebalance:
            self._tasks.append(asyncio.create_task(lifecycle.every(
                cfg.leader_imbalance_check_interval_s, self._rebalance_leaders, log)))
        log.info("coordinator serving on %s:%d (cluster %s, data %s, metadata offset %d, "
                 "started in %.0f ms)", cfg.host, cfg.port, self.coordinator.cluster_id,
                 self.data_dir, self.coordinator.metadata_offset,
                 (time.monotonic() - t0) * 1000)
        emit_event("start", {"service": "coordinator", "port": cfg.port})

    def open(self) -> None:
        """The journal, the coordinator and its metadata feed, without sockets: what handlers
        see (start() opens them once the port is bound; in-process tests call this alone)."""
        cfg = self.config
        log.info("%s %s", lifecycle.JOURNAL_OPENING, self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lifecycle.clear_stop_file(self.data_dir)
        seed = functools.cache(lambda: read_seed(cfg.seed_acls))
        self.coordinator = Coordinator(
            self.data_dir, session_timeout_ms=cfg.session_timeout_ms,
            default_partitions=cfg.default_partitions, on_event=emit_event,
            snapshot_every=cfg.snapshot_every, min_insync_replicas=cfg.min_insync_replicas,
            default_replication_factor=cfg.default_replication_factor,
            stalled_after_ms=cfg.session_timeout_ms,
            # the catalog (topics, groups' offsets: it can be large) is read only for a fresh journal,
            # and once: its ACL bindings, the cluster id clients knew, and SCRAM users (tools' too)
            seed_acls=None if cfg.seed_acls is None else lambda: _acls_of(seed()),
            seed_cluster_id=None if cfg.seed_acls is None else lambda: seed().get("cluster_id"),
            seed_scram=None if cfg.seed_acls is None else lambda: seed().get("scram"))
        if self.coordinator.seeded_acls or self.coordinator.seeded_users:
            log.info("a fresh journal: started with the %d ACL binding(s) and the SCRAM credentials of %d "
                     "user(s) of %s", self.coordinator.seeded_acls, self.coordinator.seeded_users, cfg.seed_acls)
        self.feed = MetadataFeed(self.coordinator, cfg.feed_capacity)

    def close(self) -> None:
        """Close what open() opened (the feed, then the journal, snapshotted)."""
        if self.feed is not None:
            self.feed.close()
        if self.coordinator is not None:
            self.coordinator.close()

    def _fence_expired(self) -> None:
        """Every tick: fence brokers whose session expired (unless this process itself stood
        still for longer than a session: then every session starts again, and tick() says so)."""
        for bid in self.coordinator.tick():
            log.warning("broker %d missed its session timeout (%d ms): fenced", bid,
                        self.session_timeout_ms)

    def _rebalance_leaders(self) -> None:
        moved = self.coordinator.rebalance_leaders()
        if moved:
            log.info("auto leader rebalance: %d partition(s) led by their preferred replica again", moved)

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self._server is not None:
            self._server.close()
        for writer in list(self._conns):
            writer.close()
        await lifecycle.cancel_and_wait(self._tasks + list(self._conns.values()))
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2)
            except (asyncio.TimeoutError, Exception):
                pass
        self.close()
        log.info("coordinator stopped cleanly (journal snapshotted)")
        emit_event("stop", {"service": "coordinator"})

    # ---- connections -----------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if peername else "?"
        task = asyncio.current_task()
        if self._stopped or task is None:
            writer.close()
            return
        self._conns[writer] = task
        frames = FrameBuffer(self.config.max_request_bytes)
        try:
            while True:
                data = await reader.read(READ_CHUNK)
                if not data:
                    return
                try:
                    batch = frames.feed(data)
                except FrameError as e:
                    log.warning("closing connection from %s: %s", peer, e)
                    return
                for frame in batch:
                    out = await self._dispatch(frame, peer)
                    if out is CLOSE:
                        return
                    if out is not None:
                        writer.write(out)
                        await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("connection from %s failed", peer)
        finally:
            self._conns.pop(writer, None)
            writer.close()
            self._connection_lost(peer)

    def _connection_lost(self, peer: str) -> None:
        for broker_id in [b for b, p in self.session_peers.items() if p == peer]:
            if not self._stopped:
                asyncio.get_running_loop().call_later(
                    SESSION_LOST_GRACE_S, self._fence_if_gone, broker_id, peer, self.sessions.get(broker_id))

    def _fence_if_gone(self, broker_id: int, peer: str, epoch: int | None) -> None:
        """The broker's session connection closed and no heartbeat came on another since."""
        if self._stopped or self.session_peers.get(broker_id) != peer or self.sessions.get(broker_id) != epoch:
            return
        info = self.coordinator.broker(broker_id)
        if info is None or info.fenced or epoch is None:
            return
        try:
            self.coordinator.unregister_broker(broker_id, epoch)
        except CoordinatorError:
            return
        self.session_peers.pop(broker_id, None)
        log.warning("broker %d closed its session connection and did not come back: fenced", broker_id)

    async def _dispatch(self, frame: bytes, peer: str):
        """The encoded reply, None for no reply, CLOSE (False) to close the connection."""
        out = REGISTRY.dispatch(frame, self, peer)
        return (await out) if asyncio.iscoroutine(out) else out


async def run_coordinator(config: CoordinatorConfig) -> int:
    """Run until SIGINT/SIGTERM/SIGBREAK (or a stop file); returns the process exit code."""
    return await serve_until_stopped(CoordinatorServer(config))
