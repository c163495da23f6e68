"""DescribeQuorum (55), v0-v2: the coordinator describes itself as the metadata quorum's only
voter and leader (see coordinator/quorum.py); brokers following the metadata are observers."""

from __future__ import annotations

import time

from ..quorum import CONTROLLER_LISTENER, COORDINATOR_NODE_ID, describe_quorum

API_KEY = 55
MIN_VERSION = 0
MAX_VERSION = 2


def handle(ctx, request) -> dict:
    server = ctx.server
    now_ms = int(time.time() * 1000)
    return describe_quorum(request, voter_id=COORDINATOR_NODE_ID, high_watermark=server.feed.high_watermark,
                           endpoint=(CONTROLLER_LISTENER, server.config.host, server.port),
                           observers=server.observers.states(now_ms), now_ms=now_ms)
