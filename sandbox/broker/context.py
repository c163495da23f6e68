"""The per-request context handed to handlers: broker state, header, and who is asking."""

from __future__ import annotations

from dataclasses import dataclass

from .state import BrokerState


@dataclass(slots=True)
class RequestContext:
    state: BrokerState
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    peer: str
