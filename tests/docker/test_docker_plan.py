"""What docker mode asks the engine for (pure plan, no engine): labels, ports on 127.0.0.1 only, two
listeners per broker, named journal volumes, a real Kafka healthcheck; the image's build context;
compose/ (the same Dockerfile, healthchecks, listeners, volumes); engine errors in one sentence."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from sandbox.config import parse_config
from sandbox.runner import docker as dk
from sandbox.runner import docker_figures, docker_image
from sandbox.runner import wheelhouse
from sandbox.runner.docker_plan import HEALTH_INTERVAL_S, PROBE_SCRIPT, healthcheck

ROOT = Path(__file__).resolve().parents[2]


def cfg(text: str = "", root: Path = Path("/projects/shop")):
    return parse_config("[sandbox]\nname = \"shop\"\nport = 19092\nbrokers = 2\n" + text, root / "sandbox.toml")


def test_plan_labels_ports_listeners_and_healthchecks():
    c = cfg()
    plans = dk.plan(c)
    assert [p.service for p in plans] == ["coordinator", "broker-1", "broker-2"]
    for p in plans:
        assert p.labels[f"{dk.LABEL}.sandbox"] == "shop"
        assert p.labels[f"{dk.LABEL}.root"] == str(c.root)
        assert p.labels[f"{dk.LABEL}.service"] == p.service
        assert p.name == f"sandbox-shop-{p.service}"
        assert all(host == "127.0.0.1" for host, _ in p.ports.values()), p.ports
        assert p.restart_policy == {"Name": "unless-stopped"}
        test = p.healthcheck["test"]
        assert test[:5] == ["CMD", "python3", "-I", "-S", "-c"]   # ApiVersions (standard library only), not nc -z
        assert "struct.pack(\">hhih\",18,0" in test[5] and "import socket,struct,sys;" in test[5]
        assert p.healthcheck["interval"] >= 10 * 10**9 and p.healthcheck["retries"] >= 1
    coord, b1, b2 = plans
    assert coord.ports == {"9093/tcp": ("127.0.0.1", c.coordinator_port)}
    assert b1.ports == {"9092/tcp": ("127.0.0.1", 19092)} and b2.ports == {"9092/tcp": ("127.0.0.1", 19093)}
    assert "--listener" in b2.command
    listeners = [b2.command[i + 1] for i, a in enumerate(b2.command) if a == "--listener"]
    assert listeners == ["EXTERNAL=0.0.0.0:9092,advertised=127.0.0.1:19093",
                         "INTERNAL=0.0.0.0:19092,advertised=broker-2:19092"]
    assert b2.aliases == ["broker-2"] and "--coordinator" in b2.command
    assert b2.command[b2.command.index("--coordinator") + 1] == "coordinator:9093"
    assert b2.command[b2.command.index("--data-dir") + 1] == dk.JOURNAL_MOUNT


def test_sasl_adds_a_published_sasl_listener_per_broker():
    c = cfg('\n[sasl]\nport = 19300\nusers = { alice = "pw" }\n')
    _, b1, b2 = dk.plan(c)
    assert b2.ports == {"9092/tcp": ("127.0.0.1", 19093), f"{dk.SASL_PORT}/tcp": ("127.0.0.1", 19301)}
    listeners = [b2.command[i + 1] for i, a in enumerate(b2.command) if a == "--listener"]
    assert listeners[-1] == f"SASL_PLAINTEXT=0.0.0.0:{dk.SASL_PORT},advertised=127.0.0.1:19301"
    assert "pw" not in " ".join(b1.command)   # passwords never reach a command line
    assert all(f"{dk.SASL_PORT}/tcp" not in p.ports for p in dk.plan(cfg()))


def test_a_host_the_user_chose_is_where_ports_are_published():
    c = cfg('host = "0.0.0.0"\n')
    b1 = dk.plan(c)[1]
    assert b1.ports["9092/tcp"] == ("0.0.0.0", 19092)
    assert "advertised=127.0.0.1:19092" in " ".join(b1.command)   # clients still get a reachable address


def test_a_host_name_is_published_on_its_address_never_on_every_interface():
    """Found by review: `host = "localhost"` went to the engine as the publish address, which it
    reads as every interface (moby's net.ParseIP gives nil), opening the brokers to the network."""
    b1 = dk.plan(cfg('host = "localhost"\n'))[1]
    assert b1.ports["9092/tcp"] == ("127.0.0.1", 19092)
    from sandbox.runner.docker_plan import publish_address
    assert publish_address("127.0.0.1") == "127.0.0.1" and publish_address("0.0.0.0") == "0.0.0.0"
    assert publish_address("no-such-host.invalid") == "127.0.0.1"


def test_volume_names_and_label_selector():
    c = cfg()
    assert dk.volume_name(c, "broker-1") == "sandbox-shop-broker-1"
    assert dk.volume_name(c, "broker-1", "20261126T010203Z") == "sandbox-shop-broker-1-20261126T010203Z"
    assert f"{dk.LABEL}.sandbox=shop" in dk.selector(c)
    assert dk.slug("My Project!") == "my-project"


def _serve_once(answer: bytes):
    """A one-connection server on 127.0.0.1 that reads a request and writes `answer`; its port."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def run():
        c, _ = srv.accept()
        with c:
            c.recv(100)
            c.sendall(answer)
        srv.close()
    threading.Thread(target=run, daemon=True).start()
    return srv.getsockname()[1]


@pytest.mark.parametrize("answer,rc", [
    (b"\x00\x00\x00\x0a" + b"\x00\x00\x00\x07" + b"\x00\x00" + b"\x00\x00\x00\x00", 0),   # error 0, no apis
    (b"\x00\x00\x00\x06" + b"\x00\x00\x00\x07" + b"\x00\x23", 1),                  # error 35
    (b"\x00\x00\x00\x06" + b"\x00\x00\x00\x08" + b"\x00\x00", 1),                  # another correlation id
    (b"\x00\x00\x00\x40" + b"\x00\x00\x00\x07", 1),                                # a cut frame
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", 1),                                          # not Kafka
])
def test_the_healthcheck_probe_is_a_standard_library_api_versions_round_trip(answer, rc):
    port = _serve_once(answer)
    test = healthcheck(port)["test"]
    assert test[1:] == ["python3", "-I", "-S", "-c", PROBE_SCRIPT, str(port)]
    r = subprocess.run([sys.executable, *test[2:]], capture_output=True, timeout=20)
    assert r.returncode == rc, r.stderr


def test_the_healthcheck_probe_against_a_real_coordinator(tmp_path):
    from helpers import listen_port

    port = listen_port(1)
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "coordinator", "--host", "127.0.0.1", "--port", str(port),
                             "--data-dir", str(tmp_path)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import time

        deadline = time.monotonic() + 30
        while True:
            r = subprocess.run([sys.executable, *healthcheck(port)["test"][2:]], capture_output=True, timeout=20)
            if r.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.returncode == 0, r.stderr
    finally:
        proc.terminate()
        proc.wait(10)


def test_failing_step_names_the_step():
    log = [{"stream": "Step 1/7 : ARG BASE_IMAGE"}, {"stream": "Step 3/7 : RUN python3 -m venv /opt/sandbox"},
           {"stream": "ERROR boom"}]
    assert docker_image.failing_step(log) == "step 3/7 (RUN python3 -m venv /opt/sandbox)"
    assert docker_image.failing_step([]) == "an unknown step"


def test_engine_not_running_is_one_sentence(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(dk.DockerError) as e:
        dk.connect(timeout=2)
    msg = str(e.value)
    assert "not running" in msg and "start Docker Desktop" in msg and "\n" not in msg


def test_docker_not_installed_is_one_sentence(monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(dk.shutil, "which", lambda _name: None)
    monkeypatch.setattr(dk.os, "name", "posix")
    real_exists = Path.exists
    monkeypatch.setattr(Path, "exists", lambda self: False if str(self) == "/var/run/docker.sock" else real_exists(self))
    import docker

    monkeypatch.setattr(docker, "from_env", lambda **_kw: (_ for _ in ()).throw(docker.errors.DockerException("no socket")))
    with pytest.raises(dk.DockerError, match="Docker is not installed.*install Docker Desktop"):
        dk.connect()


def test_cli_says_engine_not_running_without_traceback(tmp_path, monkeypatch):
    (tmp_path / "sandbox.toml").write_text('[sandbox]\nport = 19092\n')
    env = {**__import__("os").environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    r = subprocess.run([sys.executable, "-m", "sandbox", "up", "--docker"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "start Docker Desktop" in r.stderr
    assert r.stderr.count("\n") == 1


def test_project_wheel_is_a_complete_wheel(tmp_path):
    whl = wheelhouse.project_wheel(tmp_path)
    assert whl.name == f"kafka_sandbox-{wheelhouse.version()}-py3-none-any.whl"
    with zipfile.ZipFile(whl) as z:
        names = set(z.namelist())
        info = f"kafka_sandbox-{wheelhouse.version()}.dist-info"
        assert {"sandbox/__init__.py", "sandbox/runner/probe.py", "sandbox/runner/Dockerfile",
                f"{info}/METADATA", f"{info}/RECORD", f"{info}/WHEEL", f"{info}/entry_points.txt"} <= names
        assert not any("__pycache__" in n for n in names)
        assert "sandbox = sandbox.cli.app:main" in z.read(f"{info}/entry_points.txt").decode()
        assert "Requires-Dist: kio" in z.read(f"{info}/METADATA").decode()
        record = z.read(f"{info}/RECORD").decode().splitlines()
        assert len(record) == len(names)


def test_image_digest_follows_base_image_and_sources():
    a, b = wheelhouse.source_digest("python:3.11-slim"), wheelhouse.source_digest("debian:bookworm")
    assert a != b and a == wheelhouse.source_digest("python:3.11-slim")
    assert docker_image.image_tag("python:3.11-slim").endswith(a)
    assert wheelhouse.parse_python_version("Python 3.11.2") == "3.11"
    assert wheelhouse.runtime_requirements() and not any("pytest" in r for r in wheelhouse.runtime_requirements())


def test_compose_dockerfile_is_the_packaged_one():
    assert (ROOT / "compose" / "Dockerfile").read_text() == wheelhouse.DOCKERFILE.read_text()
    text = wheelhouse.DOCKERFILE.read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim" in text and "--no-index" in text and 'ENTRYPOINT ["sandbox"]' in text


def test_compose_file_healthchecks_listeners_volumes_and_loopback_ports():
    doc = yaml.safe_load((ROOT / "compose" / "docker-compose.yml").read_text())
    svcs = doc["services"]
    assert {"coordinator", "broker-1", "topics"} <= set(svcs)
    for name in ("coordinator", "broker-1"):
        s = svcs[name]
        assert s["restart"] == "unless-stopped"
        port = {"coordinator": 9093, "broker-1": 9092}[name]
        assert s["healthcheck"]["test"] == healthcheck(port)["test"]   # the same probe as `up --docker`
        assert s["healthcheck"]["interval"] == f"{HEALTH_INTERVAL_S}s"
        for port in s["ports"]:
            assert port.startswith("127.0.0.1:"), port
        for vol in s["volumes"]:
            source = vol.split(":")[0]
            assert source in doc["volumes"], f"{vol} is not a named volume"
    cmd = " ".join(svcs["broker-1"]["command"])
    assert "EXTERNAL=0.0.0.0:9092,advertised=127.0.0.1:" in cmd and "INTERNAL=0.0.0.0:19092,advertised=broker-1:19092" in cmd
    assert svcs["broker-1"]["depends_on"]["coordinator"]["condition"] == "service_healthy"
    assert svcs["topics"]["depends_on"]["broker-1"]["condition"] == "service_healthy"
    assert svcs["topics"]["command"][:2] == ["topics", "apply"]
    assert "build" in svcs["broker-1"] and svcs["broker-1"]["build"]["args"]["BASE_IMAGE"]


class _FakeSDK:
    """Records what DockerStack asks the SDK to create (no engine)."""

    def __init__(self) -> None:
        import docker

        self.created: list[dict] = []
        self.volumes_made: list[tuple[str, dict]] = []
        self.archives: list[tuple[str, bytes]] = []
        self.networks_made: list[tuple[str, dict]] = []
        outer = self

        class Net:
            def __init__(self, name, labels=None):
                self.name = name
                self.attrs = {"Labels": labels or {}}

        class Ctr:
            status = "created"
            attrs: dict = {}

            def start(self):
                self.status = "running"

            def put_archive(self, path, data):
                assert self.status == "created"   # before the process starts
                outer.archives.append((path, data))

        self.existing: dict[str, dict] = {}     # containers already on the engine: name -> labels
        self.existing_volumes: dict[str, dict] = {}
        self.removed: list[str] = []
        self.stopped: list[str] = []

        class Old:
            def __init__(self, name, labels):
                self.name, self.labels, self.status = name, labels, "running"
                self.attrs = {"Config": {"Labels": labels}}

            def remove(self, force=False):
                outer.removed.append(self.name)

            def stop(self, timeout=None):
                outer.stopped.append(self.name)

        class Vol:
            def __init__(self, name, labels):
                self.name, self.attrs = name, {"Labels": labels}

        class Containers:
            def get(self, name):
                if name in outer.existing:
                    return Old(name, outer.existing[name])
                raise docker.errors.NotFound("no such container")

            def create(self, image, command, **kw):
                outer.created.append({"image": image, "command": command, **kw})
                return Ctr()

            def list(self, all=False, filters=None):
                want = dict(f.split("=", 1) for f in (filters or {}).get("label", []))
                return [Old(n, lbl) for n, lbl in outer.existing.items()
                        if all and n not in outer.removed and want.items() <= lbl.items()]

        class Volumes:
            def list(self, filters=None):
                return []

            def create(self, name, labels=None):
                outer.volumes_made.append((name, labels))

            def get(self, name):
                if name in outer.existing_volumes:
                    return Vol(name, outer.existing_volumes[name])
                raise docker.errors.NotFound("no such volume")

        class Networks:
            def list(self, names=None, filters=None):
                # as the engine does: a name filter matches every network whose name CONTAINS it
                return [Net(n, lbl) for n, lbl in outer.networks_made if not names or any(x in n for x in names)]

            def create(self, name, driver=None, labels=None):
                outer.networks_made.append((name, labels))
                return Net(name, labels)

        class API:
            @staticmethod
            def create_endpoint_config(aliases=None):
                return {"Aliases": aliases}

        self.containers, self.volumes, self.networks, self.api = Containers(), Volumes(), Networks(), API()


def test_what_the_sdk_is_asked_to_create():
    c = cfg()
    sdk = _FakeSDK()
    dk.DockerStack(c, client=sdk, image="kafka-sandbox:test").up()
    assert [n for n, _ in sdk.networks_made] == ["sandbox-shop"]
    assert sdk.networks_made[0][1][f"{dk.LABEL}.sandbox"] == "shop"
    assert [n for n, _ in sdk.volumes_made] == ["sandbox-shop-coordinator", "sandbox-shop-broker-1", "sandbox-shop-broker-2"]
    assert all(lbl[f"{dk.LABEL}.kind"] == "journal" and lbl[f"{dk.LABEL}.generation"] == "0" for _, lbl in sdk.volumes_made)
    assert [k["name"] for k in sdk.created] == ["sandbox-shop-coordinator", "sandbox-shop-broker-1", "sandbox-shop-broker-2"]
    b2 = sdk.created[2]
    assert b2["image"] == "kafka-sandbox:test"
    assert b2["volumes"] == {"sandbox-shop-broker-2": {"bind": "/var/lib/sandbox", "mode": "rw"}}
    assert b2["ports"] == {"9092/tcp": ("127.0.0.1", 19093)}
    assert b2["network"] == "sandbox-shop" and b2["networking_config"] == {"sandbox-shop": {"Aliases": ["broker-2"]}}
    assert b2["healthcheck"]["test"] == ["CMD", "python3", "-I", "-S", "-c", dk.PROBE_SCRIPT, "9092"]
    assert b2["restart_policy"] == {"Name": "unless-stopped"}
    assert b2["labels"][f"{dk.LABEL}.service"] == "broker-2" and b2["labels"][f"{dk.LABEL}.role"] == "broker"
    assert "EXTERNAL=0.0.0.0:9092,advertised=127.0.0.1:19093" in b2["command"]


def test_another_projects_network_whose_name_contains_ours_is_not_joined():
    """Docker's name filter is a substring match: sandbox "shop" must not join "sandbox-shop-admin"."""
    c = cfg()
    sdk = _FakeSDK()
    sdk.networks_made.append(("sandbox-shop-admin", {f"{dk.LABEL}.sandbox": "shop-admin",
                                                     f"{dk.LABEL}.root": "/projects/shop-admin"}))
    dk.DockerStack(c, client=sdk, image="kafka-sandbox:test").up()
    assert [n for n, _ in sdk.networks_made] == ["sandbox-shop-admin", "sandbox-shop"]
    assert all(k["network"] == "sandbox-shop" for k in sdk.created)


OTHER = {f"{dk.LABEL}.sandbox": "shop", f"{dk.LABEL}.root": "/elsewhere/shop"}


@pytest.mark.parametrize("kind", ["container", "volume", "network"])
def test_another_folder_of_the_same_name_is_refused_not_shared(kind):
    """/projects/shop and /elsewhere/shop both name their sandbox "shop": the second `up` is refused
    in one sentence naming the other folder and the fix; nothing of the other is used or removed."""
    sdk = _FakeSDK()
    if kind == "container":
        sdk.existing["sandbox-shop-broker-1"] = OTHER
    elif kind == "volume":
        sdk.existing_volumes["sandbox-shop-broker-2"] = OTHER
    else:
        sdk.networks_made.append(("sandbox-shop", OTHER))
    with pytest.raises(dk.DockerError) as e:
        dk.DockerStack(cfg(), client=sdk, image="kafka-sandbox:test").up()
    msg = str(e.value)
    assert f"the Docker {kind} sandbox-shop-" in msg or f"the Docker {kind} sandbox-shop " in msg
    assert "belongs to the sandbox in /elsewhere/shop" in msg
    assert "`sandbox down` in /elsewhere/shop" in msg and "name = " in msg and "[sandbox]" in msg
    assert sdk.created == [] and sdk.volumes_made == [] and sdk.removed == []


def test_this_folders_own_container_is_adopted():
    sdk = _FakeSDK()
    c = cfg()
    sdk.existing["sandbox-shop-broker-1"] = dk.labels(c, service="broker-1", role="broker")
    stack = dk.DockerStack(c, client=sdk, image=None)
    stack.check_ours()
    assert stack.container("broker-1") is not None
    sdk.existing["sandbox-shop-broker-1"] = OTHER
    assert stack.container("broker-1") is None   # never stopped, killed or removed from here


def test_a_paused_container_is_unpaused_before_it_is_started():
    """A `sandbox pause --for` whose watcher ended left the container paused; the engine refuses to
    start a paused container, so create()/start() unpause it first."""
    sdk = _FakeSDK()
    c = cfg()
    svc = "broker-1"
    calls = []

    class Paused:
        name, status = f"sandbox-shop-{svc}", "paused"
        labels = dk.labels(c, service=svc, role="broker")
        plan = dk.DockerStack(c, client=sdk).plans[svc]
        attrs = {"State": {"Paused": True}, "Config": {"Image": None, "Cmd": plan.command},
                 "HostConfig": {"PortBindings": {k: [{"HostIp": h, "HostPort": str(p)}] for k, (h, p) in plan.ports.items()}}}

        def unpause(self):
            calls.append("unpause")
            self.attrs = {**self.attrs, "State": {"Paused": False}}
            self.status = "running"

        def reload(self):
            pass

        def start(self):
            calls.append("start")

    ctr = Paused()
    sdk.containers.get = lambda name: ctr if name == ctr.name else (_ for _ in ()).throw(
        __import__("docker").errors.NotFound("no"))
    dk.DockerStack(c, client=sdk, image=None).start(svc)
    assert calls == ["unpause"]


class _Measured:
    """A running container for DockerStack.measure (no engine)."""

    def __init__(self, pid, started):
        self.status = "running"
        self.attrs = {"State": {"Pid": pid, "StartedAt": started}}

    def stats(self, stream=False, one_shot=True):
        return {"memory_stats": {"usage": 777}}

    def exec_run(self, cmd, demux=False):
        raise RuntimeError("no exec here")


def _measure(monkeypatch, os_name, started, proc_cls=None):
    import os

    sdk = _FakeSDK()
    sdk.info = lambda: {"OperatingSystem": os_name}
    stack = dk.DockerStack(cfg(), client=sdk)
    ctr = _Measured(os.getpid(), started)
    monkeypatch.setattr(stack, "container", lambda service: ctr)
    if proc_cls is not None:
        monkeypatch.setattr(docker_figures.psutil, "Process", proc_cls)
    return stack.measure("broker-1")


def _rfc3339(t):
    import datetime

    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_host_process_figures_only_from_a_local_linux_engine_and_the_containers_own_process(monkeypatch):
    import psutil

    me = psutil.Process()
    started = _rfc3339(me.create_time())
    if sys.platform.startswith("linux"):
        local = _measure(monkeypatch, "Debian GNU/Linux 12 (bookworm)", started)
        assert local["open_files"] is not None and local["rss_bytes"] and local["rss_bytes"] != 777
    # Docker Desktop: the pid is a VM's; the engine's stats give the memory
    desktop = _measure(monkeypatch, "Docker Desktop", started)
    assert desktop["open_files"] is None and desktop["cpu_percent"] is None and desktop["rss_bytes"] == 777
    # a pid of this machine that is not the container's process (another start time)
    other = _measure(monkeypatch, "Debian GNU/Linux 12 (bookworm)", _rfc3339(me.create_time() - 3600))
    assert other["open_files"] is None and other["rss_bytes"] == 777


def test_open_files_are_not_asked_of_a_process_without_num_fds(monkeypatch):
    """psutil has no num_fds on Windows: measure() raised AttributeError instead of giving figures."""
    import psutil

    real = psutil.Process

    class NoFds:
        def __init__(self, pid):
            self._p = real(pid)

        def __getattr__(self, name):
            if name == "num_fds":
                raise AttributeError(name)
            return getattr(self._p, name)

    monkeypatch.setattr(sys, "platform", "linux")
    started = _rfc3339(psutil.Process().create_time())
    got = _measure(monkeypatch, "Debian GNU/Linux 12 (bookworm)", started, NoFds)
    assert got["open_files"] is None and got["rss_bytes"] is not None and got["cpu_percent"] is not None


def test_lowering_brokers_removes_the_extra_broker_containers_and_keeps_their_volumes():
    sdk = _FakeSDK()
    c = cfg()   # brokers = 2; broker-3 is left from brokers = 3
    for svc in ("coordinator", "broker-1", "broker-2", "broker-3"):
        sdk.existing[f"sandbox-shop-{svc}"] = dk.labels(c, service=svc, role="broker")
    sdk.existing["sandbox-shop-broker-4"] = OTHER   # another folder's: never touched
    stack = dk.DockerStack(c, client=sdk, image=None)
    assert stack.up() == ["sandbox-shop-broker-3"]
    assert sdk.stopped == ["sandbox-shop-broker-3"] and "sandbox-shop-broker-3" in sdk.removed
    assert "sandbox-shop-broker-4" not in sdk.removed


def test_the_coordinator_container_gets_the_catalogs_acls_before_it_starts(tmp_path):
    """A fresh journal volume (a destroyed journal's replacement) starts with the ACL bindings, the
    cluster id and the SCRAM users the supervisor's catalog kept: they are put into the new coordinator container as
    --seed-acls names."""
    import io
    import json
    import tarfile

    c = cfg(root=tmp_path)
    c.data_dir.mkdir(parents=True)
    binding = [2, "orders", 3, "User:alice", "*", 4, 2]
    dave = {"1": {"iterations": 4096, "salt": "73", "stored_key": "aa" * 32, "server_key": "bb" * 32}}
    (c.data_dir / "topics.json").write_text(json.dumps({"acls": [binding, ["broken"]], "cluster_id": "Kept_Cluster-Id",
                                                        "scram": {"dave": dave}}))
    sdk = _FakeSDK()
    dk.DockerStack(c, client=sdk, image="kafka-sandbox:test").up()
    coord = sdk.created[0]["command"]
    assert coord[coord.index("--seed-acls") + 1] == dk.SEED_ACLS == "/tmp/sandbox-seed-acls.json"
    assert len(sdk.archives) == 1 and sdk.archives[0][0] == "/tmp"
    with tarfile.open(fileobj=io.BytesIO(sdk.archives[0][1])) as tar:
        assert tar.getnames() == ["sandbox-seed-acls.json"]
        # and the cluster id clients knew, which a fresh journal answers with from its start
        # and the SCRAM users (tools' too), which it starts with
        assert json.loads(tar.extractfile("sandbox-seed-acls.json").read()) == {
            "acls": [binding], "cluster_id": "Kept_Cluster-Id", "scram": {"dave": dave}}


def test_engine_refusals_are_one_sentence_not_a_traceback():
    import docker

    sdk = _FakeSDK()

    def refuse(**_kw):
        raise docker.errors.APIError("500 Server Error", explanation="layer does not exist")

    sdk.containers.list = refuse
    with pytest.raises(dk.DockerError) as e:
        dk.DockerStack(cfg(), client=sdk, image="x").containers()
    assert str(e.value) == ("the Docker engine failed to list the containers (layer does not exist); "
                            "see `docker ps -a` and `sandbox logs`")
