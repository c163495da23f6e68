"""`sandbox down --purge` and the data folder: only what the sandbox made there is deleted."""

from __future__ import annotations

from sandbox.config import load_config


def test_purge_deletes_the_sandboxs_data_and_nothing_a_user_put_there(tmp_path):
    """Found by review: `down --purge` deleted the data folder whole, with whatever else was in
    it (with data_dir = "." the project itself: sandbox.toml, the app's code). It deletes only what
    the sandbox makes there; a data_dir that is the project folder, the home folder or above them
    is refused when the file is read."""
    from sandbox.cli.stack_cmds import purge_data
    from sandbox.config import ConfigError, parse_config

    cfg = load_config(None, cwd=tmp_path)
    d = cfg.data_dir
    for sub in ("coordinator/__cluster_metadata-0", "broker-1/t-0", "logs", "quarantine/x", "run"):
        (d / sub).mkdir(parents=True)
    for f in ("topics.json", "supervisor.json", "supervisor.pid", "coordinator.restore-owed", "app.py"):
        (d / f).write_text("x")
    assert purge_data(cfg) == ["app.py"]
    assert sorted(p.name for p in d.iterdir()) == ["app.py"]
    (d / "app.py").unlink()
    (d / "broker-2").mkdir()
    assert purge_data(cfg) == [] and not d.exists()
    for bad in (".", "..", "~"):
        try:
            parse_config(f'[sandbox]\ndata_dir = "{bad}"\n', tmp_path / "sandbox.toml", cwd=tmp_path)
        except ConfigError as e:
            assert f'data_dir = "{bad}" is the project folder' in str(e) and 'set data_dir = ".sandbox"' in str(e)
        else:
            raise AssertionError(f"data_dir = {bad!r} accepted")


def test_purge_keeps_files_a_user_put_in_the_logs_folder(tmp_path):
    """Found by review: `logs` went whole, with a user's own file in it."""
    from sandbox.cli.stack_cmds import purge_data

    cfg = load_config(None, cwd=tmp_path)
    logs = cfg.data_dir / "logs"
    logs.mkdir(parents=True)
    for f in ("broker-1.log", "coordinator.log", "supervisor.log", "mine.log"):
        (logs / f).write_text("x")
    assert purge_data(cfg) == ["logs/mine.log"]
    assert [p.name for p in logs.iterdir()] == ["mine.log"]
