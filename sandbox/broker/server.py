"""The broker's network side: asyncio sockets, framing, dispatch to handlers, in-order replies.

Like Kafka, one connection has one request in flight at a time, so replies keep request order.
Bad input closes only the offending connection, with one log line saying what and from where.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from pathlib import Path

from sandbox.lifecycle import serve_until_stopped, setup_logging  # noqa: F401  (setup_logging: re-exported)
from sandbox.protocol import (
    DecodeError,
    FrameError,
    build,
    decode_produce_request,
    decode_request,
    encode_fetch_response,
    encode_produce_response,
    encode_response,
    frame_size,
    join_parts,
    peek_header,
    response_class,
)
from sandbox.protocol.fast_metadata import encode_metadata_response

from .config import DEFAULT_LISTENER, BrokerConfig
from .context import RequestContext
from .handlers import REGISTRY
from .handlers.k18_api_versions import unsupported_version_response
from .state import BrokerState, emit_event

log = logging.getLogger("sandbox.broker")

READ_CHUNK = 1 << 18


class ListenerBindError(OSError):
    """A listener's socket could not be bound; strerror says which listener and why."""


class BrokerServer:
    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.state = BrokerState(config)
        self._servers: list[asyncio.base_events.Server] = []  # one per listener
        self._tasks: list[asyncio.Task] = []
        self._conns: set[asyncio.StreamWriter] = set()
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        t0 = time.monotonic()
        (Path(self.config.data_dir) / "stop").unlink(missing_ok=True)  # left by a killed run
        listeners = self.config.endpoints()
        for lst in listeners:
            try:
                server = await asyncio.start_server(
                    functools.partial(self._serve, listener=lst.name), lst.host, lst.port,
                    reuse_address=True, limit=READ_CHUNK, start_serving=False,
                )
            except OSError as e:
                for server in self._servers:
                    server.close()
                self._servers = []
                why = os.strerror(e.errno) if e.errno and e.errno > 0 else (e.strerror or str(e))
                raise ListenerBindError(e.errno, f"listener {lst.name} cannot bind {lst.host}:{lst.port} ({why})") from e
            if lst.port == 0:
                lst.port = server.sockets[0].getsockname()[1]
            self._servers.append(server)
        if not self.config.listeners:  # the implicit PLAINTEXT listener: keep --port 0 resolved
            self.config.port = listeners[0].port
        await self.state.open()
        for server in self._servers:
            await server.start_serving()
        self._tasks = [
            asyncio.create_task(self._every(0.1, self._tick_groups)),
            asyncio.create_task(self._every(0.25, self._check_stop_file)),
            asyncio.create_task(self._every(self.config.retention_check_interval_ms / 1000, self.state.apply_retention)),
            asyncio.create_task(self._every(self.config.checkpoint_interval_ms / 1000, self.state.checkpoint)),
            asyncio.create_task(self._every(1.0, self._flush_due)),
        ]
        served = ", ".join(
            f"{lst.host}:{lst.port}" if not self.config.listeners else
            "{} {}:{} (advertised {}:{})".format(lst.name, lst.host, lst.port, *lst.advertised)
            for lst in listeners
        )
        log.info(
            "broker %d serving on %s (data %s, %d partitions, started in %.0f ms)",
            self.config.node_id, served, self.config.data_dir,
            len(self.state.partitions), (time.monotonic() - t0) * 1000,
        )
        emit_event("start", {"service": f"broker-{self.config.node_id}", "port": listeners[0].port})

    async def _every(self, interval: float, fn) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                fn()
            except Exception:
                log.exception("housekeeping task %s failed", getattr(fn, "__name__", fn))

    def _check_stop_file(self) -> None:
        """A supervisor on Windows cannot signal a console-less child: it writes this file."""
        stop = Path(self.config.data_dir) / "stop"
        if stop.exists():
            log.info("stop file %s found: stopping", stop)
            try:
                stop.unlink()
            except OSError:
                pass
            self.request_stop()

    def _tick_groups(self) -> None:
        if self.state.groups is not None:
            self.state.groups.expire()

    def _flush_due(self) -> None:
        now_ms = int(time.time() * 1000)
        for plog in self.state.partitions.values():
            plog.flush_if_due(now_ms)
        self.state.checkpoint_if_moved()

    async def serve_forever(self) -> None:
        await self._stopping.wait()

    def request_stop(self) -> None:
        self._stopping.set()

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for w in list(self._conns):
            w.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._servers:
            try:
                await asyncio.wait_for(server.wait_closed(), 2)
            except (asyncio.TimeoutError, Exception):
                pass
        await self.state.close()
        log.info("broker %d stopped cleanly (journal flushed)", self.config.node_id)
        emit_event("stop", {"service": f"broker-{self.config.node_id}"})

    # ---- connections -----------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     listener: str = DEFAULT_LISTENER) -> None:
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if peername else "?"
        self._conns.add(writer)
        max_frame = self.config.max_request_bytes
        try:
            while True:
                # one copy per frame out of the reader's buffer (no re-framing of read chunks)
                try:
                    size = frame_size(await reader.readexactly(4), max_frame)
                except FrameError as e:
                    log.warning("closing connection from %s: %s", peer, e)
                    return
                out = await self._dispatch(await reader.readexactly(size), peer, listener)
                if out is False:
                    return
                if out:
                    writer.write(memoryview(out))  # a view: the transport slices it without copying
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("connection from %s failed", peer)
        finally:
            self._conns.discard(writer)
            writer.close()

    async def _dispatch(self, frame: bytes, peer: str, listener: str = DEFAULT_LISTENER) -> bytes | None | bool:
        """The encoded reply, None for no reply (acks=0), False to close the connection."""
        try:
            api_key, api_version, correlation_id = peek_header(frame)
        except DecodeError as e:
            log.warning("closing connection from %s: %s", peer, e)
            return False
        handler = REGISTRY.get(api_key)
        if handler is None or not handler.min_version <= api_version <= handler.max_version:
            if api_key == 18:  # ApiVersions: answer in v0 format so the client can retry lower
                return unsupported_version_response(correlation_id)
            log.warning(
                "closing connection from %s: unsupported api_key=%d version=%d",
                peer, api_key, api_version,
            )
            return False
        try:
            header, request = decode_produce_request(frame) if api_key == 0 else decode_request(frame)
        except DecodeError as e:
            log.warning("closing connection from %s: bad %s request: %s", peer, handler.name, e)
            return False
        ctx = RequestContext(self.state, api_key, api_version, correlation_id, header.client_id, peer, listener)
        try:
            result = await handler.handle(ctx, request) if handler.is_async else handler.handle(ctx, request)
            if result is None:
                return None
            # hot paths: hand-rolled encoders; Fetch records (log slices) are read straight into
            # the reply here, before any await lets the log change
            if api_key == 0:
                return encode_produce_response(correlation_id, api_version, result)
            if api_key == 1:
                return join_parts(encode_fetch_response(correlation_id, api_version, result))
            if api_key == 3:
                return encode_metadata_response(correlation_id, api_version, result)
            cls = response_class(api_key, api_version)
            return encode_response(correlation_id, build(cls, result))
        except Exception:
            log.exception("closing connection from %s: %s v%d failed", peer, handler.name, api_version)
            return False


async def run_broker(config: BrokerConfig) -> int:
    """Run until SIGINT/SIGTERM/SIGBREAK (or a stop file); returns the process exit code."""
    return await serve_until_stopped(BrokerServer(config))
