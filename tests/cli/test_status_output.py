"""What `sandbox status` prints about sandbox.toml edits, from the user's seat (a real stack in a temp
project on free 127.0.0.1 ports, always torn down): a topic config set live is a topic-config-set
event (not topic-created); a broken save is said once (not as a warning and again as an event), and
its text keeps its square brackets."""

from __future__ import annotations

import pytest

from helpers import wait_for
from integration.stack_kit import events, make_project

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]



@pytest.fixture
def project(tmp_path):
    proj = make_project(tmp_path / "proj", topics="[topics.orders]\npartitions = 1\n")
    yield proj
    problems = proj.teardown()
    assert not problems, "\n".join(problems)


def test_live_edits_are_reported_once_with_their_own_kind(project):
    r = project.up()
    assert r.returncode == 0, r.stdout + r.stderr
    good = project.toml + '[topics.orders.config]\n"retention.ms" = "60000"\n'
    project.write_toml(good)
    found = wait_for(lambda: events(project.state_file(), kind="topic-config-set"), 15, interval=0.2, what="topic-config-set event")
    assert "retention.ms=60000" in found[-1]["detail"] and "orders" in found[-1]["detail"], found
    assert not [e for e in events(project.state_file(), kind="topic-created") if "retention" in e["detail"]]
    project.write_toml(good + "\n[sandbox\n")
    wait_for(lambda: events(project.state_file(), kind="manifest-error"), 15, interval=0.2, what="manifest-error event")
    r = project.cli("status")
    assert r.returncode == 0, r.stdout + r.stderr
    both = r.stdout + r.stderr
    assert both.count("is not valid TOML") == 1, both
    assert "[like.this]" in both, both
