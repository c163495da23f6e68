"""Health monitoring of a running stack: lag that grows is visible in status and /metrics, and a
service that stops answering its probe is reported unhealthy (naming the probe) and restarted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from helpers import listen_port, wait_for

pytestmark = pytest.mark.integration


def _free_block(n: int) -> int:
    for _ in range(50):
        base = listen_port(n)
        if base + n < 65000 and all(_is_free(base + i) for i in range(n)):
            return base
    raise RuntimeError("no free block of ports")


def _is_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def cli(folder, *args, timeout=90):
    return subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=folder, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def stack(tmp_path):
    base = _free_block(3)
    (tmp_path / "sandbox.toml").write_text(f"""
[sandbox]
port = {base}
coordinator_port = {base + 1}
http_port = {base + 2}

[recovery]
unhealthy_after_s = 2

[topics.events]
partitions = 1
""")
    up = cli(tmp_path, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    yield tmp_path, base
    cli(tmp_path, "down")
    for p in psutil.process_iter(["cmdline"]):
        try:
            if str(tmp_path) in " ".join(p.info["cmdline"] or []):
                p.kill()
        except psutil.Error:
            pass


def status(folder) -> dict:
    out = cli(folder, "status", "--json")
    return json.loads(out.stdout)


def metric(base: int, name: str, **labels) -> float | None:
    text = urllib.request.urlopen(f"http://127.0.0.1:{base + 2}/metrics", timeout=5).read().decode()
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def test_growing_lag_shows_in_status_and_metrics(stack):
    folder, base = stack
    bootstrap = f"127.0.0.1:{base}"
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})
    for i in range(100):
        p.produce("events", value=f"v{i}".encode())
    assert p.flush(15) == 0
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "slow", "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition("events", 0, 100)], asynchronous=False)
    c.close()
    lags, scraped = [], []
    for _round in range(3):  # the consumer has stopped; the producer goes on
        for i in range(50):
            p.produce("events", value=b"more")
        assert p.flush(15) == 0
        st = status(folder)
        g = next(g for g in st["groups"] if g["group"] == "slow")
        lags.append(g["lag"])
        time.sleep(1.1)  # /metrics caches the status for a second
        scraped.append(metric(base, "sandbox_group_lag_records", group="slow"))
    assert lags == [50, 100, 150]
    assert scraped == [50.0, 100.0, 150.0]
    assert metric(base, "sandbox_partition_end_offset", topic="events", partition="0") == 250.0
    assert metric(base, "sandbox_service_up", service="broker-1") == 1.0
    health = urllib.request.urlopen(f"http://127.0.0.1:{base + 2}/healthz", timeout=5)
    assert health.status == 200


def test_a_broker_that_stops_answering_is_reported_and_restarted(stack):
    folder, base = stack
    before = {s["name"]: s for s in status(folder)["services"]}
    pid = before["broker-1"]["pid"]
    os.kill(pid, signal.SIGSTOP)  # alive to psutil, silent to Kafka clients
    try:
        def restarted() -> dict | None:
            st = status(folder)
            svc = next(s for s in st["services"] if s["name"] == "broker-1")
            return st if svc["pid"] not in (None, pid) and svc["healthy"] else None

        st = wait_for(restarted, 45, interval=0.5, what="broker-1 restarted and healthy",
                      detail=lambda: str(status(folder)))
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    unhealthy = [e for e in st["events"] if e["service"] == "broker-1" and e["kind"] == "unhealthy"]
    assert unhealthy and "api-versions" in json.dumps(unhealthy[-1]), st["events"]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert st["healthy"] is True
