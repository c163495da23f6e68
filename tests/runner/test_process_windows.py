"""Windows code paths simulated on any OS: process-group flags, CTRL_BREAK_EVENT for terminate,
and the detached supervisor's creation flags (no console, no shell)."""

from __future__ import annotations

import signal
import subprocess
import sys

from sandbox.runner import detach, process


def fake_windows(monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    for name, value in (("CREATE_NEW_PROCESS_GROUP", 0x200), ("CREATE_NO_WINDOW", 0x8000000),
                        ("DETACHED_PROCESS", 0x8)):
        monkeypatch.setattr(subprocess, name, value, raising=False)
    monkeypatch.setattr(signal, "CTRL_BREAK_EVENT", 1, raising=False)


def test_children_get_a_new_process_group_and_no_window(monkeypatch):
    if sys.platform != "win32":
        assert process.new_group_kwargs() == {"start_new_session": True}
    fake_windows(monkeypatch)
    assert process.new_group_kwargs() == {"creationflags": 0x200 | 0x8000000}


class FakePopen:
    def __init__(self, argv, **kwargs):
        self.argv, self.kwargs, self.pid, self.signals = argv, kwargs, 4242, []

    def poll(self):
        return None

    def send_signal(self, sig):
        self.signals.append(sig)


def test_terminate_is_ctrl_break_on_windows(monkeypatch):
    fake_windows(monkeypatch)
    h = process.PopenHandle(FakePopen(["x"]))
    h.terminate()
    assert h.proc.signals == [signal.CTRL_BREAK_EVENT]


def test_spawn_detached_uses_detached_flags_and_no_shell(monkeypatch, tmp_path):
    fake_windows(monkeypatch)
    made = []
    monkeypatch.setattr(subprocess, "Popen", lambda argv, **kw: made.append(FakePopen(argv, **kw)) or made[-1])
    pid = detach.spawn_detached(["python", "-m", "sandbox", "supervise"], tmp_path / "logs" / "s.log", tmp_path)
    assert pid == 4242
    kw = made[0].kwargs
    assert kw["creationflags"] == 0x8 | 0x200 | 0x8000000
    assert "shell" not in kw and "start_new_session" not in kw
    assert kw["stdin"] is subprocess.DEVNULL and kw["cwd"] == str(tmp_path)


def test_real_spawner_appends_to_the_log_without_a_shell(monkeypatch, tmp_path):
    made = []
    monkeypatch.setattr(subprocess, "Popen", lambda argv, **kw: made.append(FakePopen(argv, **kw)) or made[-1])
    spec = process.ServiceSpec("broker-1", "broker", ["python", "-m", "sandbox", "broker"], 9092,
                               tmp_path / "b", tmp_path / "logs" / "b.log", env={"X": "1"})
    h = process.RealSpawner().spawn(spec)
    kw = made[0].kwargs
    assert h.pid == 4242 and "shell" not in kw and kw["stderr"] is subprocess.STDOUT
    assert kw["stdout"].mode == "ab" and kw["env"]["X"] == "1" and kw["env"]["PYTHONUNBUFFERED"] == "1"
