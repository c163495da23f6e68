"""The topic catalog (`topics.json` in the data folder): every topic the stack knew, declared or
created by applications, with its placement, committed group offsets, client quotas and group
configs, ACLs, SCRAM credentials and the cluster id, so a wiped journal gets them back. SCRAM
credentials are kept as the coordinator's journal keeps them (salt, stored and server keys, never a
password), and the file is readable by its owner only."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any, Callable, Collection, Iterable, Sequence

from sandbox.client import KafkaClient, KafkaClientError
from sandbox.client.base import RETRIABLE
from sandbox.client.partitioner import OFFSETS_TOPIC, TXN_TOPIC, coordinator_partition
from sandbox.config import SandboxConfig, TopicSpec
from sandbox.protocol.errors import SECURITY_DISABLED, UNKNOWN_TOPIC_OR_PARTITION
from sandbox.protocol.extensions import RESTORE_TOPIC_ID
from sandbox.runner.statefile import write_state

CATALOG_FILE = "topics.json"


def load_catalog(cfg: SandboxConfig) -> dict[str, TopicSpec]:
    raw = _read(cfg)
    out = {}
    for n, t in raw.get("topics", {}).items():
        placed = t.get("assignments")
        out[n] = TopicSpec(n, t["partitions"], t.get("replication", 1), dict(t.get("config", {})),
                           tuple(tuple(b) for b in placed) if placed else None)
    return out


def with_topic_ids(specs: dict[str, TopicSpec], cfg: SandboxConfig) -> dict[str, TopicSpec]:
    """The specs, each topic the catalog knows asking for the topic id it had: re-created after a
    destroyed coordinator journal it is the same topic with the same data, and clients must see it
    so (under a new id it is, to them, a topic deleted and made again)."""
    ids = {n: t.get("topic_id") for n, t in _read(cfg).get("topics", {}).items() if isinstance(t, dict)}
    return {name: dataclasses.replace(spec, config={**spec.config, RESTORE_TOPIC_ID: ids[name]})
            if ids.get(name) else spec for name, spec in specs.items()}


def catalog_time(cfg: SandboxConfig) -> float | None:
    """When the catalog was last written (its `updated`), None if there is none."""
    t = _read(cfg).get("updated")
    return float(t) if isinstance(t, (int, float)) else None


def save_catalog(cfg: SandboxConfig, client: KafkaClient, still_valid: Callable[[], bool] = lambda: True,
                 down: Collection[int] = (), topics_from: KafkaClient | None = None) -> bool:
    """Refresh the catalog from the cluster; `still_valid` is asked once everything is read (a
    journal wiped meanwhile makes the read worthless); brokers in `down` (not answering) are not
    asked for their groups. The topics and their configs are read from `topics_from` (the
    coordinator: a broker that was paused or cut off answers with the metadata it had then, and
    a topic deleted and made again meanwhile would be recorded as the older one, under its id and
    after the newer one's folders were written, so a restore would put the older one back and
    set the newer one's records aside), else from `client`. Returns whether the file was written."""
    # the time of the metadata read, not of the write: the groups read after it can take seconds,
    # and a folder written meanwhile belongs to a topic this catalog may not know
    started = time.time()
    source = topics_from or client
    md, _ = source.metadata()
    if topics_from is not None:   # the coordinator lists the internal topics only when named
        named, _ = source.metadata([OFFSETS_TOPIC, TXN_TOPIC])
        md = dataclasses.replace(md, topics={**md.topics, **{
            n: t for n, t in named.topics.items() if t.error_code == 0 and t.partitions}})
    described = source.describe_topic_configs(md.topics)   # one request for them all
    clocks = _broker_clocks(client, md, started, down)
    topics = {}
    for name, t in md.topics.items():
        # internal topics too: after a destroyed coordinator journal `__transaction_state` and
        # `__consumer_offsets` must come back where their data is (a transaction coordinator
        # that lost its state leaves a transaction's writes without markers, and a later marker of
        # the same producer would commit them with another transaction)
        if name not in described:   # deleted meanwhile, or not answered: refresh next time
            raise KafkaClientError(f"the configs of topic {name} could not be read")
        cfgs = {k: v for k, (v, is_default) in described[name].items() if not is_default}
        rf = len(t.partitions[0].replicas) if t.partitions else 1
        placed = [list(p.replicas) for p in sorted(t.partitions, key=lambda p: p.index)]
        topics[name] = {"partitions": len(t.partitions), "replication": rf, "config": cfgs,
                        "assignments": placed, "topic_id": str(t.topic_id) if t.topic_id else None}
    # a broker down or a group coordinator moving keeps those groups' offsets as last refreshed:
    # the topics are refreshed all the same (the catalog stood still while a group's coordinator
    # was away, and a coordinator journal destroyed then lost the topics made meanwhile)
    previous = _read(cfg)   # what this refresh cannot read is kept from it
    before = previous.get("groups")
    before = before if isinstance(before, dict) else {}
    failed: list[str] = []
    unasked: set[int] = set(down)
    listed = client.list_groups(skip=down, failed=failed, failed_nodes=unasked)
    # a known group no broker listed is kept as last read while its coordinator cannot be asked
    # (down, not answering, no leader); otherwise its coordinator is asked for its offsets
    # directly (leadership may have moved between the metadata read and the listings, and a
    # broker lists only the groups it has loaded): none means it was deleted or expired (a group
    # deleted while another broker was down used to come back with a restore)
    away = _coordinator_away(md, unasked)
    listed_names = [g.group for g in listed]
    seen = set(listed_names)
    kept = [g for g in before if g not in seen and away(g)]
    groups = {g: before[g] for g in kept}
    for name in listed_names + [g for g in before if g not in seen and g not in kept]:
        try:
            committed = client.committed_offsets(name)
        except KafkaClientError:
            if name in before:
                groups[name] = before[name]
            continue
        if committed:
            groups[name] = {f"{t}:{p}": off for (t, p), off in committed.items()}
        else:
            groups.pop(name, None)
    try:
        quotas = [{"entity": [list(e) for e in entity], "values": values}
                  for entity, values in sorted(client.client_quotas().items(), key=lambda kv: str(kv[0]))]
    except KafkaClientError:   # kept from the last refresh
        quotas = previous.get("quotas", [])
    try:
        group_configs = {g: client.group_configs(g) for g in client.configured_groups()}
    except KafkaClientError:   # kept from the last refresh
        group_configs = previous.get("group_configs", {})
    try:
        acls = client.acls()
    except KafkaClientError:   # kept from the last refresh
        acls = previous.get("acls", [])
    try:   # users made with tools too (the file's [sasl] users are set again anyway)
        scram = client.scram_keys()
    except KafkaClientError:   # kept from the last refresh
        scram = previous.get("scram", {})
    try:   # dynamic broker configs: the cluster-wide default's, then each broker's own, asked of
        # that broker (a broker describes only "" and its own id, as Kafka's do); a broker the
        # metadata does not list now (stopped or fenced), one down or not answering keeps what it had
        dynamic = {k: v for k, v in previous.get("broker_configs", {}).items() if k}
        dynamic[""] = client.broker_configs("")
        for b in md.brokers:
            if b.id not in down:
                try:
                    dynamic[str(b.id)] = client.broker_configs(str(b.id))
                except KafkaClientError:
                    pass
        dynamic = {k: v for k, v in dynamic.items() if v}
    except KafkaClientError:   # kept from the last refresh
        dynamic = previous.get("broker_configs", {})
    if not still_valid():
        return False
    write_state(cfg.data_dir / CATALOG_FILE, private=True, durable=True, data={"updated": started, "cluster_id": md.cluster_id,
                                              "topics": topics, "groups": groups,
                                              "quotas": quotas, "group_configs": group_configs, "acls": acls,
                                              "broker_configs": dynamic, "broker_clocks": clocks,
                                              "scram": scram})
    return True


def _broker_clocks(client: KafkaClient, md: Any, started: float, down: Collection[int] = ()) -> dict[str, float]:
    """Each broker's clock when the metadata was read (`started`, by ours): its clock now less our
    time since, so never later than it was (a folder written in between counts as written after
    the catalog, which only ever prefers the newer topic's id). The folders' times are on these
    clocks, and in Docker mode they are not ours: Docker Desktop's VM clock drifts after a laptop
    sleeps. A broker in `down` is not asked (a paused one would hold the refresh for the client's
    timeout), and one that does not answer gets none (the restore then takes the others')."""
    clocks = {}
    for b in md.brokers:
        if b.id in down:
            continue
        try:
            now = client.broker_clock(b.id)
        except KafkaClientError:
            continue
        if now is not None:
            clocks[str(b.id)] = now - (time.time() - started)
    return clocks


def catalog_clocks(cfg: SandboxConfig) -> dict[int, float]:
    """Each broker's clock when the catalog read the metadata (see _broker_clocks)."""
    raw = _read(cfg).get("broker_clocks")
    if not isinstance(raw, dict):
        return {}
    return {int(b): float(t) for b, t in raw.items() if str(b).isdigit() and isinstance(t, (int, float))}


def _coordinator_away(md: Any, unasked: set[int]) -> Callable[[str], bool]:
    """Whether a group's coordinator (the leader of its `__consumer_offsets` partition in `md`)
    could not be asked: leaderless, unknown, or one of `unasked`."""
    offsets = md.topics.get(OFFSETS_TOPIC)
    leaders = {p.index: p.leader for p in offsets.partitions} if offsets is not None else {}

    def away(group: str) -> bool:
        if not leaders:
            return True
        leader = leaders.get(coordinator_partition(group, len(leaders)), -1)
        return leader < 0 or leader in unasked
    return away


def _read(cfg: SandboxConfig) -> dict:
    try:
        raw = json.loads((cfg.data_dir / CATALOG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def saved_scram(cfg: SandboxConfig) -> dict:
    """The catalog's SCRAM credentials ({user: {mechanism: salt, keys, iterations}})."""
    raw = _read(cfg).get("scram")
    return raw if isinstance(raw, dict) else {}


def saved_acls(cfg: SandboxConfig) -> list[list]:
    """The catalog's ACL bindings (7-element lists, the form client.acls() gives)."""
    return [list(b) for b in _read(cfg).get("acls", []) if isinstance(b, list) and len(b) == 7]


def restore_acls(cfg: SandboxConfig, client: KafkaClient, declared: Iterable[Sequence] = ()) -> tuple[int, int]:
    """Put back the ACL bindings a wipe lost, the catalog's and the file's [[acls]] (the first thing
    restored: until then every resource counts as having no ACL, which
    allow.everyone.if.no.acl.found opens): how many were created, and how many were there already
    (the coordinator's fresh journal starts with the catalog's: --seed-acls). Brokers without an
    authorizer now: (0, 0)."""
    saved = saved_acls(cfg)
    saved += [list(b) for b in declared if list(b) not in saved]
    if not saved:
        return 0, 0
    have = {tuple(b) for b in client.acls()}
    lost = [b for b in saved if tuple(b) not in have]
    try:
        client.create_acls(lost)
    except KafkaClientError as e:
        if e.error_code == SECURITY_DISABLED:   # nothing enforces them, so nothing is open meanwhile
            return 0, 0
        raise
    return len(lost), len(saved) - len(lost)


def restore_configs(cfg: SandboxConfig, client: KafkaClient) -> list[str]:
    """Put back client quotas and group configs a wipe lost (a value set since is kept)."""
    raw = _read(cfg)
    restored = []
    current = client.client_quotas()
    missing = {}
    for q in raw.get("quotas", []):
        entity = tuple((str(t), n) for t, n in q["entity"])
        lost = {k: v for k, v in q["values"].items() if k not in current.get(entity, {})}
        if lost:
            missing[entity] = lost
    if missing:
        client.alter_client_quotas(missing)
        restored.append(f"client quotas of {len(missing)} entit{'y' if len(missing) == 1 else 'ies'}")
    return restored + _put_back(raw.get("group_configs", {}), client.group_configs, client.alter_group_configs,
                                lambda group: f"configs of group {group}")


def _put_back(saved: dict, read: Callable[[str], dict], alter: Callable[[str, dict], None],
              what: Callable[[str], str]) -> list[str]:
    """Set again, per resource, the saved configs it no longer has (one set since is kept)."""
    restored = []
    for name, values in sorted(saved.items()):
        now = read(name)
        lost = {k: v for k, v in values.items() if k not in now}
        if lost:
            alter(name, lost)
            restored.append(what(name))
    return restored


def restore_broker_configs(cfg: SandboxConfig, client: KafkaClient) -> list[str]:
    """Put back the dynamic broker configs a wipe lost (a value set since is kept). Before the
    topics: until then their partitions would follow the [broker] settings (a dynamic retention
    of -1 back to 7 days could delete records)."""
    registered = {str(b.id) for b in client.metadata()[0].brokers}
    saved = {name: values for name, values in _read(cfg).get("broker_configs", {}).items()
             if not name or name in registered}   # a broker no longer in the stack: nothing to put back
    return _put_back(saved, client.broker_configs, client.alter_broker_configs,
                     lambda name: f"dynamic configs of {'every broker' if not name else 'broker ' + name}")


def saved_cluster_id(cfg: SandboxConfig) -> str | None:
    """The cluster id the catalog kept (a fresh coordinator journal starts with it: --seed-acls)."""
    found = _read(cfg).get("cluster_id")
    return found if isinstance(found, str) and found else None


def forget_cluster_id(cfg: SandboxConfig) -> None:
    """`sandbox recover --wipe` starts a new cluster (its records and offsets are gone): its fresh
    coordinator journal must not answer with the old cluster id, as a destroyed one's does."""
    raw = _read(cfg)
    if raw.pop("cluster_id", None) is not None:
        write_state(cfg.data_dir / CATALOG_FILE, raw, private=True, durable=True)


def forget_topics(cfg: SandboxConfig, names: Collection[str]) -> None:
    """Topics deleted under a fresh coordinator journal before its restore reached them leave the
    catalog at once, with the groups' offsets in them (a journal destroyed again before the next
    refresh would have them put back, empty)."""
    raw = _read(cfg)
    if not names or not raw:
        return
    raw["topics"] = {n: t for n, t in (raw.get("topics") or {}).items() if n not in names}
    raw["groups"] = {g: {k: o for k, o in offsets.items() if k.rpartition(":")[0] not in names}
                     for g, offsets in (raw.get("groups") or {}).items()}
    write_state(cfg.data_dir / CATALOG_FILE, raw, private=True, durable=True)


def restore_cluster_id(cfg: SandboxConfig, client: KafkaClient) -> str | None:
    """The last step of putting a destroyed coordinator journal's state back: the cluster id
    clients knew. The fresh journal normally starts with it (the catalog seeds it); otherwise it
    made a new one, which is replaced here. What was done, said for an event (None: no id kept)."""
    saved = saved_cluster_id(cfg)
    if not saved:
        return None
    if client.metadata()[0].cluster_id == saved:
        return f"cluster id {saved} kept"
    client.restore_cluster_id(saved)
    return f"cluster id {saved} put back"


# the client already asks a moving or loading group coordinator 3 times in 0.3 s; right after a
# restore the offsets topic may load, or wait for its followers to rejoin its ISR (the coordinator
# answers a refused write COORDINATOR_NOT_AVAILABLE), for longer: the same errors, asked for longer
COMMIT_PATIENCE_S = 5.0   # the supervisor heals nothing else meanwhile


def _commit_patiently(client: KafkaClient, group: str, offsets: dict[tuple[str, int], int],
                      patience_s: float, sleep: Callable[[float], None], clock: Callable[[], float]) -> None:
    deadline = clock() + patience_s
    while True:
        try:
            client.commit_offsets(group, offsets)
            return
        except KafkaClientError as e:
            if e.error_code not in RETRIABLE or clock() >= deadline:
                raise
        sleep(0.25)


def restore_group_offsets(cfg: SandboxConfig, client: KafkaClient, *, patience_s: float = COMMIT_PATIENCE_S,
                          sleep: Callable[[float], None] = time.sleep,
                          clock: Callable[[], float] = time.monotonic, skip: Collection[str] = ()) -> list[str]:
    """Put back committed offsets a wipe lost, where the data they point into still exists
    (the partition's end offset reaches them); the rest reset by the consumer's policy. A commit
    answered with a retriable error (the offsets topic just put back is loading, or waits for its
    followers to rejoin the ISR) is sent again for up to `patience_s` seconds. Topics in `skip`
    (put back under another id than the catalog's: a newer topic of that name, which the catalog's
    offsets do not point into) are left out."""
    restored = []
    for group, saved in _read(cfg).get("groups", {}).items():
        current = client.committed_offsets(group)
        missing: dict[tuple[str, int], int] = {}
        for key, off in saved.items():
            topic, _, part = key.rpartition(":")
            tp = (topic, int(part))
            if tp not in current and topic not in skip:
                missing[tp] = off
        ends: dict[tuple[str, int], int] = {}
        for topic in {t for t, _ in missing}:
            try:
                ends.update({(topic, p): e for p, e in client.end_offsets(topic).items()})
            except KafkaClientError as e:   # deleted since the catalog was written: its offsets went with it
                if e.error_code != UNKNOWN_TOPIC_OR_PARTITION:
                    raise
        back = {tp: off for tp, off in missing.items() if ends.get(tp, -1) >= off}
        if back:
            _commit_patiently(client, group, back, patience_s, sleep, clock)
            restored.append(f"{group} ({len(back)} partitions)")
    return restored


def desired_topics(cfg: SandboxConfig) -> dict[str, TopicSpec]:
    """Declared topics win over the catalog's view of the same topic, but keep the catalog's
    placement while the partition count agrees (so re-created partitions find their journals)."""
    out = load_catalog(cfg)
    for name, spec in cfg.topics.items():
        known = out.get(name)
        if known is not None and known.assignments and len(known.assignments) == spec.partitions:
            spec = dataclasses.replace(spec, assignments=known.assignments)
        out[name] = spec
    return out
