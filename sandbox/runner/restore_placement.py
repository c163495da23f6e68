"""Where a topic the catalog knew is put back after a destroyed coordinator journal: each
partition led by the replica with the newest history, the topic under the id of its latest
making, placed where that making's folders are when they lie outside the catalog's placement.
The brokers are asked which folders they hold (DescribeLogDirs with this sandbox's tags) and how
far their logs go (ListOffsets); their folder times are compared with the catalog's on the clock
that wrote them (catalog.py keeps each broker's clock at its refresh)."""

from __future__ import annotations

import dataclasses
import statistics
import uuid
from typing import Callable, Collection, Mapping, Sequence

from sandbox.client import KafkaClient, KafkaClientError
from sandbox.config import TopicSpec
from sandbox.partition_metadata import newest_topic_id
from sandbox.protocol.extensions import RESTORE_LEADER_EPOCH, RESTORE_TOPIC_ID

PROBE_PARTITIONS = 64   # partitions of a topic each broker is asked about, at least (more if the catalog has more)


def lead_with_longest_logs(specs: dict[str, TopicSpec], client: KafkaClient,
                           folder_id: Callable[[int, str, int], tuple[uuid.UUID, float] | None] = lambda b, t, i: None,
                           catalog_time: float | None = None, brokers: Collection[int] = (),
                           broker_clocks: Mapping[int, float] | None = None
                           ) -> tuple[dict[str, TopicSpec], list[str]]:
    """Re-created after a destroyed coordinator journal, a partition starts afresh: its first
    replica leads and the others cut their logs to the leader's. So the replica with the newest
    history goes first: the newest leader epoch in its log, then the log that ends furthest, then
    the catalog's order. Every acknowledged record is on every replica that was in sync when it
    was acknowledged, and those hold the newest epoch, while a deposed leader that has not yet
    truncated may hold a longer tail of an older epoch that was never acknowledged (a follower
    would cut acknowledged records of the newer epoch to follow it: KIP-101's rule that the newest
    epoch's history wins). Leader epochs compare across earlier restores too, since a re-created
    topic's epochs start above every epoch its replicas held. Every broker is asked for its
    replicas' log ends (ListOffsets with the debugging replica id) and the topic ids their folders
    name (DescribeLogDirs with this sandbox's tag); one that does not answer counts as holding
    nothing. Before all that, a replica whose folder names another topic id than the topic's goes
    last (`folder_id(broker, topic, partition)`: the id its partition.metadata names and when that
    was written, read from disk, None where it cannot tell; then what the broker told): it holds
    an older topic of that name, deleted and made again while its broker was down (or paused) and
    kept because the journal that recorded the deletion was lost; its leader epochs count from
    another start and say nothing about which history is newer. The topic's id is the catalog's (`catalog_time`:
    when the catalog read the metadata), unless a folder naming another id was written since:
    then the catalog is older than the topic's latest making, and the id of the folder written
    last is the topic's (it is re-created under that id: its followers keep their logs, and
    clients find the id they knew). Every broker in `brokers` is asked too which folders of the
    topic it holds, up to PROBE_PARTITIONS partitions: where folders naming that newer id lie
    outside the catalog's placement (the topic was deleted and made again on other brokers, or
    with more partitions, within the catalog's refresh), the topic is placed where they are
    (_placed_by_folders; the catalog's placement would put the older topic back, empty, and the
    newer one's records would not be served). Returns the specs and one line per partition whose
    first replica changed, topic whose id is not the catalog's, or topic placed by its folders."""
    asks: dict[int, dict[str, list[int]]] = {}
    for name, spec in specs.items():
        for index, replicas in enumerate(spec.assignments or ()):
            for b in replicas:
                asks.setdefault(b, {}).setdefault(name, []).append(index)
    ends: dict[tuple[int, str, int], tuple[int, int]] = {}
    told: dict[tuple[int, str, int], tuple[uuid.UUID, float]] = {}   # folder ids the brokers told
    probe = {name: range(max(len(spec.assignments or ()), PROBE_PARTITIONS)) for name, spec in specs.items()}
    live = sorted(set(asks) | set(brokers))
    shifts = {b: catalog_time - c for b, c in (broker_clocks or {}).items()} if catalog_time is not None else {}
    default_shift = statistics.median(shifts.values()) if shifts else 0.0
    for broker in live:
        try:
            held = client.replica_folders(broker, probe)
        except KafkaClientError:   # holds nothing, as one not answering (its logs' ends alone would
            continue               # rank a folder of an older topic of that name it cannot tell apart)
        # a told time is on the broker's clock: moved onto ours by where that clock stood when
        # the catalog read the metadata, so "written after the catalog" is decided on one clock; a
        # broker the catalog has no clock of (down at the refresh: the paused one whose folders
        # matter most) is taken to be on the others' (Docker mode: one VM, one clock)
        shift = shifts.get(broker, default_shift)
        told.update({(broker, t, i): (fid, written + shift) for (t, i), (fid, written) in held.items()})
        wanted = {t: sorted(set(asks.get(broker, {}).get(t, ())) | {i for (n, i) in held if n == t}) for t in specs}
        wanted = {t: ps for t, ps in wanted.items() if ps}
        try:
            if wanted:
                ends.update({(broker, t, i): end for (t, i), end in client.replica_log_ends(broker, wanted).items()})
        except KafkaClientError:
            continue
    out, notes = dict(specs), []
    newest: dict[str, int] = {}   # the newest leader epoch any replica of the topic holds
    for (_b, t, _i), (_end, epoch) in ends.items():
        newest[t] = max(newest.get(t, -1), epoch)
    for name, spec in specs.items():
        try:
            known_id = uuid.UUID(spec.config[RESTORE_TOPIC_ID])
        except (KeyError, ValueError, TypeError):
            known_id = None
        def read(spec: TopicSpec) -> dict[tuple[int, int], tuple[uuid.UUID, float] | None]:
            return {(b, index): folder_id(b, name, index) or told.get((b, name, index))
                    for index, replicas in enumerate(spec.assignments or ()) for b in replicas}
        folders = read(spec)
        found = {**{(b, i): f for (b, t, i), f in told.items() if t == name}, **folders}
        topic_id = newest_topic_id(known_id, [f for f in found.values() if f is not None], catalog_time)
        placed_at = {(b, i) for i, replicas in enumerate(spec.assignments or ()) for b in replicas}
        astray = sorted(k for k, f in found.items() if f is not None and f[0] == topic_id and k not in placed_at)
        if known_id is not None and catalog_time is not None and topic_id != known_id and astray:
            spec = out[name] = _placed_by_folders(spec, topic_id, found, live)
            folders = read(spec)
            notes.append(f"{name}: put back where the folders of topic id {topic_id}, written after the catalog, "
                         f"are ({', '.join(f'broker {b} partition {i}' for b, i in astray)} among them): "
                         f"{spec.partitions} partition(s) on {[list(r) for r in spec.assignments]}")
        config = dict(spec.config)
        if newest.get(name, -1) >= 0:   # leader epochs go on from there: clients keep the old ones
            config[RESTORE_LEADER_EPOCH] = str(newest[name] + 1)
        if topic_id is not None and topic_id != known_id:
            config[RESTORE_TOPIC_ID] = str(topic_id)
            notes.append(f"{name}: re-created under topic id {topic_id}, which folders written after the catalog "
                         f"name (the catalog knew {known_id or 'none'})")
        if config != spec.config:
            spec = out[name] = dataclasses.replace(spec, config=config)
        placed, moved = [], False
        for index, replicas in enumerate(spec.assignments or ()):
            if len(replicas) > 1:
                def other(b: int) -> bool:   # its folder names another topic of that name
                    f = folders[(b, index)]
                    return topic_id is not None and f is not None and f[0] != topic_id

                def rank(b: int) -> tuple[int, int, int, int]:
                    end, epoch = ends.get((b, name, index), (-1, -1))
                    return int(not other(b)), epoch, end, -replicas.index(b)
                best = max(replicas, key=rank)
                if best != replicas[0]:
                    (_, e1, n1, _), (_, e0, n0, _) = rank(best), rank(replicas[0])
                    why = f"; broker {replicas[0]}'s folder holds another topic of that name" if other(replicas[0]) else ""
                    notes.append(f"{name}-{index}: broker {best} leads (its log ends at {n1} in leader epoch "
                                 f"{e1}, broker {replicas[0]}'s at {n0} in epoch {e0}{why})")
                    replicas, moved = (best, *(b for b in replicas if b != best)), True
            placed.append(tuple(replicas))
        if moved:
            out[name] = dataclasses.replace(spec, assignments=tuple(placed))
    return out, notes


def _placed_by_folders(spec: TopicSpec, topic_id: uuid.UUID, found: dict, live: Sequence[int]) -> TopicSpec:
    """`spec` placed where the folders naming `topic_id` are (`found`: (broker, partition) -> its
    folder's (topic id, written)), for a topic made again after the catalog last read it: as many
    partitions as they go to, each on the brokers holding one, then on brokers holding none of
    that partition up to the most copies any partition has (the catalog's configs are kept)."""
    holders: dict[int, list[int]] = {}
    for (b, i), f in sorted(found.items()):
        if f is not None and f[0] == topic_id:
            holders.setdefault(i, []).append(b)
    # as many copies as any partition has, or the catalog's replication if more (a follower that
    # was down had no folder yet); every partition gets as many (the coordinator refuses otherwise)
    n = max(holders) + 1
    rf = min(max(max(len(h) for h in holders.values()), spec.replication), len(live))

    def replicas(i: int) -> tuple[int, ...]:
        mine = holders.get(i, [])
        # fillers: brokers holding no folder of it first, then those holding another topic's
        spare = sorted((b for b in live if b not in mine), key=lambda b: (found.get((b, i)) is not None, b))
        return tuple((mine + spare)[:rf])
    return dataclasses.replace(spec, partitions=n, replication=rf, assignments=tuple(replicas(i) for i in range(n)))
