"""A broker started with few open files allowed: a Mac's terminal starts programs with a soft
limit of 256, and a broker needs one handle per segment of every partition plus one per
connection. With a soft limit of 96 (hard 4096), 160 partitions once gave "Too many open
files": CreateTopics dropped its connection, partitions never came to exist here (produce
answered NOT_LEADER_OR_FOLLOWER for good), 8,600 traceback lines in a minute. The services raise
their soft limit to the hard one at start, as Go's runtime does."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from sandbox.client import KafkaClient

from helpers import BrokerProcess

from .kit import create_topic

resource = pytest.importorskip("resource", reason="POSIX limits (Windows' C runtime allows 8,192)")
LOW_SOFT, HARD = 96, 4096


def _low_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (LOW_SOFT, HARD))


@pytest.mark.skipif(resource.getrlimit(resource.RLIMIT_NOFILE)[1] < HARD,
                    reason="needs a hard limit of open files of at least 4096")
def test_a_broker_started_with_a_low_soft_limit_serves_hundreds_of_partitions(tmp_path, monkeypatch):
    real = subprocess.Popen
    # `sandbox broker` started the way a Mac's terminal starts it: few open files allowed
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: real(*a, preexec_fn=_low_limit, **k))
    broker = BrokerProcess(tmp_path / "broker", log_path=tmp_path / "broker.log").start()
    monkeypatch.undo()
    try:
        with open(f"/proc/{broker.proc.pid}/limits") if os.path.exists("/proc") else open(os.devnull) as f:
            limits = f.read()
        if limits:
            soft = int(next(line for line in limits.splitlines() if line.startswith("Max open files")).split()[3])
            assert soft == HARD, limits
        topics = [f"many-{uuid.uuid4().hex[:6]}-{i}" for i in range(4)]
        for t in topics:
            create_topic(broker.bootstrap, t, 40)
        with KafkaClient(broker.bootstrap, timeout=10.0) as c:
            for t in topics:
                for p in range(40):
                    c.produce(t, p, [(None, f"{t}-{p}".encode())])
            assert all(c.end_offsets(t) == {p: 1 for p in range(40)} for t in topics)
        log = broker.log_path.read_text(errors="replace")
        assert "Too many open files" not in log and "Traceback" not in log, log[-3000:]
    finally:
        broker.stop()
