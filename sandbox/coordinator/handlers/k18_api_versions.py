"""ApiVersions (18), v0-v4: the supported ranges, derived from the handler registry. (A request
at a version we lack is answered by the registry itself: the v0 body with UNSUPPORTED_VERSION.)
"""

from __future__ import annotations

API_KEY = 18
MIN_VERSION = 0
MAX_VERSION = 4


def handle(ctx, request) -> dict:
    from . import REGISTRY

    return REGISTRY.api_versions()
