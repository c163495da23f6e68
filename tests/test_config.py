"""sandbox.config: defaults, the init template, and one-sentence errors with file, line, key and fix."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sandbox.config import (TOPIC_CONFIG_NAMES, ConfigError, RecoveryConfig,
                            SandboxConfig, TopicSpec, load_config, parse_config)
from sandbox.config_init import INIT_TEMPLATE, write_init


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # errors name the file relative to the current folder


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "sandbox.toml"
    p.write_text(text)
    return p


def error_of(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return info.value


def test_defaults_without_a_file(tmp_path):
    cfg = load_config(cwd=tmp_path)
    assert cfg.path is None and cfg.root == tmp_path and cfg.name == tmp_path.name
    assert (cfg.mode, cfg.host, cfg.port, cfg.coordinator_port, cfg.http_port, cfg.brokers) == \
        ("native", "127.0.0.1", 9092, 9093, 9094, 1)
    assert cfg.data_dir == tmp_path / ".sandbox"
    assert cfg.recovery == RecoveryConfig("restart", "repair-then-wipe", 5, 60, 3)
    assert cfg.topics == {}
    assert cfg.bootstrap == "127.0.0.1:9092"
    assert cfg.broker_names() == ["broker-1"]
    assert cfg.logs_dir == tmp_path / ".sandbox" / "logs"
    assert cfg.quarantine_dir == tmp_path / ".sandbox" / "quarantine"
    assert cfg.service_dir("broker-1") == tmp_path / ".sandbox" / "broker-1"


def test_cwd_file_is_found_and_root_is_its_folder(tmp_path):
    write(tmp_path, '[sandbox]\nname = "shop"\nbrokers = 3\nport = 19092\ndata_dir = "data"\n')
    cfg = load_config(cwd=tmp_path)
    assert cfg.path == tmp_path / "sandbox.toml" and cfg.name == "shop"
    assert cfg.bootstrap == "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
    assert [cfg.broker_port(n) for n in (1, 2, 3)] == [19092, 19093, 19094]
    assert cfg.broker_names() == ["broker-1", "broker-2", "broker-3"]
    # service ports not set in the file follow the broker ports instead of colliding
    assert (cfg.coordinator_port, cfg.http_port) == (19095, 19096)
    assert cfg.data_dir == tmp_path / "data"


def test_absolute_data_dir_and_explicit_host(tmp_path):
    cfg = parse_config(f'[sandbox]\nhost = "0.0.0.0"\ndata_dir = "{(tmp_path / "d").as_posix()}"\n',
                       tmp_path / "sandbox.toml")
    assert cfg.host == "0.0.0.0" and cfg.data_dir == tmp_path / "d"


def test_init_template_parses_to_defaults_plus_orders(tmp_path):
    path = write_init(tmp_path)
    assert path == tmp_path / "sandbox.toml" and path.read_text() == INIT_TEMPLATE
    cfg = load_config(cwd=tmp_path)
    defaults = load_config(cwd=tmp_path / "nowhere")
    for f in ("mode", "host", "port", "coordinator_port", "http_port", "brokers", "recovery"):
        assert getattr(cfg, f) == getattr(defaults, f), f
    assert cfg.data_dir == tmp_path / ".sandbox"
    assert cfg.topics == {"orders": TopicSpec("orders", 3, 1, {"retention.ms": "604800000",
                                                                "cleanup.policy": "delete"})}
    for key in ("mode", "host", "port", "coordinator_port", "http_port", "brokers", "data_dir",
                "on_crash", "on_corrupt_journal", "max_restarts", "restart_window_s",
                "keep_quarantines", "partitions", "replication", "config"):
        assert f"{key} =" in INIT_TEMPLATE, key


def test_init_makes_the_folder_it_is_given(tmp_path):
    """`sandbox init new-project` as `git init new-project`: the folder is made (it used to be
    "cannot be written (No such file or directory); check the folder's permissions")."""
    path = write_init(tmp_path / "new-project" / "sub")
    assert path == tmp_path / "new-project" / "sub" / "sandbox.toml" and path.read_text() == INIT_TEMPLATE


def test_init_refuses_to_overwrite(tmp_path):
    write(tmp_path, "# mine\n")
    with pytest.raises(ConfigError, match="already exists.*delete it") as info:
        write_init(tmp_path)
    assert "sandbox.toml" in str(info.value)
    assert (tmp_path / "sandbox.toml").read_text() == "# mine\n"


def test_topics_numbers_become_strings_and_quoted_names(tmp_path):
    cfg = load_config(write(tmp_path, '[sandbox]\nbrokers = 2\n[topics."a.b-c_1"]\npartitions = 4\n'
                                      'replication = 2\nconfig = { "retention.ms" = 1000, '
                                      '"min.cleanable.dirty.ratio" = 0.25 }\n[topics.empty]\n'))
    assert cfg.topics["a.b-c_1"] == TopicSpec("a.b-c_1", 4, 2, {"retention.ms": "1000",
                                                                "min.cleanable.dirty.ratio": "0.25"})
    assert cfg.topics["empty"] == TopicSpec("empty", replication=2)   # the stack's default: min(3, brokers)


def test_the_example_error_sentence(tmp_path):
    text = '# my sandbox\n\n[sandbox]\nmode = "native"\nhost = "127.0.0.1"\nport = 9092\nbrokers = 0\n'
    e = error_of(tmp_path, text)
    assert str(e) == "sandbox.toml:7: [sandbox] brokers = 0 must be between 1 and 16; set brokers = 1 or more."
    assert (e.line, e.key) == (7, "sandbox.brokers")


@pytest.mark.parametrize("text, line, pieces", [
    ('[sandbox]\nbokers = 2\n', 2, ['no key bokers', 'did you mean brokers?']),
    ('[sandbox]\nport = 1\n[recovery]\non_crsh = "off"\n', 4, ['[recovery]', 'did you mean on_crash?']),
    ('[sandbx]\n', 1, ['no section sandbx', 'did you mean sandbox?']),
    ('brokers = 3\n[sandbox]\nport = 29092\n', 1, ['brokers = 3 is outside any section', 'put a line [sandbox] above it']),
    ('# mine\non_crash = "off"\n', 2, ['on_crash = "off" is outside any section', 'belongs in [recovery]']),
    ('[sandbox]\nport = "9092"\n', 2, ['port = "9092" must be an integer', 'without quotes']),
    ('[sandbox]\nport = 70000\n', 2, ['between 1 and 65535', 'port = 65535 or less']),
    ('[sandbox]\nhttp_port = 0\n', 2, ['between 1 and 65535']),
    ('[sandbox]\nbrokers = 17\n', 2, ['between 1 and 16', 'brokers = 16 or less']),
    ('[sandbox]\nbrokers = true\n', 2, ['must be an integer']),
    ('[sandbox]\nmode = "podman"\n', 2, ['mode = "podman" is not a known value', '"native" or "docker"']),
    ('[sandbox]\nbrokers = 2\ncoordinator_port = 9093\n', 3, ['collides with broker-2', 'coordinator_port = 9094']),
    ('[sandbox]\ncoordinator_port = 9500\nhttp_port = 9500\n', 3, ['same as coordinator_port', 'http_port = 9501']),
    ('[sandbox]\nport = 65535\nbrokers = 2\n', 3, ['above 65535']),
    ('[recovery]\non_corrupt_journal = "nuke"\n', 2, ['"repair-then-wipe" or "repair" or "wipe"']),
    ('[recovery]\nrestart_window_s = 0\n', 2, ['positive number']),
    ('[recovery]\nmax_restarts = -1\n', 2, ['at least 0']),
    ('[recovery]\nkeep_quarantines = 0\n', 2, ['keep_quarantines = 0 must be at least 1']),
    ('[sandbox]\nport = 29601\ncoordinator_port = 29601\nhttp_port = 29602\n', 3,
     ['collides with broker-1', 'set coordinator_port = 29603']),
    ('[topics.orders]\npartitions = 0\n', 2, ['[topics.orders] partitions = 0 must be between 1 and 10000']),
    ('[topics.orders]\npartitions = 3000000000\n', 2, ['[topics.orders] partitions = 3000000000 must be between 1 '
                                                       'and 10000; set partitions = 10000 or less.']),
    ('\n[topics.orders]\nreplication = 2\n', 3, ['more than the 1 broker', 'replication = 1']),
    ('[topics.orders]\nreplicas = 2\n', 2, ['did you mean replication?']),
    ('[topics."bad name"]\n', 1, ['not a valid Kafka topic name']),
    ('[topics.".."]\n', 1, ['not a valid Kafka topic name']),
    ('[topics]\n"x/y" = { partitions = 1 }\n', 2, ['not a valid Kafka topic name']),
    ('[topics.my.topic]\npartitions = 1\n', 1, ['must be quoted', '[topics."my.topic"]']),
    ('[topics.t]\nconfig = { "retention.ms" = true }\n', 2, ['must be a string or a number']),
    ('[topics.t]\nconfig = { "retention.m" = "1" }\n', 2, ['no topic config "retention.m"', 'did you mean "retention.ms"?']),
    ('[topics.t]\npartitions = 2\n\n[topics.t.config]\n"segment.bytes" = [1]\n', 5, ['string or a number']),
    ('[sandbox]\nport = \n', 2, ['is not valid TOML']),
    ('[sandbox]\nport = 29092\nport = 29093\n', 3, ['is not valid TOML', 'given twice: keep one of them']),
    ('[sandbox]\nport = 29092\n[sandbox]\nbrokers = 2\n', 3, ['given twice: keep one of them']),
    ('[sandbox]\nport = 29092\n[sandbox\n', 3, ['fix the syntax on that line', '[like.this]']),
    ('[sandbox]\nname = ""\n', 2, ['non-empty string']),
    ('[sasl]\nport = 9093\n', 2, ['port 9093 is already the stack', 'set port = 9095']),
    ('[sasl]\nport = 65535\n[sandbox]\nbrokers = 2\n', 2, ['above 65535']),
    ('[sasl]\nusers = { alice = 3 }\n', 2, ['must be a password in quotes', 'alice = "a-password"']),
    ('[sasl]\nusers = { alice = "" }\n', 2, ['must be a password in quotes']),
    ('[sasl]\nusers = "alice"\n', 2, ['must be a table of names and passwords']),
    ('[sasl]\nuser = { a = "b" }\n', 2, ['did you mean users?']),
    ('[sandbox]\nport = 65533\n[sasl]\n', 3, ['no room for 1 SASL port(s)', 'set [sasl] port']),
])
def test_errors_name_file_line_key_and_fix(tmp_path, text, line, pieces):
    e = error_of(tmp_path, text)
    msg = str(e)
    assert msg.startswith(f"sandbox.toml:{line}: "), msg
    assert e.line == line
    assert msg.count("\n") == 0 and msg.endswith((".", "?")), msg
    assert ";" in msg, msg  # the problem; then the fix
    for p in pieces:
        assert p in msg, msg


def test_explicit_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file.*sandbox init"):
        load_config(tmp_path / "nope.toml")


def test_with_overrides_moves_implicit_ports_and_checks(tmp_path):
    cfg = load_config(write(tmp_path, INIT_TEMPLATE))
    three = cfg.with_overrides(brokers=3, port=None)
    assert (three.brokers, three.port, three.coordinator_port, three.http_port) == (3, 9092, 9095, 9096)
    # the same topics; the one without replication = follows the new default (3 brokers: 3 replicas)
    assert three.topics == {"orders": dataclasses.replace(cfg.topics["orders"], replication=3)}
    assert three.name == cfg.name
    with pytest.raises(ConfigError, match="--brokers.*between 1 and 16"):
        cfg.with_overrides(brokers=20)
    pinned = load_config(write(tmp_path, "[sandbox]\ncoordinator_port = 9093\n"))
    with pytest.raises(ConfigError, match=r"sandbox.toml:2: .*collides with broker-2"):
        pinned.with_overrides(brokers=2)


def test_known_topic_configs_match_the_coordinator():
    from sandbox.coordinator.topic_configs import DEFAULTS
    assert TOPIC_CONFIG_NAMES == frozenset(DEFAULTS)


def test_config_module_imports_no_cli_or_services():
    import subprocess
    import sys
    code = ("import sys, sandbox.config; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('typer','rich') or m.startswith(('sandbox.broker','sandbox.coordinator','sandbox.cli',"
            "'sandbox.runner','sandbox.log'))]; print(bad); sys.exit(bool(bad))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_implicit_ports_follow_spec_and_never_wrap_round(tmp_path):
    """SPEC: http_port defaults to coordinator_port + 1; port = 65535 put the coordinator on 1."""
    from sandbox.config import parse_config

    cfg = parse_config("[sandbox]\ncoordinator_port = 29101\n", tmp_path / "sandbox.toml", cwd=tmp_path)
    assert (cfg.port, cfg.coordinator_port, cfg.http_port) == (9092, 29101, 29102)
    cfg = parse_config("[sandbox]\nport = 65535\n", tmp_path / "sandbox.toml", cwd=tmp_path)
    assert (cfg.coordinator_port, cfg.http_port) == (65534, 65533)
    cfg = parse_config("[sandbox]\nbrokers = 3\n", tmp_path / "sandbox.toml", cwd=tmp_path)
    assert (cfg.coordinator_port, cfg.http_port) == (9095, 9096)


def test_a_brokers_override_is_named_as_such_when_a_topic_needs_more(tmp_path):
    """Found by review: `up --brokers 1` with a file of brokers = 3 and replication = 3 blamed
    "[sandbox] brokers", which says 3."""
    from sandbox.config import parse_config

    cfg = parse_config("[sandbox]\nbrokers = 3\n[topics.x]\nreplication = 3\n", tmp_path / "sandbox.toml", cwd=tmp_path)
    with pytest.raises(ConfigError, match=r"of --brokers 1; run with --brokers 3 or more"):
        cfg.with_overrides(brokers=1)


def test_dataclass_shapes():
    cfg = SandboxConfig(name="x", root=Path("/r"))
    assert cfg.brokers == 1 and cfg.recovery == RecoveryConfig()


def test_a_byte_order_mark_is_accepted(tmp_path):
    p = tmp_path / "sandbox.toml"
    p.write_bytes(b"\xef\xbb\xbf[sandbox]\nbrokers = 2\n")
    assert load_config(p).brokers == 2


def test_sasl_section_places_a_listener_per_broker_after_the_stacks_other_ports(tmp_path):
    assert parse_config("").sasl is None and parse_config("").sasl_bootstrap is None
    one = parse_config('[sasl]\nusers = { alice = "alice-secret" }\n')
    assert one.sasl.port == 9095 and one.sasl.users == {"alice": "alice-secret"}   # after 9092-9094
    assert one.sasl_bootstrap == "127.0.0.1:9095"
    three = parse_config("[sandbox]\nbrokers = 3\n[sasl]\n")
    assert (three.coordinator_port, three.http_port) == (9095, 9096)
    assert [three.sasl_broker_port(n) for n in (1, 2, 3)] == [9097, 9098, 9099] and three.sasl.users == {}
    chosen = parse_config("[sandbox]\nbrokers = 2\n[sasl]\nport = 19200\n")
    assert chosen.sasl_bootstrap == "127.0.0.1:19200,127.0.0.1:19201"
    # the default follows `up --port/--brokers` overrides, as the service ports do
    moved = one.with_overrides(port=20000, brokers=2)
    assert moved.sasl.port == 20004 and moved.sasl.users == {"alice": "alice-secret"}
    assert "alice-secret" not in repr(one)   # passwords stay out of reprs and logs


def test_a_folder_or_a_broken_link_named_sandbox_toml_is_said_not_taken_for_the_defaults(tmp_path):
    """Found by review: every command then ran on the defaults (port 9092: some other sandbox, or
    none) and said "not running"; `-c sandbox.toml` blamed permissions."""
    import pytest
    from sandbox.config import ConfigError, load_config

    (tmp_path / "sandbox.toml").mkdir()
    with pytest.raises(ConfigError, match="sandbox.toml: is a folder, not a file; remove it"):
        load_config(None, cwd=tmp_path)
    with pytest.raises(ConfigError, match="is a folder, not a file; give the path"):
        load_config(tmp_path / "sandbox.toml", cwd=tmp_path)
    (tmp_path / "sandbox.toml").rmdir()
    (tmp_path / "sandbox.toml").symlink_to(tmp_path / "gone.toml")
    with pytest.raises(ConfigError, match="is a link to a file that does not exist"):
        load_config(None, cwd=tmp_path)
