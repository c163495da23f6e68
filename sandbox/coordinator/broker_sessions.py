"""Broker sessions in the metadata (a part of MetadataMachine): registration, heartbeats,
fencing, and the sessions that expire. A broker's epoch is the offset of its registration."""

from __future__ import annotations

import uuid
from typing import Any, Iterable

from sandbox.protocol.errors import (
    BROKER_ID_NOT_REGISTERED, DUPLICATE_BROKER_REGISTRATION, INVALID_REQUEST, STALE_BROKER_EPOCH,
)

from .listeners import Listeners, listener_map
from .model import BrokerInfo, CoordinatorError, TopicInfo, offline_dir_id

Record = dict[str, Any]


class BrokerSessions:
    """Mixed into MetadataMachine: uses its brokers, the sessions this process opened and its drafts."""

    _brokers: dict[int, BrokerInfo]
    _last_contact: dict[int, int]
    _live: set[int]
    _topics: dict[str, TopicInfo]

    def register_broker(self, broker_id: int, host: str, port: int, rack: str | None,
                        incarnation_id: uuid.UUID | str, now_ms: int | None = None,
                        listeners: Listeners | None = None) -> list[Record]:
        """Register (or re-register) a broker; its epoch is the offset of the registration
        record. A new incarnation of a broker that still holds a live session is refused.
        `listeners`: every listener's advertised address, (name, host, port) triples or a
        {name: (host, port)} mapping; host/port stay the primary address."""
        if not isinstance(broker_id, int) or broker_id < 0:
            raise CoordinatorError(INVALID_REQUEST, f"invalid broker id {broker_id!r}")
        if not isinstance(port, int) or not 0 < port < 65536:
            raise CoordinatorError(INVALID_REQUEST, f"invalid port {port!r}")
        named = listener_map(listeners)
        incarnation = uuid.UUID(str(incarnation_id))
        existing = self._brokers.get(broker_id)
        draft = self._draft()
        if existing is not None and existing.incarnation_id != incarnation:
            # A new incarnation on the SAME host:port replaces the old one at once: it could not
            # have bound that port while the old process lived (a restarted broker must not wait
            # out the old session). A different address with a live session is a real duplicate.
            same_endpoint = (existing.host, existing.port) == (host, port)
            if not existing.fenced and broker_id in self._live and not same_endpoint:
                raise CoordinatorError(DUPLICATE_BROKER_REGISTRATION, f"Another broker is "
                                       f"registered with broker id {broker_id}.")
            if not existing.fenced:  # the old incarnation is gone: take its leadership away
                draft.fence(broker_id)
            draft.new_incarnation(broker_id)
        record: Record = {"type": "register-broker", "broker_id": broker_id, "host": str(host),
                          "port": port, "rack": rack, "incarnation_id": str(incarnation),
                          "epoch": draft.machine.metadata_offset}
        if named:
            record["listeners"] = named
        draft.emit(record)
        draft.elect_returning(broker_id)
        self._live.add(broker_id)
        if now_ms is not None:
            self._last_contact[broker_id] = now_ms
        return draft.records

    def broker_heartbeat(self, broker_id: int, epoch: int, now_ms: int,
                         offline_dirs: Iterable[uuid.UUID] = ()) -> list[Record]:
        """Refresh a broker's session; a fenced broker with the current epoch is unfenced.
        `offline_dirs`: the heartbeat's OfflineLogDirs (KIP-858), one id per partition whose log
        the broker cannot open (model.offline_dir_id); every heartbeat tells the whole set, none
        (an older broker) meaning none. A change is journaled and its replicas of those partitions
        lose leadership and ISR membership (Draft.offline), or become eligible again."""
        info = self._require_broker(broker_id, epoch)
        self._last_contact[broker_id] = now_ms
        self._live.add(broker_id)
        draft = self._draft()
        offline = self._resolve_offline(broker_id, offline_dirs)
        if offline != info.offline:
            draft.offline(broker_id, offline)
        if info.fenced:
            draft.emit({"type": "unfence-broker", "broker_id": broker_id})
            draft.elect_returning(broker_id)
        return draft.records

    def _resolve_offline(self, broker_id: int, dirs: Iterable[uuid.UUID]) -> frozenset[tuple[uuid.UUID, int]]:
        """The partitions (topic id, index) of this broker's replicas that `dirs` names."""
        wanted = {uuid.UUID(str(d)) for d in dirs or () if d is not None}
        if not wanted:
            return frozenset()
        return frozenset((t.topic_id, p.index) for t in self._topics.values() for p in t.partitions
                         if broker_id in p.replicas and offline_dir_id(t.topic_id, p.index) in wanted)

    def fence_broker(self, broker_id: int, epoch: int | None = None) -> list[Record]:
        """Fence a broker now (controlled shutdown)."""
        info = self._require_broker(broker_id, epoch)
        draft = self._draft()
        if not info.fenced:
            draft.fence(broker_id)
        self._live.discard(broker_id)
        self._last_contact.pop(broker_id, None)
        return draft.records

    def restart_sessions(self, now_ms: int) -> None:
        """Every unfenced broker's session starts again now (the coordinator itself did not run
        for a while, so their silence says nothing about them)."""
        for bid in self.unfenced_brokers():
            self._last_contact[bid] = now_ms

    def fence_expired(self, now_ms: int, session_timeout_ms: int) -> list[Record]:
        """Fence every unfenced broker not heard from for longer than the session timeout."""
        draft = self._draft()
        for bid in self.unfenced_brokers():
            last = self._last_contact.setdefault(bid, now_ms)
            if now_ms - last > session_timeout_ms:
                draft.fence(bid)
                self._live.discard(bid)
                del self._last_contact[bid]
        return draft.records

    def _require_broker(self, broker_id: int, epoch: int | None) -> BrokerInfo:
        info = self._brokers.get(broker_id)
        if info is None:
            raise CoordinatorError(BROKER_ID_NOT_REGISTERED,
                                   f"Broker {broker_id} is not registered.")
        if epoch is not None and epoch != info.epoch:
            raise CoordinatorError(STALE_BROKER_EPOCH, f"Broker {broker_id} epoch {epoch} is "
                                   f"stale; the current epoch is {info.epoch}.")
        return info
