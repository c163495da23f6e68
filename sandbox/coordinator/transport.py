"""The coordinator's wire transport for brokers and tools: one Kafka connection with one request in
flight (reconnects on demand, asks once more on a fresh connection when a kept one turns out
dead), address parsing, and the small conversions the remote coordinator's requests share."""

from __future__ import annotations

import asyncio
import struct
from typing import Any, Iterable, Mapping

from sandbox.protocol import DecodeError, RequestHeader, decode_response, encode_request

from .model import CoordinatorError

REQUEST_TIMED_OUT = 7
COORDINATOR_NOT_AVAILABLE = 15
_SIZE = struct.Struct(">i")


def parse_address(address: str, default_port: int = 9093) -> tuple[str, int]:
    """"HOST:PORT" (or "HOST", or "[v6]:PORT") -> (host, port)."""
    text = address.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest.lstrip(":") or default_port)
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    return host or "127.0.0.1", int(port)


class _Connection:
    """One Kafka connection: one request in flight, (re)connects on demand, closes itself on any
    failure (a timed-out reply would desynchronise the stream)."""

    def __init__(self, host: str, port: int, client_id: str, connect_timeout: float) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.connect_timeout = connect_timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self._corr = 0

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def request(self, body: Any, timeout: float) -> Any:
        async with self._lock:
            reused = self.connected
            try:
                return await self._request(body, timeout)
            except CoordinatorError as e:
                # a kept connection whose peer died (a restarted coordinator) fails on first use
                # without an answer: the request never reached a live coordinator, so ask again
                # once on a fresh connection
                if not (reused and e.error_code == COORDINATOR_NOT_AVAILABLE
                        and getattr(e, "no_answer", False)):
                    raise
            return await self._request(body, timeout)

    async def _request(self, body: Any, timeout: float) -> Any:
        key, version = body.__api_key__, body.__version__
        try:
            if not self.connected:
                self._reader, self._writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), self.connect_timeout)
            self._corr = (self._corr + 1) & 0x7FFFFFFF
            corr = self._corr
            self._writer.write(encode_request(
                RequestHeader(key, version, corr, self.client_id), body))
            frame = await asyncio.wait_for(self._exchange(), timeout)
            got, response = decode_response(frame, key, version)
            if got != corr:
                raise DecodeError(f"correlation id {got} does not match {corr}")
            return response
        except asyncio.TimeoutError:
            self.close()
            raise CoordinatorError(REQUEST_TIMED_OUT, f"The coordinator at {self.host}:"
                                   f"{self.port} did not answer within {timeout:.1f} s.")
        except (OSError, EOFError, asyncio.IncompleteReadError, DecodeError, ValueError,
                struct.error) as e:
            self.close()
            err = CoordinatorError(COORDINATOR_NOT_AVAILABLE, f"The coordinator at "
                                   f"{self.host}:{self.port} is not available "
                                   f"({type(e).__name__}: {e}).")
            err.no_answer = isinstance(e, (ConnectionError, asyncio.IncompleteReadError)) and \
                not getattr(e, "partial", b"")
            raise err from None
        except BaseException:  # cancelled mid-exchange: the stream is out of step
            self.close()
            raise

    async def _exchange(self) -> bytes:
        assert self._writer is not None and self._reader is not None
        await self._writer.drain()
        (size,) = _SIZE.unpack(await self._reader.readexactly(4))
        if size < 4:
            raise DecodeError(f"response frame of {size} bytes")
        return await self._reader.readexactly(size)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


def _listener_triples(host: str, port: int, listeners: Iterable[tuple[str, str, int]] | None
                      ) -> list[tuple[str, str, int]]:
    """(name, host, port) of every listener; one PLAINTEXT listener at host:port by default."""
    if listeners is None:
        return [("PLAINTEXT", host, port)]
    return [(str(name), str(h), int(p)) for name, h, p in listeners]


def _check(code: Any, message: str | None, what: str) -> None:
    code = int(code)
    if code:
        raise CoordinatorError(code, message or f"{what} failed with Kafka error code {code}.")


def _assignment_list(assignments: Any) -> list[tuple[int, list[int]]]:
    if isinstance(assignments, Mapping):
        return [(int(k), [int(b) for b in v]) for k, v in assignments.items()]
    return [(i, [int(b) for b in v]) for i, v in enumerate(assignments)]
