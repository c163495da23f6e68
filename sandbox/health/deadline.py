"""One status build's time budget: an overall deadline, a short timeout per request, and the
nodes that failed to answer in time, which nothing is asked of again for the rest of the build.

A broker that hangs between two supervisor probes (the state file still says healthy) would
otherwise cost a full client timeout per request (Metadata, ListOffsets per leader, ListGroups
per broker, ...): `sandbox status` and a /metrics scrape took 20 s and more."""

from __future__ import annotations

import time
from typing import Any, Callable, Collection

from sandbox.client import KafkaClient, KafkaClientError
from sandbox.client.connection import UndecodableResponse, fmt

STATUS_DEADLINE_S = 6.0    # one status build asks nothing more after this long
REQUEST_TIMEOUT_S = 2.0    # a node that takes longer to answer one request is left alone


class Budget:
    """The deadline of one build and what it learned about nodes that do not answer. `skip` is
    the set of broker ids nothing is asked of (the caller hands the same set object to every
    client call of the build, so a broker found hung is skipped by the calls that follow)."""

    def __init__(self, seconds: float = STATUS_DEADLINE_S, *, skip: Collection[int] = (),
                 request_timeout: float = REQUEST_TIMEOUT_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self.request_timeout, self.clock = seconds, request_timeout, clock
        self.deadline = clock() + seconds
        self.skip: set[int] = set(skip)
        self.hung: dict[tuple[str, int], str] = {}   # address -> why it is left alone
        self.expired = False

    def remaining(self) -> float:
        return self.deadline - self.clock()


def _no_answer(e: KafkaClientError) -> bool:
    """A transport failure (a timeout, a dropped or refused connection), not an error the node
    answered with nor a version mismatch."""
    return e.error_code is None and not isinstance(e, UndecodableResponse) and "support" not in e.message


class BoundedMixin:
    """Put before KafkaClient in the bases: while `budget` is set, every request waits at most
    the budget's request timeout (and never past its deadline), and a node that failed to answer
    is asked nothing more (its ids join budget.skip)."""

    budget: Budget | None = None

    def _send(self, addr: Any, api_key: int, data: dict) -> tuple[Any, int]:
        b = self.budget
        if b is None:
            return super()._send(addr, api_key, data)   # type: ignore[misc]
        if addr in b.hung:
            self._mark(b, addr)
            raise KafkaClientError(f"{fmt(addr)} is left alone: {b.hung[addr]}")
        left = b.remaining()
        if left <= 0:
            b.expired = True
            raise KafkaClientError(f"{fmt(addr)} not asked: the status took longer than {b.seconds:g}s")
        conn = self._conn(addr)   # type: ignore[attr-defined]
        conn.timeout = max(min(self.timeout, b.request_timeout, left), 0.05)   # type: ignore[attr-defined]
        if conn.sock is not None:
            conn.sock.settimeout(conn.timeout)
        try:
            return super()._send(addr, api_key, data)   # type: ignore[misc]
        except KafkaClientError as e:
            if _no_answer(e):
                b.hung[addr] = e.message
                self._mark(b, addr)
            raise

    def _mark(self, b: Budget, addr: Any) -> None:
        """The broker ids at addr join the skipped set (known once a Metadata answer named them)."""
        b.skip.update(n for n, a in self._nodes.items() if a == addr)   # type: ignore[attr-defined]


class BoundedClient(BoundedMixin, KafkaClient):
    """A KafkaClient whose requests keep to a status build's Budget (none set: a plain client)."""


def bounded(client: Any, budget: Budget) -> Any:
    """The client to ask with during one build: a BoundedMixin client gets the budget (and keeps
    its connections), a plain KafkaClient is copied into a BoundedClient (close it after the
    build); anything else (a test's stand-in) is asked as it is."""
    if isinstance(client, BoundedMixin):
        client.budget = budget
        return client
    if isinstance(client, KafkaClient):
        c = BoundedClient(client.addresses, client_id=client.client_id, timeout=client.timeout)
        c.budget = budget
        return c
    return client
