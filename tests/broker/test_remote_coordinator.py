"""A broker run against a separate `sandbox coordinator` process keeps serving the partitions it
leads while the coordinator is down, and re-registers by itself when it is back."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from confluent_kafka import Consumer, Producer

from helpers import BrokerProcess, api_versions_ok, listen_port, wait_for
from sandbox.client import KafkaClient

pytestmark = pytest.mark.integration


class CoordinatorProcess:
    def __init__(self, data_dir, port, log_path):
        self.data_dir, self.port, self.log_path = data_dir, port, log_path
        self.proc = None

    def start(self):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "sandbox", "coordinator", "--port", str(self.port),
                                      "--data-dir", str(self.data_dir)], stdout=self._log, stderr=subprocess.STDOUT)
        def answers() -> bool:
            assert self.proc.poll() is None, self.log_path.read_text()
            return api_versions_ok(self.port, 0.5)

        wait_for(answers, 20, interval=0.05, what=f"the coordinator on port {self.port}",
                 detail=self.log_path.read_text)
        return self

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self._log.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)
        self._log.close()


def consume(bootstrap, topic, n, group):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "session.timeout.ms": 6000})
    c.subscribe([topic])
    got, deadline = [], time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value())
    c.close()
    return got


def test_broker_serves_while_the_coordinator_is_down_and_reregisters(tmp_path):
    coord = CoordinatorProcess(tmp_path / "coordinator", listen_port(), tmp_path / "coordinator.log").start()
    broker = BrokerProcess(tmp_path / "broker-1", log_path=tmp_path / "broker.log")
    try:
        broker_cmd = [sys.executable, "-m", "sandbox", "broker", "--port", str(broker.port), "--data-dir",
                      str(broker.data_dir), "--coordinator", f"127.0.0.1:{coord.port}"]
        log = open(broker.log_path, "ab")
        proc = subprocess.Popen(broker_cmd, stdout=log, stderr=subprocess.STDOUT)
        def broker_answers() -> bool:
            assert proc.poll() is None, broker.log_path.read_text()
            return api_versions_ok(broker.port, 0.5)

        wait_for(broker_answers, 30, interval=0.05, what="the broker", detail=broker.log_path.read_text)
        with KafkaClient(broker.bootstrap) as c:
            c.create_topic("t", 2)
        p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
        for i in range(100):
            p.produce("t", value=f"before-{i}".encode(), partition=i % 2)
        assert p.flush(15) == 0

        coord.kill()  # the control plane is gone; the data plane goes on
        for i in range(100):
            p.produce("t", value=f"during-{i}".encode(), partition=i % 2)
        assert p.flush(15) == 0
        got = consume(broker.bootstrap, "t", 200, "g-during")
        assert sorted(got) == sorted([f"before-{i}".encode() for i in range(100)]
                                     + [f"during-{i}".encode() for i in range(100)])
        with KafkaClient(broker.bootstrap) as c:  # admin needs the coordinator: a clear error
            with pytest.raises(Exception):
                c.create_topic("needs-coordinator", 1)

        coord.start()  # same port, same journal: the broker re-registers by itself
        def created() -> bool:
            try:
                with KafkaClient(broker.bootstrap) as c:
                    c.create_topic("after", 1)
                return True
            except Exception:
                return False

        wait_for(created, 20, interval=0.5, what="a topic created through the re-registered broker",
                 detail=lambda: broker.log_path.read_text()[-3000:])
        with KafkaClient(broker.bootstrap) as c:
            md, _ = c.metadata()
            assert {"t", "after"} <= set(md.topics)
            assert all(pm.leader == 1 for pm in md.topics["t"].partitions)
        proc.terminate()
        assert proc.wait(20) == 0
        log.close()
    finally:
        if "proc" in locals() and proc.poll() is None:
            proc.kill()
        coord.stop()
