"""sandbox.toml's [broker] section and sandbox/server_properties.py: Kafka broker settings under
server.properties names, checked before anything starts, and passed to every broker (and the
coordinator where it applies them) by native and docker mode alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import server_properties
from sandbox.broker.config import BrokerConfig
from sandbox.config import ConfigError, load_config, parse_config
from sandbox.runner import docker_plan, stack
from sandbox.runner.options import broker_defaults, coordinator_defaults


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def error_of(tmp_path: Path, text: str) -> str:
    p = tmp_path / "sandbox.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(p)
    return str(info.value)


def test_quoted_and_unquoted_dotted_keys_are_the_same_setting():
    cfg = parse_config('[broker]\nauto.create.topics.enable = false\n"group.initial.rebalance.delay.ms" = 3000\n'
                       'log.cleanup.policy = "compact"\n')
    assert cfg.broker == {"auto.create.topics.enable": "false", "group.initial.rebalance.delay.ms": "3000",
                          "log.cleanup.policy": "compact"}


def test_hours_and_minutes_become_milliseconds_with_kafkas_precedence():
    assert parse_config('[broker]\n"log.retention.hours" = 2\n').broker == {"log.retention.ms": "7200000"}
    assert parse_config('[broker]\n"log.retention.hours" = 2\n"log.retention.minutes" = 5\n').broker == \
        {"log.retention.ms": "300000"}
    assert parse_config('[broker]\n"log.retention.ms" = 10\n"log.retention.hours" = 2\n').broker == \
        {"log.retention.ms": "10"}
    assert parse_config('[broker]\n"log.retention.hours" = -1\n').broker == {"log.retention.ms": "-1"}
    assert parse_config('[broker]\n"log.roll.hours" = 1\n').broker == {"log.roll.ms": "3600000"}


@pytest.mark.parametrize("line, says", [
    ('"auto.create.topics.enable" = "maybe"', "auto.create.topics.enable must be true or false, not 'maybe'"),
    ('"log.retention.ms" = -5', "log.retention.ms must be at least -1 (-1 keeps records for ever), not -5"),
    ('"log.segment.bytes" = "big"', "log.segment.bytes must be a whole number, not 'big'"),
    ('"log.cleanup.policy" = "forever"', "log.cleanup.policy must be one of delete, compact"),
    ('"log.retention.hourz" = 2', 'has no broker setting "log.retention.hourz"; did you mean "log.retention.hours"?'),
    ('"num.partitions" = 3', 'is set by [sandbox] partitions'),
    ('"min.insync.replicas" = 2', 'is set by [sandbox] min_insync_replicas'),
    ('"listeners" = "PLAINTEXT://:9092"', "[sandbox] host and port place every broker's listener"),
    ('"log.retention.ms" = 1.5', "must be a string, a whole number or true/false"),
])
def test_a_bad_setting_is_one_sentence_at_its_line(tmp_path, line, says):
    msg = error_of(tmp_path, f'[sandbox]\nbrokers = 1\n\n[broker]\n{line}\n')
    assert msg.startswith("sandbox.toml:5: [broker]") and says in msg and "\n" not in msg, msg


def test_a_broker_table_that_is_no_table_is_refused(tmp_path):
    assert "must be a table; write it as a [broker] section" in error_of(tmp_path, 'broker = 3\n')


def test_the_settings_reach_every_broker_and_the_coordinator_in_both_modes():
    cfg = parse_config('[sandbox]\nbrokers = 2\n\n[broker]\n"auto.create.topics.enable" = false\n'
                       '"broker.session.timeout.ms" = 6000\n"auto.leader.rebalance.enable" = false\n')
    opts = broker_defaults(cfg)
    assert opts[-4:] == ["-o", "auto.create.topics.enable=false", "-o", "broker.session.timeout.ms=6000"]
    assert "auto.leader.rebalance.enable=false" not in opts     # the coordinator's alone
    coord = coordinator_defaults(cfg)
    assert coord[-4:] == ["--session-timeout-ms", "6000", "--leader-imbalance-check-interval-s", "0"]
    native = {s.name: s.argv for s in stack.service_specs(cfg)}
    containers = {p.service: p.command for p in docker_plan.plan(cfg)}
    for commands in (native, containers):
        for name in ("broker-1", "broker-2"):
            assert "auto.create.topics.enable=false" in commands[name]
        assert commands["coordinator"][-4:] == coord[-4:]


def test_the_broker_takes_what_the_file_gives_it():
    cfg = parse_config('[broker]\n"auto.create.topics.enable" = false\n"log.retention.hours" = 2\n'
                       '"group.consumer.migration.policy" = "UPGRADE"\n"log.cleanup.policy" = "compact,delete"\n'
                       '"message.max.bytes" = 2000000\n')
    bc = BrokerConfig(data_dir=Path("x"))
    bc.apply_overrides(server_properties.for_broker(cfg.broker))
    assert bc.auto_create_topics is False and bc.log.retention_ms == 7_200_000
    assert bc.group_consumer_migration_policy == "upgrade" and bc.log.cleanup_policy == "compact,delete"
    assert bc.message_max_bytes == 2_000_000 and bc.log.max_message_bytes == 2_000_000


def test_a_coordinator_setting_given_to_a_broker_says_where_it_belongs():
    with pytest.raises(ValueError, match="coordinator's setting; give it to `sandbox coordinator`"):
        BrokerConfig(data_dir=Path("x")).apply_overrides({"auto.leader.rebalance.enable": "false"})


def test_every_setting_in_the_table_is_applied_somewhere():
    """A setting the table accepts but nothing applies would be silently ignored: each one, given
    a value other than its default, changes what the broker runs with."""
    import dataclasses

    for key, s in server_properties.SETTINGS.items():
        if key in server_properties.COORDINATOR_ONLY:
            continue
        before = dataclasses.asdict(BrokerConfig(data_dir=Path("x")))
        values = {"bool": ["false"], "choice": list(s.choices), "list": list(s.choices[:1]),
                  "principals": ["User:ANONYMOUS;User:ops"]}.get(
            s.kind, [str(max(s.low or 0, 2000) + 7)])   # within every bound the others' defaults set
        changed = False
        for value in values:   # one of a choice's values is its default
            bc = BrokerConfig(data_dir=Path("x"))
            bc.apply_overrides({key: value})   # raises for a key the broker does not map
            assert set(vars(bc)) == set(before), f"{key} set an attribute BrokerConfig does not have"
            changed = changed or dataclasses.asdict(bc) != before
        assert changed, f"{key} changed nothing the broker runs with"


def test_a_change_of_broker_settings_is_a_pending_restart(tmp_path):
    p = tmp_path / "sandbox.toml"
    p.write_text('[broker]\n"auto.create.topics.enable" = false\n')
    live = load_config(p)
    assert stack.restart_needed(live) is None
    p.write_text('[broker]\n"log.retention.hours" = 1\n')
    line = stack.restart_needed(live)
    assert line == ("sandbox.toml now says [broker] auto.create.topics.enable=(default), log.retention.ms=3600000; "
                    "the running stack uses [broker] auto.create.topics.enable=false, log.retention.ms=(default): "
                    "run `sandbox restart` to apply"), line


def test_session_timeout_bounds_that_no_consumer_could_meet_are_refused(tmp_path):
    msg = error_of(tmp_path, '[broker]\n"group.min.session.timeout.ms" = 60000\n"group.max.session.timeout.ms" = 30000\n')
    assert "group.min.session.timeout.ms (60000) is above group.max.session.timeout.ms (30000)" in msg, msg
    msg = error_of(tmp_path, '[broker]\n"group.min.session.timeout.ms" = 2000000\n')   # above the default maximum
    assert "is above group.max.session.timeout.ms (1800000)" in msg, msg


def test_group_session_bounds_reach_the_group_coordinator():
    from sandbox.broker.groups import GroupCoordinator

    bc = BrokerConfig(data_dir=Path("x"))
    bc.apply_overrides({"group.min.session.timeout.ms": "6000", "delete.topic.enable": "false"})
    assert (bc.group_min_session_timeout_ms, bc.group_max_session_timeout_ms, bc.delete_topic_enable) == \
        (6000, 1_800_000, False)
    g = GroupCoordinator(None, min_session_timeout_ms=bc.group_min_session_timeout_ms)
    assert g.machine.min_session_ms == 6000


@pytest.mark.parametrize("line, says", [
    ('"log.retention.hours" = 0', "log.retention.hours must be -1 or at least 1 (-1 keeps records for ever), not 0"),
    ('"log.retention.ms" = 0', "log.retention.ms must be -1 or at least 1"),
    ('"log.segment.bytes" = 16384', "log.segment.bytes must be at least 1048576 (Kafka 4.0's minimum, 1 MiB)"),
    ('"broker.session.timeout.ms" = 100', "broker.session.timeout.ms must be at least 1000"),
    ('"message.max.bytes" = 100000000000000000000', "message.max.bytes must be at most 2147483647"),
    ('"log.retention.ms" = 100000000000000000000000', "log.retention.ms must be at most 9223372036854775807"),
    ('"log.retention.hours" = 2000000000', None),   # fine: an int, and ms of it still fit a long
    ('"group.consumer.heartbeat.interval.ms" = 50000',
     "group.consumer.heartbeat.interval.ms (50000) must be below group.consumer.session.timeout.ms (45000)"),
    ('"socket.request.max.bytes" = 1', "socket.request.max.bytes must be at least 1024"),
])
def test_values_kafka_refuses_or_that_would_break_the_stack_are_refused(tmp_path, line, says):
    text = f'[sandbox]\nbrokers = 1\n\n[broker]\n{line}\n'
    if says is None:
        assert parse_config(text).broker
        return
    msg = error_of(tmp_path, text)
    assert msg.startswith("sandbox.toml:") and says in msg and "\n" not in msg, msg


def test_the_coordinator_shows_and_enforces_what_kafkas_controller_does():
    from sandbox.coordinator.handlers.configs import server_configs
    from sandbox.coordinator.server import CoordinatorConfig, CoordinatorServer

    cfg = parse_config('[broker]\n"delete.topic.enable" = false\n"log.retention.hours" = 1\n'
                       '"auto.create.topics.enable" = false\n')
    opts = coordinator_defaults(cfg)
    assert "delete.topic.enable=false" in opts and "log.retention.ms=3600000" in opts
    assert "auto.create.topics.enable=false" not in opts     # the brokers' alone
    server = CoordinatorServer(CoordinatorConfig(data_dir=Path("c"), settings=server_properties.coordinator_settings(
        cfg.broker)))
    shown = server_configs(server)
    assert shown["delete.topic.enable"] == "false" and shown["log.retention.ms"] == "3600000"
    assert server_configs(CoordinatorServer(CoordinatorConfig(data_dir=Path("c"))))["delete.topic.enable"] == "true"


def test_a_stack_started_before_broker_settings_existed_is_told_to_restart(tmp_path):
    """Its runtime file's running settings have no [broker]: it ran with none."""
    import json

    p = tmp_path / "sandbox.toml"
    p.write_text('[broker]\n"auto.create.topics.enable" = false\n')
    cfg = load_config(p)
    running = {k: v for k, v in stack.running_settings(cfg).items() if k != "broker"}
    stack.runtime_file(cfg).write_text(json.dumps({"running": running}))
    old = stack.running_pid
    stack.running_pid = lambda c: 4242   # as if its supervisor were running
    try:
        live = stack.load_stack_config(p, tmp_path)
    finally:
        stack.running_pid = old
    assert live.broker == {}
    assert "[broker] auto.create.topics.enable=false" in stack.restart_needed(live)


def test_sasl_enabled_mechanisms_is_a_list_of_what_the_listener_offers():
    assert parse_config('[broker]\n"sasl.enabled.mechanisms" = "scram-sha-512, PLAIN"\n').broker == {
        "sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN"}
    bc = BrokerConfig(data_dir=Path("x"))
    assert bc.sasl_enabled_mechanisms == ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
    bc.apply_overrides({"sasl.enabled.mechanisms": "SCRAM-SHA-512"})
    assert bc.sasl_enabled_mechanisms == ("SCRAM-SHA-512",)
    for bad in ("GSSAPI", "", "PLAIN,OAUTHBEARER"):
        with pytest.raises(ValueError) as e:
            server_properties.check("sasl.enabled.mechanisms", bad)
        assert "must list one or more of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512" in str(e.value)


def test_super_users_are_kafkas_semicolon_list_and_a_bad_one_is_one_sentence():
    bc = BrokerConfig(data_dir=Path("x"))
    assert bc.super_users == ("User:ANONYMOUS",) and bc.authorizer_class_name and bc.allow_everyone_if_no_acl_found
    bc.apply_overrides({"super.users": " User:ANONYMOUS ; User:ops;", "authorizer.class.name": "",
                        "allow.everyone.if.no.acl.found": False})
    assert bc.super_users == ("User:ANONYMOUS", "User:ops") and bc.authorizer_class_name == ""
    assert bc.allow_everyone_if_no_acl_found is False
    with pytest.raises(ValueError, match=r"^super.users must list principals as TYPE:NAME separated by ';'"):
        BrokerConfig(data_dir=Path("x")).apply_overrides({"super.users": "admin,ops"})
    # the plain listener's principal (the sandbox's commands, the brokers' replication) stays one
    with pytest.raises(ValueError, match=r"^super.users must keep User:ANONYMOUS \('User:admin' leaves it out\)"):
        BrokerConfig(data_dir=Path("x")).apply_overrides({"super.users": "User:admin"})
    with pytest.raises(ValueError, match="authorizer.class.name must be one of"):
        BrokerConfig(data_dir=Path("x")).apply_overrides({"authorizer.class.name": "kafka.security.Other"})
