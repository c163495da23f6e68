"""Partition folders the file system refused (mixed into BrokerState, which owns partitions,
logs, coordinator, log_defaults, replicas, offsets, txns, not_created, doomed and stray_held):

- a folder that could not be made (a full disk, no file handles left) is tried again each second
  while the rest of the metadata still applies;
- a deleted partition's folder that could not be removed (Windows: another program, a virus
  scanner say, holds one of its files, and a folder holding such a file cannot be renamed) is
  doomed: tried again each second, and its name is not made again before it is gone. Made again
  meanwhile, a topic deleted and made again under that name would have opened the old folder
  and served the deleted topic's records as its own;
- a folder holding another topic of that name (disk_folders.py) that could not be set aside is not
  opened again either: tried again each second, and the partition is made once it is out of the way.
  Followed as it was, the other topic's records stayed under this one's offsets."""

from __future__ import annotations

import logging
import uuid

from sandbox import lifecycle
from sandbox.log import LogConfig
from sandbox.log.files import RETRIES

from . import storage

log = logging.getLogger("sandbox.broker")

DOOMED = "the folder of the deleted partition of that name is held by another program"
STRAY_HELD = "a folder of another topic of that name, to be set aside, is held by another program"


class RefusedFolders:

    def _make_partition(self, key: tuple[str, int], cfg: LogConfig, topic_id: uuid.UUID,
                        not_created: dict[tuple[str, int], str]) -> bool:
        """Make a partition this broker holds a replica of. A full disk or no file handles left,
        or a deleted partition's folder of that name still there: not served here yet, noted in
        not_created (tried again each second, retry_creations, and at every metadata change)
        while the rest of the metadata still applies."""
        if key in self.doomed and not self._delete_folder(key, again=True):
            not_created[key] = DOOMED
            return False
        if key in self.stray_held and not self._set_aside_again(key):
            not_created[key] = STRAY_HELD
            return False
        try:
            self.partitions[key] = plog = self.logs.create(key[0], key[1], cfg)
        except OSError as e:
            not_created[key] = e.strerror or str(e)
            if key not in self.not_created:   # one line per partition, not one a second
                log.warning("%s-%d: its folder cannot be made here (%s); tried again every second",
                            key[0], key[1], e.strerror or e)
            if storage.is_storage_error(e):
                storage.failed(self, self.config.data_dir, e)
            return False
        if plog.topic_id != topic_id:
            self.logs.record_topic_id(key[0], key[1], topic_id)
        return True

    def _delete_folder(self, key: tuple[str, int], checkpoint: bool = True, *, again: bool = False) -> bool:
        """Delete a partition's folder (its log is closed first), then write the checkpoint files
        without it (`checkpoint`). One the file system refuses is doomed: False, and tried again
        each second (retry_creations; `again`: such a try, one attempt, not a wait on the loop)."""
        try:
            self.logs.delete_partition(*key, checkpoint=False, retries=1 if again else RETRIES)
        except OSError as e:
            if key not in self.doomed:   # one line, not one a second
                log.warning("%s-%d: its folder could not be deleted yet (%s); tried again every second, "
                            "and the partition is not made again here before it is gone", key[0], key[1], e)
            self.doomed.add(key)
            return False
        if key in self.doomed:
            self.doomed.discard(key)
            log.info("%s-%d: its folder is deleted now", key[0], key[1])
        if checkpoint:
            self._checkpoint_after_deletion()
        return True

    def _set_aside_again(self, key: tuple[str, int]) -> bool:
        """One more try at a stray folder the file system refused to set aside (one attempt: each
        second, nothing waits on the event loop); True once done."""
        try:
            where = self.logs.set_aside(*key, retries=1)
        except OSError:
            return False
        why = self.stray_held.pop(key, "")
        log.info("%s-%d: its stray folder is set aside now", key[0], key[1])
        lifecycle.emit_event(log, "stray-partition-set-aside", {"topic": key[0], "partition": key[1], "why": why,
                                            "log_end_offset": None, "path": str(where)})
        return True

    def _checkpoint_after_deletion(self) -> None:
        try:
            self.logs.checkpoint()
        except OSError as e:   # a full disk, a file held: written at the next checkpoint
            log.warning("checkpoint files not written after a deletion (tried again in a second): %s", e)

    def _partitions_known(self, topics: list) -> None:
        """Replication, committed offsets and transactions learn of the partitions held here."""
        self.replicas.on_metadata(topics)
        if self.offsets is not None:
            self.offsets.on_metadata()
        if self.txns is not None:
            self.txns.on_metadata()

    def retry_creations(self) -> None:
        """Each second (server.py): doomed folders are deleted again, and partitions whose
        folder could not be made are tried again, those alone; the replication, offsets and
        transactions state learns of the ones made."""
        if self._closing:
            return
        gone = [k for k in list(self.doomed) if k not in self.not_created and k not in self.partitions
                and self._delete_folder(k, checkpoint=False, again=True)]
        if gone:
            self._checkpoint_after_deletion()
        for k in list(self.stray_held):
            if k not in self.not_created and k not in self.partitions and self._set_aside_again(k):
                self.not_created[k] = "its stray folder was set aside"   # made just below, if still wanted
        if not self.not_created or self.coordinator is None:
            return
        topics = self.coordinator.topics()
        by_name = {t.name: t for t in topics}
        base = self.log_defaults.base(self.coordinator)
        still: dict[tuple[str, int], str] = {}
        made = False
        for key in self.not_created:
            t = by_name.get(key[0])
            part = next((p for p in t.partitions if p.index == key[1]), None) if t is not None else None
            if part is None or self.node_id not in part.replicas or key in self.partitions:
                continue   # deleted or moved away meanwhile, or made by a metadata change
            cfg = self.log_defaults.log_config(dict(t.configs), base)
            made = self._make_partition(key, cfg, t.topic_id, still) or made
        self.not_created = still
        if made:
            self._partitions_known(topics)
