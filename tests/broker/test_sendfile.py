"""Fetch replies over sendfile: the file runs are pinned on handles of their own when the reply is
built, so a segment closed or deleted by retention before the bytes go out is still sent whole."""

from __future__ import annotations

import os
import shutil

import pytest

from sandbox.broker import file_reply
from sandbox.log import LogConfig, PartitionLog
from sandbox.log.batch import build_batch
from sandbox.protocol import encode_fetch_response, join_parts

pytestmark = pytest.mark.skipif(not file_reply.SENDFILE, reason="no os.sendfile on this platform")


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
    expected = join_parts(encode_fetch_response(7, 12, _fetch_body(log.read(0, 1 << 20))))
    reply = file_reply.fetch_reply(encode_fetch_response(7, 12, _fetch_body(log.read(0, 1 << 20))))
    assert isinstance(reply, file_reply.FileReply)
    assert sum(1 for i in reply.items if isinstance(i, tuple)) > 1
    log.housekeeping.delete()                       # retention or a topic deletion, before the reply is sent
    shutil.rmtree(tmp_path / "t-0", ignore_errors=True)
    try:
        assert _bytes_of(reply) == bytes(expected)
    finally:
        reply.close()
    assert all(not isinstance(i, tuple) for i in reply.items)


def test_small_fetches_are_one_buffer(tmp_path):
    log = PartitionLog(tmp_path / "t-0", LogConfig())
    log.append(build_batch([(b"k", b"v")], timestamp_ms=1000))
    reply = file_reply.fetch_reply(encode_fetch_response(7, 12, _fetch_body(log.read(0, 1 << 20))))
    assert isinstance(reply, bytearray)
    log.close()


def test_reads_and_appends_do_not_depend_on_the_shared_file_offset(tmp_path):
    """asyncio's sendfile seeks the (dup'ed) descriptor after sending, which moves the segment's
    own file offset too: every read and append must name its position and stay exact."""
    log = PartitionLog(tmp_path / "t-0", LogConfig())
    for i in range(30):
        log.append(build_batch([(b"k", bytes([i]) * 3000)], timestamp_ms=1000))
    seg = log._segments[-1]
    whole = open(seg.log_path, "rb").read()
    assert seg.read_at(0, 100) == whole[:100]          # a buffered handle would now hold 8 KiB
    fd = seg.dup_fd()
    try:
        for moved_to in (len(whole) // 2, 7, len(whole)):
            os.lseek(fd, moved_to, os.SEEK_SET)          # what sendfile leaves behind
            assert seg.read_at(0, 20000) == whole[:20000]
            view = bytearray(5000)
            seg.read_into(1000, memoryview(view))
            assert bytes(view) == whole[1000:6000]
        os.lseek(fd, 5, os.SEEK_SET)
        seg.read_at(0, 100)
        os.lseek(fd, 11, os.SEEK_SET)
        log.append(build_batch([(b"k", b"tail")], timestamp_ms=1000))   # must land at the end
        after = open(seg.log_path, "rb").read()
        assert after[:len(whole)] == whole
        assert seg.scan() == len(after) and seg.next_offset == 31
    finally:
        os.close(fd)
        log.close()


def test_sendfile_now_sends_what_the_socket_takes_and_never_jumps_the_queue(tmp_path):
    """The direct sendfile sends a file run only when nothing waits in the transport ahead of it,
    and stops without error where the socket is full (the caller leaves the rest to asyncio)."""
    import socket

    data = os.urandom(8 << 20)   # more than a socket buffer holds
    path = tmp_path / "run"
    path.write_bytes(data)
    a, b = socket.socketpair()
    a.setblocking(False)

    class Transport:
        queued = 0

        def get_write_buffer_size(self):
            return self.queued

        def get_extra_info(self, name):
            return a if name == "socket" else None

    fd = os.open(path, os.O_RDONLY)
    try:
        t = Transport()
        t.queued = 10
        assert file_reply.sendfile_now(t, fd, 100, 1000) == 0   # bytes queued ahead: not now
        t.queued = 0
        sent = file_reply.sendfile_now(t, fd, 100, len(data) - 100)
        assert 0 < sent < len(data) - 100
        got = bytearray()
        b.setblocking(False)
        while len(got) < sent:
            got += b.recv(1 << 20)
        assert bytes(got) == data[100:100 + sent]
    finally:
        os.close(fd)
        a.close()
        b.close()
