"""CreateAcls (30), v1-v3, forwarded by a broker that checked the caller (ALTER on the cluster):
checked as Kafka's controller checks each binding (coordinator/acls.py), journaled."""

from __future__ import annotations

from ..acls import bindings_of, create_response
from ..model import CoordinatorError

API_KEY = 30
MIN_VERSION = 1
MAX_VERSION = 3


def handle(ctx, request) -> dict:
    try:
        results = ctx.coordinator.create_acls(bindings_of(request))
    except CoordinatorError as e:   # the journal cannot be written
        results = [(e.error_code, e.message)] * len(request.creations)
    return create_response(results)
