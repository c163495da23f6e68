"""DeleteAcls (31), v1-v3, forwarded by a broker that checked the caller (ALTER on the cluster):
the bindings each filter matches are removed from the journal (coordinator/acls.py)."""

from __future__ import annotations

from ..acls import delete_response, filters_of
from ..model import CoordinatorError

API_KEY = 31
MIN_VERSION = 1
MAX_VERSION = 3


def handle(ctx, request) -> dict:
    try:
        results = ctx.coordinator.delete_acls(filters_of(request))
    except CoordinatorError as e:   # the journal cannot be written
        results = [(e.error_code, e.message, [])] * len(request.filters)
    return delete_response(results)
