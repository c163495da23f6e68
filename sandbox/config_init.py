"""The commented sandbox.toml that `sandbox init` writes, and writing it (never over a file)."""

from __future__ import annotations

import errno

from pathlib import Path

from sandbox.config import FILENAME, ConfigError, _display


INIT_TEMPLATE = '''\
# sandbox.toml: this folder's Kafka sandbox. Every command (`sandbox up`, `status`, ...) run here
# uses it. Delete a line to get its default back.

[sandbox]
# name = "myproject"        # defaults to this folder's name
mode = "native"             # "native" (local processes) or "docker" (containers)
host = "127.0.0.1"          # bind address; use "0.0.0.0" only to expose the sandbox to your network
port = 9092                 # broker 1's Kafka port; broker N listens on port + N - 1
# coordinator_port = 9093   # the coordinator's port; defaults to port + brokers
# http_port = 9094          # supervisor's /healthz /status /metrics; defaults to coordinator_port + 1
brokers = 1                 # number of brokers, 1 to 16
# replication = 1           # default replicas per partition; defaults to brokers, at most 3
# min_insync_replicas = 1   # replicas that must have an acks=all write; defaults to 2 from replication 3
# partitions = 1            # partitions of topics created without a count (Kafka's num.partitions)
data_dir = ".sandbox"       # journals, logs and quarantines, relative to this folder

[recovery]
on_crash = "restart"        # "restart" a crashed service, or "off"
on_corrupt_journal = "repair-then-wipe"   # "repair-then-wipe", "repair" or "wipe"
max_restarts = 5            # restarts allowed within restart_window_s before giving up
restart_window_s = 60       # the window (seconds) max_restarts counts in
keep_quarantines = 3        # journals moved aside by recovery that are kept per service
unhealthy_after_s = 10      # a service failing its health probe this long is restarted (3x while starting)

[docker]                    # used by mode = "docker" / `sandbox up --docker`
base_image = "python:3.11-slim"   # the image the sandbox image is built FROM (Python 3.11+)

[broker]                    # Kafka broker settings (server.properties names), for every broker
# "auto.create.topics.enable" = true       # false: a client naming a missing topic gets an error, as in most production clusters
# "group.initial.rebalance.delay.ms" = 3000   # Kafka's default; the sandbox's 0 rebalances a new group at once
# "log.retention.hours" = 168              # how long records are kept unless a topic says otherwise

# [sasl]                     # a SASL_PLAINTEXT listener per broker (PLAIN, SCRAM-SHA-256/512) beside the plain one
# users = { alice = "alice-secret" }       # who may log in; `sandbox up` prints the SASL bootstrap address

# Topics as code: created at `sandbox up`, re-created after a wipe, reloaded live when you save.
# Removing a topic here never deletes it; partitions can only grow.
[topics.orders]
partitions = 3              # number of partitions
# replication = 3           # replicas per partition, at most `brokers` (default: [sandbox] replication)
config = { "retention.ms" = "604800000", "cleanup.policy" = "delete" }   # Kafka topic configs
'''


def write_init(folder: Path) -> Path:
    """Write INIT_TEMPLATE to folder/sandbox.toml; never overwrite an existing file."""

    target = Path(folder).absolute() / FILENAME
    try:   # `sandbox init new-project` makes the folder, as `git init new-project` does
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        where, what = target.parent, f"cannot be made ({e.strerror})"
        if isinstance(e, (FileExistsError, NotADirectoryError)):   # a file where a folder goes
            where = next((p for p in (target.parent, *target.parent.parents) if p.exists()), where)
            what = "is a file, not a folder"
        raise ConfigError(f"{_display(where)}: {what}; name a folder for sandbox.toml, or run "
                          f"`sandbox init` inside one.", path=target) from None
    try:
        with open(target, "x", encoding="utf-8", newline="\n") as f:
            f.write(INIT_TEMPLATE)
    except FileExistsError:
        if target.is_dir():
            raise ConfigError(f"{_display(target)}: is a folder, not a file; move it away (or rename it), "
                              f"then run `sandbox init` again.", path=target) from None
        raise ConfigError(f"{_display(target)}: already exists and was left untouched; edit it, "
                          f"or delete it and run `sandbox init` again.", path=target) from None
    except OSError as e:
        fix = "check the folder's permissions" if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else \
            "choose another folder"
        raise ConfigError(f"{_display(target)}: cannot be written ({e.strerror}); {fix}.", path=target) from None
    return target
