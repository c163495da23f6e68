"""DescribeConfigs (32), v1-v4: topic configs with defaults marked, and the answering server's
own settings (a broker's, or the coordinator's); each config's synonyms and documentation when
the request asks for them (config_synonyms.py). A broker describes the BROKER resources "" (the
cluster-wide dynamic defaults) and its own id; another broker's id is INVALID_REQUEST, as Kafka's
ConfigHelper answers it (clients send a broker's resource to that broker)."""

from __future__ import annotations

from sandbox.coordinator.acls import DESCRIBE_CONFIGS
from sandbox.protocol.errors import NONE

from .access import config_refusal
from .configs import describe

API_KEY = 32
MIN_VERSION = 1
MAX_VERSION = 4


def handle(ctx, request) -> dict:
    return {"throttle_time": 0, "results": [
        describe(ctx.admin, r.resource_type, r.resource_name, r.configuration_keys,
                 with_synonyms=bool(getattr(request, "include_synonyms", False)),
                 with_documentation=bool(getattr(request, "include_documentation", False)))
        if (code := config_refusal(ctx, r.resource_type, r.resource_name, DESCRIBE_CONFIGS)) == NONE else
        {"error_code": code, "error_message": None, "resource_type": r.resource_type,
         "resource_name": r.resource_name, "configs": []}
        for r in request.resources]}
