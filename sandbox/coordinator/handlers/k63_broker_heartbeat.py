"""BrokerHeartbeat (63), v0-v2: keeps a broker's session alive (unfencing it if its epoch is
current); want_shut_down fences it now and answers should_shut_down; OfflineLogDirs (v1+)
names the partitions whose log it cannot open (their replicas there lose ISR and leadership). Brokers unknown to this
process (e.g. after a coordinator restart) get BROKER_ID_NOT_REGISTERED and must re-register."""

from __future__ import annotations

from ..model import CoordinatorError
from sandbox.protocol.errors import NONE
from .common import check_session

API_KEY = 63
MIN_VERSION = 0
MAX_VERSION = 2


def handle(ctx, request) -> dict:
    server, coord = ctx.server, ctx.coordinator
    out = {"throttle_time": 0, "error_code": NONE, "is_caught_up": False, "is_fenced": True,
           "should_shut_down": False}
    code = check_session(server, request.broker_id, request.broker_epoch)
    if code != NONE:
        out["error_code"] = code
        return out
    try:
        if request.want_shut_down:
            coord.unregister_broker(request.broker_id, request.broker_epoch)
            server.sessions.pop(request.broker_id, None)
            out["should_shut_down"] = True
            return out
        if request.want_fence:
            coord.unregister_broker(request.broker_id, request.broker_epoch)
        else:
            # v1+: OfflineLogDirs (KIP-858), here one id per partition whose log the broker
            # cannot open; v0 (and a v1 without the tagged field) reports none
            out["is_fenced"] = coord.heartbeat(request.broker_id, request.broker_epoch,
                                               getattr(request, "offline_log_dirs", ()) or ())
            ctx.server.session_peers[request.broker_id] = ctx.peer
    except CoordinatorError as e:
        out["error_code"] = e.error_code
        return out
    out["is_caught_up"] = request.current_metadata_offset >= coord.metadata_offset - 1
    return out
