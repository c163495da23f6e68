"""Starting `sandbox broker` / `sandbox coordinator` as real processes on free 127.0.0.1 ports:
a bind that fails leaves nothing on disk (the data folder is created only once the listeners are
bound), and the `EVENT start` line is routine, logged at INFO (a WARNING is for what needs a look)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import BrokerProcess, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_a_broker_that_cannot_bind_creates_no_data_folder(tmp_path):
    data = tmp_path / "never-made"
    r = subprocess.run([sys.executable, "-m", "sandbox", "broker", "--host", "192.0.2.1", "--port",
                        str(free_port()), "--data-dir", str(data)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 78, r.stderr
    assert "Traceback" not in r.stderr and "EVENT config-error" in r.stderr
    assert not data.exists()


def test_a_coordinator_that_cannot_bind_creates_no_data_folder(tmp_path):
    data = tmp_path / "never-made"
    r = subprocess.run([sys.executable, "-m", "sandbox", "coordinator", "--host", "192.0.2.1", "--port",
                        str(free_port()), "--data-dir", str(data)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 78, r.stderr
    assert not data.exists()


def test_event_start_is_logged_at_info(tmp_path):
    b = BrokerProcess(tmp_path / "data", log_path=tmp_path / "broker.log").start()
    try:
        lines = [ln for ln in b.log_text().splitlines() if "EVENT start" in ln]
    finally:
        b.stop()
    assert lines and all(" INFO " in ln for ln in lines), lines


# ---- the service commands' own parser (argparse: a service start skips typer) -----------------
def _imported_modules(*argv: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "sandbox", *argv], capture_output=True,
                       text=True, timeout=60)
    mods = {ln.rsplit("|", 1)[1].strip() for ln in r.stderr.splitlines() if ln.startswith("import time:")}
    return r, mods


@pytest.mark.parametrize("command", ["broker", "coordinator"])
def test_a_service_start_loads_no_cli_framework(tmp_path, command):
    r, mods = _imported_modules(command, "--help")
    assert r.returncode == 0 and f"Usage: sandbox {command} [OPTIONS]" in r.stdout, r.stdout + r.stderr
    assert "--data-dir <path>" in r.stdout
    assert not {"typer", "click", "rich"} & mods, sorted(m for m in mods if m.split(".")[0] in ("typer", "click", "rich"))
    # the rest of the CLI still goes through typer
    r, mods = _imported_modules("topics", "--help")
    assert r.returncode == 0 and "typer" in mods


@pytest.mark.parametrize("argv, words", [
    (["coordinator", "--data-dir", "D", "--default-partitions", "0"], "--default-partitions: 0 is less than 1"),
    (["coordinator", "--data-dir", "D", "--port", "x"], "--port: invalid int value: 'x'"),
    (["coordinator"], "the following arguments are required: --data-dir"),
    (["broker", "--data-dir", "D", "--bogus"], "unrecognized arguments: --bogus"),
    (["broker", "--data-dir", "D", "-o", "nokey"], "setting 'nokey' is not KEY=VALUE"),
    (["coordinator", "--data-dir", "D", "-o", "auto.create.topics.enable=false"],
     "auto.create.topics.enable is a broker's setting; the coordinator takes delete.topic.enable, "),
    (["coordinator", "--data-dir", "D", "-o", "log.segment.bytes=5"], "log.segment.bytes must be at least 1048576"),
])
def test_bad_service_arguments_are_one_sentence(tmp_path, argv, words):
    argv = [str(tmp_path / "d") if a == "D" else a for a in argv]
    r = subprocess.run([sys.executable, "-m", "sandbox", *argv], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: ") and words in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "d").exists()


def test_service_commands_reached_through_typer_are_parsed_the_same(tmp_path):
    """`sandbox --help` lists them, and a CliRunner (or any caller of the typer app) gets the same parser."""
    from typer.testing import CliRunner

    from sandbox.cli.app import build_app

    app = build_app()
    top = CliRunner().invoke(app, ["--help"])
    assert "broker" in top.output and "coordinator" in top.output
    r = CliRunner().invoke(app, ["coordinator", "--data-dir", str(tmp_path / "d"), "--min-insync-replicas", "0"])
    assert r.exit_code == 2 and "--min-insync-replicas: 0 is less than 1" in r.output, r.output
    r = CliRunner().invoke(app, ["broker", "--help"])
    assert r.exit_code == 0 and "Usage: sandbox broker [OPTIONS]" in r.output, r.output
