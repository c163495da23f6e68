"""The coordinator as a network service: asyncio sockets, framing, dispatch to handlers/, the
session-expiry tick, the `__cluster_metadata` feed, and graceful stop (signals or a stop file).

One connection has one request in flight, so replies keep request order; bad input closes only
the offending connection, with one log line. One event loop owns all state: no locks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox import lifecycle
from sandbox.lifecycle import serve_until_stopped, setup_logging  # noqa: F401  (setup_logging: re-exported)
from sandbox.protocol import (
    DecodeError, FrameBuffer, FrameError, build, decode_request, encode_response, peek_header,
    response_class,
)

from .controller import Coordinator
from .feed import DEFAULT_CAPACITY, MetadataFeed
from .handlers import REGISTRY, RequestContext
from .handlers.k18_api_versions import unsupported_version_response
from .quorum import Observers

log = logging.getLogger("sandbox.coordinator")

READ_CHUNK = 1 << 16
MAX_REQUEST_BYTES = 100 * 1024 * 1024
STOP_FILE = "stop"


def emit_event(kind: str, detail: dict[str, Any]) -> None:
    """The coordinator's EVENT lines (see sandbox.lifecycle)."""
    lifecycle.emit_event(log, kind, detail)


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
    feed_capacity: int = DEFAULT_CAPACITY
    snapshot_every: int = 1000
    max_request_bytes: int = MAX_REQUEST_BYTES


class CoordinatorServer:
    """start() binds and opens the journal; serve_forever() until request_stop(); stop()."""

    def __init__(self, config: CoordinatorConfig) -> None:
        self.config = config
        self.data_dir = Path(config.data_dir)
        self.session_timeout_ms = config.session_timeout_ms
        self.default_partitions = config.default_partitions
        self.coordinator: Coordinator | None = None
        self.feed: MetadataFeed | None = None
        self.sessions: dict[int, int] = {}  # broker id -> epoch, registered with THIS process
        self.observers = Observers()  # brokers following the metadata, for DescribeQuorum
        self._server: asyncio.base_events.Server | None = None
        self._tasks: list[asyncio.Task] = []
        self._conns: dict[asyncio.StreamWriter, asyncio.Task] = {}
        self._stopping = asyncio.Event()
        self._stopped = False

    @property
    def port(self) -> int:
        return self.config.port

    @property
    def stop_file(self) -> Path:
        return self.data_dir / STOP_FILE

    async def start(self) -> None:
        t0 = time.monotonic()
        cfg = self.config
        self._server = await asyncio.start_server(
            self._serve, cfg.host, cfg.port, reuse_address=True, limit=READ_CHUNK,
            start_serving=False)  # OSError (port in use) propagates, journal untouched
        try:
            if cfg.port == 0:
                cfg.port = self._server.sockets[0].getsockname()[1]
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if self.stop_file.exists():  # left over from an earlier run: not meant for us
                self.stop_file.unlink()
            self.coordinator = Coordinator(
                self.data_dir, session_timeout_ms=cfg.session_timeout_ms,
                default_partitions=cfg.default_partitions, on_event=emit_event,
                snapshot_every=cfg.snapshot_every, min_insync_replicas=cfg.min_insync_replicas,
                default_replication_factor=cfg.default_replication_factor)
            self.feed = MetadataFeed(self.coordinator, cfg.feed_capacity)
        except BaseException:
            self._server.close()
            raise
        await self._server.start_serving()
        self._tasks = [asyncio.create_task(self._housekeeping())]
        log.info("coordinator serving on %s:%d (cluster %s, data %s, metadata offset %d, "
                 "started in %.0f ms)", cfg.host, cfg.port, self.coordinator.cluster_id,
                 self.data_dir, self.coordinator.metadata_offset,
                 (time.monotonic() - t0) * 1000)
        emit_event("start", {"service": "coordinator", "port": cfg.port})

    async def _housekeeping(self) -> None:
        """Every tick: fence brokers whose session expired; honour a stop file."""
        while not self._stopping.is_set():
            await asyncio.sleep(self.config.tick_interval_s)
            try:
                fenced = self.coordinator.tick()
                for bid in fenced:
                    log.warning("broker %d missed its session timeout (%d ms): fenced", bid,
                                self.session_timeout_ms)
                if lifecycle.take_stop_file(self.data_dir, log):
                    self.request_stop()
            except Exception:
                log.exception("coordinator housekeeping failed")

    async def serve_forever(self) -> None:
        await self._stopping.wait()

    def request_stop(self) -> None:
        self._stopping.set()

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self._server is not None:
            self._server.close()
        for writer, task in list(self._conns.items()):
            writer.close()
            task.cancel()
        tasks = self._tasks + list(self._conns.values())
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2)
            except (asyncio.TimeoutError, Exception):
                pass
        if self.feed is not None:
            self.feed.close()
        if self.coordinator is not None:
            self.coordinator.close()
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
                    if out is None:
                        return
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

    async def _dispatch(self, frame: bytes, peer: str) -> bytes | None:
        """The encoded reply, or None to close the connection."""
        try:
            api_key, api_version, correlation_id = peek_header(frame)
        except DecodeError as e:
            log.warning("closing connection from %s: %s", peer, e)
            return None
        handler = REGISTRY.get(api_key)
        if handler is None or not handler.min_version <= api_version <= handler.max_version:
            if api_key == 18:  # ApiVersions: answer in v0 format so the client can retry lower
                return unsupported_version_response(correlation_id)
            log.warning("closing connection from %s: unsupported api_key=%d version=%d",
                        peer, api_key, api_version)
            return None
        try:
            header, request = decode_request(frame)
        except DecodeError as e:
            log.warning("closing connection from %s: bad %s request: %s", peer, handler.name, e)
            return None
        ctx = RequestContext(self, api_key, api_version, correlation_id, header.client_id, peer)
        try:
            result = (await handler.handle(ctx, request)) if handler.is_async \
                else handler.handle(ctx, request)
            return encode_response(correlation_id, build(response_class(api_key, api_version),
                                                         result))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("closing connection from %s: %s v%d failed", peer, handler.name,
                          api_version)
            return None


async def run_coordinator(config: CoordinatorConfig) -> int:
    """Run until SIGINT/SIGTERM/SIGBREAK (or a stop file); returns the process exit code."""
    return await serve_until_stopped(CoordinatorServer(config))
