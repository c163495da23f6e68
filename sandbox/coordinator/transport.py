"""The coordinator's wire transport for brokers and tools: the generic async Kafka connection
(sandbox.client.async_connection) with its failures as CoordinatorError, address parsing, and the
small conversions the remote coordinator's requests share."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from sandbox.client.async_connection import AsyncConnection, ExchangeFailed
from sandbox.protocol.errors import COORDINATOR_NOT_AVAILABLE, REQUEST_TIMED_OUT

from .model import CoordinatorError

# How long a broker waits at most between tries while the coordinator is away (heartbeats and the
# metadata feed): Kafka's clients' retry.backoff.max.ms and reconnect.backoff.max.ms (1 s). A
# restarted coordinator, or one whose journal the supervisor replaced, is back within a second or
# two; with 2 s, brokers found it up to 2 s late, and a replaced journal's topics waited for them.
RETRY_BACKOFF_MAX_S = 1.0


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


class CoordinatorConnection:
    """One connection to the coordinator: REQUEST_TIMED_OUT when it does not answer in time,
    COORDINATOR_NOT_AVAILABLE when it cannot be reached (see AsyncConnection for the rest)."""

    def __init__(self, host: str, port: int, client_id: str, connect_timeout: float) -> None:
        self.host, self.port = host, port
        self._conn = AsyncConnection(host, port, client_id, connect_timeout)

    @property
    def connected(self) -> bool:
        return self._conn.connected

    async def request(self, body: Any, timeout: float) -> Any:
        try:
            return await self._conn.request(body, timeout)
        except ExchangeFailed as e:
            if e.timed_out:
                raise CoordinatorError(REQUEST_TIMED_OUT, f"The coordinator at {self.host}:"
                                       f"{self.port} did not answer within {timeout:.1f} s.") from None
            raise CoordinatorError(COORDINATOR_NOT_AVAILABLE, f"The coordinator at {self.host}:"
                                   f"{self.port} is not available ({e.detail}).") from None

    def close(self) -> None:
        self._conn.close()


def listener_triples(host: str, port: int, listeners: Iterable[tuple[str, str, int]] | None
                      ) -> list[tuple[str, str, int]]:
    """(name, host, port) of every listener; one PLAINTEXT listener at host:port by default."""
    if listeners is None:
        return [("PLAINTEXT", host, port)]
    return [(str(name), str(h), int(p)) for name, h, p in listeners]


def check(code: Any, message: str | None, what: str) -> None:
    code = int(code)
    if code:
        raise CoordinatorError(code, message or f"{what} failed with Kafka error code {code}.")


def assignment_list(assignments: Any) -> list[tuple[int, list[int]]]:
    if isinstance(assignments, Mapping):
        return [(int(k), [int(b) for b in v]) for k, v in assignments.items()]
    return [(i, [int(b) for b in v]) for i, v in enumerate(assignments)]
