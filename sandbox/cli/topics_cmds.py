"""`sandbox topics list|create|delete|describe|apply`: topic admin against the sandbox of this
folder or the broker given with -b (sandbox.cli.target decides, as for every command).

Letters mean one thing across the CLI: -c is the sandbox.toml, -b a broker address, -p one
partition (so a partition count is --partitions only) and -o a Kafka setting KEY=VALUE. The old
spellings of `topics create` (-p N, -c KEY=VALUE, -r, --file) and `topics apply -f` still work
with a deprecation note."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from sandbox.config import ConfigError
from sandbox.runner import stack

from .app import app, fail
from .target import BootstrapOpt, ConfigOpt, deprecated, resolve

topics_app = typer.Typer(help="Topic admin: list, create, delete, describe, apply.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")


def _client(bootstrap: str):
    from sandbox.client import KafkaClient

    return KafkaClient(bootstrap, timeout=5.0)


def _call(fn, *args, **kwargs):
    from sandbox.client import KafkaClientError

    try:
        return fn(*args, **kwargs)
    except KafkaClientError as e:
        fail(str(e), 1)


def parse_settings(items: list[str], flag: str) -> dict[str, str]:
    settings = {}
    for item in items:
        if "=" not in item:
            fail(f"topic config {item!r} is not KEY=VALUE; write it like {flag} retention.ms=60000")
        k, v = item.split("=", 1)
        settings[k.strip()] = v.strip()
    return settings


@topics_app.command("list")
def topics_list(config: Optional[Path] = ConfigOpt, bootstrap: Optional[str] = BootstrapOpt) -> None:
    """Topics with partition counts."""
    target = resolve(config, bootstrap)
    with _client(target.bootstrap) as c:
        md = _call(c.metadata)[0]
        for name in sorted(md.topics):
            if not name.startswith("__"):
                typer.echo(f"{name}\t{len(md.topics[name].partitions)} partitions")


@topics_app.command("create")
def topics_create(
    name: str = typer.Argument(..., help="The topic's name."),
    partitions: Optional[int] = typer.Option(None, "--partitions", min=1, help="Number of partitions (default: 1)."),
    replication: Optional[int] = typer.Option(None, "--replication-factor", min=1,
                                              help="Copies of each partition (default: the cluster's; in a sandbox "
                                                   "[sandbox] replication: 3 from 3 brokers)."),
    settings: list[str] = typer.Option([], "--set", "-o", metavar="KEY=VALUE",
                                       help="Topic config, repeatable, e.g. -o retention.ms=60000."),
    config: list[str] = typer.Option([], "--config", "-c", metavar="PATH",
                                     help="Path of sandbox.toml (default: ./sandbox.toml)."),
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
    with _client(target.bootstrap) as c:
        _call(c.create_topic, name, partitions, replication or -1, topic_config)   # -1: the cluster's default
    typer.echo(f"created topic {name} ({partitions} partition{'s' if partitions != 1 else ''}) on {target.bootstrap}")


@topics_app.command("delete")
def topics_delete(name: str = typer.Argument(..., help="The topic's name."),
                  config: Optional[Path] = ConfigOpt, bootstrap: Optional[str] = BootstrapOpt) -> None:
    """Delete a topic and its data."""
    target = resolve(config, bootstrap)
    with _client(target.bootstrap) as c:
        _call(c.delete_topic, name)
    typer.echo(f"deleted topic {name}")


@topics_app.command("describe")
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


@topics_app.command("apply")
def topics_apply(config: Optional[Path] = typer.Option(None, "--config", "-c",
                                                       help="The sandbox.toml whose topics to create (default: ./sandbox.toml)."),
                 bootstrap: Optional[str] = BootstrapOpt,
                 wait: float = typer.Option(60.0, "--wait", help="Seconds to wait for the broker to answer."),
                 old_file: Optional[Path] = typer.Option(None, "--file", "-f", hidden=True)) -> None:
    """Create (or grow) the topics declared in a sandbox.toml: what `up` does, for compose and scripts."""
    from sandbox.client import KafkaClient, KafkaClientError
    from sandbox.config import load_config
    from sandbox.runner.manifest import reconcile

    if old_file is not None:
        deprecated("`topics apply --file/-f`", "--config/-c")
        config = config or old_file
    try:
        cfg = load_config(config or Path("sandbox.toml"), cwd=Path.cwd())
    except ConfigError as e:
        fail(str(e))
    target = bootstrap or stack.bootstrap(cfg)   # waits for it below: compose starts it alongside
    deadline = time.monotonic() + wait
    while True:
        try:
            with KafkaClient(target, client_id="sandbox-topics", timeout=5.0) as c:
                msgs = reconcile(cfg.topics, c)
        except KafkaClientError as e:
            msgs = [f"failed to read the cluster's topics: {e}"]
        if not (msgs and msgs[0].startswith("failed to read")):
            break
        if time.monotonic() >= deadline:
            fail(f"{target} did not answer within {wait:g} s ({msgs[0]}); is the broker up?", 1)
        time.sleep(1.0)
    for m in msgs:
        typer.echo(m)
    if any(m.startswith("failed") for m in msgs):
        raise typer.Exit(1)
    typer.echo(f"{len(cfg.topics)} declared topic(s) in place on {target}")
