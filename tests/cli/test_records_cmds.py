"""`sandbox produce` / `sandbox consume` against a real two-broker native stack on free 127.0.0.1
ports, checked with real clients: keys land where kafka-python's (Java-compatible) partitioner puts
them, kcat reads what we wrote, and we read what confluent-kafka wrote with every compression codec."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from confluent_kafka import Producer
from kafka import KafkaProducer

from integration.kit import consume_topic, kcat
from integration.stack_kit import Project, make_project
from sandbox.client.partitioner import murmur2, partition_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    proj = make_project(tmp_path_factory.mktemp("records") / "proj", brokers=2,
                        topics="[topics.orders]\npartitions = 3\n")
    try:
        r = proj.up()
        assert r.returncode == 0, r.stdout + r.stderr
        yield proj
    finally:
        problems = proj.teardown()
        assert not problems, problems


def run(proj: Project, *args: str, data: bytes = b"", timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=proj.root, env=env, input=data,
                          capture_output=True, timeout=timeout)


def test_murmur2_matches_kafkas_java_test_vectors():
    # org.apache.kafka.common.utils.UtilsTest#testMurmur2
    for text, expected in [("21", -973932308), ("foobar", -790332482), ("a-little-bit-long-string", -985981536),
                           ("a-little-bit-longer-string", -1486304829), ("abc", 479470107),
                           ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971)]:
        assert murmur2(text.encode()) == expected
    assert partition_for(b"21", 3) == (-973932308 & 0x7FFFFFFF) % 3


def test_keys_land_where_a_java_compatible_client_puts_them(stack):
    keys = [f"customer-{i}".encode() for i in range(30)]
    r = run(stack, "produce", "orders", "--key-separator", ":",
            data=b"".join(k + b":from-sandbox\n" for k in keys))
    assert r.returncode == 0, r.stderr
    assert b"30 record(s) written to orders" in r.stderr
    kp = KafkaProducer(bootstrap_servers=stack.bootstrap)
    for k in keys:
        kp.send("orders", key=k, value=b"from-kafka-python")
    kp.flush(30)
    kp.close()
    where: dict[tuple[bytes, bytes], set[int]] = {}
    for m in consume_topic(stack.bootstrap, "orders", 60, timeout=60):
        where.setdefault(m.key(), set()).add(m.partition())
    assert all(len(ps) == 1 for ps in where.values()), where   # both producers agree per key
    assert len({p for ps in where.values() for p in ps}) == 3      # and the keys spread
    r = run(stack, "consume", "orders", "--from-beginning", "--exit-at-end", "--print-key", "--key-separator", "=")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 60 and set(lines) == {k + b"=from-sandbox" for k in keys} | {
        k + b"=from-kafka-python" for k in keys}


def test_lines_round_trip_through_kcat_with_crlf_and_blank_lines(stack):
    data = b"first\r\nsecond line with spaces\n\n\xff\xfe binary\nno newline at the end"
    r = run(stack, "produce", "lines", data=data)
    assert r.returncode == 0, r.stderr
    expected = [b"first", b"second line with spaces", b"", b"\xff\xfe binary", b"no newline at the end"]
    k = kcat("-C", "-b", stack.bootstrap, "-t", "lines", "-e", "-q", "-o", "beginning", "-f", "%s|END\\n")
    assert sorted(k.stdout.split(b"|END\n")[:-1]) == sorted(expected)
    r = run(stack, "consume", "lines", "--from-beginning", "-n", "5")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split(b"\n")[:-1]) == sorted(expected)


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_consume_reads_compressed_batches(stack, codec):
    topic = f"packed-{codec}"
    p = Producer({"bootstrap.servers": stack.bootstrap, "compression.type": codec, "linger.ms": 20})
    for i in range(500):
        p.produce(topic, key=str(i).encode(), value=f"{codec}-{i}".encode(), partition=0)
    assert p.flush(30) == 0
    r = run(stack, "consume", topic, "--from-beginning", "-e")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split(b"\n")[:-1] == [f"{codec}-{i}".encode() for i in range(500)]


def test_consume_from_the_end_sees_only_new_records_and_stops_at_n(stack):
    assert run(stack, "produce", "tail", data=b"old-1\nold-2\n").returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "consume", "tail", "-n", "2"], cwd=stack.root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # the consumer starts at the end: keep writing (bounded) until it has its two new records
        deadline, i = time.monotonic() + 90, 0
        while proc.poll() is None and time.monotonic() < deadline:
            assert run(stack, "produce", "tail", data=f"new-{i}\n".encode()).returncode == 0
            i += 1
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    lines = out.split(b"\n")[:-1]
    assert len(lines) == 2 and all(line.startswith(b"new-") for line in lines), lines


def test_partition_option_and_bad_input_are_one_sentence_and_lose_nothing(stack):
    r = run(stack, "produce", "orders", "--partition", "2", data=b"pinned\n")
    assert r.returncode == 0, r.stderr
    r = run(stack, "consume", "orders", "--from-beginning", "-e", "--partition", "2")
    assert b"pinned" in r.stdout.split(b"\n")
    r = run(stack, "produce", "orders", "--partition", "7", data=b"x\n")
    assert r.returncode == 2 and b"--partition 7 is not one of them" in r.stderr and b"Traceback" not in r.stderr
    # the third line has no separator: the first two are written, the rest is not, and it says so
    r = run(stack, "produce", "keyed", "-K", ":", data=b"k1:v1\nk2:v2\nno separator\nk3:v3\n")
    assert r.returncode == 1
    err = r.stderr.decode().strip()
    assert err.count("\n") == 0 and "line 3 has no key separator" in err and "2 records before it were" in err, err
    r = run(stack, "consume", "keyed", "--from-beginning", "-e")
    assert sorted(r.stdout.split(b"\n")[:-1]) == [b"v1", b"v2"]
    r = run(stack, "consume", "missing-topic", "-e")
    assert r.returncode == 1 and b"topic missing-topic does not exist; create it with" in r.stderr


def test_not_running_is_exit_3(tmp_path):
    proj = make_project(tmp_path / "idle")
    r = run(proj, "consume", "orders", "-e")
    assert r.returncode == 3 and b"is not running" in r.stderr and b"Traceback" not in r.stderr
    r = run(proj, "produce", "orders", data=b"x\n")
    assert r.returncode == 3


def test_a_line_over_the_size_limit_stops_produce_and_says_the_rest_was_not_sent(stack):
    """A 1.2 MB line (above max.message.bytes): exit 1, the lines before it are written, and the
    sentence says that nothing after it was sent (it used to say only how many were written)."""
    data = b"before\n" + b"x" * (1200 * 1024) + b"\nafter-1\nafter-2\n"
    r = run(stack, "produce", "big-lines", "-p", "0", data=data)
    assert r.returncode == 1, r.stderr
    err = r.stderr.decode()
    assert "MESSAGE_TOO_LARGE" in err and "1 record(s) were written before this" in err, err
    assert "nothing after it was sent" in err and "Traceback" not in err, err
    got = run(stack, "consume", "big-lines", "--from-beginning", "-e")
    assert got.stdout.split() == [b"before"], got.stdout[:200] + got.stderr
