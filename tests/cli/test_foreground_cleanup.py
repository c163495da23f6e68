"""`up --foreground` on a terminal logs to logs/supervisor.log through a handler of its own; it is
removed and closed before the cleanup runs (Windows cannot delete an open file, so an --ephemeral
temp folder was left behind). The supervisor is a fake here: what is checked is the handler."""

from __future__ import annotations

import logging

import pytest
import typer

from sandbox.cli import stack_support
from sandbox.config import load_config
from sandbox.runner import stack


class FakeSupervisor:
    def __init__(self, cfg, on_event=None):
        import threading

        self.stop = threading.Event()

    def run(self):
        logging.getLogger("sandbox.runner").info("a line for the log file")
        self.stop.wait(5)
        return 0


def test_the_log_handler_is_closed_before_cleanup(tmp_path, monkeypatch):
    cfg = load_config(None, cwd=tmp_path)
    cfg.logs_dir.mkdir(parents=True)
    monkeypatch.setattr(stack, "StackSupervisor", FakeSupervisor)
    monkeypatch.setattr(stack_support.sys.stdout, "isatty", lambda: True, raising=False)

    def not_ready(*a, **kw):
        raise typer.Exit(130)   # as Ctrl-C during the wait: the supervisor stops at once
    monkeypatch.setattr(stack_support, "wait_ready", not_ready)
    before = list(logging.getLogger().handlers)
    seen = []

    def cleanup():
        seen.extend(h for h in logging.getLogger().handlers
                    if isinstance(h, logging.FileHandler) and str(cfg.logs_dir) in h.baseFilename)
        open_ = [h for h in logging.getLogger().handlers if h not in before]
        seen.extend(open_)

    with pytest.raises(typer.Exit):
        stack_support.up_foreground(cfg, 5.0, cleanup)
    assert not seen, seen
    assert logging.getLogger().handlers == before
