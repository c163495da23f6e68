"""The coordinator's request handlers: one module per API key (kNN_name.py), found by the registry.

Each module declares API_KEY, MIN_VERSION, MAX_VERSION and `handle(ctx, request)` returning a
dict shaped like the response (see sandbox.protocol.build); ApiVersions is derived from here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sandbox.protocol import Registry

from .configs import CoordinatorAdmin


@dataclass(slots=True)
class RequestContext:
    """What a handler sees: the server (coordinator, feed, sessions) and the request header."""

    server: Any
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    peer: str

    @property
    def coordinator(self):
        return self.server.coordinator

    restricted = False

    @staticmethod
    def allowed(operation: int, resource_type: int, name: str, report: bool = True) -> bool:
        """The coordinator's own port has no authorizer: brokers check a request before they forward it."""
        return True

    @property
    def admin(self) -> CoordinatorAdmin:
        """This server as the shared admin handlers see it (sandbox/admin_handlers)."""
        return CoordinatorAdmin(self.server)


REGISTRY: Registry = Registry.discover(__name__, "sandbox.admin_handlers", context=RequestContext,
                                       log=logging.getLogger("sandbox.coordinator"))

