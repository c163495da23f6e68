"""`sandbox groups list`, `describe GROUP`, `delete GROUP...` and `reset-offsets GROUP`: consumer
groups (classic and KIP-848) with per-partition offsets and lag, printed like Kafka's
kafka-consumer-groups --describe; deleted, or their committed offsets moved, as
kafka-consumer-groups --delete and --reset-offsets do (a dry run unless --execute)."""

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


RESET_HEADERS = ["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]   # kafka-consumer-groups --reset-offsets
INACTIVE = ("Empty", "Dead", "")


def parse_datetime_ms(text: str) -> int:
    """Milliseconds since the epoch of an ISO 8601 date and time (local time without a zone, as
    kafka-consumer-groups takes it); ValueError with the reason otherwise."""
    import datetime as dt

    when = dt.datetime.fromisoformat(text.strip())
    if when.tzinfo is None:
        when = when.astimezone()   # local time
    # exact (a float's timestamp() * 1000 can come out 1 ms early)
    ms = (when - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(milliseconds=1)
    if ms < 0:   # ListOffsets reads negative times as "latest", "earliest", ...
        raise ValueError(f"{text!r} is before 1970")
    return ms


def parse_topic_arg(text: str) -> tuple[str, list[int] | None]:
    """`TOPIC` (every partition) or `TOPIC:0,2` (those), as kafka-consumer-groups --topic takes it."""
    name, sep, parts = text.partition(":")
    if not name:
        raise ValueError(f"--topic {text!r} names no topic; write it like orders or orders:0,2")
    if not sep:
        return name, None
    try:
        chosen = sorted({int(p) for p in parts.split(",") if p.strip()})
    except ValueError:
        raise ValueError(f"--topic {text!r}: partitions are numbers; write it like orders:0,2") from None
    if not chosen or chosen[0] < 0:
        raise ValueError(f"--topic {text!r}: list partitions 0 or above, like orders:0,2")
    return name, chosen


def new_offsets(current: dict[tuple[str, int], int], starts: dict[tuple[str, int], int],
                ends: dict[tuple[str, int], int], how: str, value: int | None = None,
                by_time: dict[tuple[str, int], int] | None = None) -> tuple[dict[tuple[str, int], int], list[str]]:
    """The offsets `--reset-offsets` commits for each partition in `starts`: earliest, latest,
    offset N, shift-by N (from the committed offset) or datetime (`by_time`), kept between each
    partition's log start and end as Kafka's tool keeps them (each adjustment is said). Raises
    ValueError for shift-by on a partition the group has no committed offset on."""
    out, notes = {}, []
    for tp in sorted(starts):
        lo, hi = starts[tp], ends[tp]
        if how == "earliest":
            want = lo
        elif how == "latest":
            want = hi
        elif how == "offset":
            want = int(value)   # type: ignore[arg-type]
        elif how == "shift":
            if tp not in current:
                raise ValueError(f"the group has no committed offset on {tp[0]}-{tp[1]} to shift; "
                                 "use --to-earliest, --to-latest or --to-offset for it")
            want = current[tp] + int(value)   # type: ignore[arg-type]
        else:   # the first offset at or after the time, or the end: not adjusted, as in Kafka
            out[tp] = (by_time or {})[tp]
            continue
        if want < lo:
            notes.append(f"{tp[0]}-{tp[1]}: offset {want} is below the log start {lo}; {lo} is used")
            want = lo
        elif want > hi:
            notes.append(f"{tp[0]}-{tp[1]}: offset {want} is past the log end {hi}; {hi} is used")
            want = hi
        out[tp] = want
    return out, notes


def register(app: typer.Typer) -> None:
    """Add `groups list`, `describe`, `delete` and `reset-offsets` to the CLI."""
    groups_app = typer.Typer(help="Consumer groups: list, describe (per-partition lag), delete, reset-offsets.",
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

    @groups_app.command("delete")
    def groups_delete(groups: list[str] = typer.Argument(..., help="The group ids."),
                      config: Optional[Path] = ConfigOpt,
                      bootstrap: Optional[str] = BootstrapOpt) -> None:
        """Delete consumer groups and their committed offsets (a group with active members is
        refused, as Kafka refuses it: stop its consumers first)."""
        from sandbox.client import KafkaClientError, error_name
        from sandbox.protocol.errors import GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP

        codes: dict[str, object] = {}
        try:
            with target_client(config, bootstrap) as c:
                for g in dict.fromkeys(groups):   # each on its own: one that fails stops none of the others
                    try:
                        codes[g] = c.delete_group(g)
                    except KafkaClientError as e:
                        codes[g] = e
        except KafkaClientError as e:
            fail(str(e), 1)
            return
        failed = False
        for g, code in codes.items():
            if isinstance(code, KafkaClientError):
                failed = True
                typer.echo(f"error: consumer group {g!r} was not deleted: {code}", err=True)
                continue
            if code == 0:
                typer.echo(f"deleted consumer group {g} (and its committed offsets)")
                continue
            failed = True
            if code == GROUP_ID_NOT_FOUND:
                why = "does not exist; see `sandbox groups list`"
            elif code == NON_EMPTY_GROUP:
                why = f"has active members; stop its consumers first (`sandbox groups describe {g}` lists them)"
            else:
                why = f"was not deleted: {error_name(code)}"
            typer.echo(f"error: consumer group {g!r} {why}", err=True)
        if failed:
            raise typer.Exit(1)

    @groups_app.command("reset-offsets")
    def groups_reset_offsets(
            group: str = typer.Argument(..., help="The group id."),
            topic: list[str] = typer.Option([], "--topic", "-t", metavar="TOPIC[:P,P]",
                                            help="A topic (every partition) or TOPIC:0,2 (those); repeatable."),
            all_topics: bool = typer.Option(False, "--all-topics", help="Every topic the group has committed offsets on."),
            to_earliest: bool = typer.Option(False, "--to-earliest", help="To each partition's log start."),
            to_latest: bool = typer.Option(False, "--to-latest", help="To each partition's log end."),
            to_offset: Optional[int] = typer.Option(None, "--to-offset", help="To this offset."),
            shift_by: Optional[int] = typer.Option(None, "--shift-by", help="By N from the committed offset (negative: back)."),
            to_datetime: Optional[str] = typer.Option(
                None, "--to-datetime", help="To the first record at or after this time, e.g. 2026-12-01T09:30:00 "
                                            "(local time) or 2026-12-01T08:30:00Z."),
            execute: bool = typer.Option(False, "--execute", help="Commit the new offsets (without it: a dry run that only shows them)."),
            config: Optional[Path] = ConfigOpt,
            bootstrap: Optional[str] = BootstrapOpt) -> None:
        """Move a group's committed offsets, as kafka-consumer-groups --reset-offsets does: only
        while the group has no active members, and a dry run unless --execute."""
        from sandbox.client import KafkaClientError

        chosen = [name for name, on in (("--to-earliest", to_earliest), ("--to-latest", to_latest),
                                        ("--to-offset", to_offset is not None), ("--shift-by", shift_by is not None),
                                        ("--to-datetime", to_datetime is not None)) if on]
        if len(chosen) != 1:
            fail("say where to move the offsets with exactly one of --to-earliest, --to-latest, "
                 "--to-offset N, --shift-by N or --to-datetime TIME"
                 + (f" (not {' and '.join(chosen)})" if chosen else ""))
        if topic and all_topics:
            fail("name the topics with --topic TOPIC (or TOPIC:0,2) or use --all-topics, not both")
        if not topic and not all_topics:
            fail("name the topics with --topic TOPIC (or TOPIC:0,2), or use --all-topics")
        try:
            wanted = [parse_topic_arg(t) for t in topic]
            when = parse_datetime_ms(to_datetime) if to_datetime is not None else None
        except ValueError as e:
            msg = str(e) if str(e).startswith("--topic") else (
                f"--to-datetime {to_datetime!r} is not a date and time after 1970; write it like "
                "2026-12-01T09:30:00 (local time) or 2026-12-01T08:30:00Z")
            fail(msg)
            return
        try:
            with target_client(config, bootstrap) as c:
                desc = c.describe_group(group)
                if desc.state not in INACTIVE or desc.members:
                    fail(f"Assignments can only be reset if the group '{group}' is inactive, but the current "
                         f"state is {desc.state}; stop its consumers first (`sandbox groups describe {group}` "
                         "lists them)", 1)
                current = c.committed_offsets(group)
                if all_topics:
                    wanted = [(t, sorted(p for tt, p in current if tt == t)) for t in sorted({t for t, _ in current})]
                    if not wanted:
                        fail(f"consumer group {group!r} has no committed offsets; name the topics with --topic", 1)
                starts: dict[tuple[str, int], int] = {}
                ends: dict[tuple[str, int], int] = {}
                by_time: dict[tuple[str, int], int] = {}
                for name, parts in wanted:
                    starts.update({(name, p): o for p, o in c.start_offsets(name, parts).items()})
                    ends.update({(name, p): o for p, o in c.end_offsets(name, parts).items()})
                    if when is not None:
                        by_time.update({(name, p): o for p, o in c.offsets_for_time(name, when, parts).items()})
                how = {"--to-earliest": "earliest", "--to-latest": "latest", "--to-offset": "offset",
                       "--shift-by": "shift", "--to-datetime": "datetime"}[chosen[0]]
                try:
                    offsets, notes = new_offsets(current, starts, ends, how,
                                                 to_offset if to_offset is not None else shift_by, by_time)
                except ValueError as e:
                    fail(str(e), 1)
                    return
                if execute:
                    c.commit_offsets(group, offsets)
        except KafkaClientError as e:
            fail(str(e), 1)
            return
        for note in notes:
            typer.echo(f"note: {note}", err=True)
        for line in format_columns(RESET_HEADERS, [[group, t, p, o] for (t, p), o in sorted(offsets.items())]):
            typer.echo(line)
        if not execute:
            typer.echo("dry run: nothing was changed; add --execute to commit these offsets", err=True)
