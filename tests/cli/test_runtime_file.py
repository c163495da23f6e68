"""A malformed `.sandbox-runtime.json` (hand-edited, torn, or a folder of that name) never stops a
command with a traceback: what is not a JSON object is taken as empty, contents the sandbox refuses
are one sentence naming the file and saying to delete it. Real `sandbox` processes in a temp folder
with no stack (nothing is started)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import free_port

RT = ".sandbox-runtime.json"


def cli(folder, *args):
    if not (folder / "sandbox.toml").exists():   # free ports: an `up` that went ahead would start nothing shared
        p = free_port()
        (folder / "sandbox.toml").write_text(f"[sandbox]\nport = {p}\ncoordinator_port = {free_port()}\n"
                                             f"http_port = {free_port()}\n")
    return subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=folder, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("text", ['[1]', '{"overrides": [1]}', '{"running": [1]}', '{"overrides": null}',
                                  '{"running": {"bogus": 1}}', '{"config_text": 5}', '"x"'])
def test_a_runtime_file_that_is_not_an_object_is_taken_as_empty(tmp_path, text):
    (tmp_path / RT).write_text(text)
    for args in (("status",), ("down",)):
        r = cli(tmp_path, *args)
        assert "Traceback" not in r.stderr, r.stderr
        assert r.returncode in (0, 3) and "not running" in r.stdout, r.stdout + r.stderr


def test_refused_overrides_name_the_file_not_a_command_line_option(tmp_path):
    (tmp_path / RT).write_text('{"overrides": {"bogus": 1}}')
    r = cli(tmp_path, "status")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert str(tmp_path / RT) in r.stderr and "delete" in r.stderr, r.stderr
    assert "command-line option" not in r.stderr


def test_a_folder_named_like_the_runtime_file_is_said_and_up_starts_nothing(tmp_path):
    (tmp_path / RT).mkdir()
    r = cli(tmp_path, "down")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "is a folder, not a file" in r.stderr, r.stderr
    r = cli(tmp_path, "up", "--timeout", "5")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"{tmp_path / RT} is a folder, not a file; delete it" in r.stderr, r.stderr
    assert not (tmp_path / ".sandbox" / "supervisor.pid").exists()


def test_up_where_the_logs_folder_is_a_file_names_that_file(tmp_path):
    (tmp_path / ".sandbox").mkdir()
    (tmp_path / ".sandbox" / "logs").write_text("not a folder")
    r = cli(tmp_path, "up", "--timeout", "5")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"{tmp_path / '.sandbox' / 'logs'} is a file, not a folder; move it away" in r.stderr, r.stderr
    assert "data folder" not in r.stderr
