"""Small helpers shared by handlers: error codes and broker descriptions."""

from __future__ import annotations

NONE = 0
OFFSET_OUT_OF_RANGE = 1
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
LEADER_NOT_AVAILABLE = 5
NOT_LEADER_OR_FOLLOWER = 6
REQUEST_TIMED_OUT = 7
MESSAGE_TOO_LARGE = 10
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
INVALID_TOPIC_EXCEPTION = 17
INVALID_REQUIRED_ACKS = 21
UNSUPPORTED_SASL_MECHANISM = 33
INVALID_REPLICA_ASSIGNMENT = 39
INVALID_REQUEST = 42
UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
SECURITY_DISABLED = 54
KAFKA_STORAGE_ERROR = 56
FENCED_LEADER_EPOCH = 74
ELIGIBLE_LEADERS_NOT_AVAILABLE = 83
ELECTION_NOT_NEEDED = 84
NO_REASSIGNMENT_IN_PROGRESS = 85
UNKNOWN_LEADER_EPOCH = 75
GROUP_ID_NOT_FOUND = 69
INVALID_RECORD = 87
RESOURCE_NOT_FOUND = 91
DUPLICATE_RESOURCE = 92
UNACCEPTABLE_CREDENTIAL = 93
UNKNOWN_TOPIC_ID = 100
UNKNOWN_SERVER_ERROR = -1


def broker_list(state, listener: str | None = None, include_fenced: bool = False) -> list[dict]:
    """Every registered broker, with the address clients must use: the one it advertises on
    `listener` (the listener the request came in through), else its primary address. Fenced
    brokers only when asked (DescribeCluster v2)."""
    out = []
    for b in state.coordinator.brokers():
        fenced = bool(getattr(b, "fenced", False))
        if fenced and not include_fenced:
            continue
        host, port = b.address(listener) if listener is not None else (b.host, b.port)
        out.append({"node_id": b.broker_id, "broker_id": b.broker_id, "host": host, "port": port, "rack": b.rack,
                    "is_fenced": fenced})
    return out


def self_endpoint(state, listener: str | None = None) -> dict:
    """This broker's own address on `listener` (its primary address if it has no such listener)."""
    own = state.config.listener(listener) if listener is not None else None
    host, port = own.advertised if own is not None else state.config.advertised
    return {"node_id": state.node_id, "host": host, "port": port}
