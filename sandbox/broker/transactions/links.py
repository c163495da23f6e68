"""Connections from this broker to the others, by broker id (the address from the metadata, its
internal listener where it has one), made on first use and remade when the address changes."""

from __future__ import annotations

from typing import Any

from ..replication.fetcher import broker_address


class BrokerLinks:
    def __init__(self, state: Any, client_id: str) -> None:
        self.state, self.client_id = state, client_id
        self._conns: dict[int, Any] = {}

    def get(self, broker: int) -> Any | None:
        """A connection to `broker` (`await conn.request(body, timeout)`), None while it has no
        address in the metadata."""
        addr = broker_address(self.state, broker)
        if addr is None:
            return None
        conn = self._conns.get(broker)
        if conn is None or (conn.host, conn.port) != addr:
            if conn is not None:
                conn.close()
            conn = self._conns[broker] = self.state.replicas.connect(addr[0], addr[1], self.client_id)
        return conn

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
