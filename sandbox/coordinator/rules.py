"""Kafka's rules for topic commands, as pure functions: legal topic names, rack-unaware replica
placement, and checks on manual replica assignments.
"""
from __future__ import annotations

import re
from typing import Any, Collection, Iterable, Mapping, Sequence

from sandbox.server_properties import MAX_TOPIC_PARTITIONS

from sandbox.protocol.errors import (
    INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR, INVALID_REPLICA_ASSIGNMENT, INVALID_TOPIC_EXCEPTION,
)
from .model import CoordinatorError

_LEGAL_NAME = re.compile(r"[a-zA-Z0-9._-]+")
MAX_TOPIC_NAME = 249
# Windows device names: a file or folder named so (with any extension) is the device, not a file.
# Refused on every platform, since a sandbox folder moves between machines.
RESERVED_NAMES = frozenset({"aux", "con", "nul", "prn", *(f"com{i}" for i in range(1, 10)),
                            *(f"lpt{i}" for i in range(1, 10))})


DUPLICATE_TOPIC_NAME = "Duplicate topic name."


def duplicated_names(names: Iterable[Any]) -> set[Any]:
    """The names (or topic ids) given more than once in one CreateTopics, CreatePartitions or
    DeleteTopics request: as Kafka's ControllerApis answers them, nothing is done for such a
    name and it is answered once, INVALID_REQUEST DUPLICATE_TOPIC_NAME ("Duplicate topic id."
    for an id)."""
    seen: set[Any] = set()
    twice: set[Any] = set()
    for name in names:
        (twice if name in seen else seen).add(name)
    return twice


def validate_topic_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise CoordinatorError(INVALID_TOPIC_EXCEPTION, "Topic name is empty")
    if name in (".", ".."):
        raise CoordinatorError(INVALID_TOPIC_EXCEPTION, f"Topic name cannot be {name!r}")
    if len(name) > MAX_TOPIC_NAME:
        raise CoordinatorError(INVALID_TOPIC_EXCEPTION,
                               f"Topic name is longer than {MAX_TOPIC_NAME} characters")
    if not _LEGAL_NAME.fullmatch(name):
        raise CoordinatorError(INVALID_TOPIC_EXCEPTION, f"Topic name {name!r} is illegal: "
                               "it may only contain ASCII letters, digits, '.', '_' and '-'")
    if name.split(".", 1)[0].lower() in RESERVED_NAMES:
        raise CoordinatorError(INVALID_TOPIC_EXCEPTION, f"Topic name {name!r} is a reserved "
                               "device name on Windows (aux, con, nul, prn, com1-9, lpt1-9, "
                               "with or without an extension), so it is refused on every platform.")
    return name


def case_collision(name: str, existing: Collection[str]) -> str | None:
    """An existing topic whose name differs from `name` only in letter case (on NTFS and the
    default macOS file system their folders would be one folder), else None."""
    folded = name.casefold()
    for other in existing:
        if other != name and other.casefold() == folded:
            return other
    return None


def place_replicas(live: Sequence[int], count: int, replication_factor: int,
                   first_index: int, start: int) -> list[list[int]]:
    """Kafka's rack-unaware placement over `live` (unfenced broker ids, sorted): leaders go
    round-robin from `start` (callers rotate it per topic); followers follow the leader with a
    shift that grows each time the leaders wrap around. replication_factor -1 = default (1)."""
    n = len(live)
    if replication_factor == -1:
        replication_factor = min(1, n)
    if replication_factor < 1:
        raise CoordinatorError(INVALID_REPLICATION_FACTOR, "Replication factor must be larger "
                               "than 0, and at least one broker must be registered.")
    if replication_factor > n:
        raise CoordinatorError(INVALID_REPLICATION_FACTOR, f"Unable to replicate the partition "
                               f"{replication_factor} time(s): The target replication factor of "
                               f"{replication_factor} cannot be reached because only {n} "
                               "broker(s) are registered.")
    start %= n
    shift = start
    out = []
    for p in range(first_index, first_index + count):
        if p > 0 and p % n == 0:
            shift += 1
        first = (p + start) % n
        replicas = [live[first]]
        for j in range(replication_factor - 1):
            replicas.append(live[(first + 1 + (shift + j) % (n - 1)) % n])
        out.append(replicas)
    return out


def check_assignments(assignments: Any, first: int, count: int | None,
                      registered: Collection[int]) -> list[list[int]]:
    """Validate manual replica assignments for partitions first.. (a list of replica lists, or
    a mapping partition index -> replica list). `count`: how many are expected (None = any)."""
    if isinstance(assignments, Mapping):
        try:
            by_index = {int(k): v for k, v in assignments.items()}
        except (TypeError, ValueError):
            raise CoordinatorError(INVALID_REPLICA_ASSIGNMENT,
                                   "Partition indexes must be integers.") from None
        keys = sorted(by_index)
        if keys != list(range(first, first + len(keys))):
            raise CoordinatorError(INVALID_REPLICA_ASSIGNMENT, f"Partitions must be numbered "
                                   f"consecutively from {first}; got {keys}.")
        lists = [list(by_index[k]) for k in keys]
    else:
        lists = [list(a) for a in assignments]
    if not lists:
        raise CoordinatorError(INVALID_PARTITIONS if count is None
                               else INVALID_REPLICA_ASSIGNMENT, "Empty replica assignment.")
    if count is not None and len(lists) != count:
        raise CoordinatorError(INVALID_REPLICA_ASSIGNMENT, f"Expected {count} new partition "
                               f"assignments, got {len(lists)}.")
    for replicas in lists:
        if not replicas:
            raise CoordinatorError(INVALID_REPLICA_ASSIGNMENT, "A partition has no replicas.")
        if len(set(replicas)) != len(replicas):
            raise CoordinatorError(INVALID_REPLICA_ASSIGNMENT,
                                   f"Duplicate brokers in replica list {replicas}.")
        if len(replicas) != len(lists[0]):
            raise CoordinatorError(INVALID_REPLICA_ASSIGNMENT,
                                   "All partitions must have the same number of replicas.")
        for r in replicas:
            if not isinstance(r, int) or r not in registered:
                raise CoordinatorError(INVALID_REPLICA_ASSIGNMENT, f"The manual partition "
                                       f"assignment includes broker {r}, which is not "
                                       "registered.")
    return lists


def check_partition_count(total: int) -> None:
    """A topic of more partitions than the sandbox serves (server_properties.MAX_TOPIC_PARTITIONS)
    is refused with INVALID_PARTITIONS, before anything is made."""
    if total > MAX_TOPIC_PARTITIONS:
        raise CoordinatorError(INVALID_PARTITIONS, f"{total} partitions is more than a sandbox serves in one "
                                                   f"topic; use {MAX_TOPIC_PARTITIONS} or fewer.")
