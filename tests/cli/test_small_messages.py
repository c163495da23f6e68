"""Small messages that said the wrong thing: a pause far too long is a duration (the limit is
said, not "not a duration"), and `sandbox init` where sandbox.toml is a folder says it is a folder.
Real `sandbox` processes; nothing is started."""

from __future__ import annotations

import subprocess
import sys


def cli(folder, *args):
    return subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=folder, capture_output=True,
                          text=True, timeout=120)


def test_a_pause_too_long_says_the_limit(tmp_path):
    for too_long in ("99999999999d", "2d", "25h"):
        r = cli(tmp_path, "pause", "broker-1", "--for", too_long)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert "is not a duration" not in r.stderr and "at most 24h" in r.stderr, r.stderr
    r = cli(tmp_path, "pause", "broker-1", "--for", "soon")
    assert r.returncode == 2 and "is not a duration" in r.stderr, r.stderr


def test_init_where_sandbox_toml_is_a_folder_says_so(tmp_path):
    (tmp_path / "sandbox.toml").mkdir()
    r = cli(tmp_path, "init")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "sandbox.toml: is a folder, not a file; move it away" in r.stderr, r.stderr
    assert "already exists" not in r.stderr
