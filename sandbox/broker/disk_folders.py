"""A broker's partition folders matched with the coordinator's metadata (a part of BrokerState).

Every folder names its topic id (partition.metadata), and the broker notes the history id of the
coordinator journal it follows (HISTORY_FILE). At start, on the same history, a folder of a topic
the metadata does not know, or knows under another id, belongs to a topic deleted (and perhaps
made again) while the broker was down: it is deleted, as Kafka deletes stray logs. On another
history (the coordinator's journal was replaced) such folders are put back into the metadata
instead (adoption): data is never dropped because the metadata lost it."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from sandbox import lifecycle
from sandbox.coordinator import CoordinatorError
from sandbox.log.errors import LogError
from sandbox.log.files import atomic_write
from sandbox.partition_metadata import folder_topic_id, newest_topic_id
from sandbox.protocol.errors import INVALID_REQUEST, TOPIC_ALREADY_EXISTS, UNKNOWN_TOPIC_ID
from sandbox.protocol.extensions import RESTORE_LEADER_EPOCH, RESTORE_TOPIC_ID

from . import offsets_topic
from .internal_topics import OFFSETS_TOPIC, TXN_TOPIC
from .transactions import store as txn_store
from .folder_copies import Copy, Held, held_by
from .transactions.links import BrokerLinks

log = logging.getLogger("sandbox.broker")

# the coordinator journal's history id this broker last followed (see check_history)
HISTORY_FILE = "coordinator-history"
# after a replaced journal: that history's id, then the folders held from before it that are not
# put back yet, one "topic<TAB>partition" a line (see _note_history_if_matched)
PENDING_FILE = "coordinator-history.pending"
RESTORE_GRACE_S = 10.0   # after a coordinator's journal is replaced, auto-creation waits this long
ADOPT_ATTEMPTS, ADOPT_RETRY_S = 4, 5.0   # passes over what the metadata lost, this far apart
PROBE_PARTITIONS = 64      # partitions of a lost topic asked of the others, at least
# configs an internal topic is made with, kept when it is put back from disk
INTERNAL_TOPIC_CONFIGS = {OFFSETS_TOPIC: offsets_topic.TOPIC_CONFIGS, TXN_TOPIC: txn_store.TOPIC_CONFIGS}




def read_history(folder: Path) -> tuple[str | None, frozenset]:
    """(the coordinator journal's history id HISTORY_FILE names, the (topic, partition) folders
    PENDING_FILE lists as not put back yet under that history); (None, empty) without a readable
    history, and None too if a list of that history cannot be read (so nothing is taken for
    deleted on the strength of a damaged list: every unknown folder is put back instead)."""
    try:
        history = (folder / HISTORY_FILE).read_text("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None, frozenset()
    if not history:
        return None, frozenset()
    try:
        lines = (folder / PENDING_FILE).read_text("ascii").splitlines()
    except FileNotFoundError:
        return history, frozenset()
    except (OSError, UnicodeDecodeError):
        return None, frozenset()
    if not lines or not lines[0].strip():
        return None, frozenset()
    if lines[0].strip() != history:   # a list of an earlier history, left by a crash: not this one's
        return history, frozenset()
    pending = set()
    for line in lines[1:]:
        topic, _, index = line.partition("\t")
        if not topic or not index.strip().isdigit():
            return None, frozenset()
        pending.add((topic, int(index)))
    return history, frozenset(pending)


def _emit(kind: str, detail: dict[str, Any]) -> None:
    lifecycle.emit_event(log, kind, detail)


class DiskFolders:
    """Mixed into BrokerState: uses its config, coordinator, partitions, logs and notifier."""

    config: Any
    coordinator: Any
    partitions: dict
    logs: Any
    notifier: Any
    node_id: int
    _closing: bool
    _history_intact: bool
    _noted_history: str | None
    _pending: frozenset
    _adopting: bool = False   # an _adopt_orphans pass is under way
    stray_held: dict   # stray folders the file system refused to set aside: (topic, partition) -> why
    _restore_checked: float | None

    def _check_history(self) -> None:
        """Tell a topic deleted while this broker was down from one the metadata lost. If the
        coordinator's journal is the one this broker followed when it last ran, a partition
        folder whose topic the metadata does not know, or knows under another topic id, belongs
        to a topic deleted (and perhaps made again) meanwhile: it is deleted, as Kafka deletes
        such stray logs (kept, it came back as a topic nobody made, or sat under the new topic's
        name with the old topic's records, taken by the leader for its own). Otherwise (the
        journal was replaced: a destroyed coordinator journal, or this broker's first start with
        this version) such folders are put back into the metadata instead (_adopt_orphans)."""
        followed, pending = read_history(Path(self.config.data_dir))
        self._noted_history, self._pending = followed, pending
        self._history_intact = followed is not None and followed == self.coordinator.cluster_id
        ids = {t.name: t.topic_id for t in self.coordinator.topics()}
        self._drop_deleted_ids()   # whichever history this broker followed
        if self._history_intact and pending and self.config.coordinator:
            # this broker stopped before the restore after a replaced journal had put back all
            # it held: those folders (only those) may still be put back; any other folder whose
            # topic the metadata does not know was deleted under this history (found in the fault
            # campaign, seed 14107: a topic deleted while the broker was down came back). As after
            # a replacement, auto-creation waits out the restore's grace.
            self.coordinator.journal_replaced()
            self._restore_checked = self.coordinator.cluster_changed_at
        if not self._history_intact:
            if followed is not None and self.config.coordinator:
                # the journal this broker followed was replaced while it was down (found in the
                # fault campaign, seed 8101: a broker restarted while the supervisor put a destroyed
                # journal back): as if it had seen the change, it holds off auto-creating topics
                # (it made `chaos` anew with 1 partition and a new id, and `__consumer_offsets`
                # empty, before the supervisor could put them back), even if its own folders are
                # all back already, and adopts what is not put back (open() schedules that pass)
                self.coordinator.journal_replaced()
                self._restore_checked = self.coordinator.cluster_changed_at
            if self._note_history_if_matched(ids):   # nothing to put back (a new broker, an upgrade)
                self._history_intact = True
            return
        # no checkpoint per deletion: until the replica manager has taken up its roles no log is
        # marked replicated, so the high watermarks would be written as none (the periodic
        # checkpoint writes the files without the deleted folders)
        for key, plog in sorted(self.partitions.items()):
            if key in pending:
                continue   # held when the journal was replaced, not put back yet: adopted later
            if key[0] not in ids:
                self._delete_stray(key, "its topic was deleted while this broker was down", checkpoint=False)
            elif plog.topic_id is not None and plog.topic_id != ids[key[0]]:
                self._delete_stray(key, "its topic was deleted and made again while this broker was down",
                                   checkpoint=False)

    def _drop_deleted_ids(self) -> bool:
        """Delete the folders whose topic id was deleted under the journal's current history, a
        listed folder too (the restore put its topic back while this broker was down, and it was
        deleted since; kept for adoption, it came back as a topic nobody made). No checkpoint:
        the caller writes one, or none at start. True if any was deleted."""
        deleted = [key for key, plog in sorted(self.partitions.items())
                   if plog.topic_id is not None and self.coordinator.topic_deleted(plog.topic_id)]
        for key in deleted:
            self._delete_stray(key, "its topic was deleted while this broker was down", checkpoint=False)
        return bool(deleted)

    def _match_folder(self, key: tuple[str, int], topic_id: uuid.UUID, removed: bool, leader: int) -> bool:
        """Match this broker's folder of a partition the metadata gives it with the metadata's
        topic: a folder of an older topic of that name is deleted (_old_incarnation); after a
        replaced journal a folder naming another id is taken over by its leader only (the
        restore's topic id), while a follower's holds another topic of that name (one deleted and
        made again while this broker was down, its deletion lost with the journal): cut to the
        leader's log end it would keep that topic's records under this one's offsets, so it is set
        aside, not deleted (where ids could not be read the restore's choice of leader may be
        wrong). False when the folder is left as it is for now: the partition has no leader yet,
        or the file system refused."""
        plog = self.partitions.get(key)
        if plog is None:
            return True
        if self._old_incarnation(key, plog, topic_id, removed):
            self._delete_stray(key, "its topic was deleted and made again")
            return True
        if plog.topic_id in (None, topic_id) or leader == self.node_id:
            return True
        if leader < 0:
            return False
        return self._set_aside_stray(key, f"it holds another topic of that name than its leader, broker {leader} "
                                          f"(topic id {plog.topic_id}, not {topic_id})")

    def _old_incarnation(self, key: tuple[str, int], plog, topic_id: uuid.UUID, removed: bool) -> bool:
        """Whether a folder under a topic's name holds an older topic of that name: the metadata
        change deleted the topic (and made it again), or the folder names another id while the
        history is the one this broker followed (a deletion it missed: a snapshot carries none).
        After a replaced journal a differing id is taken over instead (the restore's)."""
        if plog.topic_id == topic_id:
            return False
        if plog.topic_id is not None and self.coordinator.topic_deleted(plog.topic_id):
            return True   # deleted under this history: never another topic's to take over
        return removed or (plog.topic_id is not None and self._history_intact and key not in self._pending
                           and self.coordinator.cluster_changed_at is None)

    def _note_history(self, pending: frozenset = frozenset()) -> None:
        """Remember the coordinator journal's history as the one this broker follows, with the
        folders it held from an earlier history that are not matched with this one yet."""
        history = self.coordinator.cluster_id if self.coordinator is not None else None
        if not history or (history, pending) == (self._noted_history, self._pending):
            return
        folder = Path(self.config.data_dir)
        try:
            if pending:
                # the list first, and on disk before a new history names it (that history without
                # it deletes what it lists); a shrunk one lost in a crash leaves the longer list,
                # which only keeps more folders for putting back: not synced
                text = "\n".join([history, *(f"{t}\t{i}" for t, i in sorted(pending))])
                atomic_write(folder / PENDING_FILE, text.encode("ascii"), sync=history != self._noted_history)
            if history != self._noted_history:
                atomic_write(folder / HISTORY_FILE, history.encode("ascii"), sync=False)
            if not pending:
                (folder / PENDING_FILE).unlink(missing_ok=True)
        except OSError as e:   # a full disk: asked again at the next start (adoption, as before)
            log.warning("could not note the coordinator's history: %s", e)
            return
        self._noted_history, self._pending = history, pending

    def _note_history_if_matched(self, ids: dict[str, uuid.UUID]) -> bool:
        """Note the coordinator's history, and which folders here do not belong to a topic it
        knows under the same id yet: after a replaced journal, the folders the restore (or this
        broker's adoption) may still put back. Only those: a restart tells a folder of a topic
        deleted under this history from one lost with the old journal by that list (before, a
        broker stopped while the restore was unfinished took every such folder for lost). True
        once every folder is matched."""
        if self.coordinator is None:
            return True
        history = self.coordinator.cluster_id
        if self._noted_history == history and not self._pending:
            return True
        unmatched = frozenset(key for key, plog in self.partitions.items()
                              if key[0] not in ids or plog.topic_id not in (None, ids[key[0]]))
        unmatched |= frozenset(getattr(self, "stray_held", ()))   # else taken at a restart for a deleted topic's
        if self._noted_history == history:   # the list only shrinks under one history
            unmatched &= self._pending
        self._note_history(unmatched)
        return self._noted_history == history and not self._pending

    def _delete_stray(self, key: tuple[str, int], why: str, checkpoint: bool = True) -> bool:
        """Delete a stray partition folder; False if the file system refuses (on Windows: a file
        held open by another program): then it is doomed, tried again every second and not
        opened again under its name (refused_folders.py)."""
        plog = self.partitions.pop(key, None)
        end = None if plog is None or not plog.opened else plog.log_end_offset
        try:
            if not self._delete_folder(key, checkpoint):   # doomed: tried again every second
                log.warning("%s-%d is stray (%s) but could not be deleted yet", key[0], key[1], why)
                return False
        finally:
            self.notifier.notify(key)
        _emit("stray-partition-deleted", {"topic": key[0], "partition": key[1], "why": why,
                                               "log_end_offset": end})
        return True

    def _set_aside_stray(self, key: tuple[str, int], why: str) -> bool:
        """Keep a stray partition folder out of the way, renamed `<topic>-<partition>.<hex>-stray`
        (Kafka's name for the stray logs it keeps), where its data can still be read; False (left
        as it is, decided again at the next metadata change) if the file system refuses."""
        plog = self.partitions.pop(key, None)
        end = None if plog is None or not plog.opened else plog.log_end_offset
        try:
            where = self.logs.set_aside(*key)
        except OSError as e:   # not opened again (followed, the other topic's records would stay):
            # tried again every second (refused_folders.py), the partition made once it is gone
            log.warning("%s-%d is stray (%s) but could not be set aside yet (%s); tried again every second, "
                        "and the partition is not served here before it is", key[0], key[1], why, e)
            self.stray_held[key] = why
            return False
        finally:
            self.notifier.notify(key)
        _emit("stray-partition-set-aside", {"topic": key[0], "partition": key[1], "why": why,
                                            "log_end_offset": end, "path": str(where)})
        return True

    def _adopt_again(self, attempt: int) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(ADOPT_RETRY_S, lambda: loop.create_task(self._adopt_orphans(attempt + 1)))

    async def _adopt_orphans(self, attempt: int = 1) -> None:
        """Partitions on disk that the metadata does not know (its journal was lost or wiped) are
        put back into the metadata instead of being deleted: data is never dropped silently. A
        topic is put back where its folders are, on every live broker that holds one (asked
        first), each partition led by the replica with the newest history, with as many replicas
        as the partition held most (an internal topic keeps its compaction)."""
        if self.coordinator is None or self._closing or self._adopting:
            return   # a pass under way covers this one (each schedules the next it needs)
        self._adopting = True
        try:
            await self._adopt_pass(attempt)
        finally:
            self._adopting = False

    async def _adopt_pass(self, attempt: int) -> None:
        # the metadata here may not yet show a replaced journal (this broker was paused, and this
        # pass was due when it went on): asked first, or a topic the new journal does not have
        # *yet* would be made anew under a new id before the supervisor puts it back
        await self.coordinator.journal_still_followed()
        changed = self.coordinator.cluster_changed_at
        if self._restore_pending(changed, attempt):
            return
        if self._drop_deleted_ids():
            try:   # once, not per folder (a checkpoint per deletion stalled the loop)
                self.logs.checkpoint()
            except OSError as e:   # a full disk: written again at the next checkpoint
                log.warning("checkpoint after deleting stray folders not written: %s", e)
        counts: dict[str, int] = {}
        for topic, index in self.partitions:
            counts[topic] = max(counts.get(topic, 0), index + 1)
        lost = sorted(t for t in counts if self.coordinator.topic(t) is None or
                      len(self.coordinator.topic(t).partitions) < counts[t])
        held, silent = await self._held_elsewhere(lost) if lost else ({}, set())
        if self.coordinator.cluster_changed_at != changed:   # replaced while the brokers were asked
            self._start_over(attempt)
            return
        if silent and attempt < ADOPT_ATTEMPTS:
            # a broker that did not answer may hold the newest copy: asked again rather than left
            # out (it would then follow an older leader and cut its log to it)
            log.info("broker(s) %s did not say which folders they hold: asking again", sorted(silent))
            self._adopt_again(attempt)
            return
        # a folder that could not be set aside (Windows: held open) is tried again by another pass
        failed = not all([self._set_aside_another_topics(topic, held.get(topic, {})) for topic in lost])
        for topic, n in sorted(counts.items()):
            if topic not in lost:
                continue
            if self.coordinator.cluster_changed_at != changed:   # replaced while putting back
                self._start_over(attempt)
                return
            if not held.get(topic):   # its folders went meanwhile (set aside, deleted)
                continue
            known = self.coordinator.topic(topic)
            try:
                if known is None:
                    n = await self._adopt_topic(topic, held.get(topic, {}), silent)
                elif len(known.partitions) < n:
                    n = await self._adopt_partitions(topic, known, held.get(topic, {}), silent)
                else:
                    continue
            except CoordinatorError as e:
                if e.error_code == UNKNOWN_TOPIC_ID:   # deleted under this history (metadata here lags):
                    log.info("topic %r found on disk was deleted: not put back", topic)   # next pass deletes it
                    continue
                # TOPIC_ALREADY_EXISTS: another broker holding its folders put it back first (this
                # pass again checks that every partition this broker holds is there)
                if e.error_code != TOPIC_ALREADY_EXISTS:
                    log.error("cannot restore topic %r found on disk: %s", topic, e)
                failed = True
                continue
            _emit("topic-restored", {"topic": topic, "partitions": n, "from": "journal on disk"})
        if failed and attempt < ADOPT_ATTEMPTS:
            self._adopt_again(attempt)
            return
        # noted only if every folder is now matched with this history (not if the journal was
        # replaced again, a topic could not be put back, or a folder's topic came back under
        # another id: then the next start adopts again rather than deleting)
        if not failed and self.coordinator.cluster_changed_at == changed:
            self._note_history_if_matched({t.name: t.topic_id for t in self.coordinator.topics()})

    def _set_aside_another_topics(self, topic: str, held: dict[int, dict[int, Copy]]) -> bool:
        """Leave out of `held` the partitions the metadata lacks whose every copy names another
        topic id than the topic's (the metadata's, else that of the folder written last) and was
        written before the newest folder naming it: an older topic of that name with more
        partitions than the newer one, deleted and made again while a broker was paused. Put
        back, they would join the newer topic with the older one's records. This broker's folders
        of them are set aside (their records kept). Where no folder names the topic's id, or one
        of another id is newer (the metadata's id may then be the stale one: a catalog older than
        the topic's latest making), nothing is left out. False if a folder could not be set aside."""
        known = self.coordinator.topic(topic)
        topic_id = known.topic_id if known is not None else self._newest_id(held)
        newest = max((c.folder[1] for copies in held.values() for c in copies.values()
                      if c.folder is not None and c.folder[0] == topic_id), default=None)
        if newest is None:
            return True
        have = len(known.partitions) if known is not None else 0
        done = True
        for index in sorted(held):
            copies = held[index]
            if index < have or not copies or not all(c.other(topic_id) and c.folder[1] < newest
                                                     for c in copies.values()):
                continue
            del held[index]
            mine = copies.get(self.node_id)   # every folder here is among the copies
            if mine is not None and (topic, index) in self.partitions:
                done = self._set_aside_stray((topic, index), f"it holds another topic of that name than the one "
                                                             f"put back (topic id {mine.folder[0]}, not {topic_id})") and done
        return done

    def _newest_id(self, held: dict[int, dict[int, Copy]]) -> uuid.UUID | None:
        """The topic id of the folder written last among the copies, leaving out ids deleted under
        this history (a broker that has not dropped such a folder yet); None: none names one."""
        return newest_topic_id(None, [c.folder for copies in held.values() for c in copies.values()
                                      if c.folder is not None and not self.coordinator.topic_deleted(c.folder[0])],
                               None)

    def _start_over(self, attempt: int) -> None:
        """The journal was replaced during this pass: asked again once the restore's grace is over."""
        if not self._restore_pending(self.coordinator.cluster_changed_at, attempt):
            self._adopt_again(attempt)

    def _restore_pending(self, changed: float | None, attempt: int) -> bool:
        """True (and this pass asked again once the grace is over) while the restore after a
        replaced coordinator journal may still put topics back."""
        left = RESTORE_GRACE_S - (time.monotonic() - changed) if changed is not None else 0
        if left <= 0:
            return False
        loop = asyncio.get_running_loop()
        loop.call_later(left, lambda: loop.create_task(self._adopt_orphans(attempt)))
        return True

    async def _held_elsewhere(self, topics: list[str]) -> tuple[Held, set[int]]:
        """(the copies of the partitions of `topics` on this broker and on every other live
        broker, asked with DescribeLogDirs (with this sandbox's tag for each folder's topic id),
        then ListOffsets with Kafka's debugging replica id, as the supervisor's restore asks; the
        live brokers that did not answer)."""
        out: Held = {}
        for (topic, index), plog in self.partitions.items():
            if topic in topics:
                folder = folder_topic_id(plog.directory)
                try:
                    out.setdefault(topic, {}).setdefault(index, {})[self.node_id] = Copy(
                        plog.log_end_offset, plog.replica.latest_epoch, folder)   # opens a lazily opened log
                except (LogError, OSError) as e:   # its own open reports it; it still holds the folder
                    log.warning("%s-%d: a log found on disk does not open (%s)", topic, index, e)
                    out.setdefault(topic, {}).setdefault(index, {})[self.node_id] = Copy(-1, -1, folder)
        peers = [b.broker_id for b in self.coordinator.brokers()
                 if b.broker_id != self.node_id and not getattr(b, "fenced", False)]
        if not peers:
            return out, set()
        # the partitions asked about: a few times as many as this broker holds (only those
        # folders are looked at there; asked for all, a peer would size, and so open, every log)
        probe = {t: range(max(4 * (max(out.get(t, {}), default=-1) + 1), PROBE_PARTITIONS)) for t in topics}
        links = BrokerLinks(self, f"restore-{self.node_id}")
        try:
            answers = await asyncio.gather(*(held_by(links, b, probe) for b in peers))
        finally:
            links.close()
        for broker, held in zip(peers, answers):
            for (topic, index), end in (held or {}).items():
                out.setdefault(topic, {}).setdefault(index, {})[broker] = end
        return out, {b for b, held in zip(peers, answers) if held is None}

    def _replicas_for(self, holders: list[int], rf: int, silent: set[int] = frozenset()) -> list[int]:
        """`holders` (best first), then live brokers that said they hold nothing, up to `rf`
        replicas (one that did not answer may hold a copy it would cut to follow another)."""
        spare = sorted(b.broker_id for b in self.coordinator.brokers()
                       if b.broker_id not in holders and b.broker_id not in silent
                       and not getattr(b, "fenced", False))
        return (holders + spare)[:max(rf, 1)]

    @staticmethod
    def _ranked(held: dict[int, Copy], topic_id: uuid.UUID | None) -> list[int]:
        """The brokers holding a partition, the newest history first (as the supervisor's restore
        ranks them): a folder naming another topic id than `topic_id` last (an older topic of that
        name, deleted and made again while its broker was paused or down: its epochs count from
        another start and its longer log is no newer), then the newest leader epoch in its log,
        then the log that ends furthest (KIP-101's rule)."""
        return sorted(held, key=lambda b: (held[b].other(topic_id), -held[b].epoch, -held[b].end, b))

    async def _adopt_partitions(self, topic: str, known, held: dict[int, dict[int, Copy]],
                                silent: set[int]) -> int:
        """Partitions of a known topic that only the disks still hold, put back where they are."""
        assert self.coordinator is not None
        have = len(known.partitions)
        n = max(max(held, default=-1) + 1, have)
        rf = len(known.partitions[0].replicas) if known.partitions else 1
        await self.coordinator.create_partitions(topic, n, assignments=[
            self._replicas_for(self._ranked(held.get(i, {}), known.topic_id) or [self.node_id], rf, silent)
            for i in range(have, n)])
        return n

    async def _adopt_topic(self, topic: str, held: dict[int, dict[int, Copy]],
                           silent: set[int] = frozenset()) -> int:
        """Put a topic the metadata lost back where its folders are (`held`: partition -> broker
        -> its copy) under the id of its latest making, the one the folder written last names
        (under a new one clients would see it deleted and made again; an older topic of that name
        may be on a broker that was paused while it was deleted and made again), led per
        partition by the replica with the newest history (_ranked, as the supervisor's restore
        chooses) and with leader epochs above every epoch its logs hold (clients ignore a leader
        with an older epoch than they knew). A topic id another topic has taken meanwhile: a new
        one. Returns its partition count."""
        assert self.coordinator is not None
        n = max(held, default=-1) + 1
        topic_id = self._newest_id(held)
        epoch = max((c.epoch for brokers in held.values() for c in brokers.values()), default=-1) + 1
        configs = dict(INTERNAL_TOPIC_CONFIGS.get(topic, {}))
        if epoch > 0:
            configs[RESTORE_LEADER_EPOCH] = str(epoch)
        ranked = {i: self._ranked(held.get(i, {}), topic_id) for i in range(n)}
        rf = max((len(r) for r in ranked.values()), default=1)
        assignments = {i: self._replicas_for(ranked[i] or [self.node_id], rf, silent) for i in range(n)}
        if topic_id is not None:
            try:
                await self.coordinator.create_topic(topic, -1, -1, {**configs, RESTORE_TOPIC_ID: str(topic_id)},
                                                    assignments=assignments)
                return n
            except CoordinatorError as e:
                if e.error_code != INVALID_REQUEST:   # a taken id is INVALID_REQUEST: a new id then
                    raise
                log.warning("topic %r found on disk: its id is not available (%s); a new one", topic, e)
        await self.coordinator.create_topic(topic, -1, -1, configs, assignments=assignments)
        return n
