"""A service's pid file (`.sandbox/run/<service>.json`) that cannot be written or removed is
logged, never raised: the service has started (or stopped) and the supervisor must still record
it; `down` finds such a service by its command line."""

from __future__ import annotations

import logging

from runner.runner_fakes import spec
from sandbox.runner import orphans
from sandbox.runner.stack import _note_pid


def test_a_pid_file_that_cannot_be_written_is_logged_not_raised(tmp_path, caplog):
    s = spec(tmp_path, "broker-1")
    (tmp_path / ".sandbox").mkdir()
    (tmp_path / ".sandbox" / "run").write_text("a file where the folder goes")
    with caplog.at_level(logging.WARNING):
        _note_pid(s, 4242)      # raised NotADirectoryError / FileExistsError before
        _note_pid(s, None)
    said = [r.getMessage() for r in caplog.records]
    assert any("broker-1: pid file not written" in m for m in said), said
    assert not orphans.pid_file(s).exists()


def test_a_pid_file_is_written_and_removed(tmp_path):
    s = spec(tmp_path, "broker-1")
    _note_pid(s, 4242)
    assert '"pid": 4242' in orphans.pid_file(s).read_text()
    _note_pid(s, None)
    assert not orphans.pid_file(s).exists()


def test_a_process_started_with_an_older_command_line_is_found_by_its_pid_file_and_nothing_else(tmp_path):
    """sandbox.toml edited while no supervisor ran: today's command line differs from the one the
    process runs; its pid file still names it. A pid file whose process runs something else (the
    pid recycled) and a garbled one are not taken for ours."""
    import subprocess
    import sys

    from sandbox.runner.process import ServiceSpec

    today = spec(tmp_path, "broker-1", port=9092)
    old_argv = [sys.executable, "-c", "import time; time.sleep(60)", "broker", "--port", "9192",
                "--data-dir", str(today.data_dir)]
    proc = subprocess.Popen(old_argv)
    try:
        orphans.write_service_pid(ServiceSpec("broker-1", "broker", old_argv, 9192, today.data_dir,
                                              today.log_path), proc.pid)
        gone = spec(tmp_path, "broker-2", port=9093)   # the file has fewer brokers now
        orphans.write_service_pid(gone, proc.pid)        # names a live pid running another command
        (orphans.pid_file(today).parent / "broker-3.json").write_text("{not json")
        for _ in range(100):   # until the child has exec'd (its command line is the one recorded)
            if orphans.psutil.Process(proc.pid).cmdline()[1:] == old_argv[1:]:
                break
            __import__("time").sleep(0.02)
        found = orphans.stale_services([today])
        assert set(found) == {"broker-1"} and found["broker-1"][0].pid == proc.pid
        assert found["broker-1"][1].port == 9192 and found["broker-1"][1].data_dir == today.data_dir
        assert orphans.live_services([today]) == {}        # today's command line runs nowhere
        assert set(orphans.left_running([today])) == {"broker-1"}
    finally:
        proc.kill()
        proc.wait()
    assert orphans.stale_services([today]) == {}


def test_a_process_started_by_another_spelling_of_the_interpreter_is_not_stale(tmp_path):
    """Found by review: `up` run through another path to Python (a venv link, `python -m sandbox`
    instead of the console script) would have stopped healthy services it should adopt."""
    import subprocess
    import sys

    from sandbox.runner.process import ServiceSpec

    s = spec(tmp_path, "broker-1", port=9092)
    argv = [sys.executable, "-c", "import time; time.sleep(60)", "broker", "--port", "9092",
            "--data-dir", str(s.data_dir)]
    proc = subprocess.Popen(argv)
    try:
        orphans.write_service_pid(ServiceSpec("broker-1", "broker", argv, 9092, s.data_dir, s.log_path), proc.pid)
        today = ServiceSpec("broker-1", "broker", ["/some/venv/bin/python"] + argv[1:], 9092, s.data_dir, s.log_path)
        assert orphans.stale_services([today]) == {}
    finally:
        proc.kill()
        proc.wait()
