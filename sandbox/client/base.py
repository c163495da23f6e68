"""What every part of KafkaClient shares: the API keys and versions it speaks, the retry rule,
the error check and the lock decorator."""

from __future__ import annotations

import functools
from typing import Any

from sandbox.protocol.errors import (
    COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, FENCED_LEADER_EPOCH, LEADER_NOT_AVAILABLE,
    NOT_COORDINATOR, NOT_LEADER_OR_FOLLOWER, OFFSET_NOT_AVAILABLE, UNKNOWN_LEADER_EPOCH,
)

from .models import KafkaClientError, error_name

# api key -> (lowest, highest) version this client speaks
METADATA, CREATE_TOPICS, DELETE_TOPICS, CREATE_PARTITIONS = 3, 19, 20, 37
DESCRIBE_CONFIGS, INCREMENTAL_ALTER_CONFIGS = 32, 44
LIST_GROUPS, DESCRIBE_GROUPS, OFFSET_FETCH, LIST_OFFSETS, FIND_COORDINATOR = 16, 15, 9, 2, 10
OFFSET_COMMIT, DELETE_GROUPS = 8, 42
CONSUMER_GROUP_DESCRIBE = 69
PRODUCE, FETCH = 0, 1
DESCRIBE_TRANSACTIONS, LIST_TRANSACTIONS = 65, 66
DESCRIBE_CLIENT_QUOTAS, ALTER_CLIENT_QUOTAS, LIST_CONFIG_RESOURCES = 48, 49, 74
DESCRIBE_USER_SCRAM_CREDENTIALS, ALTER_USER_SCRAM_CREDENTIALS = 50, 51
DESCRIBE_ACLS, CREATE_ACLS = 29, 30
DESCRIBE_QUORUM = 55
DESCRIBE_LOG_DIRS = 35
VERSIONS = {PRODUCE: (3, 9), FETCH: (4, 12),METADATA: (1, 12), CREATE_TOPICS: (2, 7), DELETE_TOPICS: (1, 5),
            CREATE_PARTITIONS: (0, 3), DESCRIBE_CONFIGS: (1, 4), INCREMENTAL_ALTER_CONFIGS: (0, 1),
            LIST_GROUPS: (0, 4), DESCRIBE_GROUPS: (0, 5), OFFSET_FETCH: (2, 7),
            LIST_OFFSETS: (1, 7), FIND_COORDINATOR: (0, 3), OFFSET_COMMIT: (2, 8), DELETE_GROUPS: (0, 2),
            CONSUMER_GROUP_DESCRIBE: (0, 1), DESCRIBE_TRANSACTIONS: (0, 0), LIST_TRANSACTIONS: (0, 1),
            DESCRIBE_CLIENT_QUOTAS: (0, 1), ALTER_CLIENT_QUOTAS: (0, 1), LIST_CONFIG_RESOURCES: (1, 1),
            DESCRIBE_USER_SCRAM_CREDENTIALS: (0, 0), ALTER_USER_SCRAM_CREDENTIALS: (0, 0),
            DESCRIBE_ACLS: (1, 3), CREATE_ACLS: (1, 3), DESCRIBE_QUORUM: (1, 2),
            DESCRIBE_LOG_DIRS: (4, 4)}

TOPIC_RESOURCE, BROKER_RESOURCE, GROUP_RESOURCE = 2, 4, 32
SOURCE_DYNAMIC_TOPIC, SOURCE_DYNAMIC_BROKER, SOURCE_DYNAMIC_DEFAULT, SOURCE_GROUP_CONFIG = 1, 2, 3, 8
LATEST, EARLIEST = -1, -2
# leader/coordinator moved or loading: refresh and retry
RETRIABLE = {LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER, COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE,
              NOT_COORDINATOR, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, OFFSET_NOT_AVAILABLE}
_ATTEMPTS = 3


def _locked(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return wrapper


_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def _same_host(host: str, given: list[str]) -> bool:
    h = host.lower()
    return any(h == g.lower() or (h in _LOOPBACK and g.lower() in _LOOPBACK) for g in given)


# what a person can do about the errors the CLI's users meet most, said after Kafka's name
_HINTS = {
    3: "no such topic (see `sandbox topics list`)",
    10: "a record larger than the topic's max.message.bytes (raise it with "
        "`sandbox topics alter TOPIC -o max.message.bytes=N`)",
    17: "not a valid topic name: 1 to 249 of letters, digits, '.', '_' and '-', and not '.' or '..'",
    24: "a group id cannot be empty",
}


def _check(code: Any, what: str, message: str | None = None) -> None:
    code = int(code)
    if code:
        detail = f": {message}" if message else (f": {_HINTS[code]}" if code in _HINTS else "")
        raise KafkaClientError(f"{what} failed with {error_name(code)}{detail}", code)
