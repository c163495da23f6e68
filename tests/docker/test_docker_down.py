"""`down --purge` against a REAL engine (no image build: only the network, the journal volumes and a
container that is not the sandbox's): a foreign container attached to the sandbox's network made the
engine refuse the network's removal, and the journal volumes were then never purged."""

from __future__ import annotations

import os
import uuid

import pytest

from sandbox.config import parse_config
from sandbox.runner import docker as dk

BASE_IMAGE = os.environ.get("SANDBOX_TEST_BASE_IMAGE", "sandbox-test-base:bookworm")

pytestmark = pytest.mark.integration


@pytest.fixture
def engine():
    import docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
        client.images.get(BASE_IMAGE)
    except Exception as e:  # noqa: BLE001 - no engine or no base image here
        if os.environ.get("SANDBOX_REQUIRE_DOCKER") == "1":
            pytest.fail(f"docker tests required but {e}")
        pytest.skip(f"no Docker engine or no {BASE_IMAGE}: {e}")
    yield client
    client.close()


def test_down_purge_disconnects_a_foreign_container_and_deletes_the_volumes(engine, tmp_path):
    name = "t" + uuid.uuid4().hex[:8]
    cfg = parse_config(f'[sandbox]\nname = "{name}"\nport = 19092\n', tmp_path / "sandbox.toml")
    stack = dk.DockerStack(cfg, client=engine)
    net = stack.network()
    vol = stack.active_volume("broker-1")
    foreign = engine.containers.run(BASE_IMAGE, ["sleep", "300"], detach=True, network=net.name,
                                    name=f"{name}-foreign", labels={"test": name})
    try:
        removed = stack.down(purge=True)
        assert net.name in removed and vol in removed
        assert stack.disconnected == [foreign.name]
        assert engine.networks.list(names=[net.name]) == []
        assert engine.volumes.list(filters={"name": vol}) == []
        foreign.reload()
        assert foreign.status == "running"   # not ours: disconnected, never stopped
    finally:
        foreign.remove(force=True)
        for n in engine.networks.list(filters={"label": dk.selector(cfg)}):
            n.remove()
        for v in engine.volumes.list(filters={"label": dk.selector(cfg)}):
            v.remove(force=True)
