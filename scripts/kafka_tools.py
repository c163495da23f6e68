#!/usr/bin/env python3
"""The few Kafka shell tools librdkafka's regression suite runs from `$KAFKA_PATH/bin`
(`kafka-topics.sh --create`, `kafka-acls.sh --add`), made with confluent-kafka's admin client,
so those suite tests run against the sandbox too: scripts/librdkafka_suite.sh lays
`bin/kafka-topics.sh` and `bin/kafka-acls.sh` calling this file and points KAFKA_PATH there.

Only the options the suite uses are understood; anything else is refused with one sentence
(exit 2), so a test never passes on a command that did nothing.

    kafka_tools.py topics --bootstrap-server HOST:PORT --create --topic T [--partitions N]
                          [--replication-factor R] [--config K=V ...]
    kafka_tools.py acls --bootstrap-server HOST:PORT --add (--allow-principal P | --deny-principal P)
                        --operation OP [--allow-host H | --deny-host H] --topic T
"""

from __future__ import annotations

import argparse
import sys
import time

from confluent_kafka.admin import (
    AclBinding, AclOperation, AclPermissionType, AdminClient, NewTopic, ResourcePatternType, ResourceType,
)


class Refused(Exception):
    pass


def _parser(tool: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"kafka-{tool}.sh", add_help=False)
    p.add_argument("--bootstrap-server", required=True)
    p.add_argument("--topic", required=True)
    if tool == "topics":
        p.add_argument("--create", action="store_true", required=True)
        p.add_argument("--partitions", type=int, default=-1)
        p.add_argument("--replication-factor", type=int, default=-1)
        p.add_argument("--config", action="append", default=[])
    else:
        p.add_argument("--add", action="store_true", required=True)
        who = p.add_mutually_exclusive_group(required=True)
        who.add_argument("--allow-principal")
        who.add_argument("--deny-principal")
        p.add_argument("--operation", required=True)
        p.add_argument("--allow-host")
        p.add_argument("--deny-host")
    return p


def _parse(p: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    args, rest = p.parse_known_args(argv)
    if rest:
        raise Refused(f"{p.prog}: options not understood here: {' '.join(rest)}")
    return args


def topics(argv: list[str]) -> None:
    args = _parse(_parser("topics"), argv)
    configs = {}
    for item in args.config:
        key, sep, value = item.partition("=")
        if not sep:
            raise Refused(f"kafka-topics.sh: --config wants KEY=VALUE, got {item!r}")
        configs[key] = value
    admin = AdminClient({"bootstrap.servers": args.bootstrap_server})
    new = NewTopic(args.topic, args.partitions, args.replication_factor, config=configs)
    admin.create_topics([new])[args.topic].result(30)
    deadline = time.monotonic() + 30   # as Kafka's tool, return once the topic has its leaders
    while time.monotonic() < deadline:
        md = admin.list_topics(args.topic, timeout=5).topics.get(args.topic)
        if md is not None and md.error is None and md.partitions and \
                all(p.leader >= 0 for p in md.partitions.values()):
            print(f"Created topic {args.topic}.")
            return
        time.sleep(0.1)
    raise Refused(f"kafka-topics.sh: topic {args.topic} has no leaders after 30 s")


def acls(argv: list[str]) -> None:
    args = _parse(_parser("acls"), argv)
    try:
        op = AclOperation[args.operation.upper()]
    except KeyError:
        raise Refused(f"kafka-acls.sh: unknown operation {args.operation!r}") from None
    allow = args.allow_principal is not None
    host = (args.allow_host if allow else args.deny_host) or "*"
    binding = AclBinding(ResourceType.TOPIC, args.topic, ResourcePatternType.LITERAL,
                         args.allow_principal if allow else args.deny_principal, host, op,
                         AclPermissionType.ALLOW if allow else AclPermissionType.DENY)
    admin = AdminClient({"bootstrap.servers": args.bootstrap_server})
    admin.create_acls([binding])[binding].result(30)
    print(f"Adding ACLs for resource `Topic:LITERAL:{args.topic}`: {binding}")


def main(argv: list[str]) -> int:
    tools = {"topics": topics, "acls": acls}
    if not argv or argv[0] not in tools:
        print("usage: kafka_tools.py topics|acls OPTIONS (the Kafka tool's own options)", file=sys.stderr)
        return 2
    try:
        tools[argv[0]](argv[1:])
    except (Refused, SystemExit) as e:
        print(e if isinstance(e, Refused) else f"kafka-{argv[0]}.sh: bad options", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - the admin client's error, as one line
        print(f"kafka-{argv[0]}.sh: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
