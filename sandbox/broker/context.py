"""The per-request context handed to handlers: broker state, header, who is asking, and the
listener the request came in through."""

from __future__ import annotations

from dataclasses import dataclass

from .admin import BrokerAdmin
from .config import DEFAULT_LISTENER
from .state import BrokerState


@dataclass(slots=True)
class RequestContext:
    state: BrokerState
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    peer: str
    listener: str = DEFAULT_LISTENER  # the name of the listener the connection came in through

    @property
    def admin(self) -> BrokerAdmin:
        """This broker as the shared admin handlers see it (sandbox/admin_handlers)."""
        return BrokerAdmin(self.state, self.listener)
