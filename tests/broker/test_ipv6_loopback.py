"""A broker on 127.0.0.1 (the default) also answers on [::1], the same port, when the machine has an
IPv6 loopback: Node.js and .NET on Windows resolve `localhost` to ::1 first. Real `sandbox broker`
processes on free ports; a raw ApiVersions round trip and confluent-kafka bootstrapped through
[::1] (it then follows the advertised 127.0.0.1, which stays right)."""

from __future__ import annotations

import socket
import struct
import uuid

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback")


def api_versions_over(host: str, port: int) -> int:
    with socket.create_connection((host, port), timeout=5) as s:
        body = struct.pack(">hhih", 18, 0, 7, 4) + b"test"
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
        payload = s.recv(size, socket.MSG_WAITALL)
        corr, err = struct.unpack_from(">ih", payload)
        assert corr == 7
        return err


@needs_ipv6
def test_the_broker_answers_on_ipv6_loopback_too(broker):
    assert api_versions_over("127.0.0.1", broker.port) == 0
    assert api_versions_over("::1", broker.port) == 0
    assert "and [::1]:" in broker.log_text()


@needs_ipv6
def test_a_client_bootstrapped_through_ipv6_loopback_produces_and_consumes(broker):
    from confluent_kafka import Consumer, Producer

    topic = f"v6-{uuid.uuid4().hex[:6]}"
    boot = f"[::1]:{broker.port}"
    p = Producer({"bootstrap.servers": boot, "message.timeout.ms": 20000})
    p.produce(topic, b"through ::1")
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": boot, "group.id": "v6", "auto.offset.reset": "earliest"})
    try:
        c.subscribe([topic])
        got = None
        for _ in range(60):   # at most 60 polls of 0.5 s
            m = c.poll(0.5)
            if m is not None and not m.error():
                got = m.value()
                break
    finally:
        c.close()
    assert got == b"through ::1"

