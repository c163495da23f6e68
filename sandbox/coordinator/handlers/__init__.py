"""The coordinator's request handlers: one module per API key (kNN_name.py), found at import.

Each module declares API_KEY, MIN_VERSION, MAX_VERSION and `handle(ctx, request)` returning a
dict shaped like the response (see sandbox.protocol.build); ApiVersions is derived from here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

from sandbox import admin_handlers

from .configs import CoordinatorAdmin


@dataclass(frozen=True)
class Handler:
    api_key: int
    min_version: int
    max_version: int
    handle: Callable[..., Any]
    is_async: bool
    name: str


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

    @property
    def admin(self) -> CoordinatorAdmin:
        """This server as the shared admin handlers see it (sandbox/admin_handlers)."""
        return CoordinatorAdmin(self.server)


def _discover() -> dict[int, Handler]:
    registry: dict[int, Handler] = {}
    for package, info in admin_handlers.with_shared(__name__, __path__):
        mod = importlib.import_module(f"{package}.{info.name}")
        h = Handler(mod.API_KEY, mod.MIN_VERSION, mod.MAX_VERSION, mod.handle,
                    inspect.iscoroutinefunction(mod.handle), info.name)
        if h.api_key in registry:
            raise RuntimeError(f"two handlers for api key {h.api_key}: "
                               f"{registry[h.api_key].name}, {h.name}")
        registry[h.api_key] = h
    return registry


REGISTRY: dict[int, Handler] = _discover()


def supported_versions() -> list[tuple[int, int, int]]:
    return [(k, h.min_version, h.max_version) for k, h in sorted(REGISTRY.items())]
