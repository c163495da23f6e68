"""ApiVersions (18): the supported ranges, derived from the handler registry; from v3 also the
supported and finalized features (metadata.version) with their epoch, the metadata offset, as a
Kafka broker of a KRaft cluster reports them. (A request at a version we lack is answered by the
registry itself: the v0 body with UNSUPPORTED_VERSION and the full list.)
"""

from __future__ import annotations

from sandbox.coordinator.features import api_versions_fields

API_KEY = 18
MIN_VERSION = 0
MAX_VERSION = 4


def handle(ctx, request) -> dict:
    from . import REGISTRY

    coord = ctx.state.coordinator
    if ctx.api_version >= 3 and coord is not None:
        return REGISTRY.api_versions(**api_versions_fields(coord.finalized_features(), coord.metadata_offset))
    return REGISTRY.api_versions()
