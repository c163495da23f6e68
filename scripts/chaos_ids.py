"""The fault campaign's watch on the cluster id clients are told (scripts/chaos.py): every broker
is asked for it twice a second while the faults run. A destroyed coordinator journal's
replacement answers with the id clients knew from its first write (the supervisor's catalog seeds
it), so any other id a broker answers with is a violation: librdkafka warns of it ("reports
different ClusterId ... a client must not be simultaneously connected to multiple clusters") and
tools that keep the id, such as Kafka Connect, take it for another cluster."""

from __future__ import annotations

import threading
from typing import Callable

INTERVAL_S = 0.5
ASK_TIMEOUT_S = 1.0


class ClusterIdWatch:
    """Asks brokers 1..`brokers` for their cluster id until stopped; `seen` holds each other id
    than `expected`, with the broker and what the campaign was at (`doing()`) when it was seen."""

    def __init__(self, bootstrap: str, brokers: int, expected: str, doing: Callable[[], str],
                 ask: Callable[[int], str | None] | None = None) -> None:
        self.bootstrap, self.brokers, self.expected, self.doing = bootstrap, brokers, expected, doing
        self.seen: dict[str, tuple[int, str]] = {}   # another id -> (broker, when) it was first seen
        self.asked = 0                               # answers received
        self.stop = threading.Event()
        self._ask = ask or self._ask_broker
        self._client = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _ask_broker(self, broker: int) -> str | None:
        from sandbox.client import KafkaClient
        if self._client is None:
            self._client = KafkaClient(self.bootstrap, timeout=ASK_TIMEOUT_S)
        return self._client.cluster_ids([broker]).get(broker)

    def once(self) -> None:
        for broker in range(1, self.brokers + 1):
            try:
                cid = self._ask(broker)
            except Exception:   # noqa: BLE001 - a broker down, paused or cut off: asked again soon
                if self._client is not None:
                    self._client.close()
                    self._client = None
                continue
            self.asked += 1
            if cid is not None and cid != self.expected and cid not in self.seen:
                self.seen[cid] = (broker, self.doing())

    def _run(self) -> None:
        try:
            while not self.stop.wait(INTERVAL_S):
                self.once()
        finally:
            if self._client is not None:
                self._client.close()

    def violations(self) -> list[str]:
        if self.asked == 0:
            return ["the cluster id watch got no answer from any broker"]
        return [f"broker {broker} answered with cluster id {cid} {when}, not {self.expected}"
                for cid, (broker, when) in self.seen.items()]
