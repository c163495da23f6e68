"""Kafka's broker settings (server.properties names) that the sandbox takes, in one table: which
exist, what each accepts, and who applies it. `sandbox broker -o KEY=VALUE` and sandbox.toml's
[broker] section both go through `normalize`, so a bad value is one sentence before any process
starts, and the broker is given one spelling (hours and minutes become milliseconds, with Kafka's
precedence: ms over minutes over hours). Stdlib only: sandbox.config imports it.
"""

from __future__ import annotations

from dataclasses import dataclass

# the most partitions one topic may have here: 10,000 are created in about 5 s and served; 100,000
# (a typo away) stalled the coordinator until the supervisor replaced it, over and over (found by
# review). Kafka sets no such bound; its own guidance is a few thousand partitions per broker.
MAX_TOPIC_PARTITIONS = 10_000

# settings the sandbox derives from sandbox.toml's [sandbox] section (the coordinator decides them
# for every broker at once): naming them in [broker] would let two places disagree
FROM_SANDBOX_SECTION = {"num.partitions": "partitions", "default.replication.factor": "replication",
                        "min.insync.replicas": "min_insync_replicas"}

# server.properties settings a Kafka user may reach for that the sandbox places itself
PLACED_BY_SANDBOX = {
    "listeners": "[sandbox] host and port place every broker's listener",
    "advertised.listeners": "[sandbox] host and port place every broker's listener",
    "port": "[sandbox] port is broker 1's port",
    "log.dirs": "[sandbox] data_dir holds every journal",
    "log.dir": "[sandbox] data_dir holds every journal",
    "broker.id": "brokers are numbered 1 to [sandbox] brokers",
    "node.id": "brokers are numbered 1 to [sandbox] brokers",
    "process.roles": "the sandbox runs its own coordinator beside its brokers",
    "controller.quorum.voters": "the sandbox runs its own coordinator beside its brokers",
    "zookeeper.connect": "the sandbox runs its own coordinator beside its brokers",
}


INT_MAX = 2**31 - 1     # Kafka's INT settings
LONG_MAX = 2**63 - 1    # and its LONG ones


@dataclass(frozen=True)
class Setting:
    kind: str                       # "bool", "int", "choice", "list" (comma-separated choices),
                                    # "principals" (Kafka's semicolon-separated TYPE:NAME list)
    low: int | None = None          # smallest int accepted
    choices: tuple[str, ...] = ()
    why: str = ""                   # what the bound means, for the error sentence
    high: int = INT_MAX             # largest int accepted
    zero: bool = True               # 0 is accepted (retention: Kafka refuses 0, -1 means for ever)


_MS = Setting("int", 0)
_LONG_MS = Setting("int", 0, high=LONG_MAX)
_POSITIVE = Setting("int", 1)
_RETENTION = Setting("int", -1, why="-1 keeps records for ever", high=LONG_MAX, zero=False)
_CLEANUP = ("delete", "compact", "compact,delete", "delete,compact")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")   # what a SASL_PLAINTEXT listener offers
# Kafka's KRaft authorizer; "" = none (every request allowed, the ACL APIs answer SECURITY_DISABLED)
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
# the sandbox's super users: the plain listeners' principal, so its own commands, the brokers'
# replication and apps without a login are never locked out; ACLs bind SASL logins
DEFAULT_SUPER_USERS = ("User:ANONYMOUS",)

SETTINGS: dict[str, Setting] = {
    "auto.create.topics.enable": Setting("bool"),
    "group.initial.rebalance.delay.ms": _MS,
    "group.min.session.timeout.ms": _POSITIVE,
    "group.max.session.timeout.ms": _POSITIVE,
    "delete.topic.enable": Setting("bool"),
    "group.max.size": _POSITIVE,
    "group.consumer.max.size": _POSITIVE,
    "sasl.enabled.mechanisms": Setting("list", choices=SASL_MECHANISMS),
    "authorizer.class.name": Setting("choice", choices=(STANDARD_AUTHORIZER, "")),
    "super.users": Setting("principals"),
    "allow.everyone.if.no.acl.found": Setting("bool"),
    "group.consumer.heartbeat.interval.ms": _POSITIVE,
    "group.consumer.session.timeout.ms": _POSITIVE,
    "group.consumer.migration.policy": Setting("choice", choices=("disabled", "upgrade", "downgrade",
                                                                  "bidirectional")),
    "message.max.bytes": Setting("int", 0),
    "socket.request.max.bytes": Setting("int", 1024, why="smaller cannot hold a request"),
    "log.segment.bytes": Setting("int", 1_048_576, why="Kafka 4.0's minimum, 1 MiB"),
    "log.roll.ms": Setting("int", 1, high=LONG_MAX),
    "log.roll.hours": _POSITIVE,
    "log.retention.ms": _RETENTION,
    "log.retention.minutes": Setting("int", -1, why="-1 keeps records for ever", zero=False),
    "log.retention.hours": Setting("int", -1, why="-1 keeps records for ever", zero=False),
    "log.retention.bytes": Setting("int", -1, why="-1 sets no size limit", high=LONG_MAX),
    "log.retention.check.interval.ms": Setting("int", 1, high=LONG_MAX),
    "log.index.interval.bytes": Setting("int", 0),
    "log.flush.interval.messages": Setting("int", 1, high=LONG_MAX),
    "log.flush.interval.ms": _LONG_MS,
    "log.message.timestamp.type": Setting("choice", choices=("CreateTime", "LogAppendTime")),
    "log.cleanup.policy": Setting("choice", choices=_CLEANUP),
    "log.cleaner.backoff.ms": Setting("int", 1, high=LONG_MAX),
    "log.cleaner.delete.retention.ms": _LONG_MS,
    "offsets.fsync": Setting("bool"),
    "offsets.topic.num.partitions": _POSITIVE,
    "offsets.topic.replication.factor": _POSITIVE,
    "offsets.commit.timeout.ms": _POSITIVE,
    "offsets.retention.minutes": _POSITIVE,
    "offsets.retention.check.interval.ms": Setting("int", 1, high=LONG_MAX),
    "transaction.max.timeout.ms": _POSITIVE,
    "transactional.id.expiration.ms": _POSITIVE,
    "producer.id.expiration.ms": _POSITIVE,
    "transaction.state.log.num.partitions": _POSITIVE,
    "transaction.state.log.replication.factor": _POSITIVE,
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": _POSITIVE,
    "replica.lag.time.max.ms": Setting("int", 1, high=LONG_MAX),
    # the coordinator's (broker.session.timeout.ms the brokers' too): see coordinator_options
    "broker.session.timeout.ms": Setting("int", 1000,
                                         why="brokers heartbeat twice a second; a shorter session fences them"),
    "auto.leader.rebalance.enable": Setting("bool"),
    "leader.imbalance.check.interval.seconds": Setting("int", 1, high=LONG_MAX),
    # given by `sandbox broker -o` only (the stack passes them from [sandbox])
    "num.partitions": _POSITIVE,
    "default.replication.factor": _POSITIVE,
    "min.insync.replicas": _POSITIVE,
}

# Kafka's coarser spellings of a millisecond setting: (finer first) -> the one the broker is given
_UNITS = {"log.retention.ms": (("log.retention.minutes", 60_000), ("log.retention.hours", 3_600_000)),
          "log.roll.ms": (("log.roll.hours", 3_600_000),)}
# broker setting -> the topic config it is the default of (Kafka's synonyms)
TOPIC_SYNONYMS = {
    "log.segment.bytes": "segment.bytes",
    "log.roll.ms": "segment.ms",
    "log.retention.ms": "retention.ms",
    "log.retention.bytes": "retention.bytes",
    "log.index.interval.bytes": "index.interval.bytes",
    "log.flush.interval.messages": "flush.messages",
    "log.flush.interval.ms": "flush.ms",
    "log.message.timestamp.type": "message.timestamp.type",
    "log.cleanup.policy": "cleanup.policy",
    "log.cleaner.delete.retention.ms": "delete.retention.ms",
    "message.max.bytes": "max.message.bytes",
}
# the sandbox's group.consumer.heartbeat.interval.ms and group.consumer.session.timeout.ms
CONSUMER_GROUP_TIMING = (1000, 45000)
# the sandbox's group.min/max.session.timeout.ms (Kafka's minimum is 6000: the sandbox lets tests
# use short sessions for quick rebalances)
SESSION_TIMEOUT_BOUNDS = (1000, 1_800_000)
SHOWN_BY_COORDINATOR = ("delete.topic.enable", *TOPIC_SYNONYMS)
COORDINATOR_ONLY = ("auto.leader.rebalance.enable", "leader.imbalance.check.interval.seconds")


def value_text(value: object) -> str:
    """A TOML or command-line value as Kafka's properties spell it (true/false, digits)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def check(key: str, value: str) -> str:
    """The value as the broker takes it; ValueError (one sentence with the fix) when it is not one."""
    s = SETTINGS.get(key)
    if s is None:
        raise ValueError(f"unknown broker setting {key!r}")
    if s.kind == "bool":
        v = value.lower()
        if v not in ("true", "false"):
            raise ValueError(f"{key} must be true or false, not {value!r}")
        return v
    if s.kind == "choice":
        match = next((c for c in s.choices if c.lower() == value.lower().replace(" ", "")), None)
        if match is None:
            raise ValueError(f"{key} must be one of {', '.join(s.choices)}, not {value!r}")
        return match
    if s.kind == "principals":
        items = [item.strip() for item in value.split(";") if item.strip()]
        bad = [i for i in items if ":" not in i or not i.split(":", 1)[0] or not i.split(":", 1)[1]]
        if bad:
            raise ValueError(f"{key} must list principals as TYPE:NAME separated by ';' (e.g. "
                             f"\"User:ANONYMOUS;User:admin\"), not {value!r}")
        return ";".join(dict.fromkeys(items))
    if s.kind == "list":
        items = [item.strip() for item in value.split(",") if item.strip()]
        unknown = [i for i in items if i.upper() not in s.choices]
        if not items or unknown:
            raise ValueError(f"{key} must list one or more of {', '.join(s.choices)} (comma-separated), "
                             f"not {value!r}")
        return ",".join(dict.fromkeys(i.upper() for i in items))
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{key} must be a whole number, not {value!r}") from None
    extra = f" ({s.why})" if s.why else ""
    if s.low is not None and n < s.low:
        raise ValueError(f"{key} must be at least {s.low}{extra}, not {n}")
    if n == 0 and not s.zero:
        raise ValueError(f"{key} must be -1 or at least 1{extra}, not 0")
    if n > s.high:
        raise ValueError(f"{key} must be at most {s.high}, not {n}")
    return str(n)


def normalize(settings: dict[str, str]) -> dict[str, str]:
    """Checked settings, coarser time units folded into the millisecond key (Kafka's precedence:
    an explicit ms value wins, then minutes, then hours). ValueError is one sentence."""
    out = {key: check(key, value_text(value)) for key, value in settings.items()}
    supers = out.get("super.users")
    if supers is not None and "User:ANONYMOUS" not in supers.split(";"):
        raise ValueError(f"super.users must keep User:ANONYMOUS ({supers!r} leaves it out): the sandbox's own "
                         "commands and the brokers' replication use the plain listener as User:ANONYMOUS; "
                         "add your principals after it, e.g. \"User:ANONYMOUS;User:admin\", and rehearse ACLs "
                         "with SASL logins")
    low = int(out.get("group.min.session.timeout.ms", SESSION_TIMEOUT_BOUNDS[0]))
    high = int(out.get("group.max.session.timeout.ms", SESSION_TIMEOUT_BOUNDS[1]))
    if low > high:
        raise ValueError(f"group.min.session.timeout.ms ({low}) is above group.max.session.timeout.ms ({high}), "
                         f"so no consumer could join a group")
    beat = int(out.get("group.consumer.heartbeat.interval.ms", CONSUMER_GROUP_TIMING[0]))
    session = int(out.get("group.consumer.session.timeout.ms", CONSUMER_GROUP_TIMING[1]))
    if beat >= session:
        raise ValueError(f"group.consumer.heartbeat.interval.ms ({beat}) must be below "
                         f"group.consumer.session.timeout.ms ({session}), as Kafka requires")
    for ms_key, coarser in _UNITS.items():
        for key, factor in coarser:
            if key in out:
                v = int(out.pop(key))
                if ms_key not in out:
                    out[ms_key] = str(v if v < 0 else check(ms_key, str(v * factor)))
    return out


def for_broker(settings: dict[str, str]) -> dict[str, str]:
    """What the broker process is given (-o): all but the coordinator's own settings."""
    return {k: v for k, v in settings.items() if k not in COORDINATOR_ONLY}


def coordinator_settings(settings: dict[str, str]) -> dict[str, str]:
    """The settings the coordinator also shows and enforces as Kafka's controller does: whether
    topics may be deleted, and the topic defaults its DescribeConfigs answers show."""
    return {k: v for k, v in settings.items() if k in SHOWN_BY_COORDINATOR}


def as_options(settings: dict[str, str]) -> list[str]:
    """`-o KEY=VALUE` pairs, as `sandbox broker` and `sandbox coordinator` take them."""
    return [arg for key, value in settings.items() for arg in ("-o", f"{key}={value}")]


def coordinator_options(settings: dict[str, str]) -> list[str]:
    """The coordinator's command-line options for the settings it applies."""
    out = as_options(coordinator_settings(settings))
    if "broker.session.timeout.ms" in settings:
        out += ["--session-timeout-ms", settings["broker.session.timeout.ms"]]
    if settings.get("auto.leader.rebalance.enable") == "false":
        out += ["--leader-imbalance-check-interval-s", "0"]
    elif "leader.imbalance.check.interval.seconds" in settings:
        out += ["--leader-imbalance-check-interval-s", settings["leader.imbalance.check.interval.seconds"]]
    return out
