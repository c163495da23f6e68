"""KafkaClient: a small blocking admin/probe client over sandbox.protocol, used by the CLI, the
supervisor and health probes to talk to brokers and the coordinator exactly as a user's client
would. Talks to the addresses it was given (an advertised address is matched to one of them by
port, for brokers behind published ports) and to other brokers advertised on the same host."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Collection
from typing import Any, Iterable

from sandbox.protocol.errors import LEADER_NOT_AVAILABLE, TOPIC_ALREADY_EXISTS, UNKNOWN_TOPIC_OR_PARTITION
from .base import (
    CREATE_PARTITIONS, CREATE_TOPICS, DELETE_TOPICS, DESCRIBE_CONFIGS, DESCRIBE_LOG_DIRS, EARLIEST, FETCH, LATEST, LIST_OFFSETS,
    METADATA, PRODUCE, SOURCE_DYNAMIC_TOPIC, TOPIC_RESOURCE, VERSIONS, _ATTEMPTS, RETRIABLE, _check, _locked,
    _same_host,
)
from .configs import ConfigAdmin
from .connection import Address, Connection, fmt, parse_bootstrap
from .groups import GroupAdmin, decode_assignment  # noqa: F401  (re-exported)
from .models import BrokerMeta, ClusterMetadata, Fetched, KafkaClientError, PartitionMeta, TopicMeta
from .transactions import TxnAdmin

class KafkaClient(GroupAdmin, TxnAdmin, ConfigAdmin):
    """Blocking Kafka admin client. `bootstrap` is 'host:port,...' or [(host, port), ...]."""

    def __init__(self, bootstrap: str | list[tuple[str, int]], *, client_id: str = "sandbox-cli",
                 timeout: float = 5.0) -> None:
        self.addresses: list[Address] = parse_bootstrap(bootstrap)
        self.client_id, self.timeout = client_id, timeout
        self._conns: dict[Address, Connection] = {}
        self._nodes: dict[int, Address] = {}
        self._unreachable: dict[int, str] = {}   # broker id -> why its advertised address is not used
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        with self._lock:
            for c in self._conns.values():
                c.close()
            self._conns.clear()

    def __enter__(self) -> "KafkaClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _conn(self, addr: Address) -> Connection:
        if addr not in self._conns:
            self._conns[addr] = Connection(addr, self.client_id, self.timeout)
        return self._conns[addr]

    def _send(self, addr: Address, api_key: int, data: dict) -> tuple[Any, int]:
        """One request to addr; a stale open socket (the node restarted) is retried once."""
        conn = self._conn(addr)
        lo, hi = VERSIONS[api_key]
        was_open = conn.sock is not None
        try:
            return conn.request(api_key, lo, hi, data)
        except KafkaClientError as e:
            if e.error_code is not None or not was_open:
                raise
            return conn.request(api_key, lo, hi, data)

    def _any(self, api_key: int, data: dict) -> tuple[Any, int]:
        """Send to the first bootstrap address that answers."""
        errors = []
        for addr in self.addresses:
            try:
                return self._send(addr, api_key, data)
            except KafkaClientError as e:
                if e.error_code is not None:
                    raise
                errors.append(e.message)
        if len(errors) == 1:
            raise KafkaClientError(errors[0])
        raise KafkaClientError("no broker answered: " + "; ".join(errors))

    def _allowed(self, host: str, port: int, what: str) -> Address:
        """Map an advertised address to one we were given (same host:port, else same port), else
        take it as it is when it is on a host we were given (another broker of the same machine)."""
        if (host, port) in self.addresses:
            return (host, port)
        for addr in self.addresses:
            if addr[1] == port:
                return addr
        if _same_host(host, [h for h, _ in self.addresses]):
            return (host, port)
        given = ", ".join(fmt(a) for a in self.addresses)
        raise KafkaClientError(f"{what} is at {fmt((host, port))}, which is not among the "
                               f"addresses this client was given ({given}); add it to the "
                               f"bootstrap list")

    def _node(self, node_id: int) -> Address:
        if node_id not in self._nodes:
            self._metadata([])
        if node_id in self._unreachable:
            raise KafkaClientError(self._unreachable[node_id])
        if node_id not in self._nodes:
            raise KafkaClientError(f"broker {node_id} is not in the cluster metadata")
        return self._nodes[node_id]

    def _brokers(self, skip: Collection[int] = ()) -> list[Address]:
        """The address of every broker in the metadata but those in `skip` (known not to answer;
        nothing is asked of them); the bootstrap addresses when the metadata names none."""
        md = self._metadata([])
        found = [self._nodes[b.id] for b in md.brokers if b.id in self._nodes and b.id not in skip]
        return list(dict.fromkeys(found or ([] if skip else self.addresses)))

    # ------------------------------------------------------------------ cluster

    @_locked
    def api_versions(self, node: int | str | tuple[str, int] | None = None
                     ) -> tuple[dict[int, tuple[int, int]], float]:
        """ApiVersions round trip: ({api_key: (min, max)}, latency in ms).

        node: None (first bootstrap address that answers), a broker id, or an address."""
        if node is None:
            targets = self.addresses
        elif isinstance(node, int):
            targets = [self._node(node)]
        else:
            targets = parse_bootstrap(node)
        errors = []
        for addr in targets:
            conn = self._conn(addr)
            try:
                return conn.api_versions()
            except KafkaClientError as e:
                errors.append(e.message)
        raise KafkaClientError(errors[0] if len(errors) == 1
                               else "no broker answered: " + "; ".join(errors))

    @_locked
    def metadata(self, topics: Iterable[str] | None = None) -> tuple[ClusterMetadata, float]:
        """Metadata for all topics (None) or the named ones: (ClusterMetadata, latency in ms)."""
        start = time.perf_counter()
        md = self._metadata(None if topics is None else list(topics))
        return md, (time.perf_counter() - start) * 1000

    def _metadata(self, topics: list[str] | None, auto_create: bool = False) -> ClusterMetadata:
        data = {"topics": None if topics is None else [{"name": t, "topic_id": None} for t in topics],
                "allow_auto_topic_creation": auto_create, "include_cluster_authorized_operations": False,
                "include_topic_authorized_operations": False}
        resp, _ = self._any(METADATA, data)
        brokers = [BrokerMeta(int(b.node_id), b.host, int(b.port)) for b in resp.brokers]
        for b in brokers:
            try:
                self._nodes[b.id] = self._allowed(b.host, b.port, f"broker {b.id}")
                self._unreachable.pop(b.id, None)
            except KafkaClientError as e:
                self._nodes.pop(b.id, None)
                self._unreachable[b.id] = e.message
        out: dict[str, TopicMeta] = {}
        for t in resp.topics:
            parts = sorted((PartitionMeta(int(p.partition_index), int(p.leader_id),
                                          [int(r) for r in p.replica_nodes],
                                          [int(r) for r in p.isr_nodes],
                                          int(getattr(p, "leader_epoch", -1)), int(p.error_code),
                                          [int(r) for r in getattr(p, "offline_replicas", ()) or ()])
                            for p in t.partitions), key=lambda p: p.index)
            out[t.name] = TopicMeta(t.name, getattr(t, "topic_id", None), parts,
                                    bool(t.is_internal), int(t.error_code))
        return ClusterMetadata(getattr(resp, "cluster_id", None), int(resp.controller_id),
                               brokers, out)

    def _topic(self, name: str, auto_create: bool = False) -> TopicMeta:
        meta = self._metadata([name], auto_create).topics.get(name)
        if meta is None:
            raise KafkaClientError(f"topic {name} does not exist", UNKNOWN_TOPIC_OR_PARTITION)
        if meta.error_code == UNKNOWN_TOPIC_OR_PARTITION:
            raise KafkaClientError(f"topic {name} does not exist", UNKNOWN_TOPIC_OR_PARTITION)
        _check(meta.error_code, f"metadata of topic {name}")
        return meta

    # ------------------------------------------------------------------ topics

    @_locked
    def create_topic(self, name: str, partitions: int = 1, replication: int = 1,
                     config: dict[str, Any] | None = None, *, exist_ok: bool = False,
                     assignments: list[list[int]] | None = None) -> bool:
        """Create a topic; True if created, False if it existed and exist_ok. With `assignments`
        (replica broker ids per partition) the topic is placed exactly so."""
        placed = [{"partition_index": i, "broker_ids": list(b)} for i, b in enumerate(assignments or [])]
        resp, _ = self._any(CREATE_TOPICS, {
            "topics": [{"name": name, "num_partitions": -1 if placed else partitions,
                        "replication_factor": -1 if placed else replication, "assignments": placed,
                        "configs": [{"name": k, "value": str(v)} for k, v in (config or {}).items()]}],
            "timeout": int(self.timeout * 1000), "validate_only": False})
        r = resp.topics[0]
        if int(r.error_code) == TOPIC_ALREADY_EXISTS and exist_ok:
            return False
        _check(r.error_code, f"creating topic {name}", r.error_message)
        return True

    @_locked
    def delete_topic(self, name: str) -> None:
        resp, _ = self._any(DELETE_TOPICS, {"topic_names": [name],
                                            "timeout": int(self.timeout * 1000)})
        r = resp.responses[0]
        _check(r.error_code, f"deleting topic {name}", getattr(r, "error_message", None))

    @_locked
    def create_partitions(self, name: str, total: int, assignments: list[list[int]] | None = None) -> None:
        """Grow topic `name` to `total` partitions (the new ones placed by `assignments` if given)."""
        placed = [{"broker_ids": list(b)} for b in assignments] if assignments else None
        resp, _ = self._any(CREATE_PARTITIONS, {
            "topics": [{"name": name, "count": total, "assignments": placed}],
            "timeout": int(self.timeout * 1000), "validate_only": False})
        r = resp.results[0]
        _check(r.error_code, f"growing topic {name} to {total} partitions", r.error_message)

    @_locked
    def describe_configs(self, name: str) -> dict[str, tuple[str | None, bool]]:
        """Topic configs: {key: (value, is_default)}; is_default means not set on the topic."""
        return {c.name: (c.value, int(c.config_source) != SOURCE_DYNAMIC_TOPIC)
                for c in self._resource_configs(TOPIC_RESOURCE, name, f"topic {name}")}

    @_locked
    def describe_topic_configs(self, names: Iterable[str], keys: list[str] | None = None
                               ) -> dict[str, dict[str, tuple[str | None, bool]]]:
        """describe_configs of many topics with one DescribeConfigs request per 500 of them (a
        stack of hundreds of topics asked one by one cost its broker a tenth of a core, every few
        seconds); `keys` limits the answer to those keys. A topic the broker could not describe
        (deleted meanwhile) is left out of the result."""
        names = list(names)
        out: dict[str, dict[str, tuple[str | None, bool]]] = {}
        for first in range(0, len(names), 500):
            resp, _ = self._any(DESCRIBE_CONFIGS, {
                "resources": [{"resource_type": TOPIC_RESOURCE, "resource_name": n, "configuration_keys": keys}
                              for n in names[first:first + 500]],
                "include_synonyms": False, "include_documentation": False})
            for r in resp.results:
                if int(r.error_code) == 0:
                    out[r.resource_name] = {c.name: (c.value, int(c.config_source) != SOURCE_DYNAMIC_TOPIC)
                                            for c in r.configs}
        return out

    @_locked
    def alter_configs(self, name: str, set: dict[str, Any] | None = None,
                      delete: Iterable[str] = ()) -> None:
        """IncrementalAlterConfigs: set these keys, reset those to their defaults."""
        self._alter_resource(TOPIC_RESOURCE, name, f"topic {name}", set, delete)

    # ------------------------------------------------------------------ offsets

    @_locked
    def end_offsets(self, topic: str, partitions: Iterable[int] | None = None, *,
                    isolation_level: int = 0, skip: Collection[int] = ()) -> dict[int, int]:
        """High watermark of each partition (all partitions when None), asked of its leader; with
        isolation_level=1 (read_committed) the last stable offset. Partitions led by a broker in
        `skip` (known not to answer) are left out."""
        return {p: o for (_, p), o in self._list_offsets({topic: partitions}, LATEST, isolation_level, skip).items()}

    @_locked
    def end_offsets_of(self, wanted: dict[str, Iterable[int]], *, skip: Collection[int] = ()
                       ) -> dict[tuple[str, int], int]:
        """end_offsets of many topics at once: {(topic, partition): high watermark}; a partition
        that cannot be answered (gone, no leader, its leader in `skip`) is left out."""
        return self._list_offsets(dict(wanted), LATEST, skip=skip, lenient=True)

    @_locked
    def start_offsets(self, topic: str, partitions: Iterable[int] | None = None) -> dict[int, int]:
        """Log start offset of each partition (all partitions when None)."""
        return {p: o for (_, p), o in self._list_offsets({topic: partitions}, EARLIEST).items()}

    @_locked
    def offsets_for_time(self, topic: str, timestamp_ms: int, partitions: Iterable[int] | None = None
                         ) -> dict[int, int]:
        """The first offset of each partition whose record's timestamp is at or after
        `timestamp_ms` (ListOffsets by time); the log end offset where none is (Kafka answers -1
        there, and its tools then take the end)."""
        found = {p: o for (_, p), o in self._list_offsets({topic: partitions}, int(timestamp_ms)).items()}
        missing = [p for p, o in found.items() if o < 0]
        if missing:
            found.update({p: o for (_, p), o in self._list_offsets({topic: missing}, LATEST).items()})
        return found

    @_locked
    def cluster_ids(self, brokers: Iterable[int]) -> dict[int, str | None]:
        """The cluster id each of these brokers answers Metadata with, asked of each one (a broker
        that has not yet taken up a replaced coordinator journal's metadata names the old one)."""
        out: dict[int, str | None] = {}
        for b in brokers:
            resp, _ = self._send(self._node(b), METADATA, {
                "topics": [], "allow_auto_topic_creation": False,
                "include_cluster_authorized_operations": False, "include_topic_authorized_operations": False})
            out[b] = getattr(resp, "cluster_id", None)
        return out

    @_locked
    def replica_folders(self, broker: int, partitions: dict[str, Iterable[int]]
                        ) -> dict[tuple[str, int], tuple[uuid.UUID, float]]:
        """The topic id each of the named partitions' folders on one broker names (its
        partition.metadata) and when that was written (seconds since the epoch, by the broker's
        clock: broker_clock), asked with
        DescribeLogDirs and this sandbox's tag for them (sandbox.protocol.log_dirs). Folders the
        broker does not hold, or that name no id, are left out."""
        resp, _ = self._send(self._node(broker), DESCRIBE_LOG_DIRS, {"folder_ids": True, "topics": [
            {"topic": t, "partitions": sorted(ps)} for t, ps in partitions.items()]})
        return {(t.name, int(p.partition_index)): (p.topic_id, p.metadata_written_ms / 1000)
                for d in resp.results for t in d.topics for p in t.partitions
                if getattr(p, "topic_id", None) and p.topic_id.int and p.metadata_written_ms >= 0}

    @_locked
    def broker_clock(self, broker: int) -> float | None:
        """One broker's clock now (seconds since the epoch; None if it does not tell), the clock
        the times replica_folders tells are on: in Docker mode not the supervisor's own."""
        resp, _ = self._send(self._node(broker), DESCRIBE_LOG_DIRS, {"folder_ids": True, "topics": []})
        now_ms = getattr(resp, "now_ms", -1)
        return now_ms / 1000 if now_ms >= 0 else None

    @_locked
    def replica_log_ends(self, broker: int, partitions: dict[str, Iterable[int]]
                         ) -> dict[tuple[str, int], tuple[int, int]]:
        """(log end offset, newest leader epoch in its log) of the named partitions' replicas on
        one broker, leader or not: ListOffsets latest with Kafka's debugging replica id (-2).
        Partitions the broker does not hold are left out."""
        resp, _ = self._send(self._node(broker), LIST_OFFSETS, {
            "replica_id": -2, "isolation_level": 0,
            "topics": [{"name": t, "partitions": [
                {"partition_index": p, "current_leader_epoch": -1, "timestamp": LATEST,
                 "max_num_offsets": 1} for p in sorted(ps)]} for t, ps in partitions.items()]})
        out: dict[tuple[str, int], tuple[int, int]] = {}
        for t in resp.topics:
            for p in t.partitions:
                if int(p.error_code) == 0 and int(p.offset) >= 0:
                    out[(t.name, int(p.partition_index))] = (int(p.offset), int(getattr(p, "leader_epoch", -1)))
        return out

    def _list_offsets(self, wanted: dict[str, Iterable[int] | None], ts: int, isolation_level: int = 0,
                      skip: Collection[int] = (), *, lenient: bool = False) -> dict[tuple[str, int], int]:
        """Offsets asked of each partition's leader (one Metadata request for all the topics, one
        ListOffsets per leader); partitions led by a broker in `skip` (known not to answer) are
        left out. lenient: a topic or partition that cannot be answered (gone, no leader, an
        error) is left out instead of raising KafkaClientError."""
        out: dict[tuple[str, int], int] = {}
        todo = {t: None if ps is None else sorted(ps) for t, ps in wanted.items()}
        for attempt in range(_ATTEMPTS):
            metas = self._metadata(list(todo)).topics
            by_leader: dict[int, dict[str, list[int]]] = {}
            for topic, parts in todo.items():
                meta = metas.get(topic)
                try:
                    if meta is None or meta.error_code == UNKNOWN_TOPIC_OR_PARTITION:
                        raise KafkaClientError(f"topic {topic} does not exist", UNKNOWN_TOPIC_OR_PARTITION)
                    _check(meta.error_code, f"metadata of topic {topic}")
                except KafkaClientError:
                    if lenient:
                        continue
                    raise
                known = {p.index: p for p in meta.partitions}
                for p in (sorted(known) if parts is None else parts):
                    if p not in known:
                        if lenient:
                            continue
                        raise KafkaClientError(f"topic {topic} has no partition {p}", UNKNOWN_TOPIC_OR_PARTITION)
                    if known[p].leader < 0:
                        if lenient:
                            continue
                        raise KafkaClientError(f"partition {topic}-{p} has no leader", LEADER_NOT_AVAILABLE)
                    if known[p].leader in skip:
                        continue
                    by_leader.setdefault(known[p].leader, {}).setdefault(topic, []).append(p)
            retry: dict[str, list[int]] = {}
            for leader, topics in by_leader.items():
                try:
                    resp, _ = self._send(self._node(leader), LIST_OFFSETS, {
                        "replica_id": -1, "isolation_level": isolation_level,
                        "topics": [{"name": t, "partitions": [
                            {"partition_index": p, "current_leader_epoch": -1, "timestamp": ts,
                             "max_num_offsets": 1} for p in ps]} for t, ps in topics.items()]})
                except KafkaClientError:
                    if lenient:
                        continue
                    raise
                for t in resp.topics:
                    for p in t.partitions:
                        code = int(p.error_code)
                        if code in RETRIABLE and attempt + 1 < _ATTEMPTS:
                            retry.setdefault(t.name, []).append(int(p.partition_index))
                            continue
                        if code and lenient:
                            continue
                        _check(code, f"listing offsets of {t.name}-{p.partition_index}")
                        out[(t.name, int(p.partition_index))] = int(p.offset)
            if not retry:
                return out
            todo = retry
            time.sleep(0.1 * (attempt + 1))
        return out

    # ------------------------------------------------------------------ records

    def _leader(self, topic: str, partition: int) -> Address:
        meta = self._topic(topic)
        part = next((p for p in meta.partitions if p.index == partition), None)
        if part is None:
            raise KafkaClientError(f"topic {topic} has no partition {partition}", UNKNOWN_TOPIC_OR_PARTITION)
        if part.leader < 0:
            raise KafkaClientError(f"partition {topic}-{partition} has no leader", LEADER_NOT_AVAILABLE)
        return self._node(part.leader)

    def partitions(self, topic: str, *, auto_create: bool = False) -> list[int]:
        """The topic's partition numbers; auto_create: let the broker create it if its
        auto.create.topics.enable allows (as a producing client does)."""
        with self._lock:
            for attempt in range(20):   # an auto-created topic has leaders a moment later
                try:
                    meta = self._topic(topic, auto_create)
                except KafkaClientError as e:
                    if e.error_code != LEADER_NOT_AVAILABLE or attempt == 19:   # still being created
                        raise
                    time.sleep(0.1)
                    continue
                if meta.partitions and all(p.leader >= 0 for p in meta.partitions):
                    break
                time.sleep(0.1)
            return [p.index for p in meta.partitions]

    @_locked
    def produce(self, topic: str, partition: int, records: list[tuple[bytes | None, bytes | None]],
                *, acks: int = -1) -> int:
        """Append `records` ((key, value) pairs) to one partition as one uncompressed batch, sent to
        its leader; returns the offset of the first (-1 with acks=0, which gets no answer)."""
        from sandbox.protocol.records import encode_batch   # the CLI's produce only: not in every process

        if acks == 0:
            raise KafkaClientError("acks=0 is not supported by this client: it cannot report the offset")
        batch = encode_batch(0, records)
        for attempt in range(_ATTEMPTS):
            resp, _ = self._send(self._leader(topic, partition), PRODUCE, {
                "transactional_id": None, "acks": acks, "timeout": int(self.timeout * 1000),
                "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": batch}]}]})
            p = resp.responses[0].partition_responses[0]
            code = int(p.error_code)
            if code in RETRIABLE and attempt + 1 < _ATTEMPTS:
                time.sleep(0.1 * (attempt + 1))
                continue
            _check(code, f"producing to {topic}-{partition}", getattr(p, "error_message", None))
            return int(p.base_offset)
        raise KafkaClientError(f"producing to {topic}-{partition} failed: the leader kept moving")

    @_locked
    def fetch(self, topic: str, offsets: dict[int, int], *, max_bytes: int = 1 << 20,
              max_wait_ms: int = 500, isolation_level: int = 0) -> dict[int, Fetched]:
        """{partition: (records from its offset on, high watermark, next offset)} for `offsets`
        ({partition: offset}), one request per leader, each waiting up to max_wait_ms for data.
        Compressed batches are expanded, control batches (transaction markers) skipped; the next
        offset is past every batch read, skipped ones too. Records are
        sandbox.protocol.records.Record. isolation_level=1 (read_committed): only committed
        records, up to the last stable offset, which is answered instead of the high watermark."""
        from sandbox.protocol.records import RecordsError, decode_batches, next_offset   # the CLI's consume only

        from sandbox.compression import decompress

        meta = self._topic(topic)
        leaders = {p.index: p.leader for p in meta.partitions}
        by_leader: dict[int, list[int]] = {}
        for part in sorted(offsets):
            if part not in leaders:
                raise KafkaClientError(f"topic {topic} has no partition {part}", UNKNOWN_TOPIC_OR_PARTITION)
            if leaders[part] < 0:
                raise KafkaClientError(f"partition {topic}-{part} has no leader", LEADER_NOT_AVAILABLE)
            by_leader.setdefault(leaders[part], []).append(part)
        out: dict[int, Fetched] = {}
        for leader, parts in by_leader.items():
            resp, _ = self._send(self._node(leader), FETCH, {
                "replica_id": -1, "max_wait": max_wait_ms, "min_bytes": 1, "max_bytes": max_bytes,
                "isolation_level": isolation_level, "session_id": 0, "session_epoch": -1, "rack_id": "",
                "topics": [{"topic": topic, "partitions": [
                    {"partition": p, "current_leader_epoch": -1, "fetch_offset": offsets[p],
                     "last_fetched_epoch": -1, "log_start_offset": -1, "partition_max_bytes": max_bytes}
                    for p in parts]}],
                "forgotten_topics_data": []})
            for t in resp.responses:
                for p in t.partitions:
                    part, code = int(p.partition_index), int(p.error_code)
                    if code in RETRIABLE:   # moved: nothing this round, the caller asks again
                        self._nodes.pop(leader, None)
                        out[part] = Fetched([], -1, offsets[part])
                        continue
                    _check(code, f"fetching {topic}-{part} at offset {offsets[part]}")
                    committed = isolation_level == 1
                    aborted = [(int(a.producer_id), int(a.first_offset)) for a in p.aborted_transactions or ()]
                    data = bytes(p.records or b"")
                    try:
                        records = decode_batches(data, decompress=decompress, aborted=aborted if committed else None)
                    except RecordsError as e:
                        raise KafkaClientError(f"fetching {topic}-{part}: {e}") from None
                    end = int(p.last_stable_offset) if committed else int(p.high_watermark)
                    out[part] = Fetched([r for r in records if r.offset >= offsets[part]], end,
                                        next_offset(data, offsets[part]))
        return out
