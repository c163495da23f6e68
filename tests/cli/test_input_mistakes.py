"""Input mistakes found by review, each one sentence and nothing changed: deleting an internal
topic (every group's offsets would go), partition counts past what a sandbox serves (100,000
stalled the coordinator; 3,000,000,000 was a struct.error traceback)."""

from __future__ import annotations

from typer.testing import CliRunner

from sandbox.cli.app import build_app


def run(*argv: str):
    return CliRunner().invoke(build_app(), list(argv))


def test_internal_topics_are_not_deleted():
    for name in ("__consumer_offsets", "__transaction_state"):
        r = run("topics", "delete", name, "-b", "127.0.0.1:1")   # refused before any connection
        assert r.exit_code == 2 and f"topic {name} is an internal topic and is not deleted" in r.output, r.output
        assert "Traceback" not in r.output


def test_partition_counts_past_what_a_sandbox_serves_are_one_sentence():
    for argv in (["topics", "create", "t", "--partitions", "100000"],
                 ["topics", "create", "t", "--partitions", "3000000000"],
                 ["topics", "alter", "t", "--partitions", "3000000000"]):
        r = run(*argv, "-b", "127.0.0.1:1")
        assert r.exit_code == 2 and "Invalid value for '--partitions'" in r.output and "10000" in r.output, (argv, r.output)
        assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)


def test_more_mistakes_are_one_sentence_each(tmp_path, monkeypatch):
    """A malformed -b, broken escapes in -K / --format, an offset past 64 bits, an empty group id, a
    pause of years, a zero timeout: each was a traceback (or an abort of the whole process, or a
    command waiting for ever) before review found them. A port past 65535 was "connection refused";
    `init` under a file blamed the folder's permissions."""
    monkeypatch.chdir(tmp_path)
    cases = [
        (["topics", "list", "-b", "garbage"], "bootstrap address 'garbage' is not host:port"),
        (["produce", "t", "-K", "\\x", "-b", "127.0.0.1:1"], "--key-separator '\\\\x' has an escape that cannot be read"),
        (["consume", "t", "--format", "\\x", "-b", "127.0.0.1:1"], "--format '\\\\x' has an escape that cannot be read"),
        (["consume", "t", "--offset", "99999999999999999999999", "-b", "127.0.0.1:1"], "is beyond any offset"),
        (["consume", "t", "-g", "", "-b", "127.0.0.1:1"], "--group needs a group id"),
        (["pause", "broker-1", "--for", "99999h"], "longer than a pause may last"),
        (["up", "--timeout", "0"], "Invalid value for '--timeout'"),
        (["topics", "list", "-b", "127.0.0.1:99999"], "has port 99999, and ports go from 1 to 65535"),
        (["init", "a-file/x"], "a-file: is a file, not a folder"),
    ]
    (tmp_path / "a-file").write_text("")
    for argv, said in cases:
        r = run(*argv)
        assert r.exit_code == 2 and said in r.output, (argv, r.exit_code, r.output)
        assert r.exception is None or isinstance(r.exception, SystemExit), (argv, r.exception)


def test_a_host_that_does_not_resolve_is_a_configuration_error_not_a_crash_loop():
    """Found by review: host = "999.1.1.1" (or a mistyped name) crash-looped every service until
    `up` timed out, the cause only in a traceback in coordinator.log. A bind that cannot resolve
    its address is now the service's configuration error: the supervisor stops it and `up` says
    why at once."""
    import socket

    from sandbox.lifecycle import address_problem

    found = address_problem(socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "999.1.1.1:9092")
    assert found is not None and found[0] == "address-not-local"
    assert found[1].startswith("999.1.1.1:9092 is not an address this machine can use (Name or service not known)")


def test_topics_apply_without_a_running_sandbox_says_so_at_once(tmp_path, monkeypatch):
    """Found by review: it waited 60 s without a word, then said the broker did not answer. With
    no --bootstrap and no sandbox running here, it says so at once (exit 3, as other commands)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sandbox.toml").write_text('[sandbox]\nport = 1\ncoordinator_port = 2\nhttp_port = 3\n'
                                           '[topics.orders]\npartitions = 2\n')
    r = run("topics", "apply")
    assert r.exit_code == 3 and "is not running; start it with `sandbox up`" in r.output, r.output


def test_a_logs_folder_that_cannot_be_written_is_one_sentence(tmp_path, monkeypatch):
    """Found by review: `up` with an immutable logs folder was a PermissionError traceback from
    opening the supervisor's log."""
    import builtins

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sandbox.toml").write_text("[sandbox]\nport = 29411\n")
    real_open = builtins.open

    def refusing(file, mode="r", *a, **kw):
        if str(file).endswith("supervisor.log") and "a" in mode:
            raise PermissionError(1, "Operation not permitted", str(file))
        return real_open(file, mode, *a, **kw)

    monkeypatch.setattr(builtins, "open", refusing)
    r = run("up", "--timeout", "5")
    assert r.exit_code == 1 and "cannot be written (Operation not permitted)" in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception


def test_topic_config_values_in_sandbox_toml_are_checked_when_the_file_is_read(tmp_path, monkeypatch):
    """Found by review: "retention.ms" = "abc" passed `doctor`; `up` started the stack and then
    failed on the topic with no line number, leaving the stack running."""
    import sandbox.config as config_module
    from sandbox.cli.app import install_topic_config_check
    from sandbox.config import ConfigError, parse_config

    monkeypatch.setattr(config_module, "topic_config_check", None)
    install_topic_config_check()
    for body, said in (('config = { "retention.ms" = "abc" }', "Not a number of type LONG"),
                       ('config = { "cleanup.policy" = "zap" }', "cleanup.policy"),
                       ('config = { "segment.bytes" = "10" }', "segment.bytes")):
        try:
            parse_config(f"[topics.orders]\npartitions = 2\n{body}\n", tmp_path / "sandbox.toml", cwd=tmp_path)
        except ConfigError as e:
            assert str(e).startswith(f"{tmp_path / 'sandbox.toml'}:3: [topics.orders] config") or \
                "sandbox.toml:3:" in str(e), str(e)
            assert said in str(e), str(e)
        else:
            raise AssertionError(f"{body} accepted")
    ok = parse_config('[topics.orders]\nconfig = { "retention.ms" = 1000 }\n', tmp_path / "sandbox.toml", cwd=tmp_path)
    assert ok.topics["orders"].config == {"retention.ms": "1000"}


def test_ctrl_c_while_up_waits_says_the_stack_goes_on_starting(tmp_path, monkeypatch, capsys):
    """Found by review: Ctrl-C during `up` exited 130 saying nothing, and the stack came up anyway."""
    import pytest
    import typer

    from sandbox.cli import stack_support
    from sandbox.config import load_config
    from sandbox.runner import control

    def interrupted(*_a, **_kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(control, "wait_ready", interrupted)
    monkeypatch.setattr(control.REAL, "alive", lambda pid: True)
    with pytest.raises(typer.Exit) as e:
        stack_support.wait_ready(load_config(None, cwd=tmp_path), 12345, 10.0, detached=True)
    assert e.value.exit_code == 130
    assert "goes on starting in the background" in capsys.readouterr().err


def test_up_without_a_sandbox_toml_says_it_runs_on_the_defaults_and_names_one_above(tmp_path, monkeypatch):
    """Found by review: `up` in a subfolder of a project quietly started a second stack on 9092."""
    sub = tmp_path / "proj" / "src"
    sub.mkdir(parents=True)
    (tmp_path / "proj" / "sandbox.toml").write_text("[sandbox]\nport = 29911\n")
    monkeypatch.chdir(sub)
    r = run("up", "--docker", "--ephemeral")   # refused right after the note: nothing is started
    assert "no sandbox.toml in" in r.output and "proj/sandbox.toml is a sandbox's file" in r.output, r.output
