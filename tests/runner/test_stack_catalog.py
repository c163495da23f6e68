"""The supervisor's topic/offset catalog against a real broker: what a wipe puts back."""

from __future__ import annotations

import dataclasses
import json
import uuid
from types import SimpleNamespace

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from sandbox.client import KafkaClient
from sandbox.config import parse_config
from sandbox.runner.catalog import desired_topics, load_catalog, restore_configs, restore_group_offsets, save_catalog

pytestmark = pytest.mark.integration


def test_catalog_keeps_runtime_topics_and_offsets_and_restores_what_data_allows(broker, tmp_path):
    cfg = parse_config(f'[sandbox]\ndata_dir = "{tmp_path / "data"}"\n[topics.declared]\npartitions = 2\n',
                       cwd=tmp_path)
    cfg.data_dir.mkdir(parents=True)
    with KafkaClient(broker.bootstrap) as c:
        c.create_topic("runtime", 3, 1, {"retention.ms": "3600000"})
        p = Producer({"bootstrap.servers": broker.bootstrap})
        for i in range(30):
            p.produce("runtime", value=b"x", partition=i % 3)
        assert p.flush(15) == 0
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "billing",
                             "enable.auto.commit": False})
        consumer.commit(offsets=[TopicPartition("runtime", 0, 7), TopicPartition("runtime", 1, 10)],
                        asynchronous=False)
        consumer.close()
        save_catalog(cfg, c)
        cat = load_catalog(cfg)
        assert cat["runtime"].partitions == 3 and cat["runtime"].config == {"retention.ms": "3600000"}
        # internal topics are kept too: a destroyed coordinator journal gets them back where their data is
        assert set(desired_topics(cfg)) == {"runtime", "declared", "__consumer_offsets"}
        assert cat["__consumer_offsets"].config.get("cleanup.policy") == "compact"
        raw = json.loads((cfg.data_dir / "topics.json").read_text())
        assert raw["groups"]["billing"] == {"runtime:0": 7, "runtime:1": 10}
        # the broker's clock when the metadata was read (here ours, never later than it was)
        from sandbox.runner.catalog import catalog_clocks, catalog_time
        assert list(catalog_clocks(cfg)) == [1] and -2 < catalog_clocks(cfg)[1] - catalog_time(cfg) <= 0.01
        # each topic's id too: re-created after a destroyed coordinator journal, it keeps it
        runtime_id = c.metadata(["runtime"])[0].topics["runtime"].topic_id
        assert raw["topics"]["runtime"]["topic_id"] == str(runtime_id)
        from sandbox.protocol.extensions import RESTORE_TOPIC_ID
        from sandbox.runner.catalog import with_topic_ids
        asked = with_topic_ids(desired_topics(cfg), cfg)
        assert asked["runtime"].config == {"retention.ms": "3600000", RESTORE_TOPIC_ID: str(runtime_id)}
        assert RESTORE_TOPIC_ID not in asked["declared"].config   # not in the catalog yet
        # the group's offsets are lost (as when the broker holding them is wiped) ...
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.delete_consumer_groups(["billing"])["billing"].result(timeout=10)
        assert c.committed_offsets("billing") == {}
        # ... and one saved offset points past the data that is left: it cannot come back
        raw["groups"]["billing"]["runtime:2"] = 999
        (cfg.data_dir / "topics.json").write_text(json.dumps(raw))
        assert restore_group_offsets(cfg, c) == ["billing (2 partitions)"]
        assert c.committed_offsets("billing") == {("runtime", 0): 7, ("runtime", 1): 10}


class _Ends:
    """A client whose brokers report fixed replica log ends; broker ids in `down` do not answer."""

    def __init__(self, ends: dict[tuple[int, str, int], tuple[int, int]], down: set[int] = frozenset(),
                 folders: dict | None = None) -> None:
        self.ends, self.down, self.asked = ends, down, []
        self.folders = folders or {}   # (broker, topic, partition) -> (topic id, written) it tells

    def replica_folders(self, broker, partitions):
        if broker in self.down:
            from sandbox.client import KafkaClientError
            raise KafkaClientError(f"broker {broker} is not available")
        return {(t, i): self.folders[(broker, t, i)] for t, ps in partitions.items() for i in ps
                if self.folders.get((broker, t, i)) is not None}

    def replica_log_ends(self, broker, partitions):
        from sandbox.client import KafkaClientError
        self.asked.append((broker, {t: sorted(ps) for t, ps in partitions.items()}))
        if broker in self.down:
            raise KafkaClientError(f"broker {broker} is not available")
        return {(t, i): self.ends[(broker, t, i)] for t, ps in partitions.items() for i in ps
                if (broker, t, i) in self.ends}


def test_the_replica_whose_log_ends_furthest_leads_a_recreated_partition():
    from sandbox.config import TopicSpec
    from sandbox.protocol.extensions import RESTORE_LEADER_EPOCH
    from sandbox.runner.restore_placement import lead_with_longest_logs

    specs = {"t": TopicSpec("t", 4, 3, {"retention.ms": "1000"}, ((1, 2, 3), (2, 3, 1), (3, 1, 2), (1, 3, 2))),
             "solo": TopicSpec("solo", 1, 1, {}, ((2,),)),
             "new": TopicSpec("new", 2, 3, {}, None)}
    client = _Ends({(1, "t", 0): (523, 1), (2, "t", 0): (524, 2), (3, "t", 0): (524, 2),   # 2 first of the longest
                    (2, "t", 1): (90, 0), (3, "t", 1): (90, 0), (1, "t", 1): (90, 0),      # a tie keeps the order
                    (3, "t", 2): (10, 4), (1, "t", 2): (10, 5), (2, "t", 2): (9, 3),       # 3 down: 1 leads
                    (1, "t", 3): (7, 0), (2, "t", 3): (70, 0),                             # 3 does not answer
                    (2, "solo", 0): (5, 3)},
                    down={3})
    out, notes = lead_with_longest_logs(specs, client)
    assert out["t"].assignments == ((2, 1, 3), (2, 3, 1), (1, 3, 2), (2, 1, 3))
    # leader epochs go on above the newest any replica holds (clients ignore older ones)
    assert out["t"].config == {"retention.ms": "1000", RESTORE_LEADER_EPOCH: "6"}
    assert out["solo"].config == {RESTORE_LEADER_EPOCH: "4"} and out["solo"].assignments == ((2,),)
    assert out["new"] is specs["new"]   # nothing known about it
    assert len(notes) == 3 and notes[0].startswith(
        "t-0: broker 2 leads (its log ends at 524 in leader epoch 2, broker 1's at 523 in epoch 1)")
    asked = dict(client.asked)   # one request per broker
    assert asked[1] == {"t": [0, 1, 2, 3]} and asked[2] == {"t": [0, 1, 2, 3], "solo": [0]}
    same, none = lead_with_longest_logs(specs, _Ends({}, down={1, 2, 3}))
    assert same == specs and none == []   # nobody answers: the catalog's order and epoch 0, as before
    tie = {"t": TopicSpec("t", 1, 3, {}, ((3, 1, 2),))}
    kept, none = lead_with_longest_logs(tie, _Ends({(3, "t", 0): (10, 7), (1, "t", 0): (10, 7), (2, "t", 0): (9, 7)}))
    assert kept["t"].assignments == ((3, 1, 2),) and none == []   # the same epoch and end keep the order


def test_a_deposed_leaders_longer_tail_of_an_older_epoch_does_not_lead():
    """Broker 1 led epoch 5 and appended records 111-120 that no follower fetched (never
    acknowledged); frozen, it was replaced by broker 2 in epoch 6, which had records 100-110
    acknowledged by 2 and 3. If the coordinator's journal is destroyed before broker 1 truncates,
    its log ends furthest, yet leading it would make 2 and 3 cut the acknowledged records."""
    from sandbox.config import TopicSpec
    from sandbox.runner.restore_placement import lead_with_longest_logs

    specs = {"t": TopicSpec("t", 1, 3, {}, ((1, 2, 3),))}
    out, notes = lead_with_longest_logs(specs, _Ends({(1, "t", 0): (121, 5), (2, "t", 0): (111, 6),
                                                      (3, "t", 0): (111, 6)}))
    assert out["t"].assignments == ((2, 1, 3),), notes
    assert notes == ["t-0: broker 2 leads (its log ends at 111 in leader epoch 6, broker 1's at 121 in epoch 5)"]


def test_a_folder_of_an_older_topic_of_that_name_does_not_lead():
    """Broker 1 was paused while `t` was deleted and made again (a new topic id), then the
    coordinator's journal was destroyed: its folder still holds the old topic, under leader
    epochs up to 9, while brokers 2 and 3 hold the new one's acknowledged records in epoch 2.
    By epochs alone broker 1 would lead and 2 and 3 would follow the old topic's records."""
    import uuid

    from sandbox.config import TopicSpec
    from sandbox.protocol.extensions import RESTORE_LEADER_EPOCH, RESTORE_TOPIC_ID
    from sandbox.runner.restore_placement import lead_with_longest_logs

    old, new = uuid.uuid4(), uuid.uuid4()
    specs = {"t": TopicSpec("t", 2, 3, {RESTORE_TOPIC_ID: str(new)}, ((1, 2, 3), (1, 3, 2)))}
    ends = _Ends({(1, "t", 0): (500, 9), (2, "t", 0): (40, 2), (3, "t", 0): (41, 2),
                  (1, "t", 1): (300, 9), (3, "t", 1): (7, 1), (2, "t", 1): (7, 1)})
    # (topic id, when its partition.metadata was written); the catalog read the metadata at 100.0
    folders = {(1, "t", 0): (old, 10.0), (2, "t", 0): (new, 50.0), (3, "t", 0): (new, 50.0),
               (1, "t", 1): (old, 10.0), (3, "t", 1): None, (2, "t", 1): (new, 50.0)}   # 3's unreadable

    def rank(specs, catalog_time=100.0, folders=folders):
        return lead_with_longest_logs(specs, ends, lambda b, t, i: folders.get((b, t, i)), catalog_time)

    out, notes = rank(specs)
    # an unreadable file is no reason to go last: 3 comes first of the equals in t-1
    assert out["t"].assignments == ((3, 1, 2), (3, 1, 2)), notes
    assert notes[0] == ("t-0: broker 3 leads (its log ends at 41 in leader epoch 2, broker 1's at 500 in "
                        "epoch 9; broker 1's folder holds another topic of that name)")
    assert out["t"].config[RESTORE_LEADER_EPOCH] == "10"   # above every epoch held: clients ignore older
    assert out["t"].config[RESTORE_TOPIC_ID] == str(new)
    # a folder naming another id written after the catalog read the metadata: the catalog is older
    # than the topic's latest making, whose id is the folder's written last (re-created under it)
    newer = dict(folders)
    newer[(1, "t", 0)] = (old, 101.0)
    out, notes = rank(specs, folders=newer)
    assert out["t"].assignments == ((1, 2, 3), (1, 3, 2)) and out["t"].config[RESTORE_TOPIC_ID] == str(old)
    assert notes[0].startswith(f"t: re-created under topic id {old}, which folders written after the catalog name")
    # no folder names the catalog's id, none newer (the catalog's topic lost everywhere): epochs
    stale = {"t": TopicSpec("t", 1, 3, {RESTORE_TOPIC_ID: str(uuid.uuid4())}, ((2, 1, 3),))}
    assert rank(stale)[0]["t"].assignments == ((1, 2, 3),)
    # no id in the catalog, or no folder ids at all: epochs and log ends alone
    assert rank({"t": TopicSpec("t", 1, 3, {}, ((2, 1, 3),))})[0]["t"].assignments == ((1, 2, 3),)
    assert lead_with_longest_logs(specs, ends)[0]["t"].assignments == ((1, 2, 3), (1, 3, 2))
    # docker mode: no folder read from disk, the brokers tell the ids (DescribeLogDirs' tag)
    telling = _Ends(ends.ends, folders=folders)
    out, notes = lead_with_longest_logs(specs, telling, catalog_time=100.0)
    assert out["t"].assignments == ((3, 1, 2), (3, 1, 2)), notes


def test_folders_told_by_brokers_on_another_clock_are_compared_with_the_catalog_on_theirs():
    """Docker mode: the brokers run on Docker Desktop's VM, whose clock drifts from the host's (it
    falls behind while a laptop sleeps). The folders' times are the VM's; the catalog's time is
    the host's. The catalog keeps each broker's clock at its refresh, and "written after the
    catalog" is decided on the broker's clock."""
    from sandbox.config import TopicSpec
    from sandbox.protocol.extensions import RESTORE_TOPIC_ID
    from sandbox.runner.restore_placement import lead_with_longest_logs

    old, new = uuid.uuid4(), uuid.uuid4()
    ends = {(b, "t", 0): (5, 1) for b in (1, 2, 3)}
    catalog_at = 100_000.0   # the host's clock when the catalog read the metadata

    def restored(known, folders, vm_at_catalog):
        specs = {"t": TopicSpec("t", 1, 3, {RESTORE_TOPIC_ID: str(known)}, ((1, 2, 3),))}
        out, _ = lead_with_longest_logs(specs, _Ends(ends, folders=folders), catalog_time=catalog_at,
                                        brokers=[1, 2, 3], broker_clocks={b: vm_at_catalog for b in (1, 2, 3)})
        return out["t"].config[RESTORE_TOPIC_ID]

    # the VM an hour behind: the topic was made again (new) 50 s after the catalog read it, so
    # its folders name new at 96,450 by the VM's clock, which reads as before the catalog's 100,000
    behind = {(1, "t", 0): (old, 96_300.0), (2, "t", 0): (new, 96_450.0), (3, "t", 0): (new, 96_450.0)}
    assert restored(old, behind, vm_at_catalog=96_400.0) == str(new)
    # the VM an hour ahead: an older topic's folder written 100 s before the catalog (103,500 by
    # the VM) is not newer than the catalog's topic
    ahead = {(1, "t", 0): (old, 103_500.0), (2, "t", 0): (new, 103_400.0), (3, "t", 0): (new, 103_400.0)}
    assert restored(new, ahead, vm_at_catalog=103_600.0) == str(new)
    # the clocks agreed at the refresh and the VM fell behind afterwards: the folder written
    # before the catalog stays older, whatever the VM's clock says at the restore
    before = {(1, "t", 0): (old, 99_000.0), (2, "t", 0): (new, 99_500.0), (3, "t", 0): (new, 99_500.0)}
    assert restored(new, before, vm_at_catalog=catalog_at) == str(new)
    # broker 1 (the paused one, holding the older topic's folder) was down at the refresh: no
    # clock of its own in the catalog, the others' taken (one VM, one clock), not the host's
    specs = {"t": TopicSpec("t", 1, 3, {RESTORE_TOPIC_ID: str(new)}, ((1, 2, 3),))}
    out, _ = lead_with_longest_logs(specs, _Ends(ends, folders=ahead), catalog_time=catalog_at, brokers=[1, 2, 3],
                                    broker_clocks={2: 103_600.0, 3: 103_600.0})
    assert out["t"].config[RESTORE_TOPIC_ID] == str(new)


def test_recreation_after_a_coordinator_wipe_waits_until_every_broker_has_its_metadata(monkeypatch):
    """Found by the fault campaign (seed 34): a broker still answering with the destroyed journal's
    metadata lists the lost topics as there, so the supervisor re-created nothing. The supervisor
    now waits (raises, asked again on its next pass) until every broker names the fresh cluster id
    and the coordinator counts it among the brokers that have caught up with its fresh journal."""
    from types import SimpleNamespace

    from sandbox.health import status
    from sandbox.runner.stack import StackSupervisor

    ids = {1: "fresh", 2: "destroyed", 3: "fresh"}
    followers = {1, 2, 3}
    monkeypatch.setattr(status, "coordinator_problems", lambda address, brokers: [])
    monkeypatch.setattr(status, "coordinator_followers", lambda address: ("fresh", set(followers)))
    me = SimpleNamespace(cfg=SimpleNamespace(mode="native", brokers=3, connect_host="127.0.0.1", coordinator_port=1),
                         client=SimpleNamespace(cluster_ids=lambda brokers: {b: ids[b] for b in brokers}))
    with pytest.raises(RuntimeError, match=r"broker\(s\) \[2\] still answer with the metadata of the replaced"):
        StackSupervisor._wait_for_fresh_metadata(me)
    ids[2] = "fresh"
    StackSupervisor._wait_for_fresh_metadata(me)   # every broker has the fresh metadata: go on
    # the fresh journal seeded with the cluster id clients knew: a broker on the old metadata names
    # the same id, and is told by the coordinator, which has not seen it fetch the fresh journal
    followers.discard(3)
    with pytest.raises(RuntimeError, match=r"broker\(s\) \[3\] still answer with the metadata of the replaced"):
        StackSupervisor._wait_for_fresh_metadata(me)
    followers.add(3)
    StackSupervisor._wait_for_fresh_metadata(me)
    monkeypatch.setattr(status, "coordinator_problems", lambda address, brokers: ["the coordinator does not "
                                                                               "know broker(s) [3]"])
    with pytest.raises(RuntimeError, match="does not know broker"):
        StackSupervisor._wait_for_fresh_metadata(me)


def test_the_cluster_id_is_put_back_where_the_fresh_journal_did_not_start_with_it_and_a_wipe_forgets_it(tmp_path):
    from sandbox.runner.catalog import forget_cluster_id, restore_cluster_id, saved_cluster_id

    cfg = parse_config(f'[sandbox]\ndata_dir = "{tmp_path / "data"}"\n', cwd=tmp_path)
    cfg.data_dir.mkdir(parents=True)
    (cfg.data_dir / "topics.json").write_text(json.dumps({"cluster_id": "Kept-Id", "topics": {"t": {}}}))
    answers, put = {"id": "Kept-Id"}, []
    client = SimpleNamespace(metadata=lambda: (SimpleNamespace(cluster_id=answers["id"]), None),
                             restore_cluster_id=put.append)
    assert restore_cluster_id(cfg, client) == "cluster id Kept-Id kept" and put == []
    answers["id"] = "Fresh-Id"            # the seed could not be read: the fresh journal's own id
    assert restore_cluster_id(cfg, client) == "cluster id Kept-Id put back" and put == ["Kept-Id"]
    forget_cluster_id(cfg)                # `sandbox recover --wipe`: a new cluster
    assert saved_cluster_id(cfg) is None and restore_cluster_id(cfg, client) is None
    assert json.loads((cfg.data_dir / "topics.json").read_text())["topics"] == {"t": {}}


def test_a_topic_deleted_before_the_restore_reached_it_leaves_the_catalog_and_its_offsets_are_skipped(tmp_path):
    """Review: the restore skips a topic of the catalog deleted under the fresh journal; its
    group offsets then made the whole offsets step fail (`topic gone does not exist`)."""
    from sandbox.client import KafkaClientError
    from sandbox.protocol.errors import UNKNOWN_TOPIC_OR_PARTITION
    from sandbox.runner.catalog import forget_topics, restore_group_offsets

    cfg = parse_config(f'[sandbox]\ndata_dir = "{tmp_path / "data"}"\n', cwd=tmp_path)
    cfg.data_dir.mkdir(parents=True)
    catalog = {"topics": {"gone": {}, "kept": {}}, "groups": {"app": {"gone:0": 5, "kept:0": 7}}}
    (cfg.data_dir / "topics.json").write_text(json.dumps(catalog))
    committed = []

    def end_offsets(topic):
        if topic == "gone":
            raise KafkaClientError("topic gone does not exist", UNKNOWN_TOPIC_OR_PARTITION)
        return {0: 9}

    client = SimpleNamespace(committed_offsets=lambda group: {}, end_offsets=end_offsets,
                             commit_offsets=lambda group, offsets: committed.append((group, offsets)))
    assert restore_group_offsets(cfg, client) == ["app (1 partitions)"]
    assert committed == [("app", {("kept", 0): 7})]
    forget_topics(cfg, {"gone"})
    raw = json.loads((cfg.data_dir / "topics.json").read_text())
    assert raw["topics"] == {"kept": {}} and raw["groups"] == {"app": {"kept:0": 7}}


def test_catalog_keeps_client_quotas_and_group_configs_and_puts_back_what_was_lost(broker, tmp_path):
    cfg = parse_config(f'[sandbox]\ndata_dir = "{tmp_path / "data"}"\n', cwd=tmp_path)
    cfg.data_dir.mkdir(parents=True)
    alice = (("user", "alice"),)
    with KafkaClient(broker.bootstrap) as c:
        c.alter_client_quotas({alice: {"producer_byte_rate": 1024.0}})
        c.alter_group_configs("billing", {"consumer.session.timeout.ms": "50000"})
        save_catalog(cfg, c)
        raw = json.loads((cfg.data_dir / "topics.json").read_text())
        assert raw["quotas"] == [{"entity": [["user", "alice"]], "values": {"producer_byte_rate": 1024.0}}]
        assert raw["group_configs"] == {"billing": {"consumer.session.timeout.ms": "50000"}}
        # what a destroyed journal loses (entries the cluster no longer has), and a value changed
        # since the catalog was written, which stays as it is now
        raw["quotas"].append({"entity": [["client-id", None]], "values": {"consumer_byte_rate": 2048.0}})
        raw["group_configs"]["audit"] = {"consumer.heartbeat.interval.ms": "2000"}
        (cfg.data_dir / "topics.json").write_text(json.dumps(raw))
        c.alter_client_quotas({alice: {"producer_byte_rate": 4096.0}})
        assert restore_configs(cfg, c) == ["client quotas of 1 entity", "configs of group audit"]
        assert c.client_quotas() == {alice: {"producer_byte_rate": 4096.0},
                                     (("client-id", None),): {"consumer_byte_rate": 2048.0}}
        assert c.group_configs("audit") == {"consumer.heartbeat.interval.ms": "2000"}
        assert c.group_configs("billing") == {"consumer.session.timeout.ms": "50000"}
        assert restore_configs(cfg, c) == []   # nothing lost any more


class _Committer:
    """A client whose group coordinator answers each commit with the next of `answers` (0: done)."""

    def __init__(self, answers: list[int]) -> None:
        self.answers, self.committed = list(answers), {}

    def committed_offsets(self, group):
        return dict(self.committed)

    def end_offsets(self, topic):
        return {0: 100, 1: 100}

    def commit_offsets(self, group, offsets):
        from sandbox.client import KafkaClientError
        code = self.answers.pop(0)
        if code:
            raise KafkaClientError(f"committing {group}: error {code}", code)
        self.committed.update(offsets)


def _catalog_with_group(tmp_path):
    cfg = parse_config(f'[sandbox]\ndata_dir = "{tmp_path / "data"}"\n', cwd=tmp_path)
    cfg.data_dir.mkdir(parents=True)
    (cfg.data_dir / "topics.json").write_text(json.dumps({"topics": {}, "groups": {"g": {"t:0": 5, "t:1": 9}}}))
    return cfg


def test_offsets_are_put_back_once_the_restored_offsets_topic_takes_writes(tmp_path):
    """Right after a destroyed coordinator journal is put back, `__consumer_offsets` is loading or
    has its leader alone in the ISR: the commit is refused with a retriable error for a moment."""
    from sandbox.protocol import errors as E
    cfg = _catalog_with_group(tmp_path)
    now = [0.0]

    def sleep(s):
        now[0] += s

    c = _Committer([E.COORDINATOR_LOAD_IN_PROGRESS, E.NOT_COORDINATOR, E.COORDINATOR_NOT_AVAILABLE, 0])
    assert restore_group_offsets(cfg, c, patience_s=5, sleep=sleep, clock=lambda: now[0]) == ["g (2 partitions)"]
    assert c.committed == {("t", 0): 5, ("t", 1): 9} and now[0] == 0.75

    # refused for longer than the patience: the error reaches the supervisor (an event says so)
    from sandbox.client import KafkaClientError
    now[0] = 0.0
    c = _Committer([E.COORDINATOR_NOT_AVAILABLE] * 100)
    with pytest.raises(KafkaClientError):
        restore_group_offsets(cfg, c, patience_s=2, sleep=sleep, clock=lambda: now[0])
    assert 2.0 <= now[0] <= 2.25
    # an error that asking again cannot mend is not asked again
    c = _Committer([E.GROUP_AUTHORIZATION_FAILED, 0])
    with pytest.raises(KafkaClientError):
        restore_group_offsets(cfg, c, patience_s=5, sleep=sleep, clock=lambda: now[0])
    assert c.answers == [0]


def test_the_supervisor_reads_a_folders_topic_id_from_the_brokers_disk(tmp_path):
    """What the restore's ranking is given: the id a broker's partition folder names, as the
    broker's log manager wrote it, and when; nothing in docker mode (the folders are in volumes)."""
    import dataclasses
    import time
    import uuid
    from types import SimpleNamespace

    from sandbox.log import LogConfig, LogDir
    from sandbox.runner.stack import StackSupervisor

    cfg = parse_config(f'[sandbox]\ndata_dir = "{tmp_path / "data"}"\nbrokers = 3\n', cwd=tmp_path)
    logs = LogDir(cfg.service_dir("broker-2"), LogConfig())
    logs.open()
    logs.create("t", 1)
    tid = uuid.uuid4()
    before = time.time()
    logs.record_topic_id("t", 1, tid)
    logs.close()
    sup = SimpleNamespace(cfg=cfg)
    got = StackSupervisor._folder_id(sup, 2, "t", 1)
    assert got is not None and got[0] == tid and got[1] >= before - 1
    assert StackSupervisor._folder_id(sup, 1, "t", 1) is None and StackSupervisor._folder_id(sup, 2, "t", 0) is None
    assert StackSupervisor._folder_id(SimpleNamespace(cfg=dataclasses.replace(cfg, mode="docker")), 2, "t", 1) is None


class _GroupsAway:
    """A real client whose group answers fail as with a broker down: list_groups cannot list the
    groups one broker coordinates (`unlisted`), committed_offsets fails for groups in `unread`."""

    def __init__(self, client: KafkaClient, unlisted: bool = False, unread: frozenset = frozenset()) -> None:
        self._c, self._unlisted, self._unread = client, unlisted, unread

    def __getattr__(self, name):
        return getattr(self._c, name)

    def list_groups(self, *, failed=None, failed_nodes=None, **kw):
        if self._unlisted:   # the test's one broker, 1, coordinates every group
            if failed is None:
                from sandbox.client import KafkaClientError
                raise KafkaClientError("broker 1 does not answer")
            failed.append("the groups broker 1 coordinates are not listed")
            if failed_nodes is not None:
                failed_nodes.add(1)
            return []
        return self._c.list_groups(failed=failed, failed_nodes=failed_nodes, **kw)

    def committed_offsets(self, group):
        if group in self._unread:
            from sandbox.client import KafkaClientError
            raise KafkaClientError(f"finding the coordinator of group {group} failed with COORDINATOR_NOT_AVAILABLE")
        return self._c.committed_offsets(group)


def test_the_catalog_learns_new_topics_while_group_offsets_cannot_be_read(broker, tmp_path):
    """Found by the fault campaign (churn-through-lost-journal): with a broker down, or a group's
    coordinator moving, the whole refresh failed, so a topic made meanwhile was not in the catalog
    when the coordinator's journal was destroyed. Now the topics are refreshed and those groups'
    offsets are kept as they were last read."""
    cfg = parse_config(f'[sandbox]\ndata_dir = "{tmp_path / "data"}"\n', cwd=tmp_path)
    cfg.data_dir.mkdir(parents=True)
    with KafkaClient(broker.bootstrap) as c:
        c.create_topic("a", 1, 1)
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g1", "enable.auto.commit": False})
        consumer.commit(offsets=[TopicPartition("a", 0, 3)], asynchronous=False)
        consumer.close()
        save_catalog(cfg, c)
        c.create_topic("b", 1, 1)
        save_catalog(cfg, _GroupsAway(c, unlisted=True))
        raw = json.loads((cfg.data_dir / "topics.json").read_text())
        assert "b" in raw["topics"] and raw["groups"] == {"g1": {"a:0": 3}}
        c.create_topic("c", 1, 1)
        save_catalog(cfg, _GroupsAway(c, unread=frozenset({"g1"})))
        raw = json.loads((cfg.data_dir / "topics.json").read_text())
        assert "c" in raw["topics"] and raw["groups"] == {"g1": {"a:0": 3}}
        # every broker listed and the group gone: it leaves the catalog
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})   # kept until the answer is in
        admin.delete_consumer_groups(["g1"])["g1"].result(timeout=10)
        save_catalog(cfg, c)
        assert json.loads((cfg.data_dir / "topics.json").read_text())["groups"] == {}


class _TwoBrokers:
    """A fake client of a 2-broker cluster whose `__consumer_offsets` has 2 partitions, partition
    i led by broker i + 1; `listed[b]` are the groups broker b lists (None: its listing fails),
    `offsets[g]` what group g has committed."""

    def __init__(self, listed: dict, offsets: dict) -> None:
        from sandbox.client.models import PartitionMeta

        self.listed, self.offsets = listed, offsets
        parts = [PartitionMeta(i, i + 1, [i + 1], [i + 1]) for i in range(2)]
        topics = {"__consumer_offsets": SimpleNamespace(partitions=parts, topic_id=None)}
        self.md = SimpleNamespace(topics=topics, cluster_id="c1", brokers=[SimpleNamespace(id=1)])

    def metadata(self, *a):
        return self.md, 0.0

    def describe_topic_configs(self, topics):
        return {t: {} for t in topics}

    def list_groups(self, *, skip=(), failed=None, failed_nodes=None):
        from sandbox.client.models import GroupListing
        out = []
        for b, groups in self.listed.items():
            if b in skip:
                continue
            if groups is None:
                failed.append(f"broker {b} not listed")
                failed_nodes.add(b)
                continue
            out += [GroupListing(g, "Empty", "consumer") for g in groups]
        return out

    def committed_offsets(self, group):
        got = self.offsets.get(group, {})
        if got is None:   # its coordinator moving: FindCoordinator keeps failing
            from sandbox.client import KafkaClientError
            raise KafkaClientError(f"finding the coordinator of group {group} failed with COORDINATOR_NOT_AVAILABLE")
        return got

    def client_quotas(self):
        return {}

    def configured_groups(self):
        return []

    def acls(self):
        return []

    def broker_configs(self, broker=""):
        return {"num.io.threads": "4"} if broker == "1" else {}

    def broker_clock(self, broker):
        return None   # a broker of an earlier version: tells no clock

    def scram_keys(self):
        return {}


def test_a_group_deleted_while_another_broker_is_down_leaves_the_catalog(tmp_path):
    """A group whose coordinator answered the listing without it was deleted (or expired): it
    leaves the catalog even while another broker is down, whose groups are kept as last read. It
    used to be kept whenever any broker was down, so a restore after a lost coordinator journal
    put a deleted group's offsets back (a consumer then resumed there instead of at its
    auto.offset.reset position)."""
    from sandbox.client.partitioner import coordinator_partition

    cfg = parse_config(f'[sandbox]\ndata_dir = "{tmp_path / "data"}"\n', cwd=tmp_path)
    cfg.data_dir.mkdir(parents=True)
    on = {b: next(g for g in (f"g{i}" for i in range(100)) if coordinator_partition(g, 2) == b - 1) for b in (1, 2)}
    other = next(g for g in (f"h{i}" for i in range(100)) if coordinator_partition(g, 2) == 0)
    both = {on[1]: {("t", 0): 5}, other: {("t", 0): 7}, on[2]: {("t", 0): 9}}
    save_catalog(cfg, _TwoBrokers({1: [on[1], other], 2: [on[2]]}, both))

    def groups():
        return json.loads((cfg.data_dir / "topics.json").read_text())["groups"]
    assert groups() == {on[1]: {"t:0": 5}, other: {"t:0": 7}, on[2]: {"t:0": 9}}
    # dynamic broker configs are kept too: broker 1's own (the default has none here)
    assert json.loads((cfg.data_dir / "topics.json").read_text())["broker_configs"] == {"1": {"num.io.threads": "4"}}
    stopped = _TwoBrokers({1: [on[1], other], 2: [on[2]]}, both)
    stopped.md.brokers = []   # broker 1 stopped: its settings are kept as last read
    save_catalog(cfg, stopped)
    assert json.loads((cfg.data_dir / "topics.json").read_text())["broker_configs"] == {"1": {"num.io.threads": "4"}}
    # broker 2 down; `other` deleted on broker 1: gone; broker 2's group kept as last read
    gone = {g: o for g, o in both.items() if g != other}
    save_catalog(cfg, _TwoBrokers({1: [on[1]], 2: [on[2]]}, gone), down={2})
    assert groups() == {on[1]: {"t:0": 5}, on[2]: {"t:0": 9}}
    # a group its coordinator did not list (moving, or not loaded yet) but still has offsets:
    # asked directly, kept with what it has now; one whose coordinator cannot be found: kept
    moved = {on[1]: {("t", 0): 6}, on[2]: None}
    save_catalog(cfg, _TwoBrokers({1: [], 2: []}, moved))
    assert groups() == {on[1]: {"t:0": 6}, on[2]: {"t:0": 9}}
    # broker 1's listing fails: its groups are kept too; broker 2 answers that its group is gone
    save_catalog(cfg, _TwoBrokers({1: None, 2: []}, {}))
    assert groups() == {on[1]: {"t:0": 6}}


def test_the_catalog_is_refreshed_while_a_broker_is_down_but_not_the_coordinator():
    """catalog_epoch: a broker down or paused leaves the metadata whole, so the catalog goes on
    learning topics; a coordinator that is not healthy (perhaps a fresh journal), no broker up,
    or a journal waiting for its topics freezes it."""
    from types import SimpleNamespace

    from sandbox.runner.service import catalog_epoch

    def svc(role, healthy=True, pending=False):
        return SimpleNamespace(role=role, healthy=healthy, recreate_pending=pending)

    events = SimpleNamespace(wipes=2)
    assert catalog_epoch(events, [svc("coordinator"), svc("broker"), svc("broker", False)]) == 2
    assert catalog_epoch(events, [svc("coordinator", False), svc("broker"), svc("broker")]) is None
    assert catalog_epoch(events, [svc("coordinator"), svc("broker", False), svc("broker", False)]) is None
    assert catalog_epoch(events, [svc("coordinator"), svc("broker"), svc("broker", False, True)]) is None


def test_the_catalog_takes_its_topics_from_the_coordinator_not_a_broker_that_may_be_behind(tmp_path):
    """A broker that was paused (or cut off) answers Metadata with what it had then: a topic
    deleted and made again meanwhile was recorded as the older one, under its id, after the newer
    one's folders were written, and a restore then put the older one back and set the newer one's
    records aside (found by a test of that case). The topics and their configs now come from the
    coordinator, which lists the internal topics only when they are named."""
    import uuid

    from sandbox.client.models import ClusterMetadata, PartitionMeta, TopicMeta

    cfg = parse_config(f'[sandbox]\ndata_dir = "{tmp_path / "data"}"\n', cwd=tmp_path)
    cfg.data_dir.mkdir(parents=True)
    old, new = uuid.uuid4(), uuid.uuid4()
    brokers = _TwoBrokers({1: [], 2: []}, {})
    brokers.md.topics["again"] = TopicMeta("again", old, [PartitionMeta(0, 1, [1, 2], [1, 2])])

    class Coordinator:
        asked: list = []

        def metadata(self, topics=None):
            self.asked.append(topics)
            offsets = brokers.md.topics["__consumer_offsets"]
            listed = {"again": TopicMeta("again", new, [PartitionMeta(0, 2, [2], [2])])} if topics is None else {
                "__consumer_offsets": TopicMeta("__consumer_offsets", None, offsets.partitions, True),
                "__transaction_state": TopicMeta("__transaction_state", None, [], True, 3)}   # unknown
            return ClusterMetadata("c1", -1, [], listed), 0.0

        def describe_topic_configs(self, topics):
            return {t: {"retention.ms": ("5", False)} for t in topics}

    save_catalog(cfg, brokers, topics_from=Coordinator())
    topics = json.loads((cfg.data_dir / "topics.json").read_text())["topics"]
    assert sorted(topics) == ["__consumer_offsets", "again"]
    assert topics["again"]["topic_id"] == str(new) and topics["again"]["assignments"] == [[2]]
    assert topics["again"]["config"] == {"retention.ms": "5"}
    assert Coordinator.asked == [None, ["__consumer_offsets", "__transaction_state"]]
    # without it (as before), the broker's view
    save_catalog(cfg, brokers)
    assert json.loads((cfg.data_dir / "topics.json").read_text())["topics"]["again"]["topic_id"] == str(old)


def test_a_topic_made_again_elsewhere_within_the_catalogs_refresh_is_placed_where_its_folders_are():
    """`t` (id X, 2 partitions on brokers 1 and 2) was deleted and made again (id Y, 3 partitions
    on brokers 3 and 1) within the catalog's 3 s refresh, then the journal was destroyed. By the
    catalog's placement the older topic came back, empty, and the newer one's records were not
    served. Every broker is asked which folders it holds: the topic is placed where the newer
    one's are, under its id, with the catalog's configs."""
    import uuid

    from sandbox.config import TopicSpec
    from sandbox.protocol.extensions import RESTORE_LEADER_EPOCH, RESTORE_TOPIC_ID
    from sandbox.runner.restore_placement import lead_with_longest_logs

    old, new = uuid.uuid4(), uuid.uuid4()
    specs = {"t": TopicSpec("t", 2, 2, {RESTORE_TOPIC_ID: str(old), "retention.ms": "-1"}, ((1, 2), (2, 1))),
             "u": TopicSpec("u", 1, 1, {RESTORE_TOPIC_ID: str(uuid.uuid4())}, ((1,),))}
    ends = {**{(3, "t", i): (4, 0) for i in range(3)}, (1, "t", 0): (2, 0), (1, "t", 2): (4, 1)}
    folders = {**{(3, "t", i): (new, 200.0) for i in range(3)}, (1, "t", 0): (new, 200.0), (1, "t", 2): (new, 200.0)}
    client = _Ends(ends, folders=folders)
    out, notes = lead_with_longest_logs(specs, client, catalog_time=100.0, brokers=[1, 2, 3])
    t = out["t"]
    # each partition on the brokers holding it, the newest history first; 2 holds none: a filler
    assert (t.partitions, t.replication, t.assignments) == (3, 2, ((3, 1), (3, 1), (1, 3))), notes
    assert t.config[RESTORE_TOPIC_ID] == str(new) and t.config["retention.ms"] == "-1"
    assert t.config[RESTORE_LEADER_EPOCH] == "2"
    assert notes[0].startswith(f"t: put back where the folders of topic id {new}, written after the catalog, are (")
    assert "u" in out and out["u"] == specs["u"]
    # only broker 3 holds the newer topic and is not asked (as before): the catalog's placement
    on3 = {k: v for k, v in folders.items() if k[0] == 3}
    assert lead_with_longest_logs(specs, _Ends(ends, folders=on3), catalog_time=100.0)[0]["t"].assignments \
        == ((1, 2), (2, 1))
    # the newer folders where the catalog places the topic: put back under their id, as placed
    inside = {(1, "t", 0): (new, 200.0), (2, "t", 1): (new, 200.0)}
    out, _ = lead_with_longest_logs(specs, _Ends({}, folders=inside), catalog_time=100.0, brokers=[1, 2, 3])
    assert out["t"].config[RESTORE_TOPIC_ID] == str(new) and out["t"].assignments == ((1, 2), (2, 1))
    # folders of the catalog's own id elsewhere (left by a move): the catalog's placement
    moved = {(3, "t", 0): (old, 200.0)}
    out, _ = lead_with_longest_logs(specs, _Ends({}, folders=moved), catalog_time=100.0, brokers=[1, 2, 3])
    assert out["t"].assignments == ((1, 2), (2, 1)) and out["t"].config[RESTORE_TOPIC_ID] == str(old)


def test_offsets_of_a_topic_put_back_under_a_newer_id_are_not_committed_onto_it(tmp_path):
    """The catalog's offsets of a topic put back under a newer id (made again after the catalog
    last read it) point into the older topic: committed onto the newer one's records, a group
    would skip them where its end offset reaches them."""
    cfg = _catalog_with_group(tmp_path)
    c = _Committer([0])
    assert restore_group_offsets(cfg, c, skip={"t"}) == [] and c.committed == {}
    assert restore_group_offsets(cfg, c) == ["g (2 partitions)"] and c.committed == {("t", 0): 5, ("t", 1): 9}


def test_a_topic_placed_by_its_folders_has_as_many_replicas_on_every_partition():
    """Found by review: a filler was never a broker holding a folder of another topic of that
    name, so a partition could get fewer replicas than another (the coordinator refuses such a
    topic, and the restore was asked again and again). Fillers holding nothing come first, then
    those holding another topic's folder; the catalog's replication is kept if higher."""
    import uuid

    from sandbox.config import TopicSpec
    from sandbox.runner.restore_placement import _placed_by_folders

    old, new = uuid.uuid4(), uuid.uuid4()
    spec = TopicSpec("t", 2, 1, {}, ((1,), (2,)))
    found = {(1, 0): (new, 2.0), (2, 0): (new, 2.0), (3, 1): (new, 2.0), (1, 1): (old, 1.0), (2, 1): (old, 1.0)}
    placed = _placed_by_folders(spec, new, found, [1, 2, 3])
    assert (placed.partitions, placed.replication, placed.assignments) == (2, 2, ((1, 2), (3, 1)))
    three = dataclasses.replace(spec, replication=3)
    assert _placed_by_folders(three, new, found, [1, 2, 3]).assignments == ((1, 2, 3), (3, 1, 2))


def test_each_brokers_dynamic_configs_are_asked_of_that_broker_and_kept_when_it_does_not_answer(tmp_path):
    """A broker describes only "" and its own id (as Kafka's ConfigHelper): the catalog reads
    each broker's dynamic settings on their own, so one broker that does not answer (or is down)
    keeps what it had while the others' are read again, instead of the whole refresh failing."""
    from sandbox.client import KafkaClientError

    cfg = parse_config(f'[sandbox]\ndata_dir = "{tmp_path / "data"}"\n', cwd=tmp_path)
    cfg.data_dir.mkdir(parents=True)
    settings = {"": {"message.max.bytes": "2000"}, "1": {"num.io.threads": "4"}, "2": {"background.threads": "3"}}
    asked, silent = [], set()

    class Client(_TwoBrokers):
        def broker_configs(self, broker=""):
            asked.append(broker)
            if broker in silent:
                raise KafkaClientError(f"broker {broker} did not answer")
            return dict(settings[broker])

    def saved(down=()):
        client = Client({1: [], 2: []}, {})
        client.md.brokers = [SimpleNamespace(id=1), SimpleNamespace(id=2)]
        asked.clear()
        save_catalog(cfg, client, down=down)
        return json.loads((cfg.data_dir / "topics.json").read_text())["broker_configs"]

    assert saved() == settings and asked == ["", "1", "2"]
    settings.update({"1": {"num.io.threads": "8"}, "2": {"background.threads": "5"}})
    silent.add("2")
    assert saved() == {**settings, "2": {"background.threads": "3"}}   # broker 2's kept as last read
    silent.clear()
    assert saved(down={2}) == {**settings, "2": {"background.threads": "3"}} and "2" not in asked
