"""Topics as code: plan the difference between sandbox.toml's [topics] and the cluster, apply it
over the wire with KafkaClient (never deleting anything), and watch the file for live reloads."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from sandbox.client import KafkaClient, KafkaClientError
from sandbox.protocol.errors import SECURITY_DISABLED, UNKNOWN_TOPIC_ID
from sandbox.protocol.extensions import RESTORE_KEYS
from sandbox.config import ConfigError, SandboxConfig, TopicSpec, load_config

CREATE, ADD_PARTITIONS, ALTER_CONFIG, WARN_SHRINK = "create", "add-partitions", "alter-config", "warn-shrink"


@dataclass(frozen=True)
class Action:
    """One step of a plan; `warn-shrink` is only a warning (Kafka cannot remove partitions)."""
    kind: str
    topic: str
    partitions: int | None = None
    config: dict[str, str] = field(default_factory=dict)
    detail: str = ""
    replication: int = 1
    assignments: list[list[int]] | None = None   # replica ids per (new) partition, when known


def _kv(config: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(config.items()))


def plan(desired: Mapping[str, TopicSpec], actual: Mapping[str, tuple[int, Mapping[str, str]]]
         ) -> list[Action]:
    """What to do so the cluster matches the file. Topics missing from the file are left alone;
    only config keys the file declares are compared; partitions only grow."""
    out: list[Action] = []
    for name in sorted(desired):
        spec = desired[name]
        if name not in actual:
            shown = {k: v for k, v in spec.config.items() if k not in RESTORE_KEYS}
            extra = f", {_kv(shown)}" if shown else ""
            out.append(Action(CREATE, name, spec.partitions, dict(spec.config),
                              f"create topic {name} ({spec.partitions} partition"
                              f"{'s' if spec.partitions != 1 else ''}, replication "
                              f"{spec.replication}{extra})", spec.replication,
                              _placement(spec, 0)))
            continue
        have, configs = actual[name]
        if spec.partitions > have:
            out.append(Action(ADD_PARTITIONS, name, spec.partitions,
                              detail=f"grow topic {name} from {have} to {spec.partitions} partitions",
                              assignments=_placement(spec, have)))
        elif spec.partitions < have:
            out.append(Action(WARN_SHRINK, name, have,
                              detail=f"topic {name} has {have} partitions but sandbox.toml asks for "
                                     f"{spec.partitions}; Kafka cannot remove partitions, so it "
                                     f"keeps {have} (set partitions = {have} to silence this)"))
        changed = {k: v for k, v in spec.config.items() if configs.get(k) != v and k not in RESTORE_KEYS}
        if changed:
            was = ", ".join(f"{k} was {configs[k]}" for k in sorted(changed) if k in configs)
            out.append(Action(ALTER_CONFIG, name, config=changed,
                              detail=f"set {_kv(changed)} on topic {name}"
                                     + (f" ({was})" if was else "")))
    return out


def _placement(spec: TopicSpec, start: int) -> list[list[int]] | None:
    """Where partitions start.. of a topic lived, if the catalog knows it for all of them."""
    if not spec.assignments or len(spec.assignments) != spec.partitions:
        return None
    return [list(b) for b in spec.assignments[start:]]


def actual_state(client: KafkaClient, desired: Mapping[str, TopicSpec]
                 ) -> dict[str, tuple[int, dict[str, str]]]:
    """{topic: (partitions, configs)} of the desired topics that exist (configs only if declared)."""
    md, _ = client.metadata(list(desired)) if desired else (None, 0)
    out: dict[str, tuple[int, dict[str, str]]] = {}
    for name, meta in (md.topics.items() if md else ()):
        if meta.error_code:
            continue
        configs: dict[str, str] = {}
        if name in desired and desired[name].config:
            configs = {k: v for k, (v, _d) in client.describe_configs(name).items() if v is not None}
        out[name] = (len(meta.partitions), configs)
    return out


def apply(actions: list[Action], client: KafkaClient) -> list[str]:
    """Carry out a plan; one message per action. One topic's failure never stops the others."""
    messages = []
    for a in actions:
        try:
            if a.kind == CREATE:
                created = client.create_topic(a.topic, a.partitions or 1, a.replication, a.config,
                                              exist_ok=True, assignments=a.assignments)
                messages.append(f"created topic {a.topic} ({a.partitions} partitions)" if created
                                else f"topic {a.topic} already exists; left as it is")
            elif a.kind == ADD_PARTITIONS:
                client.create_partitions(a.topic, a.partitions, a.assignments)
                messages.append(f"grew topic {a.topic} to {a.partitions} partitions")
            elif a.kind == ALTER_CONFIG:
                client.alter_configs(a.topic, a.config)
                messages.append(f"set {_kv(a.config)} on topic {a.topic}")
            elif a.kind == WARN_SHRINK:
                messages.append(f"warning: {a.detail}")
            else:
                messages.append(f"skipped unknown action {a.kind!r} for topic {a.topic}")
        except KafkaClientError as e:
            if a.kind == CREATE and e.error_code == UNKNOWN_TOPIC_ID:   # a restore's id, deleted since
                messages.append(f"topic {a.topic} not put back: it was deleted since the catalog was written")
                continue
            messages.append(f"failed to {a.detail or a.kind}: {e}")
        except Exception as e:  # a bug or a broken connection must not stop the other topics
            messages.append(f"failed to {a.detail or a.kind}: {type(e).__name__}: {e}")
    return messages


def event_kind(message: str) -> str:
    """The supervisor's event kind for one line of apply(): what changed, or manifest."""
    for prefix, kind in (("created", "topic-created"), ("grew", "partitions-added"), ("set SASL", "sasl-users-set"),
                         ("set", "topic-config-set")):
        if prefix == "created" and message.endswith(("ACL binding", "ACL bindings")):
            return "acls-created"
        if message.startswith(prefix):
            return kind
    return "manifest"


def reconcile(desired: Mapping[str, TopicSpec], client: KafkaClient) -> list[str]:
    """plan + apply in one call (what `sandbox up`, a wipe and a reload do)."""
    try:
        actions = plan(desired, actual_state(client, desired))
    except KafkaClientError as e:
        return [f"failed to read the cluster's topics: {e}"]
    return apply(actions, client)


def apply_users(users: Mapping[str, str], client: KafkaClient, *, only_missing: bool = False) -> list[str]:
    return apply_users_retryable(users, client, only_missing=only_missing)[0]


def apply_users_retryable(users: Mapping[str, str], client: KafkaClient, *, only_missing: bool = False
                          ) -> tuple[list[str], bool]:
    """apply_users, and whether a failure is worth trying again (the cluster did not answer).
    [sasl] users: give each SCRAM-SHA-256 and SCRAM-SHA-512 credentials from its password (PLAIN
    logins are checked against them too). `only_missing`: just the users without credentials (after
    a destroyed coordinator journal); otherwise every declared user is set, so a changed password
    takes effect. Users not declared are left alone (never deleted). One line per change or failure."""
    if not users:
        return [], False
    try:
        wanted = dict(users)
        if only_missing:
            have = client.scram_users()
            wanted = {u: p for u, p in users.items() if have.get(u) != {1, 2}}
        client.set_scram_passwords(wanted)
    except KafkaClientError as e:   # retryable when the cluster did not answer (no error code)
        return [f"failed to set the SCRAM credentials of [sasl] users: {e}"], e.error_code is None
    return ([f"set SASL credentials of user(s) {', '.join(sorted(wanted))}"] if wanted else []), False


def apply_acls(bindings, client: KafkaClient) -> tuple[list[str], bool]:
    """[[acls]]: create the declared bindings the cluster lacks (one not declared any more is left,
    as a removed [sasl] user is; delete it with kafka-acls). One line per change or failure, and
    whether a failure is worth trying again (the cluster did not answer)."""
    if not bindings:
        return [], False
    try:
        have = {tuple(b) for b in client.acls()}
        missing = [list(b) for b in bindings if tuple(b) not in have]
        client.create_acls(missing)
    except KafkaClientError as e:
        if e.error_code == SECURITY_DISABLED:
            return ["failed to create the [[acls]] bindings: the brokers have no authorizer ([broker] "
                    "authorizer.class.name is empty); remove it to use ACLs"], False
        return [f"failed to create the [[acls]] bindings: {e}"], e.error_code is None
    return ([f"created {len(missing)} declared ACL binding{'' if len(missing) == 1 else 's'}"] if missing else []), False


class ManifestWatcher:
    """Watches sandbox.toml (via its folder: editors replace files) and re-parses it after each
    change: on_change(new config) when valid, on_error(sentence) when not (keep the last good)."""

    def __init__(self, path: Path, on_change: Callable[[SandboxConfig], None],
                 on_error: Callable[[str], None], *, debounce_s: float = 0.3,
                 force_polling: bool = False, poll_interval_s: float = 0.5) -> None:
        self.path = Path(path).absolute()
        self.on_change, self.on_error = on_change, on_error
        self.debounce_s, self.force_polling, self.poll_interval_s = debounce_s, force_polling, poll_interval_s
        self.polling = False
        self._observer = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._last_text: str | None = None
        self._stopped = False

    def _read(self) -> str | None:
        try:
            return self.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def start(self) -> "ManifestWatcher":
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers.polling import PollingObserver

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                names = {Path(str(p)).name for p in (event.src_path, getattr(event, "dest_path", ""))
                         if p}
                if watcher.path.name in names:
                    watcher._schedule()

        self._last_text = self._read()
        self._stopped = False
        folder = str(self.path.parent)
        observer = None
        if not self.force_polling:
            try:
                from watchdog.observers import Observer
                observer = Observer()
                observer.schedule(Handler(), folder, recursive=False)
                observer.start()
            except Exception:  # no inotify/FSEvents/ReadDirectoryChangesW: poll instead
                observer = None
        if observer is None:
            self.polling = True
            observer = PollingObserver(timeout=self.poll_interval_s)
            observer.schedule(Handler(), folder, recursive=False)
            observer.start()
        self._observer = observer
        return self

    def _schedule(self) -> None:
        with self._lock:
            if self._stopped:
                return
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.debounce_s, self._reload)
            self._timer.daemon = True
            self._timer.start()

    def _reload(self) -> None:
        with self._lock:
            if self._stopped:
                return
            text = self._read()
            if text is not None and text == self._last_text:
                return  # touched or saved unchanged: nothing to do
            self._last_text = text
        try:
            cfg = load_config(self.path)
        except ConfigError as e:
            self._call(self.on_error, str(e))
            return
        self._call(self.on_change, cfg)

    def _call(self, fn: Callable, arg) -> None:
        try:
            fn(arg)
        except Exception as e:  # a failing callback must not kill the watcher thread
            if fn is not self.on_error:
                self._call(self.on_error, f"reloading {self.path.name} failed: "
                                          f"{type(e).__name__}: {e}")

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    def __enter__(self) -> "ManifestWatcher":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
