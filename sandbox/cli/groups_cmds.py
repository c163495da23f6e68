"""`sandbox groups list` and `sandbox groups describe GROUP`: consumer groups (classic and KIP-848)
with per-partition offsets and lag, printed like Kafka's kafka-consumer-groups --describe."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import BootstrapOpt, ConfigOpt, fail, resolve, target_client
from .render import format_columns

DESCRIBE_HEADERS = ["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID",
                    "HOST", "CLIENT-ID"]


def describe_rows(client, group: str, skip: frozenset[int] | set[int] = frozenset()
                  ) -> tuple[object, list[list]] | None:
    """(GroupDescription, rows of DESCRIBE_HEADERS), or None when the group does not exist.
    skip: brokers known not to answer; the log end offsets of the partitions they lead are not
    asked (each would wait out a timeout) and show as "-"."""
    from sandbox.client import KafkaClientError

    # asked of the group's coordinator only (listing every broker's groups to find it would wait
    # on any broker that does not answer): a group nobody knows is "Dead" there, as in Kafka
    desc = client.describe_group(group)
    committed = client.committed_offsets(group)
    if desc.state in ("Dead", "") and not committed and not desc.members:
        return None
    owner: dict[tuple[str, int], object] = {}
    for m in desc.members:
        for topic, parts in m.assignment.items():
            for p in parts:
                owner[(topic, p)] = m
    keys = sorted(set(committed) | set(owner))
    ends: dict[tuple[str, int], int] = {}
    for topic in sorted({t for t, _ in keys}):
        try:
            ends.update({(topic, p): o for p, o in
                         client.end_offsets(topic, [p for t, p in keys if t == topic], skip=skip).items()})
        except KafkaClientError:
            pass   # the topic was deleted, or its leader is away: shown as "-"
    rows = []
    for t, p in keys:
        cur, end, m = committed.get((t, p)), ends.get((t, p)), owner.get((t, p))
        lag = max(end - cur, 0) if cur is not None and end is not None else None
        rows.append([t, p, cur, end, lag, getattr(m, "member_id", None) or "-",
                     getattr(m, "client_host", None) or "-", getattr(m, "client_id", None) or "-"])
    return desc, rows


def _unhealthy_brokers(config: Optional[Path], bootstrap: Optional[str]) -> set[int]:
    """The brokers of this folder's running sandbox that its supervisor finds not healthy (asking
    them would wait out a timeout per request); none with -b or without a supervisor's state."""
    if bootstrap:
        return set()
    from sandbox.health.status import service_entries, unhealthy_brokers
    from sandbox.runner import stack

    return unhealthy_brokers(service_entries(stack.live_state(resolve(config, None).cfg) or {}))


def register(app: typer.Typer) -> None:
    """Add `groups list` and `groups describe` to the CLI."""
    groups_app = typer.Typer(help="Consumer groups: list, describe (per-partition lag).",
                             no_args_is_help=True)
    app.add_typer(groups_app, name="groups")

    @groups_app.command("list")
    def groups_list(config: Optional[Path] = ConfigOpt,
                    bootstrap: Optional[str] = BootstrapOpt) -> None:
        """Consumer groups with their state, members and total lag."""
        from sandbox.client import KafkaClientError

        failed: list[str] = []
        skip = _unhealthy_brokers(config, bootstrap)
        if skip:
            failed.append(f"the groups broker(s) {sorted(skip)} coordinate are not listed: not healthy")
        try:
            with target_client(config, bootstrap) as c:
                rows = []
                for g in c.list_groups(skip=skip, failed=failed):
                    try:
                        d = c.describe_group(g.group)
                        lags = [x.lag for x in c.group_lag(g.group, skip=skip)]
                        # unknown ("-") while a partition it committed is led by a broker not asked
                        lag = "-" if None in lags else sum(lags)
                        rows.append([g.group, d.state or g.state, len(d.members), lag])
                    except KafkaClientError as e:
                        rows.append([g.group, g.state or "?", "-", f"? ({e})"])
        except KafkaClientError as e:
            fail(str(e), 1)
        if rows:
            for line in format_columns(["GROUP", "STATE", "MEMBERS", "LAG"], rows):
                typer.echo(line)
        elif not failed:
            typer.echo("no consumer groups yet")
        if failed:   # the rest is listed; what is missing is said, and the exit code says it too
            for why in failed:
                typer.echo(f"{why}; is that broker up? (`sandbox status`)", err=True)
            raise typer.Exit(1)

    @groups_app.command("describe")
    def groups_describe(group: str = typer.Argument(..., help="The group id."),
                        config: Optional[Path] = ConfigOpt,
                        bootstrap: Optional[str] = BootstrapOpt) -> None:
        """Per partition: committed offset, log end offset, lag and the member that owns it."""
        from sandbox.client import KafkaClientError

        skip = _unhealthy_brokers(config, bootstrap)
        try:
            with target_client(config, bootstrap) as c:
                found = describe_rows(c, group, skip)
        except KafkaClientError as e:
            fail(str(e), 1)
            return
        if found is None:
            fail(f"consumer group {group!r} does not exist; see `sandbox groups list`", 1)
            return
        desc, rows = found
        n = len(desc.members)
        kind = (f" (consumer protocol, assignor {desc.protocol or '-'}, epoch {desc.epoch})"
                if getattr(desc, "group_type", "classic") == "consumer" else "")
        typer.echo(f"group {group}: state {desc.state or 'unknown'}, {n} member{'s' if n != 1 else ''}"
                   + ("" if n else " (no active members)") + kind)
        if not rows:
            typer.echo("no committed offsets and no assigned partitions yet")
            return
        typer.echo("")
        for line in format_columns(DESCRIBE_HEADERS, rows):
            typer.echo(line)
        if skip and any(row[3] is None for row in rows):   # what is missing is said, and the exit code says it too
            typer.echo(f"log end offsets (and so lag) of the partitions broker(s) {sorted(skip)} lead are "
                       "not shown: not healthy; is that broker up? (`sandbox status`)", err=True)
            raise typer.Exit(1)
