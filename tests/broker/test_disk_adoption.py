"""How a broker puts back a topic the metadata lost (DiskFolders._adopt_topic), with a stand-in
coordinator: every broker holding its folders becomes a replica, each partition led by the
replica with the newest history (the newest leader epoch in its log, then the longest log), the
replication factor is the most copies any partition had (brokers holding nothing fill the rest),
and the leader epochs go on above every epoch the logs hold."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

from sandbox.broker.disk_folders import DiskFolders
from sandbox.broker.refused_folders import RefusedFolders
from sandbox.broker.folder_copies import Copy, held_by
from sandbox.coordinator import CoordinatorError
from sandbox.protocol.extensions import RESTORE_LEADER_EPOCH, RESTORE_TOPIC_ID


class FakeCoordinator:
    def __init__(self, brokers: list[int]) -> None:
        self._brokers = [SimpleNamespace(broker_id=b, fenced=False) for b in brokers]
        self.created: list[tuple[str, dict, dict]] = []
        self.deleted: set[uuid.UUID] = set()   # topic ids deleted under the current history

    def topic_deleted(self, topic_id):
        return topic_id in self.deleted

    def brokers(self):
        return self._brokers

    async def create_topic(self, name, partitions, replication_factor, configs, *, assignments):
        self.created.append((name, dict(configs), {i: list(r) for i, r in assignments.items()}))


class Folders(DiskFolders, RefusedFolders):
    def __init__(self, node_id: int, brokers: list[int], partitions: dict) -> None:
        self.node_id = node_id
        self.coordinator = FakeCoordinator(brokers)
        self.partitions = partitions
        self.doomed: set = set()
        self.not_created: dict = {}
        self.stray_held: dict = {}


def test_every_holder_is_a_replica_and_the_newest_history_leads():
    tid = uuid.uuid4()
    here = {("t", i): SimpleNamespace(topic_id=tid) for i in range(2)}
    f = Folders(2, [1, 2, 3, 4], here)
    folder = (tid, 100.0)
    held = {0: {1: Copy(10, 2, folder), 2: Copy(12, 1, folder), 3: Copy(5, 2)},   # epoch 2 beats the longer log of epoch 1
            1: {2: Copy(7, 4, folder)}}             # one copy only: padded with brokers holding nothing
    assert asyncio.run(f._adopt_topic("t", held)) == 2
    [(name, configs, assignments)] = f.coordinator.created
    assert name == "t"
    assert assignments == {0: [1, 3, 2], 1: [2, 1, 3]}
    assert configs[RESTORE_LEADER_EPOCH] == "5" and configs[RESTORE_TOPIC_ID] == str(tid)


def test_a_broker_that_did_not_answer_is_never_a_filler():
    """A broker that did not say what it holds may hold the newest copy: made a replica that
    holds nothing, it would cut its log to follow an older one."""
    here = {("t", 0): SimpleNamespace(topic_id=None)}
    f = Folders(2, [1, 2, 3, 4], here)
    asyncio.run(f._adopt_topic("t", {0: {2: Copy(7, 4), 3: Copy(7, 4)}, 1: {2: Copy(3, 1)}}, silent={1}))
    [(_name, _configs, assignments)] = f.coordinator.created
    assert assignments == {0: [2, 3], 1: [2, 3]}


def test_an_internal_topic_put_back_stays_compacted():
    here = {("__consumer_offsets", 0): SimpleNamespace(topic_id=None)}
    f = Folders(1, [1], here)
    asyncio.run(f._adopt_topic("__consumer_offsets", {0: {1: Copy(3, 0)}}))
    [(_name, configs, assignments)] = f.coordinator.created
    assert configs["cleanup.policy"] == "compact" and RESTORE_TOPIC_ID not in configs
    assert assignments == {0: [1]}


def test_a_topic_made_again_while_a_broker_was_paused_is_put_back_under_its_newer_id_and_led_by_it():
    """Found by the fault campaign (seed 14122): broker 1 was paused while `t` was deleted and
    made again, then the coordinator's journal was destroyed before the supervisor's catalog
    knew the newer topic. Broker 1's folder of the older topic had the longer log in the same
    leader epoch 0, so it led the topic put back, and a follower holding the newer topic appended
    the older one's records after its own. The other brokers now say which topic id each folder
    names and when it was written: the id of the folder written last is the topic's, and a
    folder naming another id leads only if no other copy is left."""
    old, new = uuid.uuid4(), uuid.uuid4()
    f = Folders(3, [1, 2, 3], {("t", 0): SimpleNamespace(topic_id=new)})
    held = {0: {1: Copy(5, 0, (old, 100.0)), 2: Copy(3, 0, (new, 200.0)), 3: Copy(3, 0, (new, 200.5))},
            1: {1: Copy(9, 0, (old, 100.0)), 2: Copy(0, 0, (new, 200.0))}}
    asyncio.run(f._adopt_topic("t", held))
    [(_name, configs, assignments)] = f.coordinator.created
    assert configs[RESTORE_TOPIC_ID] == str(new)
    assert assignments == {0: [2, 3, 1], 1: [2, 1, 3]}


def test_a_partition_only_an_older_topic_of_that_name_has_is_set_aside_not_put_back():
    """The older topic had 3 partitions, the newer one 1: put back, partitions 1 and 2 would join
    the newer topic with the older one's records. Set aside where they are (records kept); a
    partition with a copy whose id is unknown is put back as before."""
    old, new = uuid.uuid4(), uuid.uuid4()
    f = Folders(1, [1, 2, 3], {("t", i): SimpleNamespace(topic_id=old) for i in range(3)})
    f.coordinator.topic = lambda name: None
    aside, refuse = [], set()

    def set_aside(key, why):
        aside.append((key, why))
        return key not in refuse and f.partitions.pop(key) is not None
    f._set_aside_stray = set_aside
    held = {0: {1: Copy(5, 0, (old, 100.0)), 2: Copy(3, 0, (new, 200.0))},
            1: {1: Copy(9, 0, (old, 100.0))}, 2: {1: Copy(2, 0, (old, 100.0))}, 3: {2: Copy(1, 0)}}
    assert f._set_aside_another_topics("t", held)
    assert sorted(held) == [0, 3] and [key for key, _ in aside] == [("t", 1), ("t", 2)]
    assert f"topic id {old}, not {new}" in aside[0][1]

    # the newer topic known to the metadata with 1 partition: the same (0 is the metadata's);
    # a folder the file system refuses to rename: the pass is failed (asked again)
    known = SimpleNamespace(topic_id=new, partitions=[SimpleNamespace(replicas=[2])])
    f.coordinator.topic = lambda name: known
    f.partitions = {("t", i): SimpleNamespace(topic_id=old) for i in range(2)}
    aside.clear()
    refuse.add(("t", 1))
    held = {0: {1: Copy(5, 0, (old, 100.0)), 2: Copy(3, 0, (new, 200.0))}, 1: {1: Copy(9, 0, (old, 100.0))}}
    assert not f._set_aside_another_topics("t", held)
    assert sorted(held) == [0] and [key for key, _ in aside] == [("t", 1)]

    # the metadata's id may be the stale one (the supervisor's catalog older than the topic's
    # latest making): no folder names it, or one of another id is newer: nothing is left out
    aside.clear()
    for held in ({0: {1: Copy(5, 0, (old, 100.0))}, 1: {1: Copy(9, 0, (old, 100.0))}},
                 {0: {2: Copy(3, 0, (new, 200.0))}, 1: {1: Copy(9, 0, (old, 300.0))}}):
        assert f._set_aside_another_topics("t", held) and sorted(held) == [0, 1] and not aside


def test_an_id_deleted_under_this_history_is_never_the_one_put_back():
    gone, kept = uuid.uuid4(), uuid.uuid4()
    f = Folders(1, [1, 2], {})
    f.coordinator.deleted.add(gone)
    held = {0: {1: Copy(5, 0, (kept, 100.0)), 2: Copy(5, 0, (gone, 200.0))}}
    assert f._newest_id(held) == kept


def test_partitions_put_back_of_a_known_topic_are_led_by_a_folder_naming_its_id():
    tid, other = uuid.uuid4(), uuid.uuid4()
    f = Folders(1, [1, 2, 3], {})
    known = SimpleNamespace(topic_id=tid, partitions=[SimpleNamespace(replicas=[1, 2])])
    created = []

    async def create_partitions(name, n, *, assignments):
        created.append((name, n, assignments))
    f.coordinator.create_partitions = create_partitions
    held = {1: {1: Copy(8, 2, (other, 300.0)), 3: Copy(2, 0, (tid, 50.0))}}
    assert asyncio.run(f._adopt_partitions("t", known, held, set())) == 2
    assert created == [("t", 2, [[3, 1]])]


class ReplacingCoordinator(FakeCoordinator):
    """The old journal's metadata (which knows topic `t`) until `replace()`: then a fresh journal
    that knows no topic, as a coordinator whose journal was destroyed serves before the supervisor
    puts the topics back."""

    def __init__(self, brokers: list[int], *, replaced_on_probe: bool = False) -> None:
        super().__init__(brokers)
        self.cluster_changed_at: float | None = None
        self.known = {"t": SimpleNamespace(partitions=[0, 1])}
        self.replaced_on_probe = replaced_on_probe
        self.probes = 0
        self.cluster_id = "history-1"

    def replace(self) -> None:
        import time
        self.known = {}
        self.cluster_changed_at = time.monotonic()

    def topic(self, name):
        return self.known.get(name)

    def topics(self):
        return []

    async def journal_still_followed(self) -> bool:
        self.probes += 1
        if self.replaced_on_probe and self.known:
            self.replace()
            return False
        return True


def _adopting(coordinator: ReplacingCoordinator, held_hook=None) -> tuple[Folders, list]:
    """Folders of `t` (known) and of `gone` (lost) on broker 2; `_held_elsewhere` answers what
    broker 2 holds, after `held_hook()`. Returns the folders and the passes asked again."""
    tid = uuid.uuid4()
    here = {("t", 0): SimpleNamespace(topic_id=tid), ("t", 1): SimpleNamespace(topic_id=tid),
            ("gone", 0): SimpleNamespace(topic_id=uuid.uuid4())}
    f = Folders(2, [1, 2, 3], here)
    f.coordinator = coordinator
    f._closing = False
    again: list = []

    async def held(topics):
        if held_hook is not None:
            held_hook()
        return {t: {i: {2: Copy(5, 1)} for (tt, i) in here if tt == t} for t in topics}, set()

    f._held_elsewhere = held
    f._noted_history, f._pending = "history-1", frozenset()   # the history noted, nothing listed
    orig = f._restore_pending

    def pending(changed, attempt):
        waits = orig(changed, attempt)
        if waits:
            again.append(attempt)
        return waits

    f._restore_pending = pending
    return f, again


def test_a_journal_replaced_while_the_brokers_are_asked_puts_nothing_back_and_waits_for_the_restore():
    """Found by the fault campaign (seed 14107): a pass that was due while its broker was paused
    ran on resume with the old metadata, and while it asked the other brokers the broker learned
    that the journal was replaced. Each of its topics was then unknown, and each was made anew
    with the default partition count and a new topic id (`partitions: 0` in its events): the
    replicas set their folders aside, and consumers that knew the old id stopped for good."""
    coord = ReplacingCoordinator([1, 2, 3])

    async def run():
        f, again = _adopting(coord, held_hook=coord.replace)
        await f._adopt_orphans()
        return again

    again = asyncio.run(run())
    assert coord.created == []          # neither `t` nor `gone`
    assert again == [1]                 # asked again once the grace is over


def test_a_replacement_the_metadata_has_not_seen_yet_is_asked_for_before_anything_is_put_back():
    coord = ReplacingCoordinator([1, 2, 3], replaced_on_probe=True)

    async def run():
        f, again = _adopting(coord)
        await f._adopt_orphans()
        return again

    again = asyncio.run(run())
    assert coord.probes == 1
    assert coord.created == []
    assert again == [1]


def test_only_what_the_metadata_lost_is_put_back():
    coord = ReplacingCoordinator([1, 2, 3])

    async def run():
        f, again = _adopting(coord)
        await f._adopt_orphans()
        return again

    again = asyncio.run(run())
    assert [name for name, _c, _a in coord.created] == ["gone"]
    assert again == []


class HistoryCoordinator:
    def __init__(self, history: str, topics: dict[str, uuid.UUID], deleted=frozenset()) -> None:
        self.cluster_id = history
        self._topics = topics
        self._deleted = set(deleted)
        self.cluster_changed_at: float | None = None

    def topic_deleted(self, topic_id):
        return topic_id in self._deleted

    def topics(self):
        return [SimpleNamespace(name=n, topic_id=t) for n, t in self._topics.items()]

    def journal_replaced(self) -> None:
        import time
        self.cluster_changed_at = time.monotonic()


class FakeLogs:
    def __init__(self) -> None:
        self.deleted: list[tuple[str, int]] = []

    def delete_partition(self, topic, index, checkpoint=True, retries=6):
        self.deleted.append((topic, index))
        self.checkpoints = getattr(self, "checkpoints", 0) + int(checkpoint)

    def checkpoint(self):
        self.checkpoints = getattr(self, "checkpoints", 0) + 1


def _restarted(tmp_path, history_text: str | None, history: str, topics: dict, folders: dict,
               coordinator: str = "127.0.0.1:1", deleted=frozenset()) -> DiskFolders:
    """A broker starting (DiskFolders._check_history) with `folders` on disk, its history file
    holding `history_text`, against a coordinator serving journal `history` with `topics`."""
    from sandbox.broker.disk_folders import HISTORY_FILE, PENDING_FILE
    if history_text is not None:
        first, _, rest = history_text.partition("\n")
        (tmp_path / HISTORY_FILE).write_text(first, "ascii")
        if rest:
            (tmp_path / PENDING_FILE).write_text(history_text, "ascii")
    f = Folders(2, [1, 2, 3], dict(folders))
    f.coordinator = HistoryCoordinator(history, topics, deleted)
    f.config = SimpleNamespace(data_dir=str(tmp_path), coordinator=coordinator)
    f.logs = FakeLogs()
    f.notifier = SimpleNamespace(notify=lambda key: None)
    f._noted_history, f._pending, f._restore_checked = None, frozenset(), None
    f._check_history()
    return f


def test_a_restart_before_the_restore_finished_keeps_only_the_folders_it_listed_for_putting_back(tmp_path):
    """Fault campaign seed 14107: broker 2 stopped before its adoption after a replaced journal
    was done; a topic then deleted while it was down came back from its folder, since the history
    it had noted was the replaced one and every unknown folder counted as lost."""
    folders = {("lost", 0): SimpleNamespace(topic_id=uuid.uuid4(), opened=False),   # held when the journal went
               ("deleted", 0): SimpleNamespace(topic_id=uuid.uuid4(), opened=False)}   # made and deleted since
    f = _restarted(tmp_path, "history-2\nlost\t0\n", "history-2", {}, folders)
    assert f.logs.deleted == [("deleted", 0)]
    assert ("lost", 0) in f.partitions
    assert f.coordinator.cluster_changed_at is not None   # auto-creation waits for the restore


def test_a_listed_folder_whose_topic_was_put_back_and_deleted_while_the_broker_was_down_is_deleted(tmp_path):
    """Left open in session 36: the broker listed the folder when it saw the replaced journal and
    stopped; the supervisor's restore put its topic back under its id, and the topic was deleted
    (under the fresh journal) before the broker came back. Kept for adoption, the topic came back
    as one nobody made. The journal's history now remembers the ids deleted under it."""
    gone, lost = uuid.uuid4(), uuid.uuid4()
    folders = {("gone", 0): SimpleNamespace(topic_id=gone, opened=False),
               ("lost", 0): SimpleNamespace(topic_id=lost, opened=False)}
    f = _restarted(tmp_path, "history-2\ngone\t0\nlost\t0\n", "history-2", {}, folders, deleted={gone})
    assert f.logs.deleted == [("gone", 0)]
    assert ("lost", 0) in f.partitions and ("gone", 0) not in f.partitions


def test_an_adoption_pass_deletes_a_folder_whose_topic_was_deleted_under_this_history_and_puts_back_the_rest():
    coord = ReplacingCoordinator([1, 2, 3])
    coord.replace()
    coord.cluster_changed_at -= 60                      # the restore's grace is over

    async def run():
        f, again = _adopting(coord)
        f.partitions[("gone", 1)] = SimpleNamespace(topic_id=f.partitions[("gone", 0)].topic_id)
        coord.deleted.add(f.partitions[("gone", 0)].topic_id)
        for i in (0, 1):
            f.partitions[("gone", i)].opened = False
        f.logs, f.notifier = FakeLogs(), SimpleNamespace(notify=lambda key: None)
        await f._adopt_orphans()
        return f, again

    f, again = asyncio.run(run())
    assert f.logs.deleted == [("gone", 0), ("gone", 1)] and f.logs.checkpoints == 1   # one, not per folder
    assert [name for name, _c, _a in coord.created] == ["t"]


def test_a_topic_the_coordinator_knows_as_deleted_is_not_put_back_nor_retried(caplog):
    """Review: with this broker's metadata behind the coordinator's, a folder's topic may look
    lost while the coordinator knows its id as deleted (UNKNOWN_TOPIC_ID): not an error to retry."""
    from sandbox.protocol.errors import UNKNOWN_TOPIC_ID
    coord = ReplacingCoordinator([1, 2, 3])
    coord.replace()
    coord.cluster_changed_at -= 60

    async def refuse(name, partitions, replication_factor, configs, *, assignments):
        raise CoordinatorError(UNKNOWN_TOPIC_ID, "deleted")

    coord.create_topic = refuse

    retried = []

    async def run():
        f, again = _adopting(coord)
        f._adopt_again = retried.append
        await f._adopt_orphans()
        return again

    with caplog.at_level("INFO", logger="sandbox.broker"):
        assert asyncio.run(run()) == []
    assert retried == []
    assert "was deleted: not put back" in caplog.text and "cannot restore" not in caplog.text


def test_a_folder_of_a_deleted_id_is_never_taken_over_by_a_topic_made_again_under_its_name(tmp_path):
    """Review: a broker back after the journal was replaced held a folder of a topic the other
    brokers had put back and a user deleted since; made again under a new id while that broker
    led it, the folder was taken over and its records served as the new topic's."""
    gone = uuid.uuid4()
    folders = {("t", 0): SimpleNamespace(topic_id=gone, opened=False)}
    f = _restarted(tmp_path, "history-1", "history-2", {}, folders, deleted={gone})   # replaced while down
    assert f.logs.deleted == [("t", 0)]          # deleted at start, whichever history it followed
    f.partitions[("t", 0)] = folders[("t", 0)]
    assert f._old_incarnation(("t", 0), folders[("t", 0)], uuid.uuid4(), removed=False) is True


def test_a_history_without_a_list_deletes_every_folder_of_a_topic_it_does_not_know(tmp_path):
    folders = {("lost", 0): SimpleNamespace(topic_id=uuid.uuid4(), opened=False),
               ("deleted", 0): SimpleNamespace(topic_id=uuid.uuid4(), opened=False)}
    f = _restarted(tmp_path, "history-2", "history-2", {}, folders)
    assert sorted(f.logs.deleted) == [("deleted", 0), ("lost", 0)]
    assert f.coordinator.cluster_changed_at is None


def test_a_replaced_history_lists_what_is_not_put_back_yet_and_the_list_only_shrinks(tmp_path):
    from sandbox.broker.disk_folders import HISTORY_FILE, PENDING_FILE, read_history
    a, b = uuid.uuid4(), uuid.uuid4()
    folders = {("a", 0): SimpleNamespace(topic_id=a), ("b", 0): SimpleNamespace(topic_id=b)}
    f = _restarted(tmp_path, "history-1", "history-2", {}, folders)   # replaced while it was down
    assert f.logs.deleted == []
    assert read_history(tmp_path) == ("history-2", frozenset({("a", 0), ("b", 0)}))
    assert f._note_history_if_matched({"a": a}) is False                # `a` put back
    assert read_history(tmp_path) == ("history-2", frozenset({("b", 0)}))
    f.partitions[("c", 0)] = SimpleNamespace(topic_id=uuid.uuid4())     # made under history-2, never listed
    assert f._note_history_if_matched({"a": a}) is False
    assert read_history(tmp_path) == ("history-2", frozenset({("b", 0)}))
    assert f._note_history_if_matched({"a": a, "b": b, "c": f.partitions[("c", 0)].topic_id}) is True
    assert read_history(tmp_path) == ("history-2", frozenset())
    assert (tmp_path / HISTORY_FILE).read_text("ascii") == "history-2"   # as earlier versions wrote it
    assert not (tmp_path / PENDING_FILE).exists()


def test_a_list_that_cannot_be_read_puts_every_unknown_folder_back_and_an_older_ones_list_is_ignored(tmp_path):
    from sandbox.broker.disk_folders import HISTORY_FILE, PENDING_FILE, read_history
    (tmp_path / HISTORY_FILE).write_text("history-2", "ascii")
    assert read_history(tmp_path) == ("history-2", frozenset())
    (tmp_path / PENDING_FILE).write_text("history-2\nlost\t0\nb", "ascii")     # damaged
    assert read_history(tmp_path) == (None, frozenset())
    (tmp_path / PENDING_FILE).write_text("", "ascii")
    assert read_history(tmp_path) == (None, frozenset())
    (tmp_path / PENDING_FILE).write_text("history-1\nlost\t0", "ascii")        # left by a crash
    assert read_history(tmp_path) == ("history-2", frozenset())
    (tmp_path / PENDING_FILE).write_text("history-2\nlost\t0\r\n", "ascii")
    assert read_history(tmp_path) == ("history-2", frozenset({("lost", 0)}))


def test_a_listed_folder_is_never_taken_for_an_older_topic_on_a_single_broker(tmp_path):
    """Review: with no coordinator process the listed folder was kept at start, then deleted as
    an older topic of that name once the metadata named the topic under the id put back."""
    folders = {("t", 0): SimpleNamespace(topic_id=uuid.uuid4(), opened=False)}
    f = _restarted(tmp_path, "history-2\nt\t0\n", "history-2", {}, folders, coordinator="")
    assert f.logs.deleted == [] and f.coordinator.cluster_changed_at is None
    assert f._old_incarnation(("t", 0), folders[("t", 0)], uuid.uuid4(), removed=False) is False
    assert f._old_incarnation(("u", 0), folders[("t", 0)], uuid.uuid4(), removed=False) is True


def test_one_pass_at_a_time_and_a_replacement_during_the_creations_stops_them():
    """Review: the pass a broker schedules after it sees a replaced journal and one it had
    rescheduled itself could run together and make the same topics twice; and a journal replaced
    between two creations got the rest of them made in it, before its own restore."""
    coord = ReplacingCoordinator([1, 2, 3])
    coord.known = {}                                   # both `t` and `gone` lost

    async def create_then_replace(name, partitions, replication_factor, configs, *, assignments):
        coord.created.append((name, dict(configs), dict(assignments)))
        await asyncio.sleep(0)
        coord.replace()                                # replaced after the first creation

    coord.create_topic = create_then_replace

    async def run():
        f, again = _adopting(coord)
        await asyncio.gather(f._adopt_orphans(), f._adopt_orphans())
        return again

    again = asyncio.run(run())
    assert [name for name, _c, _a in coord.created] == ["gone"]   # once, and `t` not after it
    assert again == [1]


def test_what_another_broker_tells_of_its_folders_is_read_with_their_topic_ids():
    """held_by: DescribeLogDirs (asking for the folders' ids) then ListOffsets; a folder that
    names no id (the zero id, or no time) is told as not known."""
    from sandbox.protocol import build, response_class
    tid = uuid.uuid4()
    dirs = build(response_class(35, 4), {"throttle_time": 0, "error_code": 0, "results": [{
        "error_code": 0, "log_dir": "/d", "topics": [{"name": "t", "partitions": [
            {"partition_index": 0, "partition_size": 1, "offset_lag": 0, "is_future_key": False,
             "topic_id": tid, "metadata_written_ms": 1500},
            {"partition_index": 1, "partition_size": 1, "offset_lag": 0, "is_future_key": False}]}]}]})
    ends = SimpleNamespace(topics=[SimpleNamespace(name="t", partitions=[
        SimpleNamespace(partition_index=i, offset=o, leader_epoch=e, error_code=0) for i, o, e in ((0, 7, 2), (1, 3, 1))])])
    asked = []

    class Conn:
        async def request(self, body, timeout):
            asked.append(body)
            return dirs if body.__api_key__ == 35 else ends
    links = SimpleNamespace(get=lambda broker: Conn())
    got = asyncio.run(held_by(links, 2, {"t": range(2)}))
    assert got == {("t", 0): Copy(7, 2, (tid, 1.5)), ("t", 1): Copy(3, 1, None)}
    assert asked[0].folder_ids is True and asked[0].__version__ == 4


def test_a_folder_that_cannot_be_set_aside_stays_closed_and_unmatched(tmp_path):
    """Windows refuses to rename a folder a file of which another program holds open: the folder
    stays where it is, closed (followed, another topic's records would stay under this one's
    offsets), tried again every second, and still counts as not matched with this history
    (noted as matched, the next start would delete it as a folder of a deleted topic)."""
    from sandbox.log import LogConfig, LogDir
    logs = LogDir(tmp_path, LogConfig())
    logs.open()
    try:
        plog, tid = logs.create("t", 0), uuid.uuid4()
        logs.record_topic_id("t", 0, tid)
        f = Folders(1, [1], {("t", 0): plog})
        f.logs, f.notifier = logs, SimpleNamespace(notify=lambda key: None)

        def refuse(topic, index):   # as LogDir.set_aside with the rename refused: closed, then raised
            logs._close(topic, index)
            raise PermissionError(13, "The process cannot access the file")
        logs.set_aside = refuse
        assert not f._set_aside_stray(("t", 0), "another topic")
        assert ("t", 0) not in f.partitions and ("t", 0) in f.stray_held and (tmp_path / "t-0").is_dir()
        noted = []
        f._noted_history, f._pending = None, frozenset()
        f.coordinator.cluster_id = "history"
        f._note_history = lambda pending=frozenset(): noted.append(pending)
        f._note_history_if_matched({"t": uuid.uuid4()})
        assert noted == [frozenset({("t", 0)})]
    finally:
        logs.close()
