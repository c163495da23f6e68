"""A request file in `.sandbox/supervisor.commands/` that is not a JSON object (hand-written, or
by another tool) is dropped and reported as an error event; it never stops the supervisor's loop,
and the good requests queued with it are still carried out."""

from __future__ import annotations

import json
from types import SimpleNamespace

from sandbox.runner import inbox
from sandbox.runner.stack import StackSupervisor


def queue(data_dir, name, text):
    folder = data_dir / inbox.INBOX_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(text)


def test_take_drops_and_reports_requests_that_are_not_objects(tmp_path):
    queue(tmp_path, "1", "[1]")
    queue(tmp_path, "2", json.dumps({"command": "kill", "service": "broker-1"}))
    queue(tmp_path, "3", '"pause"')
    queue(tmp_path, "4", "{not json")
    refused = []
    assert inbox.take(tmp_path, refused=refused.append) == [{"command": "kill", "service": "broker-1"}]
    assert len(refused) == 3 and all("1.json" in r or "3.json" in r or "4.json" in r for r in refused), refused
    assert not list((tmp_path / inbox.INBOX_DIR).iterdir())


class FakeSup:
    def __init__(self):
        self.events, self.killed = [], []

    def record_event(self, service, kind, detail, **kw):
        self.events.append((service, kind, detail))

    def kill(self, name):
        self.killed.append(name)

    def restart(self, name):
        raise RuntimeError("boom")


def test_a_bad_request_is_an_error_event_never_a_dead_supervisor(tmp_path):
    sup = FakeSup()
    me = SimpleNamespace(cfg=SimpleNamespace(data_dir=tmp_path), sup=sup)
    me._carry_out = lambda r: StackSupervisor._carry_out(me, r)
    queue(tmp_path, "1", "[1]")
    queue(tmp_path, "2", json.dumps({"command": "kill", "service": "broker-1"}))
    queue(tmp_path, "3", json.dumps({"command": "pause", "service": "broker-1", "seconds": [1]}))
    (tmp_path / "supervisor.restart").write_text("broker-1")
    assert StackSupervisor._control(me) is True
    assert sup.killed == ["broker-1"]
    errors = [d for s, k, d in sup.events if k == "error"]
    assert len(errors) == 3, sup.events
    assert any("not a request" in d and "1.json" in d for d in errors), errors
    assert any(d.startswith("restart broker-1") and "boom" in d for d in errors), errors
    StackSupervisor._carry_out(me, [1])   # a caller that skipped take(): still an event, not a raise
    assert len([k for _, k, _ in sup.events if k == "error"]) == 4
