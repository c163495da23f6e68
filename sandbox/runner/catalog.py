"""The topic catalog (`topics.json` in the data folder): every topic the stack knew, declared or
created by applications, with its placement and committed group offsets, so a wiped journal
gets its topics and offsets back."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Callable

from sandbox.client import KafkaClient
from sandbox.config import SandboxConfig, TopicSpec
from sandbox.runner.statefile import write_state

CATALOG_FILE = "topics.json"


def load_catalog(cfg: SandboxConfig) -> dict[str, TopicSpec]:
    try:
        raw = json.loads((cfg.data_dir / CATALOG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out = {}
    for n, t in raw.get("topics", {}).items():
        placed = t.get("assignments")
        out[n] = TopicSpec(n, t["partitions"], t.get("replication", 1), dict(t.get("config", {})),
                           tuple(tuple(b) for b in placed) if placed else None)
    return out


def save_catalog(cfg: SandboxConfig, client: KafkaClient, still_valid: Callable[[], bool] = lambda: True) -> bool:
    """Refresh the catalog from the cluster; `still_valid` is asked once everything is read (a
    journal wiped meanwhile makes the read worthless). Returns whether the file was written."""
    md, _ = client.metadata()
    topics = {}
    for name, t in md.topics.items():
        if t.internal or name.startswith("__"):
            continue
        cfgs = {k: v for k, (v, is_default) in client.describe_configs(name).items() if not is_default}
        rf = len(t.partitions[0].replicas) if t.partitions else 1
        placed = [list(p.replicas) for p in sorted(t.partitions, key=lambda p: p.index)]
        topics[name] = {"partitions": len(t.partitions), "replication": rf, "config": cfgs,
                        "assignments": placed}
    groups = {}
    for g in client.list_groups():
        committed = client.committed_offsets(g.group)
        if committed:
            groups[g.group] = {f"{t}:{p}": off for (t, p), off in committed.items()}
    if not still_valid():
        return False
    write_state(cfg.data_dir / CATALOG_FILE, {"updated": time.time(), "topics": topics, "groups": groups})
    return True


def restore_group_offsets(cfg: SandboxConfig, client: KafkaClient) -> list[str]:
    """Put back committed offsets a wipe lost, where the data they point into still exists
    (the partition's end offset reaches them); the rest reset by the consumer's policy."""
    try:
        raw = json.loads((cfg.data_dir / CATALOG_FILE).read_text(encoding="utf-8")).get("groups", {})
    except (OSError, ValueError):
        return []
    restored = []
    for group, saved in raw.items():
        current = client.committed_offsets(group)
        missing: dict[tuple[str, int], int] = {}
        for key, off in saved.items():
            topic, _, part = key.rpartition(":")
            tp = (topic, int(part))
            if tp not in current:
                missing[tp] = off
        ends: dict[tuple[str, int], int] = {}
        for topic in {t for t, _ in missing}:
            ends.update({(topic, p): e for p, e in client.end_offsets(topic).items()})
        back = {tp: off for tp, off in missing.items() if ends.get(tp, -1) >= off}
        if back:
            client.commit_offsets(group, back)
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
