"""GetTelemetrySubscriptions (71), v0: not advertised (Kafka 4.0 lists it only with a telemetry
receiver plugin); asked anyway, it answers as Kafka's ClientMetricsManager with no subscription
(see telemetry.py): an instance id, no requested metrics, a 5-minute push interval."""

from __future__ import annotations

from sandbox.protocol.errors import NONE
from .telemetry import (ACCEPTED_COMPRESSION, DEFAULT_PUSH_INTERVAL_MS, TELEMETRY_MAX_BYTES, instance_id,
                        subscription_id)

API_KEY = 71
MIN_VERSION = 0
MAX_VERSION = 0
ADVERTISED = False


def handle(ctx, request) -> dict:
    client = instance_id(request.client_instance_id)
    return {"throttle_time": 0, "error_code": NONE, "client_instance_id": client,
            "subscription_id": subscription_id(client), "accepted_compression_types": ACCEPTED_COMPRESSION,
            "push_interval": DEFAULT_PUSH_INTERVAL_MS, "telemetry_max_bytes": TELEMETRY_MAX_BYTES,
            "delta_temporality": True, "requested_metrics": ()}
