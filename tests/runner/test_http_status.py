"""/status serves the keys docs/status.md lists, as `sandbox status --json` does: running and restart_needed."""

from __future__ import annotations

from sandbox.runner import stack


def test_http_status_has_running_and_restart_needed(tmp_path, monkeypatch):
    (tmp_path / "sandbox.toml").write_text("[sandbox]\nport = 39201\n")
    from sandbox.config import load_config

    cfg = load_config(tmp_path / "sandbox.toml")
    monkeypatch.setattr(stack, "restart_needed", lambda c: "ports changed: `sandbox restart` applies them")
    st = stack.http_status(cfg, {"services": [], "events": []}, None)
    assert st["running"] is True
    assert st["restart_needed"] == "ports changed: `sandbox restart` applies them"
