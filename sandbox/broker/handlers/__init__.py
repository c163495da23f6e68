"""The broker's request handlers: one module per API key (kNN_name.py), found by the registry.

Each module declares API_KEY, MIN_VERSION, MAX_VERSION and `handle(ctx, request)`, which returns
a dict in the shape of the response (see sandbox.protocol.build) or None for no response.
ApiVersions is derived from this registry, never written by hand; a module with ADVERTISED =
False answers its key without ApiVersions listing it (as Kafka answers the telemetry APIs).
Produce, Fetch and Metadata are coded by the hand-rolled codecs registered for their keys.
"""

from __future__ import annotations

import logging

from sandbox.protocol import FAST_CODECS, Registry

from ..context import RequestContext

REGISTRY: Registry = Registry.discover(__name__, "sandbox.admin_handlers", context=RequestContext, fast=FAST_CODECS,
                                       log=logging.getLogger("sandbox.broker"))

supported_versions = REGISTRY.supported_versions   # (api key, min, max) as ApiVersions lists them
