"""Typed metadata changes, what a broker is told after the coordinator's metadata moved: small
values instead of the journal's record dicts, and the translation from those records."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Union

from .model import TopicInfo


@dataclass(frozen=True)
class TopicChanged:
    """A topic was created, grew partitions, changed configs, leaders or replicas."""

    name: str


@dataclass(frozen=True)
class TopicRemoved:
    """A topic was deleted (its logs and group offsets go with it)."""

    name: str
    topic_id: uuid.UUID


@dataclass(frozen=True)
class ReplicasRemoved:
    """A reassignment took these brokers out of a partition's replicas: they delete their copy.
    (Only this says so: a broker absent from replicas for any other reason keeps its log.)"""

    name: str
    index: int
    brokers: tuple[int, ...]


@dataclass(frozen=True)
class BrokerChanged:
    """A broker registered, was fenced or unfenced."""

    broker_id: int


@dataclass(frozen=True)
class MetadataReplaced:
    """The whole view was replaced (a snapshot, or a reload after the coordinator's journal was
    replaced): anything may have changed, nothing was announced as removed."""


@dataclass(frozen=True)
class ClusterChanged:
    """Cluster-wide settings changed: `kind` is the journal's name for it (cluster, quota,
    feature, producer-ids)."""

    kind: str


MetadataChange = Union[TopicChanged, TopicRemoved, ReplicasRemoved, BrokerChanged, MetadataReplaced,
                       ClusterChanged]
ChangeListener = Callable[[list[MetadataChange]], None]

_TOPIC_RECORDS = {"partition", "partition-change", "config"}
_BROKER_RECORDS = {"register-broker", "fence-broker", "unfence-broker", "offline-replicas"}


class ChangeTranslator:
    """Turns applied journal records into MetadataChanges. It remembers topic ids by name, since
    a remove-topic record names only the id of a topic already gone from the view."""

    def __init__(self, topics: Iterable[TopicInfo]) -> None:
        self._names: dict[str, str] = {}
        self.refresh(topics)

    def refresh(self, topics: Iterable[TopicInfo]) -> None:
        self._names = {str(t.topic_id): t.name for t in topics}

    def translate(self, records: Iterable[Mapping], topics_now: Iterable[TopicInfo]) -> list[MetadataChange]:
        out: list[MetadataChange] = []
        for r in records:
            kind = r.get("type")
            tid = r.get("topic_id")
            if kind == "topic":
                self._names[str(tid)] = r["name"]
                out.append(TopicChanged(r["name"]))
            elif kind == "remove-topic":
                name = self._names.get(str(tid))
                if name is not None:  # a topic this view never knew: nothing of it here to drop
                    out.append(TopicRemoved(name, uuid.UUID(str(tid))))
            elif kind in _TOPIC_RECORDS:
                name = self._names.get(str(tid))
                if name is not None:
                    out.append(TopicChanged(name))
                    if r.get("removed"):
                        out.append(ReplicasRemoved(name, int(r["index"]), tuple(int(b) for b in r["removed"])))
            elif kind in _BROKER_RECORDS:
                out.append(BrokerChanged(int(r["broker_id"])))
            elif kind == "snapshot":
                out.append(MetadataReplaced())
            else:
                out.append(ClusterChanged(str(kind)))
        self.refresh(topics_now)
        return out


def typed_listener(callback: ChangeListener, topics: Callable[[], list[TopicInfo]]
                   ) -> Callable[[list[Mapping]], None]:
    """A journal-record listener that hands `callback` the typed changes; `topics` reads the
    current view (primed now, so a removal right after subscribing is named)."""
    translator = ChangeTranslator(topics())
    return lambda records: callback(translator.translate(records, topics()))
