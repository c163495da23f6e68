"""The ACL invariant of the fault campaign (scripts/chaos.py): what an ACL closes stays closed
through every fault. The campaign's stack has a SASL listener with one user, `mallory`, and one
declared ACLs, `[[acls]]` DENY WRITE on topic GUARDED and DENY CREATE on the cluster and on topics
named `mallory-*` (Kafka's CreateTopics falls back to the topic's CREATE when the cluster's is
refused); with
`allow.everyone.if.no.acl.found = true` (the sandbox's default) a broker that lost its ACLs would
let her write there, or make topics (a coordinator's lost journal loses the topics too, and they come
back after the ACLs, so it is the cluster's ACL that such a moment would open). A probe writes there
and asks for a new topic twice a second as her, through one producer and one admin client that stay
logged in (their connections outlive a
coordinator's lost journal, which takes every login's credentials with it, so it is the client
that could use a broker that lost its ACLs; it refreshes its metadata every 200 ms, so a refusal it
keeps is never older than that), replaced by a new one (a fresh login) every REPLACE_EVERY
attempts. A write that is acknowledged, or a topic made, is a violation, with when and what was
going on; a refusal (TOPIC_ or CLUSTER_AUTHORIZATION_FAILED) is counted, so the campaign can tell the probe was answered at all;
a broker that does not answer (down, paused, cut off) is neither."""

from __future__ import annotations

import threading
import time

USER, PASSWORD = "mallory", "mallory-pw"
GUARDED = "chaos-guarded"
EVERY_S = 0.5             # between two attempts (each a new client: threads, a login)
ATTEMPT_S = 5.0           # one attempt's bound (librdkafka's message timeout)
REPLACE_EVERY = 20        # attempts of one producer (one login) before a new one


def toml(sasl_port: int) -> str:
    """What the campaign's sandbox.toml adds: the SASL listener, the user, the topic, the ACL."""
    return (f'\n[sasl]\nport = {sasl_port}\nusers = {{ {USER} = "{PASSWORD}" }}\n'
            f"\n[topics.{GUARDED}]\npartitions = 1\n"
            f'\n[[acls]]\nprincipal = "{USER}"\ntopic = "{GUARDED}"\noperations = ["write"]\npermission = "deny"\n'
            f'\n[[acls]]\nprincipal = "{USER}"\ncluster = true\noperations = ["create"]\npermission = "deny"\n'
            # Kafka's CreateTopics asks the topic's own CREATE when the cluster's is refused
            f'\n[[acls]]\nprincipal = "{USER}"\ntopic = "{USER}-"\npattern = "prefixed"\noperations = ["create"]\n'
            f'permission = "deny"\n')


class AclProbe:
    def __init__(self, sasl_bootstrap: str, what_now=lambda: "") -> None:
        self.bootstrap = sasl_bootstrap
        self.what_now = what_now      # the fault in progress, for a violation's message
        self.refused = 0              # attempts the cluster refused, as the ACL says
        self.unanswered = 0           # attempts that ended without an answer (a fault in progress)
        self.violations: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _conf(self) -> dict:
        return {"bootstrap.servers": self.bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                "sasl.username": USER, "sasl.password": PASSWORD, "socket.timeout.ms": int(ATTEMPT_S * 1000),
                "topic.metadata.refresh.interval.ms": 200, "log_level": 0}

    def _create(self, admin, n: int) -> None:
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import NewTopic

        name = f"mallory-{n}"
        try:
            admin.create_topics([NewTopic(name, 1, 1)], request_timeout=ATTEMPT_S)[name].result(ATTEMPT_S + 1)
        except KafkaException as e:
            code = e.args[0].code() if e.args else None
            if code in (KafkaError.CLUSTER_AUTHORIZATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED):
                self.refused += 1
            else:
                self.unanswered += 1
            return
        except Exception:   # noqa: BLE001 - timed out: not an answer
            self.unanswered += 1
            return
        self.violations.append(f"acl: {USER} made topic {name} ({time.strftime('%H:%M:%S')}, "
                               f"{self.what_now() or 'no fault in progress'}): the DENY CREATE on the cluster "
                               f"was not enforced")

    def _producer(self):
        from confluent_kafka import Producer

        return Producer({"bootstrap.servers": self.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                         "sasl.mechanism": "PLAIN", "sasl.username": USER, "sasl.password": PASSWORD,
                         "acks": 1, "retries": 0, "message.timeout.ms": int(ATTEMPT_S * 1000),
                         "socket.timeout.ms": int(ATTEMPT_S * 1000), "topic.metadata.refresh.interval.ms": 200,
                         "log_level": 0})

    def _attempt(self, p, n: int) -> None:
        from confluent_kafka import KafkaError

        got: list = []
        p.produce(GUARDED, value=f"mallory-{n}".encode(), on_delivery=lambda err, msg: got.append((err, msg)))
        p.flush(ATTEMPT_S + 1)
        if not got:
            self.unanswered += 1
            return
        err, msg = got[0]
        if err is None:
            self.violations.append(f"acl: {USER}'s write to {GUARDED} was acknowledged at offset {msg.offset()} "
                                   f"({time.strftime('%H:%M:%S')}, {self.what_now() or 'no fault in progress'}): "
                                   f"the DENY ACL was not enforced")
        elif err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            self.refused += 1
        else:
            self.unanswered += 1

    def _run(self) -> None:
        from confluent_kafka.admin import AdminClient

        n, p, admin = 0, None, None
        while not self.stop.is_set():
            try:
                if p is None or admin is None or n % REPLACE_EVERY == 0:
                    if p is not None:
                        p.purge()
                    p, admin = self._producer(), AdminClient(self._conf())
                self._attempt(p, n)
                self._create(admin, n)
            except Exception:   # noqa: BLE001 - a client that cannot even start: not an answer
                self.unanswered += 1
                p = admin = None
            n += 1
            self.stop.wait(EVERY_S)
        if p is not None:
            p.purge()
