"""`sandbox produce TOPIC` (lines from stdin) and `sandbox consume TOPIC` (records to stdout), the
kafka-console-producer / kafka-console-consumer of the sandbox, through its own KafkaClient.

produce: every line is one record (the newline is not part of it). Input is read as it arrives,
so typed lines go out at once and a pipe goes out in batches of up to 64 KB. With
--key-separator a line is KEY<sep>VALUE and the key picks the partition as Java's default
partitioner does (murmur2), so a key lands where the team's services would put it; lines
without a key take the partitions in turn, batch by batch.

consume: from the end (new records only) unless --from-beginning, every partition merged,
until -n records, until the end of every partition with --exit-at-end, or until Ctrl-C.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import BinaryIO, Iterator, Optional

import typer

from sandbox.protocol.errors import UNKNOWN_TOPIC_OR_PARTITION

from .common import BootstrapOpt, ConfigOpt, client, fail, resolve
from .record_format import compile_format, default_format, parse_headers, parse_offset, render, unescape

READ_CHUNK = 64 * 1024
WAIT_POLL_S = 0.5


def _bootstrap(config: Optional[Path], bootstrap: Optional[str]) -> str:
    return resolve(config, bootstrap).bootstrap


def _separator(text: Optional[str]) -> Optional[bytes]:
    if text is None:
        return None
    if text == "":
        fail("--key-separator is empty; give the text between key and value, e.g. --key-separator ':'")
    try:
        return unescape(text, "--key-separator")
    except ValueError as e:
        fail(str(e))


def read_line_batches(stream: BinaryIO, chunk: int = READ_CHUNK) -> Iterator[list[bytes]]:
    """Lines of `stream` (\\n or \\r\\n removed) in the groups they arrived in; a last line without
    a newline counts too."""
    rest = b""
    read = getattr(stream, "read1", stream.read)
    while True:
        data = read(chunk)
        if not data:
            break
        lines = (rest + data).split(b"\n")
        rest = lines.pop()
        if lines:
            yield [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]
    if rest:
        yield [rest[:-1] if rest.endswith(b"\r") else rest]


def produce(
    topic: str = typer.Argument(..., help="Topic to write to (created if the broker auto-creates topics)."),
    key_separator: Optional[str] = typer.Option(None, "--key-separator", "-K",
                                                help="Lines are KEY<sep>VALUE; the key picks the partition."),
    partition: Optional[int] = typer.Option(None, "--partition", "-p", min=0, help="Write every record to this partition."),
    acks: str = typer.Option("all", "--acks", help="all or 1."),
    header: list[str] = typer.Option([], "--header", "-H", metavar="KEY=VALUE",
                                     help="A header on every record, repeatable (as kcat -H)."),
    bootstrap: Optional[str] = BootstrapOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Write stdin to TOPIC, one record per line (like kafka-console-producer)."""
    from sandbox.client import KafkaClientError
    from sandbox.client.partitioner import partition_for

    if acks not in ("all", "-1", "1"):
        fail(f"--acks {acks} is not supported; use --acks all or --acks 1")
    try:
        headers = parse_headers(header)
    except ValueError as e:
        fail(str(e))
    sep = _separator(key_separator)
    sent = 0
    line_no = 0
    with client(_bootstrap(config, bootstrap), timeout=15.0) as c:
        try:
            parts = c.partitions(topic, auto_create=True)
        except KafkaClientError as e:
            fail(_topic_hint(topic, e), 1)
        if not parts:
            fail(f"topic {topic} has no partitions yet; try again in a moment", 1)
        if partition is not None and partition not in parts:
            fail(f"topic {topic} has partitions 0-{len(parts) - 1}; --partition {partition} is not one of them")
        turn = 0
        pending: dict[int, list[tuple[bytes | None, bytes]]] = {}

        def flush() -> None:
            nonlocal sent
            for p, records in sorted(pending.items()):
                c.produce(topic, p, records, acks=1 if acks == "1" else -1)
                sent += len(records)
            pending.clear()

        try:
            for lines in read_line_batches(sys.stdin.buffer):
                for line in lines:
                    line_no += 1
                    key: bytes | None = None
                    value = line
                    if sep is not None:
                        key, found, value = line.partition(sep)
                        if not found:
                            flush()   # every line before the bad one is written
                            fail(f"line {line_no} has no key separator {key_separator!r}; it and the lines after "
                                 f"it were not sent ({sent} records before it were); write KEY{key_separator}VALUE", 1)
                    if partition is not None:
                        p = partition
                    elif key is not None:
                        p = partition_for(key, len(parts))
                    else:
                        p = parts[turn % len(parts)]
                    pending.setdefault(p, []).append((key, value, headers) if headers else (key, value))
                turn += 1
                flush()
        except KafkaClientError as e:
            fail(f"{e}; {sent} record(s) were written before this, and nothing after it was sent "
                 f"({line_no} line(s) read; the rest of the input was not)", 1)
        except KeyboardInterrupt:
            pass
    typer.echo(f"{sent} record(s) written to {topic}", err=True)


READ_COMMITTED = "read_committed"
ISOLATION_LEVELS = {"read_uncommitted": 0, READ_COMMITTED: 1}   # Fetch/ListOffsets isolation_level


def _topic_hint(topic: str, e: Exception) -> str:
    if getattr(e, "error_code", None) == UNKNOWN_TOPIC_OR_PARTITION:
        return f"topic {topic} does not exist; create it with `sandbox topics create {topic}`"
    return str(e)


def consume(
    topic: str = typer.Argument(..., help="Topic to read."),
    from_beginning: bool = typer.Option(False, "--from-beginning", help="Start at the oldest record, not the end."),
    offset: Optional[str] = typer.Option(None, "--offset",
                                         help="Where to start in each partition: beginning, end, an offset N, "
                                              "or -N (N records before the end)."),
    count: Optional[int] = typer.Option(None, "-n", "--max-messages", min=1, help="Stop after this many records."),
    exit_at_end: bool = typer.Option(False, "--exit-at-end", "-e", help="Stop at the end of every partition."),
    partition: Optional[int] = typer.Option(None, "--partition", "-p", min=0, help="Read only this partition."),
    group: Optional[str] = typer.Option(None, "--group", "-g",
                                        help="Join this consumer group: partitions shared with its other members, "
                                             "start at its committed offsets, commit what is printed "
                                             "(through confluent-kafka)."),
    fmt: Optional[str] = typer.Option(None, "--format",
                                      help="Output per record, as kcat -f: %t topic, %p partition, %o offset, %k key, "
                                           "%s value, %T timestamp (ms), %h headers (k=v,...), %S value size; "
                                           "\\n and \\t. Default: %s, or %k<sep>%s with --print-key."),
    print_key: bool = typer.Option(False, "--print-key", help="Print KEY<sep>VALUE."),
    timeout_ms: Optional[int] = typer.Option(None, "--timeout-ms", min=1,
                                             help="Exit after this long without a record (also bounds the wait "
                                                  "for a topic that does not exist yet)."),
    key_separator: str = typer.Option("\t", "--key-separator", "-K", show_default=False,
                                      help="Between key and value with --print-key (default: tab)."),
    isolation: str = typer.Option(READ_COMMITTED, "--isolation",
                                  help="read_committed: only records of committed transactions, up to the "
                                       "first open one (as Kafka's consumers read by default); "
                                       "read_uncommitted: aborted and open transactions' records too."),
    bootstrap: Optional[str] = BootstrapOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Write TOPIC's records to stdout, one per line (like kafka-console-consumer)."""
    from sandbox.client import KafkaClientError

    if isolation not in ISOLATION_LEVELS:
        fail(f"--isolation is read_committed or read_uncommitted, not {isolation!r}")
    level = ISOLATION_LEVELS[isolation]
    sep = _separator(key_separator) or b"\t"
    if group is not None and not group.strip():
        fail("--group needs a group id, e.g. --group my-app (or leave it out to read without a group)")
    try:
        template = compile_format(fmt) if fmt else default_format(print_key, sep)
        where = parse_offset(offset) if offset is not None else ("beginning" if from_beginning else "end", 0)
    except ValueError as e:
        fail(str(e))
    out = sys.stdout.buffer
    got = 0
    idle_s = None if timeout_ms is None else timeout_ms / 1000.0
    target = _bootstrap(config, bootstrap)
    with client(target, timeout=15.0) as c:
        try:
            parts, appeared = _wait_for_topic(c, topic, exit_at_end, idle_s)
            if partition is not None:
                if partition not in parts:
                    fail(f"topic {topic} has partitions 0-{len(parts) - 1}; --partition {partition} is not one of them")
                parts = [partition]
            if group is not None:
                from .group_consume import consume_in_group

                if partition is not None:
                    fail("--group shares the topic's partitions among the group's members; drop --partition "
                         "(or --group to read one partition yourself)")
                got = consume_in_group(target, topic, group, ("beginning", 0) if appeared and offset is None
                                       else where, template, count, exit_at_end, idle_s, out, isolation)
                typer.echo(f"{got} record(s) read from {topic} in group {group}", err=True)
                return
            # a topic that appeared while we waited is all new: read it from its start
            start = _start_positions(c, topic, parts, ("beginning", 0) if appeared and offset is None else where,
                                     level)
        except KafkaClientError as e:
            fail(_topic_hint(topic, e), 1)
        positions = dict(start)
        last_record = time.monotonic()
        try:
            while count is None or got < count:
                if idle_s is not None and time.monotonic() - last_record >= idle_s:
                    break
                result = c.fetch(topic, positions, max_wait_ms=200 if exit_at_end else 500, isolation_level=level)
                at_end = True
                for p, (records, hwm, nxt) in sorted(result.items()):
                    for r in records:
                        if count is not None and got >= count:
                            break
                        out.write(render(template, topic=topic, partition=p, offset=r.offset, key=r.key,
                                         value=r.value, timestamp=r.timestamp, headers=r.headers))
                        got += 1
                        positions[p] = r.offset + 1
                        last_record = time.monotonic()
                    if count is None or got < count:   # past markers and skipped (aborted) batches too
                        positions[p] = max(positions[p], nxt)
                    if hwm < 0 or positions[p] < hwm:
                        at_end = False
                out.flush()
                if exit_at_end and at_end:
                    break
        except KafkaClientError as e:
            fail(f"{e}; {got} records were printed before this", 1)
        except KeyboardInterrupt:
            pass
        except BrokenPipeError:   # `sandbox consume t | head`: the reader is gone, not an error
            _quiet_stdout()
    typer.echo(f"{got} record(s) read from {topic}", err=True)


def _start_positions(c, topic: str, parts: list[int], where: tuple[str, int], isolation_level: int = 0
                     ) -> dict[int, int]:
    """Where reading starts; "the end" is the last stable offset for read_committed, as Kafka's
    consumers reset to it."""
    how, n = where
    if how == "beginning":
        return c.start_offsets(topic, parts)
    ends = c.end_offsets(topic, parts, isolation_level=isolation_level)
    if how == "end":
        return ends
    starts = c.start_offsets(topic, parts)
    if how == "at":   # an offset past the end waits there; one before the log start reads from the start
        return {p: min(max(n, starts[p]), ends[p]) for p in parts}
    return {p: max(ends[p] - n, starts[p]) for p in parts}


def _wait_for_topic(c, topic: str, exit_at_end: bool, limit_s: float | None) -> tuple[list[int], bool]:
    """(partitions, whether we had to wait). A consumer is often started before the producer that
    creates its topic: wait for it (said once on stderr) until it appears, Ctrl-C or `limit_s`."""
    from sandbox.client import KafkaClientError

    said = False
    deadline = None if limit_s is None else time.monotonic() + limit_s
    while True:
        try:
            return c.partitions(topic), said
        except KafkaClientError as e:
            if e.error_code != UNKNOWN_TOPIC_OR_PARTITION or exit_at_end:
                raise
        if deadline is not None and time.monotonic() >= deadline:
            fail(f"topic {topic} did not appear within {limit_s:g} s", 1)
        if not said:
            typer.echo(f"topic {topic} does not exist yet; waiting for it (Ctrl-C to stop)", err=True)
            said = True
        try:
            time.sleep(WAIT_POLL_S)
        except KeyboardInterrupt:
            typer.echo(f"0 record(s) read from {topic}", err=True)
            raise typer.Exit(0) from None


def _quiet_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())   # so the interpreter's final flush does not fail again


def register(app: typer.Typer) -> None:
    """Add `sandbox produce` and `sandbox consume` to the CLI."""
    app.command()(produce)
    app.command()(consume)
