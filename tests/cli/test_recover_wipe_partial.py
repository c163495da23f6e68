"""`sandbox recover --wipe` moves the journals aside one by one. Found by review: when the second
could not be moved (a full disk), the error did not say the first was already moved, and it
dumped shutil.Error's tuples. Now it says which were moved and how to go on, in one sentence; and
a second `recover --wipe` does not quarantine the empty folder the first one left. In-process,
with no stack running (nothing is started: the failure comes before `up`)."""

from __future__ import annotations

import shutil

from typer.testing import CliRunner

from sandbox.cli import stack_cmds
from sandbox.cli.app import build_app
from sandbox.runner.quarantine import quarantines


def test_a_wipe_that_stops_half_way_says_what_was_moved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sandbox.toml").write_text("[sandbox]\nport = 1\ncoordinator_port = 2\nhttp_port = 3\n")
    for svc in ("coordinator", "broker-1"):
        (tmp_path / ".sandbox" / svc).mkdir(parents=True)
        (tmp_path / ".sandbox" / svc / "00.log").write_bytes(b"x")
    real, calls = stack_cmds.quarantine, []

    def second_fails(data_dir, root, service, wall, **kw):
        calls.append(service)
        if service == "broker-1":
            raise shutil.Error([(str(data_dir / f"f{i}"), str(root / f"f{i}"),
                                 f"[Errno 28] No space left on device: '{root}/f{i}'") for i in range(50)])
        return real(data_dir, root, service, wall, **kw)
    monkeypatch.setattr(stack_cmds, "quarantine", second_fails)
    monkeypatch.setattr(stack_cmds, "up", lambda **kw: (_ for _ in ()).throw(AssertionError("up ran")))
    r = CliRunner().invoke(build_app(), ["recover", "--wipe"])
    assert r.exit_code == 2 and not isinstance(r.exception, AssertionError), r.output
    err = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and len(err[0]) < 800, r.output
    assert "no space left on /" in err[0] and "(50 files not copied)" in err[0], err[0]
    assert "already moved aside: coordinator's journal to" in err[0], err[0]
    assert "run `sandbox recover --wipe` again" in err[0] and "Errno" not in err[0], err[0]
    # again: the coordinator's folder is empty now, and is not quarantined a second time
    calls.clear()
    r = CliRunner().invoke(build_app(), ["recover", "--wipe"])
    assert calls == ["broker-1"], (calls, r.output)
    assert len(quarantines(tmp_path / ".sandbox" / "quarantine", "coordinator")) == 1
