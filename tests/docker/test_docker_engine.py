"""Docker mode against a REAL engine: `sandbox up --docker --brokers 2`, host clients through ports on
127.0.0.1, a container client through the INTERNAL listener, a killed broker back with its data, a
corrupt coordinator journal quarantined into a kept volume with topics re-created, compose/ with the
same image, clear errors (port taken, failing build step), and `down` leaving nothing behind.

Needs a running engine and a local base image with python3 (`scripts/docker-test-base.sh` makes
one with debootstrap; .ci/run does it). Without them these tests skip, unless
SANDBOX_REQUIRE_DOCKER=1 (set by .ci/run), where they fail instead."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from helpers import listen_port, wait_for
from integration.kit import consume_topic, produce_all, producer
from integration.stack_kit import read_lines_until

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = os.environ.get("SANDBOX_TEST_BASE_IMAGE", "sandbox-test-base:bookworm")
LABEL = "io.kafka-sandbox"

pytestmark = pytest.mark.integration


def _unavailable(why: str):
    if os.environ.get("SANDBOX_REQUIRE_DOCKER") == "1":
        pytest.fail(f"docker tests required but {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def engine():
    import docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as e:  # noqa: BLE001 - any failure means no engine here
        _unavailable(f"no Docker engine: {e}")
    try:
        client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        _unavailable(f"base image {BASE_IMAGE} is missing (scripts/docker-test-base.sh makes it)")
    yield client
    client.close()


class DockerProject:
    def __init__(self, root: Path, engine, brokers: int = 2, topics: str = "", recovery: str = "") -> None:
        self.root, self.engine, self.brokers = root, engine, brokers
        self.name = "t" + uuid.uuid4().hex[:8]
        self.port = listen_port(brokers + 2)
        self.coordinator_port, self.http_port = self.port + brokers, self.port + brokers + 1
        (root / "sandbox.toml").write_text(
            f'[sandbox]\nname = "{self.name}"\nport = {self.port}\ncoordinator_port = {self.coordinator_port}\n'
            f'http_port = {self.http_port}\nbrokers = {brokers}\n\n[recovery]\nmax_restarts = 3\n'
            f'restart_window_s = 30\n{recovery}\n[docker]\nbase_image = "{BASE_IMAGE}"\n\n{topics}\n')

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.port + i}" for i in range(self.brokers))

    def cli(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("COLUMNS", None)
        return subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=self.root, env=env,
                              capture_output=True, text=True, timeout=timeout)

    def status(self) -> tuple[int, dict]:
        r = self.cli("status", "--json", timeout=60)
        try:
            return r.returncode, json.loads(r.stdout)
        except ValueError:
            raise AssertionError(f"status --json printed no JSON: {r.stdout}\n{r.stderr}") from None

    def wait_status(self, pred, timeout: float, what: str) -> dict:
        last: tuple[int, dict] = (-1, {})

        def check() -> dict | None:
            nonlocal last
            last = self.status()
            return last[1] if pred(*last) else None

        def brief() -> str:
            code, st = last
            b = {"exit": code, "problems": st.get("problems"),
                 "services": [(s["name"], s["state"], s["healthy"], s["restarts"]) for s in st.get("services", [])],
                 "events": [(e["service"], e["kind"], e["detail"][:200]) for e in st.get("events", [])[-15:]]}
            sup = self.root / ".sandbox" / "logs" / "supervisor.log"
            tail = sup.read_text(errors="replace").splitlines()[-30:] if sup.exists() else []
            return json.dumps(b, indent=1) + "\n" + "\n".join(tail)

        return wait_for(check, timeout, interval=0.5, what=what, detail=brief)

    def containers(self, all_: bool = True) -> list:
        return self.engine.containers.list(all=all_, filters={"label": f"{LABEL}.sandbox={self.name}"})

    def volumes(self) -> list:
        return self.engine.volumes.list(filters={"label": f"{LABEL}.sandbox={self.name}"})

    def networks(self) -> list:
        return self.engine.networks.list(filters={"label": f"{LABEL}.sandbox={self.name}"})

    def container(self, service: str):
        return self.engine.containers.get(f"sandbox-{self.name}-{service}")

    def cleanup(self) -> None:
        try:
            self.cli("down", "--purge", timeout=120)
        except Exception:  # noqa: BLE001
            pass
        for c in self.containers():
            c.remove(force=True)
        for n in self.networks():
            n.remove()
        for v in self.volumes():
            v.remove(force=True)


@pytest.fixture
def project(tmp_path, engine):
    made: list[DockerProject] = []

    def make(**kw) -> DockerProject:
        root = tmp_path / f"p{len(made)}"
        root.mkdir()
        p = DockerProject(root, engine, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.cleanup()


def _all_healthy(code, st) -> bool:
    return code == 0 and st.get("healthy") and all(s["state"] == "running" for s in st["services"])


def _service(st: dict, name: str) -> dict:
    return next(s for s in st["services"] if s["name"] == name)


def test_up_docker_two_brokers_serves_host_and_network_clients_heals_and_goes_down_clean(project, engine):
    sasl_port = listen_port(2)
    p = project(brokers=2, topics='[broker]\n"log.retention.hours" = 48\n\n[topics.orders]\npartitions = 4\n\n'
                                  f'[sasl]\nport = {sasl_port}\nusers = {{ carol = "c-pw" }}\n')
    r = p.cli("up", "--docker", "--brokers", "2", "--timeout", "120", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"bootstrap 127.0.0.1:{p.port},127.0.0.1:{p.port + 1}" in r.stdout
    assert "created topic orders (4 partitions)" in r.stdout
    assert f"SASL_PLAINTEXT bootstrap 127.0.0.1:{sasl_port},127.0.0.1:{sasl_port + 1}" in r.stdout, r.stdout

    # what the engine was asked for: labels, 127.0.0.1 ports, named volumes, healthchecks
    names = sorted(c.name for c in p.containers())
    assert names == [f"sandbox-{p.name}-broker-1", f"sandbox-{p.name}-broker-2", f"sandbox-{p.name}-coordinator"]
    for c in p.containers():
        # `up` counts its own ApiVersions round trip while the engine says "starting" (its first
        # check runs one 10 s interval after the start); the engine's own probe then agrees
        def engine_healthy(c=c):
            c.reload()
            return c.attrs["State"]["Health"]["Status"] == "healthy"
        wait_for(engine_healthy, 40, interval=0.5, what=f"{c.name}'s engine healthcheck to pass")
        assert c.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        for bindings in c.attrs["HostConfig"]["PortBindings"].values():
            assert all(b["HostIp"] == "127.0.0.1" for b in bindings)
        mounts = c.attrs["Mounts"]
        assert [m["Type"] for m in mounts] == ["volume"] and mounts[0]["Destination"] == "/var/lib/sandbox"

    # host clients through the published ports
    records = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(2000)]
    produce_all(producer(p.bootstrap, acks="all"), "orders", records, timeout=60)
    got = consume_topic(p.bootstrap, "orders", 2000, timeout=60)
    assert sorted(m.value() for m in got) == sorted(v for _, v in records)

    # sandbox.toml's [broker] settings reach every broker container (kafka-configs --describe --broker)
    from confluent_kafka.admin import AdminClient, ConfigResource
    a = AdminClient({"bootstrap.servers": p.bootstrap})
    for broker_id in ("1", "2"):
        res = ConfigResource(ConfigResource.Type.BROKER, broker_id)
        assert a.describe_configs([res])[res].result(timeout=20)["log.retention.ms"].value == str(48 * 3_600_000)

    # [sasl]: each broker container publishes a SASL_PLAINTEXT listener; the declared user logs in
    from confluent_kafka import Producer
    login_errors: list = []
    sp = Producer({"bootstrap.servers": f"127.0.0.1:{sasl_port}", "security.protocol": "SASL_PLAINTEXT",
                   "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "carol", "sasl.password": "c-pw",
                   "error_cb": lambda e: login_errors.append(e), "log_level": 0})
    md = sp.list_topics(timeout=20)
    assert sorted((b.host, b.port) for b in md.brokers.values()) == [("127.0.0.1", sasl_port), ("127.0.0.1", sasl_port + 1)]
    from confluent_kafka.admin import NewTopic
    a.create_topics([NewTopic("signed", 2, 1)])["signed"].result(timeout=30)
    wait_for(lambda: all(pm.leader > 0 for pm in sp.list_topics("signed", timeout=10).topics["signed"].partitions.values())
             and len(sp.list_topics("signed", timeout=10).topics["signed"].partitions) == 2, 30,
             what="topic signed's leaders")
    delivered: list = []
    for part in range(2):   # both partitions: both containers' SASL listeners
        sp.produce("signed", b"sasl", partition=part, on_delivery=lambda e, m: delivered.append(e))
    assert sp.flush(30) == 0 and delivered == [None] * 2 and not login_errors, (delivered, login_errors)

    # a client in another container on the sandbox's network gets the INTERNAL addresses
    image = json.loads((p.root / ".sandbox-runtime.json").read_text())["image"]
    script = ("from sandbox.client import KafkaClient\n"
              "c = KafkaClient('broker-1:19092,broker-2:19092', timeout=10)\n"
              "md, _ = c.metadata()\n"
              "print(sorted((b.host, b.port) for b in md.brokers), sum(c.end_offsets('orders').values()))\n")
    client_ctr = engine.containers.run(image, ["-c", script], entrypoint=["python3"],
                                       network=f"sandbox-{p.name}", detach=True)
    try:
        client_ctr.wait(timeout=60)
        out = client_ctr.logs().decode()
    finally:
        client_ctr.remove(v=True, force=True)   # v: also the image's anonymous /var/lib/sandbox volume
    assert "[('broker-1', 19092), ('broker-2', 19092)] 2000" in out, out

    # replicated between the containers (followers fetch through the INTERNAL listener): with
    # broker-1 frozen, broker-2 alone serves every record once it leads
    p.wait_status(lambda c, s: any(t["name"] == "orders" for t in s.get("topics", [])) and all(
        t.get("under_replicated_partitions") == 0 for t in s["topics"] if t["name"] == "orders"), 60,
        "orders fully replicated")
    frozen = p.container("broker-1")
    frozen.pause()
    try:
        got = consume_topic(f"127.0.0.1:{p.port + 1}", "orders", 2000, timeout=90)
        assert sorted(m.value() for m in got) == sorted(v for _, v in records)
    finally:
        frozen.unpause()
    p.wait_status(_all_healthy, 90, "healthy again after the pause")

    # a crash: the broker's process killed inside its container; its policy restarts it, data kept
    b1 = p.container("broker-1")
    b1.reload()
    os.kill(b1.attrs["State"]["Pid"], signal.SIGKILL)
    st = p.wait_status(lambda c, s: _all_healthy(c, s) and _service(s, "broker-1")["restarts"] >= 1, 90,
                       "broker-1 restarted by its policy")
    kinds = [e["kind"] for e in st["events"] if e["service"] == "broker-1"]
    assert "crash" in kinds and "restart" in kinds and "wipe" not in kinds, kinds
    assert sum(t["end_offsets"] for t in st["topics"] if t["name"] == "orders") == 2000
    got = consume_topic(p.bootstrap, "orders", 2000, timeout=60)
    assert len(got) == 2000

    # `docker kill` (the policy ignores a manual stop): the supervisor brings it back
    p.container("broker-2").kill()
    p.wait_status(lambda c, s: _all_healthy(c, s) and any(
        e["service"] == "broker-2" and "did not bring it back" in e["detail"] for e in s["events"]), 90,
        "broker-2 started again by the supervisor")

    # status: SPEC's docker shape; logs and restart work in docker mode
    code, st = p.status()
    assert code == 0 and st["mode"] == "docker"
    for s in st["services"]:
        assert s["pid"] is None and s["container"] == f"sandbox-{p.name}-{s['name']}"
        assert s["host_pid"], s   # a Linux engine: the container's process, for `sandbox bench`
        assert s["rss_bytes"] and s["disk_bytes"] is not None and s["journal_writable"] is True
    r = p.cli("monitor", "--once")
    assert r.returncode == 0 and "broker-2" in r.stdout and "orders" in r.stdout, r.stdout + r.stderr
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{p.http_port}/metrics", timeout=10) as resp:
        families = {f.name: f for f in text_string_to_metric_families(resp.read().decode())}
    ups = {s.labels.get("service"): s.value for s in families["sandbox_service_up"].samples}
    assert ups == {"coordinator": 1.0, "broker-1": 1.0, "broker-2": 1.0}, ups
    r = p.cli("logs", "broker-1", "-n", "200")
    assert r.returncode == 0 and "serving on EXTERNAL" in r.stdout, r.stdout + r.stderr
    r = p.cli("restart", "broker-2", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr

    # the supervisor dies (or the machine rebooted and the policy brought the containers back):
    # `up --docker` adopts the running containers instead of tripping over their ports
    sup_pid = int(json.loads((p.root / ".sandbox" / "supervisor.pid").read_text())["pid"])
    os.kill(sup_pid, signal.SIGKILL)
    r = p.cli("up", "--docker", "--brokers", "2", "--timeout", "120", timeout=300)
    assert r.returncode == 0 and "adopting 3 existing container(s)" in r.stdout, r.stdout + r.stderr
    assert len(consume_topic(p.bootstrap, "orders", 2000, timeout=60)) == 2000

    # down: no container, no network, no process; the journals stay until --purge
    r = p.cli("down", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert p.containers() == [] and p.networks() == []
    assert len(p.volumes()) == 3
    code, _ = p.status()
    assert code == 3
    r = p.cli("down", "--purge", timeout=120)
    assert r.returncode == 0 and p.volumes() == [], r.stdout + r.stderr


def test_corrupt_coordinator_journal_is_quarantined_into_a_kept_volume(project, engine):
    p = project(brokers=1, topics="[topics.orders]\npartitions = 2\n")
    # an `up` whose time runs out says the containers go on starting, as a native one does, and
    # the next `up` finds them running and creates the declared topic
    r = p.cli("up", "--docker", "--timeout", "0.5", timeout=600)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "goes on starting in the background" in r.stderr and "sandbox up` again" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    r = p.cli("up", "--docker", "--timeout", "120", timeout=600)
    assert r.returncode == 0 and "already running" in r.stdout, r.stdout + r.stderr
    assert "created topic orders (2 partitions)" in r.stdout, r.stdout
    produce_all(producer(p.bootstrap, acks="all"), "orders", [(None, b"x%d" % i) for i in range(300)], timeout=60)
    r = p.cli("topics", "create", "made-at-runtime", "-p", "3", timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                       ResourcePatternType, ResourceType)
    admin = AdminClient({"bootstrap.servers": p.bootstrap})
    deny = AclBinding(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:alice", "*",
                      AclOperation.WRITE, AclPermissionType.DENY)
    admin.create_acls([deny])[deny].result(30)
    catalog = p.root / ".sandbox" / "topics.json"   # the supervisor's catalog, refreshed every 3 s
    wait_for(lambda: "made-at-runtime" in (text := catalog.read_text() if catalog.exists() else "")
             and "User:alice" in text, 60, interval=0.5, what="the topic catalog to list made-at-runtime and the ACL")

    from sandbox.client import KafkaClient
    with KafkaClient(p.bootstrap) as c:
        cluster_id = c.metadata()[0].cluster_id
    assert cluster_id and cluster_id in catalog.read_text()
    coord = p.container("coordinator")
    coord.exec_run(["sh", "-c", "echo 'not json{' > /var/lib/sandbox/snapshot.json"])
    coord.reload()
    os.kill(coord.attrs["State"]["Pid"], signal.SIGKILL)   # restarts, cannot read its journal: exit 4

    def healed(code, st):
        ev = [e for e in st.get("events", []) if e["service"] == "coordinator"]
        return (_all_healthy(code, st) and any(e["kind"] == "wipe" for e in ev)
                and any(e["kind"] == "topics-recreated" and e.get("ok") for e in ev))

    st = p.wait_status(healed, 120, "coordinator quarantined and topics re-created")
    ev = [e for e in st["events"] if e["service"] == "coordinator"]
    assert any(e["kind"] == "crash" and e.get("exit_code") == 4 for e in ev), ev
    wipe = next(e for e in ev if e["kind"] == "wipe")
    vols = {v.name for v in p.volumes()}
    assert wipe["path"] in vols and wipe["volume"] in vols   # the quarantined volume is kept
    kept = engine.containers.run(BASE_IMAGE, ["cat", "/q/snapshot.json"], volumes={wipe["path"]: {"bind": "/q"}},
                                 remove=True).decode()
    assert "not json{" in kept
    recreated = next(e for e in ev if e["kind"] == "topics-recreated" and e.get("ok"))
    assert set(recreated["topics"]) >= {"orders", "made-at-runtime"}, recreated
    topics = {t["name"]: t for t in st["topics"]}
    assert topics["orders"]["partitions"] == 2 and topics["made-at-runtime"]["partitions"] == 3
    assert topics["orders"]["end_offsets"] == 300   # the broker's data survived the coordinator's wipe
    # the ACL was in the new journal before it served (the catalog copied into the new container)
    said = [e["detail"] for e in ev if e["kind"] == "configs-restored" and "ACL" in e.get("detail", "")]
    # said once: the restore starts only once the broker is registered and unfenced in the fresh
    # journal (before, in about 1 run of 4 its topics were refused while it was still fenced and
    # the retry said the ACL step again)
    assert said == ["put back: 1 ACL binding (in the new journal before it served)"], ev
    assert not any(e["kind"] == "topics-recreated" and "INVALID_REPLICA_ASSIGNMENT" in e["detail"] for e in ev), ev
    found = admin.describe_acls(AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                                 AclOperation.ANY, AclPermissionType.ANY)).result(30)
    assert found == [deny]
    # and the cluster id clients knew, with which the fresh journal answered from its start
    assert any(e["detail"] == f"cluster id {cluster_id} kept"
               for e in ev if e["kind"] == "configs-restored"), ev
    with KafkaClient(p.bootstrap) as c:
        assert c.metadata()[0].cluster_id == cluster_id


def test_compose_up_with_the_same_image_reaches_healthy_and_serves(project, engine, tmp_path):
    p = project(brokers=1)
    r = p.cli("image", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    port = listen_port(2)
    proj = "sbx" + uuid.uuid4().hex[:8]
    env = {**os.environ, "SANDBOX_PORT": str(port), "SANDBOX_COORDINATOR_PORT": str(port + 1),
           "SANDBOX_IMAGE": "kafka-sandbox:latest", "SANDBOX_BASE_IMAGE": BASE_IMAGE}
    compose = ["docker-compose", "-f", str(ROOT / "compose" / "docker-compose.yml"), "-p", proj]
    try:
        r = subprocess.run(compose + ["up", "-d"], env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        states: dict = {}

        def healthy() -> bool:
            nonlocal states
            states = {c.name: (c.attrs["State"].get("Health") or {}).get("Status", c.status)
                      for c in engine.containers.list(all=True, filters={"label": f"com.docker.compose.project={proj}"})}
            topics_done = any("topics" in n and engine.containers.get(n).attrs["State"]["Status"] == "exited"
                              for n in states)
            return topics_done and sum(1 for s in states.values() if s == "healthy") == 2

        wait_for(healthy, 120, interval=0.5, what="compose services healthy", detail=lambda: str(states))
        topics_ctr = next(c for c in engine.containers.list(all=True, filters={"label": f"com.docker.compose.project={proj}"})
                          if c.labels.get("com.docker.compose.service") == "topics")
        assert topics_ctr.attrs["State"]["ExitCode"] == 0, topics_ctr.logs().decode()
        assert "created topic orders" in topics_ctr.logs().decode()
        bootstrap = f"127.0.0.1:{port}"
        produce_all(producer(bootstrap, acks="all"), "orders", [(None, b"c%d" % i) for i in range(100)], timeout=60)
        assert len(consume_topic(bootstrap, "orders", 100, timeout=60)) == 100
        vols = [v.name for v in engine.volumes.list(filters={"label": f"com.docker.compose.project={proj}"})]
        assert sorted(vols) == sorted([f"{proj}_coordinator-journal", f"{proj}_broker-1-journal"])
    finally:
        subprocess.run(compose + ["down", "-v", "--remove-orphans"], env=env, capture_output=True, timeout=300)
    assert engine.containers.list(all=True, filters={"label": f"com.docker.compose.project={proj}"}) == []


def test_port_taken_is_one_clear_sentence(project):
    p = project(brokers=1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", p.port))
        s.listen()
        r = p.cli("up", "--docker", timeout=300)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"port {p.port} (for broker-1) is taken" in r.stderr and "Traceback" not in r.stderr
    assert p.containers() == []


def test_a_failing_image_build_names_the_step(project, engine, request):
    broken = "sandbox-test-novenv:latest"
    import io

    broken_image, _ = engine.images.build(
        fileobj=io.BytesIO(f"FROM {BASE_IMAGE}\nRUN rm -rf /usr/lib/python3.11/venv\n".encode()), tag=broken, rm=True)
    request.addfinalizer(lambda: _remove_build_leftovers(engine, broken_image.id))
    p = project(brokers=1)
    toml = (p.root / "sandbox.toml").read_text().replace(BASE_IMAGE, broken)
    (p.root / "sandbox.toml").write_text(toml)
    r = p.cli("up", "--docker", timeout=600)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "building the image failed at step" in r.stderr and "RUN python3 -m venv" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def _remove_build_leftovers(engine, parent_id: str) -> None:
    """The failed build's cached layers (untagged images whose parent is `parent_id`), then it."""
    for img in engine.images.list(filters={"dangling": True}):
        if img.attrs.get("Parent") == parent_id:
            engine.images.remove(img.id, force=True)
    engine.images.remove(parent_id, force=True)


def test_older_builds_are_untagged_unless_a_container_uses_them(engine, request):
    """A new build untags this project's older kafka-sandbox:<version>-<digest> builds of the same
    base; one a container (even a stopped one) runs stays, and so do tags a user added."""
    import io

    from sandbox.runner.docker_image import prune_old_images

    base = "sandbox-test-prune-" + uuid.uuid4().hex[:6]
    made, containers = [], []

    def cleanup():
        for c in containers:
            c.remove(force=True)
        for i in made:
            try:
                engine.images.remove(i, force=True)
            except Exception:  # noqa: BLE001 - already gone is the point
                pass
    request.addfinalizer(cleanup)

    def build(tag: str, n: int):
        df = f"FROM {BASE_IMAGE}\nLABEL {LABEL}.image=1 {LABEL}.base={base}\nRUN echo {n} > /build\n"
        img, _ = engine.images.build(fileobj=io.BytesIO(df.encode()), tag=tag, rm=True)
        made.append(img.id)
        return img

    old = build("kafka-sandbox:0.0.1-aaaaaaaaaaaa", 1)
    in_use = build("kafka-sandbox:0.0.2-bbbbbbbbbbbb", 2)
    kept_by_user = build("kafka-sandbox:0.0.3-cccccccccccc", 3)
    kept_by_user.tag("mine", "keep")
    current = build("kafka-sandbox:0.0.4-dddddddddddd", 4)
    containers.append(engine.containers.create(in_use.id, ["true"]))

    removed = prune_old_images(engine, "kafka-sandbox:0.0.4-dddddddddddd", base)
    assert removed == ["kafka-sandbox:0.0.1-aaaaaaaaaaaa", "kafka-sandbox:0.0.3-cccccccccccc"]
    ids = {i.id for i in engine.images.list(filters={"label": f"{LABEL}.base={base}"})}
    assert old.id not in ids and {in_use.id, kept_by_user.id, current.id} <= ids
    assert engine.images.get(kept_by_user.id).tags == ["mine:keep"]
    assert prune_old_images(engine, "kafka-sandbox:0.0.4-dddddddddddd", "another-base") == []


def test_up_docker_foreground_prints_events_and_ctrl_c_removes_the_containers(project, engine):
    p = project(brokers=1, topics="[topics.fg]\npartitions = 1\n")
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "up", "--docker", "--foreground", "--timeout", "120"],
                            cwd=p.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        read_lines_until(proc, lines, lambda got: any("is up; bootstrap" in line for line in got), 600)
        produce_all(producer(p.bootstrap, acks="all"), "fg", [(None, b"kept")], timeout=60)
        assert len(p.containers()) == 2
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "".join(lines) + rest
    assert proc.returncode == 0, text
    assert "broker-1 healthy" in text and "created topic fg" in text and "journal volumes are kept" in text, text
    assert p.containers() == [] and p.networks() == []
    assert len(p.volumes()) == 2   # the data stays for the next `up`
