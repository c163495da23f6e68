"""Listeners (Kafka's listeners/advertised.listeners): a broker serves on several sockets, and the
Metadata, FindCoordinator and DescribeCluster answers on a connection advertise every broker's
address on the listener that connection came in through. Real processes, 127.0.0.1 only."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from helpers import api_versions_ok, free_port, listen_port, wait_for
from rawclient import RawClient
from sandbox.broker.config import DEFAULT_LISTENER, BrokerConfig, Listener, check_listeners, parse_listener
from sandbox.client import KafkaClient
from sandbox.protocol import build, request_class

ROOT = Path(__file__).resolve().parents[2]


# ---- parsing -------------------------------------------------------------------------------
def test_parse_listener_forms():
    assert parse_listener("internal=0.0.0.0:19092,advertised=broker-1:19092") == Listener(
        "INTERNAL", "0.0.0.0", 19092, "broker-1", 19092)
    lst = parse_listener("EXTERNAL=127.0.0.1:9092")
    assert lst.advertised == ("127.0.0.1", 9092)
    lst = parse_listener("E=127.0.0.1:9092, advertised=localhost")  # advertised host, bound port
    assert lst.advertised == ("localhost", 9092)
    assert parse_listener("V6=[::1]:9092,advertised=[::1]:29092").advertised == ("::1", 29092)
    assert parse_listener("ANY=127.0.0.1:0").port == 0


@pytest.mark.parametrize("spec, words", [
    ("EXTERNAL", "is not NAME=BIND_HOST:PORT"),
    ("=127.0.0.1:1", "is not NAME=BIND_HOST:PORT"),
    ("BAD-NAME=127.0.0.1:1", "letters, digits and '_'"),
    ("A=127.0.0.1", "needs a bind address as HOST:PORT"),
    ("A=:9092", "needs a bind address as HOST:PORT"),
    ("A=127.0.0.1:http", "'http' in a bind address, which is not a number"),
    ("A=127.0.0.1:70000", "outside 0-65535"),
    ("A=127.0.0.1:1,adv=x:1", "unknown option 'adv=x:1'"),
    ("A=127.0.0.1:1,advertised=0.0.0.0:1", "advertise a host clients can reach"),
    ("A=127.0.0.1:1,advertised=x:0", "advertises port 0"),
    ("A=0.0.0.0:1", "binds 0.0.0.0 but advertises no address"),
])
def test_parse_listener_errors_are_one_clear_sentence(spec, words):
    with pytest.raises(ValueError) as e:
        parse_listener(spec)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_check_listeners_and_the_implicit_listener(tmp_path):
    with pytest.raises(ValueError, match="given twice"):
        check_listeners([parse_listener("A=127.0.0.1:1"), parse_listener("a=127.0.0.1:2")])
    with pytest.raises(ValueError, match="two listeners bind 127.0.0.1:1"):
        check_listeners([parse_listener("A=127.0.0.1:1"), parse_listener("B=127.0.0.1:1")])
    check_listeners([parse_listener("A=127.0.0.1:0"), parse_listener("B=127.0.0.1:0")])
    cfg = BrokerConfig(data_dir=tmp_path, host="127.0.0.1", port=9092, advertised_host="h")
    assert [(lst.name, lst.advertised) for lst in cfg.endpoints()] == [(DEFAULT_LISTENER, ("h", 9092))]
    assert cfg.advertised == ("h", 9092) and cfg.listener("OTHER") is None
    cfg = BrokerConfig(data_dir=tmp_path, listeners=[parse_listener("A=127.0.0.1:1,advertised=a:2"),
                                                     parse_listener("B=127.0.0.1:3")])
    assert cfg.advertised == ("a", 2) and cfg.listener("B").advertised == ("127.0.0.1", 3)


@pytest.mark.parametrize("args, words", [
    (["--listener", "A=127.0.0.1:1", "--port", "5"], "--port cannot be combined with --listener"),
    (["--listener", "A=127.0.0.1:1", "--advertised-host", "x"], "--advertised-host cannot be combined"),
    (["--listener", "nonsense"], "is not NAME=BIND_HOST:PORT"),
    (["--listener", "A=127.0.0.1:1", "--listener", "A=127.0.0.1:2"], "given twice"),
])
def test_cli_refuses_bad_listeners_with_one_line(tmp_path, args, words):
    r = subprocess.run([sys.executable, "-m", "sandbox", "broker", "--data-dir", str(tmp_path / "b"), *args],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: ") and words in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "b").exists()


def test_cli_names_the_listener_whose_port_is_taken(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "sandbox", "broker", "--data-dir", str(tmp_path / "b"),
                            "--listener", f"A=127.0.0.1:{free_port()}", "--listener", f"B=127.0.0.1:{port}"],
                           capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 78   # a configuration error: the supervisor neither restarts nor quarantines
    assert f"listener B at 127.0.0.1:{port} is already in use" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "EVENT config-error" in r.stderr and '"reason": "port-taken"' in r.stderr, r.stderr


# ---- real brokers ---------------------------------------------------------------------------
class Proc:
    """A `sandbox broker`/`sandbox coordinator` child with arbitrary arguments, always stopped."""

    def __init__(self, args: list[str], log_path: Path, ready_ports: list[int]) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "sandbox", *args], stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=ROOT)
        def all_answer() -> bool:
            assert self.proc.poll() is None, self.log_path.read_text()
            return all(api_versions_ok(port, 0.5) for port in ready_ports)

        wait_for(all_answer, 30, interval=0.05, what=f"ports {ready_ports} answering",
                 detail=self.log_path.read_text)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def procs():
    started: list[Proc] = []
    yield started
    for p in reversed(started):
        p.stop()


def start_broker(procs, tmp_path, node_id: int, listeners: list[str], ports: list[int],
                 coordinator: int | None = None) -> Proc:
    args = ["broker", "--id", str(node_id), "--data-dir", str(tmp_path / f"broker-{node_id}")]
    for spec in listeners:
        args += ["--listener", spec]
    if coordinator is not None:
        args += ["--coordinator", f"127.0.0.1:{coordinator}"]
    p = Proc(args, tmp_path / f"broker-{node_id}.log", ports)
    procs.append(p)
    return p


def metadata_brokers(port: int, version: int = 12) -> list[tuple[int, str, int]]:
    body = {"topics": None, "allow_auto_topic_creation": False, "include_topic_authorized_operations": False,
            "include_cluster_authorized_operations": False}
    if version == 0:
        body = {"topics": []}
    with RawClient(port) as c:
        resp = c.request(build(request_class(3, version), body))
    return sorted((int(b.node_id), b.host, int(b.port)) for b in resp.brokers)


def describe_cluster_brokers(port: int) -> list[tuple[int, str, int]]:
    with RawClient(port) as c:
        resp = c.request(build(request_class(60, 1), {"include_cluster_authorized_operations": False,
                                                      "endpoint_type": 1}))
    assert int(resp.error_code) == 0
    return sorted((int(b.broker_id), b.host, int(b.port)) for b in resp.brokers)


def find_coordinator(port: int, group: str, version: int = 4) -> tuple[int, str, int]:
    with RawClient(port) as c:
        if version >= 4:
            resp = c.request(build(request_class(10, version), {"key_type": 0, "coordinator_keys": [group]}))
            found = resp.coordinators[0]
        else:
            resp = c.request(build(request_class(10, version), {"key": group, "key_type": 0}))
            found = resp
    assert int(found.error_code) == 0, found
    return int(found.node_id), found.host, int(found.port)


def test_each_listener_advertises_its_own_addresses(procs, tmp_path):
    pa = listen_port(2); pb = pa + 1
    start_broker(procs, tmp_path, 1, [f"INTERNAL=127.0.0.1:{pa},advertised=broker-1.internal:19092",
                                      f"EXTERNAL=127.0.0.1:{pb},advertised=broker-1.example.com:29092"], [pa, pb])
    for version in (12, 9, 1, 0):
        assert metadata_brokers(pa, version) == [(1, "broker-1.internal", 19092)]
        assert metadata_brokers(pb, version) == [(1, "broker-1.example.com", 29092)]
    assert describe_cluster_brokers(pa) == [(1, "broker-1.internal", 19092)]
    assert describe_cluster_brokers(pb) == [(1, "broker-1.example.com", 29092)]
    for version in (4, 3):
        assert find_coordinator(pa, "g", version) == (1, "broker-1.internal", 19092)
        assert find_coordinator(pb, "g", version) == (1, "broker-1.example.com", 29092)
    assert procs[0].stop() == 0
    log = procs[0].log_path.read_text()
    assert "INTERNAL 127.0.0.1" in log and "(advertised broker-1.example.com:29092)" in log


def test_clients_produce_and_consume_through_either_listener(procs, tmp_path):
    pa = listen_port(2); pb = pa + 1
    start_broker(procs, tmp_path, 1, [f"A=127.0.0.1:{pa},advertised=127.0.0.1:{pa}",
                                      f"B=127.0.0.1:{pb}"], [pa, pb])
    with KafkaClient(f"127.0.0.1:{pa}") as c:
        c.create_topic("t", 2)
    for port, other in ((pa, pb), (pb, pa)):
        p = Producer({"bootstrap.servers": f"127.0.0.1:{port}", "acks": "all"})
        assert p.list_topics(timeout=10).brokers[1].port == port
        for i in range(50):
            p.produce("t", value=f"via-{port}-{i}".encode(), partition=i % 2)
        assert p.flush(15) == 0
    want = sorted(f"via-{port}-{i}".encode() for port in (pa, pb) for i in range(50))
    for port in (pa, pb):
        c = Consumer({"bootstrap.servers": f"127.0.0.1:{port}", "group.id": f"g-{port}",
                      "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
        c.subscribe(["t"])
        got, deadline = [], time.monotonic() + 30
        while len(got) < len(want) and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append(m.value())
        c.commit(asynchronous=False)
        committed = c.committed([TopicPartition("t", 0), TopicPartition("t", 1)], timeout=10)
        c.close()
        assert sorted(got) == want
        assert sum(tp.offset for tp in committed) == len(want)


def test_two_brokers_with_a_coordinator_advertise_per_listener(procs, tmp_path):
    cport = listen_port()
    procs.append(Proc(["coordinator", "--port", str(cport), "--data-dir", str(tmp_path / "coordinator")],
                      tmp_path / "coordinator.log", [cport]))
    ports = {n: (listen_port(), listen_port()) for n in (1, 2)}
    for n, (internal, external) in ports.items():
        start_broker(procs, tmp_path, n, [f"INTERNAL=127.0.0.1:{internal},advertised=broker-{n}:19092",
                                          f"EXTERNAL=127.0.0.1:{external}"], [internal, external], cport)
    internal_view = [(1, "broker-1", 19092), (2, "broker-2", 19092)]
    external_view = [(n, "127.0.0.1", ports[n][1]) for n in (1, 2)]
    wait_for(lambda: len(metadata_brokers(ports[1][1])) >= 2, 20, what="broker 1's mirror to see broker 2")
    for n in (1, 2):
        internal, external = ports[n]
        assert metadata_brokers(internal) == internal_view
        assert metadata_brokers(external) == external_view
        assert describe_cluster_brokers(internal) == internal_view
        assert describe_cluster_brokers(external) == external_view
        owner, host, port = find_coordinator(external, "some-group")
        assert (owner, host, port) == external_view[owner - 1]
        assert find_coordinator(internal, "some-group") == internal_view[owner - 1]
    # the coordinator itself answers with each broker's primary (first) listener
    assert metadata_brokers(cport) == internal_view

    # a client on the host reaches both brokers through EXTERNAL: one partition led by each
    bootstrap = f"127.0.0.1:{ports[1][1]}"
    with KafkaClient(bootstrap) as c:
        c.create_topic("spread", 2)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    leaders = {pm.id: pm.leader for pm in p.list_topics("spread", timeout=10).topics["spread"].partitions.values()}
    assert sorted(leaders.values()) == [1, 2]
    for i in range(40):
        p.produce("spread", value=f"m{i}".encode(), partition=i % 2)
    assert p.flush(15) == 0
    c = Consumer({"bootstrap.servers": f"127.0.0.1:{ports[2][1]}", "group.id": "g", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition("spread", 0, 0), TopicPartition("spread", 1, 0)])
    got, deadline = [], time.monotonic() + 30
    while len(got) < 40 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value())
    c.close()
    assert sorted(got) == sorted(f"m{i}".encode() for i in range(40))


def test_our_client_names_an_advertised_address_it_will_not_use(tmp_path, procs):
    """A broker reachable at 127.0.0.1:P but advertising a host of another network: the CLI's client
    sends nothing there and says which address it would need, rather than "not in the metadata"."""
    from sandbox.client import KafkaClientError

    port = listen_port()
    procs.append(Proc(["broker", "--data-dir", str(tmp_path / "b"),
                       "--listener", f"A=127.0.0.1:{port},advertised=broker-1.internal:19092"],
                      tmp_path / "b.log", [port]))
    with KafkaClient(f"127.0.0.1:{port}") as c:
        assert c.create_topic("far", 1) is True   # admin goes to any given address
        with pytest.raises(KafkaClientError, match=r"broker 1 is at broker-1\.internal:19092, which is not "
                                                   r"among the addresses this client was given"):
            c.end_offsets("far")                  # ListOffsets must go to the leader
        assert list(c._conns) == [("127.0.0.1", port)]
