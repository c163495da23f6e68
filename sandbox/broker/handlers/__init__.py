"""Registry of request handlers: one module per API key (kNN_name.py).

Each module declares API_KEY, MIN_VERSION, MAX_VERSION and `handle(ctx, request)`, which returns
a dict in the shape of the response (see sandbox.protocol.build) or None for no response.
ApiVersions is derived from this registry, never written by hand; a module with ADVERTISED =
False answers its key without ApiVersions listing it (as Kafka answers the telemetry APIs).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

from sandbox import admin_handlers


@dataclass(frozen=True)
class Handler:
    api_key: int
    min_version: int
    max_version: int
    advertised_min: int
    handle: Callable[..., Any]
    is_async: bool
    name: str
    advertised: bool = True


def _discover() -> dict[int, Handler]:
    registry: dict[int, Handler] = {}
    for package, info in admin_handlers.with_shared(__name__, __path__):
        mod = importlib.import_module(f"{package}.{info.name}")
        h = Handler(
            mod.API_KEY, mod.MIN_VERSION, mod.MAX_VERSION,
            getattr(mod, "ADVERTISED_MIN_VERSION", mod.MIN_VERSION), mod.handle,
            inspect.iscoroutinefunction(mod.handle), info.name, getattr(mod, "ADVERTISED", True),
        )
        if h.api_key in registry:
            raise RuntimeError(f"two handlers for api key {h.api_key}: {registry[h.api_key].name}, {h.name}")
        registry[h.api_key] = h
    return registry


REGISTRY: dict[int, Handler] = _discover()


def supported_versions() -> list[tuple[int, int, int]]:
    """(api key, min, max) as ApiVersions advertises them."""
    return [(k, h.advertised_min, h.max_version) for k, h in sorted(REGISTRY.items()) if h.advertised]
