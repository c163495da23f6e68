"""compose/docker-compose.3brokers.yml: the replicated stack `sandbox up --docker --brokers 3` runs
(same coordinator replication options, three brokers with their own ports and volumes), valid for
docker-compose (`config`, no engine needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sandbox.config import load_config, parse_config
from sandbox.runner import docker as dk
from sandbox.runner.docker_plan import healthcheck

ROOT = Path(__file__).resolve().parents[2]
FILE = ROOT / "compose" / "docker-compose.3brokers.yml"


def services() -> dict:
    return yaml.safe_load(FILE.read_text())["services"]


def test_the_coordinator_has_the_options_sandbox_up_passes():
    cmd = services()["coordinator"]["command"]
    planned = dk.plan(parse_config("[sandbox]\nbrokers = 3\n"))[0].command
    # but the seed: compose has no supervisor, so no catalog whose ACLs a fresh journal could start with
    at = planned.index("--seed-acls")
    planned = planned[:at] + planned[at + 2:]
    assert cmd == planned, (cmd, planned)   # same host, port, journal and replication defaults
    assert cmd[cmd.index("--default-replication-factor") + 1] == "3"
    assert cmd[cmd.index("--min-insync-replicas") + 1] == "2"


def test_three_brokers_with_their_own_ports_listeners_and_volumes():
    doc = yaml.safe_load(FILE.read_text())
    svcs = doc["services"]
    brokers = [f"broker-{n}" for n in (1, 2, 3)]
    assert set(brokers) <= set(svcs)
    host_ports = []
    for n, name in enumerate(brokers, 1):
        s = svcs[name]
        cmd = " ".join(s["command"])
        assert f"--id={n}" in cmd and "--coordinator=coordinator:9093" in cmd
        assert f"INTERNAL=0.0.0.0:19092,advertised={name}:19092" in cmd
        assert f"advertised=127.0.0.1:${{SANDBOX_PORT_{n}:-{9091 + n}}}" in cmd
        (port,) = s["ports"]
        assert port.startswith("127.0.0.1:")
        host_ports.append(port)
        assert s["volumes"] == [f"{name}-journal-3brokers:/var/lib/sandbox"] and f"{name}-journal-3brokers" in doc["volumes"]
        assert s["depends_on"]["coordinator"]["condition"] == "service_healthy"
        assert s["healthcheck"]["test"] == healthcheck(9092)["test"]   # the same probe as `up --docker`
    assert len(set(host_ports)) == 3
    topics = svcs["topics"]
    assert topics["command"][:2] == ["topics", "apply"]
    assert set(topics["depends_on"]) == set(brokers)


def test_the_topics_file_declares_three_brokers_so_topics_get_three_replicas():
    cfg = load_config(ROOT / "compose" / "sandbox.3brokers.toml")
    assert (cfg.brokers, cfg.replication, cfg.min_insync_replicas) == (3, 3, 2)
    assert all(t.replication == 3 for t in cfg.topics.values()) and cfg.topics


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_docker_compose_accepts_it(tmp_path):
    r = subprocess.run(["docker-compose", "-f", str(FILE), "config"], capture_output=True, text=True,
                       timeout=60, cwd=FILE.parent)
    assert r.returncode == 0, r.stderr
    resolved = yaml.safe_load(r.stdout)["services"]
    assert [p for name in ("broker-1", "broker-2", "broker-3") for p in resolved[name]["ports"]]
    assert "--min-insync-replicas" in resolved["coordinator"]["command"]


def test_the_three_broker_journals_are_not_the_one_broker_files():
    """Both files run in the same compose project: shared volume names mounted the one-broker
    (replication 1) journals into the replicated stack."""
    one = yaml.safe_load((FILE.parent / "docker-compose.yml").read_text())
    three = yaml.safe_load(FILE.read_text())
    assert set(one["volumes"]).isdisjoint(three["volumes"])
    assert three["services"]["coordinator"]["volumes"] == ["coordinator-journal-3brokers:/var/lib/sandbox"]
