"""build() converts each element of an array whose elements need converting (found by review: it
converted the whole array of BrokerHeartbeat's OfflineLogDirs as if it were one uuid, so the
broker's heartbeat had to set the field around it)."""

from __future__ import annotations

import uuid

from sandbox.coordinator.session import V_HEARTBEAT
from sandbox.protocol import build, request_class


def test_an_array_of_uuids_is_built_element_by_element():
    a, b = uuid.uuid4(), uuid.uuid4()
    body = build(request_class(63, V_HEARTBEAT), {
        "broker_id": 1, "broker_epoch": 5, "current_metadata_offset": 0, "want_fence": False,
        "want_shut_down": False, "offline_log_dirs": [str(a), b.bytes]})
    assert body.offline_log_dirs == (a, b)
    empty = build(request_class(63, V_HEARTBEAT), {
        "broker_id": 1, "broker_epoch": 5, "current_metadata_offset": 0, "want_fence": False,
        "want_shut_down": False, "offline_log_dirs": ()})
    assert empty.offline_log_dirs == ()
