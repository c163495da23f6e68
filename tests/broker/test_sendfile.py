"""Fetch replies over sendfile: the file runs are pinned on handles of their own when the reply is
built, so a segment closed or deleted by retention before the bytes go out is still sent whole."""

from __future__ import annotations

import os
import shutil

import pytest

from sandbox.broker import server
from sandbox.log import LogConfig, PartitionLog
from sandbox.log.batch import build_batch
from sandbox.protocol import encode_fetch_response

pytestmark = pytest.mark.skipif(not server.SENDFILE, reason="no os.sendfile on this platform")


def _fetch_body(records) -> dict:
    return {"throttle_time": 0, "error_code": 0, "session_id": 0, "responses": [
        {"topic": "t", "partitions": [{"partition_index": 0, "error_code": 0, "high_watermark": 5,
                                       "last_stable_offset": 5, "log_start_offset": 0,
                                       "aborted_transactions": None, "preferred_read_replica": -1,
                                       "records": records}]}]}


def _bytes_of(reply) -> bytes:
    out = bytearray()
    for item in reply.items:
        if isinstance(item, tuple):
            fd, pos, n = item
            out += os.pread(fd, n, pos)
        else:
            out += item
    return bytes(out)


def test_large_fetches_are_pinned_and_survive_the_segment_being_deleted(tmp_path):
    log = PartitionLog(tmp_path / "t-0", LogConfig(segment_bytes=64 * 1024))
    for i in range(40):   # several segments of ~64 KiB
        log.append(build_batch([(b"k", bytes([i]) * 8000)], timestamp_ms=1000))
    expected = server.join_parts(encode_fetch_response(7, 12, _fetch_body(log.read_lazy(0, 1 << 20))))
    reply = server.fetch_reply(encode_fetch_response(7, 12, _fetch_body(log.read_lazy(0, 1 << 20))))
    assert isinstance(reply, server.FileReply)
    assert sum(1 for i in reply.items if isinstance(i, tuple)) > 1
    log.delete()                       # retention or a topic deletion, before the reply is sent
    shutil.rmtree(tmp_path / "t-0", ignore_errors=True)
    try:
        assert _bytes_of(reply) == bytes(expected)
    finally:
        reply.close()
    assert all(not isinstance(i, tuple) for i in reply.items)


def test_small_fetches_are_one_buffer(tmp_path):
    log = PartitionLog(tmp_path / "t-0", LogConfig())
    log.append(build_batch([(b"k", b"v")], timestamp_ms=1000))
    reply = server.fetch_reply(encode_fetch_response(7, 12, _fetch_body(log.read_lazy(0, 1 << 20))))
    assert isinstance(reply, bytearray)
    log.close()
