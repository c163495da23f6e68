"""sandbox.toml's replication defaults: [sandbox] replication / min_insync_replicas, per-topic
replication, and the one-sentence refusals of a factor the stack cannot hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.config import ConfigError, TopicSpec, default_min_insync, load_config


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def load(tmp_path: Path, text: str):
    p = tmp_path / "sandbox.toml"
    p.write_text(text)
    return load_config(p)


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    msg = str(info.value)
    assert msg.count("\n") == 0 and ";" in msg and msg.endswith("."), msg
    return msg


@pytest.mark.parametrize("brokers, rf, isr", [(1, 1, 1), (2, 2, 1), (3, 3, 2), (5, 3, 2), (16, 3, 2)])
def test_defaults_follow_the_broker_count(tmp_path, brokers, rf, isr):
    cfg = load(tmp_path, f"[sandbox]\nbrokers = {brokers}\n[topics.orders]\npartitions = 2\n")
    assert (cfg.replication, cfg.min_insync_replicas) == (rf, isr)
    assert cfg.topics["orders"] == TopicSpec("orders", 2, rf)


def test_no_file_is_one_broker_replication_one(tmp_path):
    cfg = load_config(cwd=tmp_path)
    assert (cfg.brokers, cfg.replication, cfg.min_insync_replicas) == (1, 1, 1)


def test_the_file_wins_over_the_defaults(tmp_path):
    cfg = load(tmp_path, "[sandbox]\nbrokers = 3\nreplication = 2\n[topics.a]\n[topics.b]\nreplication = 3\n"
                         "[topics.c]\nreplication = 1\n")
    assert (cfg.replication, cfg.min_insync_replicas) == (2, 1)
    assert [cfg.topics[t].replication for t in "abc"] == [2, 3, 1]
    cfg = load(tmp_path, "[sandbox]\nbrokers = 3\nmin_insync_replicas = 1\n")
    assert (cfg.replication, cfg.min_insync_replicas) == (3, 1)
    cfg = load(tmp_path, "[sandbox]\nbrokers = 4\nreplication = 4\nmin_insync_replicas = 3\n")
    assert (cfg.replication, cfg.min_insync_replicas) == (4, 3)


def test_command_line_brokers_moves_the_defaults_but_not_what_the_file_says(tmp_path):
    cfg = load(tmp_path, "[topics.a]\n[topics.b]\nreplication = 1\n")
    three = cfg.with_overrides(brokers=3)
    assert (three.replication, three.min_insync_replicas) == (3, 2)
    assert (three.topics["a"].replication, three.topics["b"].replication) == (3, 1)
    pinned = load(tmp_path, "[sandbox]\nbrokers = 3\nreplication = 3\n")
    with pytest.raises(ConfigError, match=r"sandbox.toml:3: \[sandbox\] replication = 3 is more than the 1 broker"):
        pinned.with_overrides(brokers=1)


def test_default_min_insync():
    assert [default_min_insync(r) for r in (1, 2, 3, 4)] == [1, 1, 2, 2]


@pytest.mark.parametrize("text, pieces", [
    ("[sandbox]\nbrokers = 2\nreplication = 3\n",
     ["sandbox.toml:3:", "replication = 3 is more than the 2 broker(s)", "set replication = 2"]),
    ("[sandbox]\nbrokers = 3\nreplication = 2\nmin_insync_replicas = 3\n",
     ["sandbox.toml:4:", "min_insync_replicas = 3 is more than replication = 2", "set min_insync_replicas = 2"]),
    ("[sandbox]\nbrokers = 3\nreplication = 0\n", ["sandbox.toml:3:", "must be between 1 and 16"]),
    ('[sandbox]\nbrokers = 3\nreplication = "3"\n', ["must be an integer", "without quotes"]),
    ("[sandbox]\nbrokers = 3\n\n[topics.t]\nreplication = 4\n",
     ["sandbox.toml:5:", "[topics.t] replication = 4 is more than the 3 broker(s)", "set replication = 3"]),
    ('[sandbox]\nbrokers = 3\n[topics.t]\nreplication = 2\nconfig = { "min.insync.replicas" = "3" }\n',
     ["sandbox.toml:5:", '"min.insync.replicas" = 3 is more than its replication = 2', "set it to 2 or less"]),
    ('[topics.t]\nconfig = { "min.insync.replicas" = 2 }\n',
     ["sandbox.toml:2:", "more than its replication = 1"]),
])
def test_a_factor_the_stack_cannot_hold_is_refused_in_one_sentence(tmp_path, text, pieces):
    msg = error(tmp_path, text)
    for p in pieces:
        assert p in msg, msg


def test_a_declared_min_isr_within_replication_is_kept(tmp_path):
    cfg = load(tmp_path, '[sandbox]\nbrokers = 3\n[topics.t]\nconfig = { "min.insync.replicas" = "3" }\n')
    assert cfg.topics["t"].config == {"min.insync.replicas": "3"} and cfg.topics["t"].replication == 3


def test_the_init_template_leaves_replication_to_the_defaults(tmp_path):
    from sandbox.config_init import INIT_TEMPLATE, write_init

    write_init(tmp_path)
    cfg = load_config(cwd=tmp_path).with_overrides(brokers=3)
    assert cfg.topics["orders"].replication == 3 and cfg.min_insync_replicas == 2
    assert "min_insync_replicas" in INIT_TEMPLATE


def test_the_coordinator_is_started_with_the_stack_defaults(tmp_path):
    from sandbox.runner import docker, stack

    cfg = load(tmp_path, "[sandbox]\nbrokers = 3\n")
    for command in (stack.service_specs(cfg)[0].argv, docker.plan(cfg)[0].command):
        assert "coordinator" in command
        assert command[command.index("--default-replication-factor") + 1] == "3"
        assert command[command.index("--min-insync-replicas") + 1] == "2"
    one = stack.service_specs(load(tmp_path, "[sandbox]\nbrokers = 1\n"))[0].argv
    assert one[one.index("--default-replication-factor") + 1] == "1" and one[one.index("--min-insync-replicas") + 1] == "1"
    assert one[one.index("--default-partitions") + 1] == "1"


def test_partitions_is_kafkas_num_partitions_for_the_stack_and_declared_topics(tmp_path):
    from sandbox.runner import docker, stack

    cfg = load(tmp_path, "[sandbox]\npartitions = 4\n[topics.a]\n[topics.b]\npartitions = 2\n")
    assert cfg.partitions == 4 and cfg.topics["a"].partitions == 4 and cfg.topics["b"].partitions == 2
    for command in (stack.service_specs(cfg)[0].argv, docker.plan(cfg)[0].command):
        assert command[command.index("--default-partitions") + 1] == "4"
    for command in (stack.service_specs(cfg)[1].argv, docker.plan(cfg)[1].command):   # broker-1
        assert "num.partitions=4" in command and "min.insync.replicas=1" in command
    with pytest.raises(ConfigError, match="partitions"):
        load(tmp_path, "[sandbox]\npartitions = 0\n")
