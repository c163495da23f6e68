"""Files held by another program, with real processes under Windows' file rules: a virus scanner,
the search indexer or an editor holds a file the sandbox must remove or rename, and Windows
refuses until it lets go (tests/winfiles.py reads what is held from SANDBOX_TEST_HELD_FILES).

Found by the fault campaign's `--held-files` (scripts/chaos.py): a broker killed while a scanner
held its stale `.lock` exited at its restart with "the data folder cannot be used; choose another
data_dir", and the supervisor never started it again. Now the start is tried every second until
the file is let go, the broker comes back on its own journal, and nothing is quarantined. And a
topic deleted while one of its files is held, then made again, gets only its own records."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from .kit import consume_topic, produce_all, producer
from .replication_kit import Cluster
from .stack_kit import all_running_healthy, events, service, wait_status
from .test_self_healing import create_topic

SITE = Path(__file__).resolve().parents[1] / "winfiles_site"


def test_a_broker_restarted_while_another_program_holds_its_stale_lock_starts_once_it_lets_go(
        projects, tmp_path, monkeypatch):
    held = tmp_path / "held-files.txt"
    proj = projects("held", brokers=1)
    monkeypatch.setenv("SANDBOX_TEST_WINDOWS_FILES", str(proj.root))
    monkeypatch.setenv("SANDBOX_TEST_HELD_FILES", str(held))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(SITE), os.environ.get("PYTHONPATH")) if p))
    assert proj.up().returncode == 0
    create_topic(proj.bootstrap, "t", 1)
    produce_all(producer(proj.bootstrap, acks="all"), "t", [(None, f"v{i}".encode()) for i in range(20)])
    lock = proj.data_dir / "broker-1" / ".lock"
    assert lock.exists()
    held.write_text(f"{lock}\n")   # a scanner opens the lock file just as the broker dies
    os.kill(proj.service_pid("broker-1"), signal.SIGKILL)
    _, st = wait_status(proj, lambda c, s: events(s, service="broker-1", kind="file-in-use"), 30,
                        "the held file told")
    told = events(st, service="broker-1", kind="file-in-use")
    assert str(lock) in told[0]["detail"] and "another program" in told[0]["detail"], told
    # several refused starts later: still waiting, never given up on, nothing moved aside
    _, st = wait_status(proj, lambda c, s: proj.log_text("broker-1").count("is held by another program") >= 3,
                        30, "three refused starts")
    b1 = service(st, "broker-1")
    assert not st["healthy"] and b1["state"] != "crashed", b1
    assert (b1.get("problem") or "").startswith("a file is held by another program"), b1
    held.write_text("")            # the scanner lets go
    _, st = wait_status(proj, lambda c, s: c == 0 and all_running_healthy(s), 30, "the broker back")
    assert service(st, "broker-1").get("problem") is None
    assert events(st, service="broker-1", kind="file-in-use")[-1].get("resolved")
    for kind in ("wipe", "crash-loop", "config-error"):
        assert not events(st, kind=kind), events(st, kind=kind)
    quarantine = proj.data_dir / "quarantine"
    assert not quarantine.exists() or not any(quarantine.iterdir())
    got = consume_topic(proj.bootstrap, "t", 20)
    assert sorted(m.value() for m in got) == sorted(f"v{i}".encode() for i in range(20))
    assert "Traceback" not in proj.log_text("broker-1")


def _one_broker_under_windows_rules(tmp_path, monkeypatch) -> tuple[Cluster, Path]:
    return cluster_under_windows_rules(tmp_path, monkeypatch, brokers=1)


def cluster_under_windows_rules(tmp_path, monkeypatch, brokers: int) -> tuple[Cluster, Path]:
    """A started cluster whose processes run under Windows' file rules, and the list of files
    another program holds (empty: write paths into it to hold them)."""
    root = tmp_path / "cluster"
    held = tmp_path / "held.txt"
    held.write_text("")
    monkeypatch.setenv("SANDBOX_TEST_WINDOWS_FILES", str(root))
    monkeypatch.setenv("SANDBOX_TEST_HELD_FILES", str(held))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(SITE), os.environ.get("PYTHONPATH")) if p))
    return Cluster(root, brokers=brokers).start(), held


def _read(bootstrap: str, topic: str, n: int, timeout: float = 30.0) -> list[bytes]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{time.monotonic_ns()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                got.append(m.value())
        end = time.monotonic() + 2.0
        while time.monotonic() < end:   # nothing more than n
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                got.append(m.value())
        return got
    finally:
        c.close()


def test_a_topic_made_again_while_a_file_of_the_old_one_is_held_gets_only_its_own_records(tmp_path, monkeypatch):
    """Found while checking topic deletion with a held file: the deleted topic's folder could not
    be renamed, the topic made again under its name opened it, and consumers of the new topic read
    the deleted topic's 5 records first. Now the folder is deleted again every second and the
    partition is not made before it is gone."""
    c, held = _one_broker_under_windows_rules(tmp_path, monkeypatch)
    try:
        admin = c.admin()
        admin.create_topics([NewTopic("t", 1, 1)], request_timeout=15)["t"].result(20)
        p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all"})
        for i in range(5):
            p.produce("t", value=f"old-{i}".encode(), partition=0)
        assert p.flush(30) == 0
        assert _read(c.bootstrap, "t", 5) == [f"old-{i}".encode() for i in range(5)]
        segment = next((c.data_dir(1) / "t-0").glob("*.log"))
        held.write_text(f"{segment}\n")
        admin.delete_topics(["t"], request_timeout=15)["t"].result(20)
        time.sleep(1.0)
        admin.create_topics([NewTopic("t", 1, 1)], request_timeout=15)["t"].result(20)
        for i in range(3):
            p.produce("t", value=f"new-{i}".encode(), partition=0)
        p.flush(3)   # not served here while the old folder is held (waiting, not failing)
        assert (c.data_dir(1) / "t-0").exists()
        held.write_text("")
        for i in range(3, 5):
            p.produce("t", value=f"new-{i}".encode(), partition=0)
        assert p.flush(30) == 0
        got = _read(c.bootstrap, "t", 5)
        assert got == [f"new-{i}".encode() for i in range(5)], (got, c.log_text("broker-1")[-3000:])
    finally:
        c.stop()


def test_a_deleted_topic_whose_folder_is_held_through_a_restart_and_a_lost_coordinator_journal_stays_deleted(
        tmp_path, monkeypatch):
    """Left open last session: the broker remembered a doomed folder in memory only. Killed while
    the deleted topic's file was still held, and started again on a replaced coordinator journal
    (which knows nothing of the deletion), it opened the folder and put the deleted topic back
    with its records. The folder now carries a mark (partition.deleted) until it is gone."""
    c, held = _one_broker_under_windows_rules(tmp_path, monkeypatch)
    try:
        admin = c.admin()
        admin.create_topics([NewTopic("t", 1, 1)], request_timeout=15)["t"].result(20)
        p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all"})
        for i in range(5):
            p.produce("t", value=f"old-{i}".encode(), partition=0)
        assert p.flush(30) == 0
        del p   # its metadata requests would make "t" again (auto.create.topics.enable)
        held.write_text(f"{next((c.data_dir(1) / 't-0').glob('*.log'))}\n")
        admin.delete_topics(["t"], request_timeout=15)["t"].result(20)
        time.sleep(1.0)
        c.kill(1)
        c.replace_coordinator_journal()
        c.start_broker(1)
        time.sleep(13.0)   # the broker's restore grace (10 s) and its pass over what the metadata lost
        admin = c.admin()   # one of the fresh cluster (the journal's cluster id is new)
        assert "t" not in admin.list_topics(timeout=10).topics, c.log_text("broker-1")[-3000:]
        assert (c.data_dir(1) / "t-0").exists()   # still held
        held.write_text("")
        c.wait_for(lambda: not (c.data_dir(1) / "t-0").exists(), 15, "the deleted folder gone once let go")
        admin.create_topics([NewTopic("t", 1, 1)], request_timeout=15)["t"].result(20)
        p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all"})
        for i in range(3):
            p.produce("t", value=f"new-{i}".encode(), partition=0)
        assert p.flush(30) == 0
        assert _read(c.bootstrap, "t", 3) == [f"new-{i}".encode() for i in range(3)]
    finally:
        c.stop()


def test_a_log_whose_segment_a_program_holds_without_write_sharing_at_a_restart_is_served_once_let_go(
        tmp_path, monkeypatch):
    """Found by the fault campaign with holders that refuse writers too (a backup agent): a
    partition opened at its first use (one segment) whose segment was held so at a restart could
    not be opened; each Fetch for it dropped the consumer's connection with a traceback, and the
    follower's fetcher logged one every round. It is now answered KAFKA_STORAGE_ERROR (clients
    retry) until the program lets go."""
    c, held = _one_broker_under_windows_rules(tmp_path, monkeypatch)
    try:
        admin = c.admin()
        admin.create_topics([NewTopic("t", 1, 1)], request_timeout=15)["t"].result(20)
        p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all"})
        for i in range(5):
            p.produce("t", value=f"v-{i}".encode(), partition=0)
        assert p.flush(30) == 0
        del p, admin
        proc = c.procs.pop("broker-1")
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        segment = next((c.data_dir(1) / "t-0").glob("*.log"))
        held.write_text(f"exclusive\t{segment}\n")
        c.start_broker(1)
        consumer = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "g", "auto.offset.reset": "earliest",
                             "enable.auto.commit": False})
        try:
            consumer.assign([TopicPartition("t", 0, 0)])
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                m = consumer.poll(0.2)
                assert m is None or m.error() is not None, "read while its segment cannot be opened"
            held.write_text("")
            got: list[bytes] = []
            deadline = time.monotonic() + 30.0
            while len(got) < 5 and time.monotonic() < deadline:
                m = consumer.poll(0.5)
                if m is not None and m.error() is None:
                    got.append(m.value())
            assert got == [f"v-{i}".encode() for i in range(5)]
        finally:
            consumer.close()
        text = c.log_text("broker-1")
        assert "Traceback" not in text, text[-3000:]
        assert "its log cannot be opened yet" in text
    finally:
        c.stop()
