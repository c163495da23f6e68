"""What sandbox.toml declares beyond topics, applied to a running stack when the file is saved:
[sasl] users (their SCRAM credentials) and [[acls]] bindings. Each is tried at once, then every
RETRY_S while the cluster does not answer (it may be restarting); a failure is said once, and a
refusal for good is said and dropped (the next save tries again). A user or binding removed from
the file is kept, as Kafka keeps what its tools made."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Mapping

from sandbox.client import KafkaClient
from sandbox.runner.manifest import apply_acls, apply_users_retryable, event_kind

log = logging.getLogger("sandbox.runner")
RETRY_S = 5.0


class PendingDeclarations:
    def __init__(self, client: KafkaClient, record: Callable[[str, str, str], None]) -> None:
        self.client, self.record = client, record   # record(service, kind, detail): a supervisor event
        self._lock = threading.Lock()
        self._users: dict[str, str] = {}      # users whose credentials are still to be set
        self._acls: tuple | None = None       # the [[acls]] still to be created (None: none pending)
        self._retry_at, self._failing = 0.0, False

    def users_saved(self, was: Mapping[str, str], now: Mapping[str, str]) -> None:
        """A new user or a changed password, then tried at once."""
        with self._lock:
            self._users.update({u: p for u, p in now.items() if was.get(u) != p})
        self.retry(force=True)

    def acls_saved(self, acls: tuple) -> None:
        """The file's [[acls]] as saved, then tried at once."""
        with self._lock:
            self._acls = acls
        self.retry(force=True)

    def retry(self, force: bool = False) -> None:
        """Apply what is pending: when saved (force), then from the catalog's thread every RETRY_S."""
        with self._lock:
            if (not self._users and self._acls is None) or (not force and time.monotonic() < self._retry_at):
                return
            users, acls = dict(self._users), self._acls
            retry_acls = False
            try:
                msgs, retry = apply_users_retryable(users, self.client)
                if acls is not None:
                    more, retry_acls = apply_acls(acls, self.client)
                    msgs = msgs + more
            except Exception as e:   # noqa: BLE001 - on the catalog's thread: a bug must not stop it
                log.exception("[sasl] users or [[acls]] not set")
                msgs, retry = [f"failed to set [sasl] users or [[acls]]: {e!r}"], False
            failed = any(m.startswith("failed") for m in msgs)
            # each part done, or refused for good, is dropped; one the cluster did not answer stays
            if not retry:
                for u, p in users.items():
                    if self._users.get(u) == p:
                        del self._users[u]
            if acls is not None and not retry_acls and self._acls is acls:
                self._acls = None
            retry = retry or retry_acls
            if retry:   # the cluster did not answer: again in RETRY_S, the failure said once
                self._retry_at = time.monotonic() + RETRY_S
                if self._failing:   # what did go through (the other part) is still said
                    msgs = [m for m in msgs if not m.startswith("failed")]
            self._failing = retry
        for m in msgs:
            self.record("supervisor", event_kind(m), m + (f" (retried every {RETRY_S:g} s)" if failed and retry else ""))
