"""`sandbox topics list|create|alter|delete|describe|apply`: topic admin against the sandbox of this
folder or the broker given with -b (sandbox.cli.common decides, as for every command).

Letters mean one thing across the CLI: -c is the sandbox.toml, -b a broker address, -p one
partition (so a partition count is --partitions only) and -o a Kafka setting KEY=VALUE. The old
spellings of `topics create` (-p N, -c KEY=VALUE, -r, --file) and `topics apply -f` still work
with a deprecation note."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from sandbox.runner import stack

from sandbox.server_properties import MAX_TOPIC_PARTITIONS

from .common import CONFIG_HELP, BootstrapOpt, ConfigOpt, client as _client, config_option, deprecated, fail
from .common import kafka_call as _call, parse_pairs, read_config, resolve


def parse_settings(items: list[str], flag: str) -> dict[str, str]:
    return parse_pairs(items, "topic config", f"{flag} retention.ms=60000")


def topics_list(config: Optional[Path] = ConfigOpt, bootstrap: Optional[str] = BootstrapOpt) -> None:
    """Topics with partition counts."""
    target = resolve(config, bootstrap)
    with _client(target.bootstrap) as c:
        md = _call(c.metadata)[0]
        for name in sorted(md.topics):
            if not md.topics[name].internal:   # Kafka's two internal topics; a user's __x is listed
                typer.echo(f"{name}\t{len(md.topics[name].partitions)} partitions")


def topics_create(
    name: str = typer.Argument(..., help="The topic's name."),
    partitions: Optional[int] = typer.Option(None, "--partitions", min=1, max=MAX_TOPIC_PARTITIONS,
                                               help="Number of partitions (default: 1)."),
    replication: Optional[int] = typer.Option(None, "--replication-factor", min=1,
                                              help="Copies of each partition (default: the cluster's; in a sandbox "
                                                   "[sandbox] replication: 3 from 3 brokers)."),
    settings: list[str] = typer.Option([], "--set", "-o", metavar="KEY=VALUE",
                                       help="Topic config, repeatable, e.g. -o retention.ms=60000."),
    config: list[str] = typer.Option([], "--config", "-c", metavar="PATH",
                                     help=CONFIG_HELP),
    bootstrap: Optional[str] = BootstrapOpt,
    old_partitions: Optional[int] = typer.Option(None, "-p", hidden=True, min=1),
    old_replication: Optional[int] = typer.Option(None, "--replication", "-r", hidden=True, min=1),
    old_file: Optional[Path] = typer.Option(None, "--file", hidden=True),
) -> None:
    """Create a topic (like kafka-topics --create)."""
    if old_partitions is not None:
        deprecated("`topics create -p N`", "--partitions N (-p is one partition everywhere)")
        partitions = partitions or old_partitions
    if old_replication is not None:
        deprecated("--replication / -r", "--replication-factor")
        replication = replication or old_replication
    old_settings = [c for c in config if "=" in c]
    if old_settings:
        deprecated("`topics create -c KEY=VALUE`", "-o KEY=VALUE (-c is the sandbox.toml everywhere)")
    paths = [c for c in config if "=" not in c]
    if old_file is not None:
        deprecated("--file", "--config")
        paths.append(str(old_file))
    if len(paths) > 1:
        fail(f"--config names one sandbox.toml, not {len(paths)}: {', '.join(paths)}")
    topic_config = parse_settings(old_settings + settings, "-o")
    target = resolve(Path(paths[0]) if paths else None, bootstrap)
    partitions = partitions or 1
    with _client(target.bootstrap, timeout=30.0) as c:   # thousands of partitions take seconds
        _call(c.create_topic, name, partitions, replication or -1, topic_config)   # -1: the cluster's default
    typer.echo(f"created topic {name} ({partitions} partition{'s' if partitions != 1 else ''}) on {target.bootstrap}")


def topics_alter(
    name: str = typer.Argument(..., help="The topic's name."),
    partitions: Optional[int] = typer.Option(None, "--partitions", min=1, max=MAX_TOPIC_PARTITIONS,
                                             help="Grow the topic to this many partitions (like kafka-topics --alter)."),
    settings: list[str] = typer.Option([], "--set", "-o", metavar="KEY=VALUE",
                                       help="Set a topic config, repeatable (like kafka-configs --add-config)."),
    reset: list[str] = typer.Option([], "--delete-config", metavar="KEY",
                                    help="Reset a topic config to the cluster's default, repeatable."),
    config: Optional[Path] = ConfigOpt, bootstrap: Optional[str] = BootstrapOpt,
) -> None:
    """Grow a topic's partitions or change its configs (like kafka-topics --alter and kafka-configs --alter)."""
    if partitions is None and not settings and not reset:
        fail("say what to change: --partitions N, --set KEY=VALUE or --delete-config KEY")
    changes = parse_settings(settings, "--set")
    both = sorted(set(changes) & set(reset))
    if both:
        fail(f"{', '.join(both)} is both set and reset; give each config once")
    from sandbox.client import KafkaClientError
    from sandbox.client.partitioner import OFFSETS_TOPIC, TXN_TOPIC

    target = resolve(config, bootstrap)
    done: list[str] = []
    with _client(target.bootstrap, timeout=30.0) as c:   # thousands of partitions take seconds
        md = _call(c.metadata, [name])[0]
        t = md.topics.get(name)
        if t is None or t.error_code:
            fail(f"topic {name!r} does not exist; see `sandbox topics list`", 1)
        have = len(t.partitions)
        want = have if partitions is None else partitions
        if want < have:   # Kafka's own sentence, and the way out
            fail(f"topic {name} currently has {have} partitions, which is higher than the requested "
                 f"{want}; partitions can only be added (delete and create the topic to have fewer)", 1)
        if want > have and name in (OFFSETS_TOPIC, TXN_TOPIC):   # a group's or id's partition is its hash modulo the count
            fail(f"the number of partitions of the internal topic {name} cannot be changed: every consumer "
                 "group (or transactional id) would move to another partition and lose what it committed", 1)
        if reset:   # as kafka-configs --delete-config: only a config set on the topic can be deleted
            current = _call(c.describe_configs, name)
            unset = sorted(k for k in reset if current.get(k, (None, True))[1])
            if unset:
                fail(f"Invalid config(s): {', '.join(unset)}: not set on topic {name} (a name Kafka does not "
                     f"know, or one at its default); `sandbox topics describe {name}` shows what is set", 1)
        if changes or reset:   # first: the likelier refusal (a bad value), before anything changed
            _call(c.alter_configs, name, changes, reset)
            done += [f"{k}={v}" for k, v in sorted(changes.items())]
            done += [f"{k} reset to its default" for k in sorted(reset)]
        if want > have:
            try:
                c.create_partitions(name, want)
            except KafkaClientError as e:   # what did change is said too
                fail(f"{e}" + (f" (its configs were changed: {'; '.join(done)})" if done else ""), 1)
            done.insert(0, f"partitions {have} -> {want}")
    typer.echo(f"altered topic {name}: " + ("; ".join(done) if done else
                                            f"already has {have} partition{'s' if have != 1 else ''}"))


def topics_delete(name: str = typer.Argument(..., help="The topic's name."),
                  config: Optional[Path] = ConfigOpt, bootstrap: Optional[str] = BootstrapOpt) -> None:
    """Delete a topic and its data."""
    from sandbox.client.partitioner import OFFSETS_TOPIC, TXN_TOPIC

    if name in (OFFSETS_TOPIC, TXN_TOPIC):   # as kafka-topics --delete refuses them
        fail(f"topic {name} is an internal topic and is not deleted: every consumer group's committed "
             f"offsets (or every transaction's state) would go with it; to start a group over, use "
             f"`sandbox groups delete GROUP` or `sandbox groups reset-offsets`", 2)
    from sandbox.client import KafkaClientError

    target = resolve(config, bootstrap)
    with _client(target.bootstrap) as c:
        try:
            c.delete_topic(name)
        except KafkaClientError as e:   # as describe and alter say it
            fail(f"topic {name!r} does not exist; see `sandbox topics list`" if e.error_code == 3 else str(e), 1)
    typer.echo(f"deleted topic {name}")


def topics_describe(name: str = typer.Argument(..., help="The topic's name."),
                    config: Optional[Path] = ConfigOpt, bootstrap: Optional[str] = BootstrapOpt) -> None:
    """Partitions, leaders, end offsets and configs of a topic."""
    target = resolve(config, bootstrap)
    with _client(target.bootstrap) as c:
        md = _call(c.metadata, [name])[0]
        t = md.topics.get(name)
        if t is None or t.error_code:
            fail(f"topic {name!r} does not exist; see `sandbox topics list`", 1)
        ends = _call(c.end_offsets, name)
        typer.echo(f"topic {name} id {t.topic_id}: {len(t.partitions)} partitions")
        for p in t.partitions:
            typer.echo(f"  partition {p.index}: leader {p.leader} replicas {p.replicas} isr {p.isr} end offset {ends.get(p.index)}")
        for k, (v, is_default) in sorted(_call(c.describe_configs, name).items()):
            if not is_default:
                typer.echo(f"  {k}={v}")


def topics_apply(config: Optional[Path] = config_option("The sandbox.toml whose topics to create (default: ./sandbox.toml)."),
                 bootstrap: Optional[str] = BootstrapOpt,
                 wait: float = typer.Option(60.0, "--wait", min=0.0, max=86_400.0,
                                            help="Seconds to wait for the broker to answer."),
                 old_file: Optional[Path] = typer.Option(None, "--file", "-f", hidden=True)) -> None:
    """Create (or grow) the topics declared in a sandbox.toml, set its [sasl] users' credentials and
    create its [[acls]]: what `up` does, for compose and scripts."""
    from sandbox.client import KafkaClientError
    from sandbox.runner.manifest import apply_acls, apply_users, reconcile

    if old_file is not None:
        deprecated("`topics apply --file/-f`", "--config/-c")
        config = config or old_file
    cfg = read_config(config or Path("sandbox.toml"))
    if bootstrap is None and cfg.mode != "docker" and not stack.running_pid(cfg):
        fail(f"sandbox {cfg.name} is not running; start it with `sandbox up` (which creates these too), "
             f"or give --bootstrap to reach another cluster", 3)
    target = bootstrap or stack.bootstrap(cfg)   # waits for it below: compose starts it alongside
    deadline, said = time.monotonic() + wait, False
    while True:
        try:
            with _client(target, client_id="sandbox-topics") as c:
                acls, retry = apply_acls(cfg.acls, c)   # first: a topic made before its ACLs is open meanwhile
                msgs = [f"failed to read the cluster's topics: {acls[0]}"] if retry else reconcile(cfg.topics, c)
                if not (msgs and msgs[0].startswith("failed to read")):
                    msgs = acls + msgs
                    if cfg.sasl is not None:
                        msgs += apply_users(cfg.sasl.users, c)
        except KafkaClientError as e:
            msgs = [f"failed to read the cluster's topics: {e}"]
        if not (msgs and msgs[0].startswith("failed to read")):
            break
        if time.monotonic() >= deadline:
            fail(f"{target} did not answer within {wait:g} s ({msgs[0]}); is the broker up?", 1)
        if not said:   # not a silent minute
            typer.echo(f"waiting up to {wait:g} s for {target} to answer...", err=True)
            said = True
        time.sleep(1.0)
    for m in msgs:
        typer.echo(m)
    if any(m.startswith("failed") for m in msgs):
        raise typer.Exit(1)
    typer.echo(f"{len(cfg.topics)} declared topic(s) in place on {target}")


def register(app: typer.Typer) -> None:
    """Add `sandbox topics list|create|alter|delete|describe|apply` to the CLI."""
    topics_app = typer.Typer(help="Topic admin: list, create, alter, delete, describe, apply.", no_args_is_help=True)
    for name, command in (("list", topics_list), ("create", topics_create), ("alter", topics_alter),
                          ("delete", topics_delete),
                          ("describe", topics_describe), ("apply", topics_apply)):
        topics_app.command(name)(command)
    app.add_typer(topics_app, name="topics")
