"""LogDir.open() leaves single-segment partitions unopened until their first use: no handle, no
scan before the broker serves; the first use recovers the log (torn tail cut) before answering."""
import os

import pytest

from sandbox.log import LogConfig, LogDir, PartitionLog, UnrecoverableJournalError
from sandbox.log.compactor import Compactor
from sandbox.log.manager import LOG_START_CHECKPOINT, RECOVERY_CHECKPOINT, read_checkpoint
from sandbox.log.lazy import UnopenedPartitionLog

from .logkit import batch, offsets


class Events(list):
    def __call__(self, kind, info):
        self.append((kind, info))

    def of(self, kind):
        return [i for k, i in self if k == kind]


def cfg(**kw):
    kw.setdefault("segment_bytes", 1 << 20)
    kw.setdefault("index_interval_bytes", 128)
    return LogConfig(**kw)


def crash(ld: LogDir) -> None:
    """What a SIGKILL leaves: written bytes stay, nothing is flushed, no checkpoint (the lock of
    a dead process is stale: removed here, as the next open would)."""
    for log in ld._logs.values():
        for seg in getattr(log, "_segments", []):
            seg.close()
    ld._logs.clear()
    ld._locked = False
    os.remove(ld.root / ".lock")


def held(windows_files, directory) -> list[str]:
    return [p for p in windows_files.open_paths() if p.startswith(str(directory))]


def test_torn_tail_of_an_unopened_partition_is_repaired_before_the_first_read(tmp_path, windows_files):
    ld = LogDir(tmp_path, cfg())
    ld.open()
    log = ld.create("t", 0)
    for i in range(10):
        log.append(batch(3, tag=f"b{i}"))
    good = log.read(0, 1 << 30).tobytes()
    seg = log.housekeeping.segment_paths()[0]
    crash(ld)
    with open(seg, "ab") as f:   # a torn write: a header promising more bytes than there are
        f.write((30).to_bytes(8, "big") + (500).to_bytes(4, "big") + b"\0" * 60)
    torn_size = seg.stat().st_size

    ev = Events()
    ld = LogDir(tmp_path, cfg(), on_event=ev)
    logs = ld.open()
    log = logs[("t", 0)]
    assert isinstance(log, UnopenedPartitionLog) and not log.opened
    assert held(windows_files, tmp_path / "t-0") == []          # no handle before the first use
    assert seg.stat().st_size == torn_size and ev.of("repair") == []   # nothing done yet

    data = log.read(0, 1 << 30).tobytes()                       # the first use opens and repairs
    assert data == good and offsets(data) == list(range(30))
    assert log.opened and type(log) is PartitionLog and ld.get("t", 0) is log
    assert [r["bytes"] for r in ev.of("repair")] == [72] and seg.stat().st_size == torn_size - 72
    assert log.log_end_offset == 30
    assert log.append(batch(1)).first_offset == 30               # appends after the good data
    ld.close()
    assert held(windows_files, tmp_path / "t-0") == []


def test_first_access_of_any_kind_repairs_first(tmp_path):
    """The log end offset (ListOffsets, Produce) is also a first use: it answers after the repair."""
    ld = LogDir(tmp_path, cfg())
    ld.open()
    log = ld.create("t", 0)
    log.append(batch(4))
    seg = log.housekeeping.segment_paths()[0]
    crash(ld)
    with open(seg, "ab") as f:
        f.write(b"\x00" * 8 + b"\xff" * 100)   # garbage after the last whole batch
    ld = LogDir(tmp_path, cfg())
    log = ld.open()[("t", 0)]
    assert log.log_end_offset == 4 and log.high_watermark == 4
    assert seg.stat().st_size == len(log.read(0, 1 << 20))
    ld.close()


def test_unopened_partitions_cost_nothing_at_close_and_keep_their_checkpoints(tmp_path):
    ld = LogDir(tmp_path, cfg())
    ld.open()
    for p in range(3):
        log = ld.create("t", p)
        for _ in range(p + 1):
            log.append(batch(2))
    ld.get("t", 2).delete_records_before(2)
    ld.close()
    before = {n: read_checkpoint(tmp_path / n) for n in (RECOVERY_CHECKPOINT, LOG_START_CHECKPOINT)}
    files = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in tmp_path.glob("t-*/*")}

    ld = LogDir(tmp_path, cfg())
    logs = ld.open()
    assert not any(log.opened for log in logs.values())
    assert logs[("t", 1)].recovery_point == 4 and not logs[("t", 1)].housekeeping.dirty
    ld.checkpoint()
    ld.flush_all()
    ld.close()
    assert {n: read_checkpoint(tmp_path / n) for n in before} == before
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in tmp_path.glob("t-*/*")} == files

    ld = LogDir(tmp_path, cfg())
    logs = ld.open()
    assert [logs[("t", p)].log_end_offset for p in range(3)] == [2, 4, 6]
    assert logs[("t", 2)].log_start_offset == 2
    ld.close()


def test_a_clean_reopen_that_reads_rewrites_nothing_at_close(tmp_path):
    """Indexes rebuilt by the open's scan equal the files a clean stop wrote: no rewrite (10,000
    partitions read after a restart must not cost 50,000 fsyncs at the next stop)."""
    ld = LogDir(tmp_path, cfg())
    ld.open()
    log = ld.create("t", 0)
    for i in range(40):
        log.append(batch(3, ts=1000 + i))
    ld.close()
    files = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (tmp_path / "t-0").iterdir()}
    ld = LogDir(tmp_path, cfg())
    log = ld.open()[("t", 0)]
    assert len(log.read(0, 1 << 30)) > 0 and log.opened
    ld.close()
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (tmp_path / "t-0").iterdir()} == files


def test_housekeeping_and_config_changes_leave_a_partition_unopened(tmp_path):
    ld = LogDir(tmp_path, cfg())
    ld.open()
    ld.create("t", 0).append(batch(2))
    ld.close()
    ld = LogDir(tmp_path, cfg())
    log = ld.open()[("t", 0)]
    compact = cfg(cleanup_policy="compact")
    log.config = compact
    assert log.config is compact
    hk = log.housekeeping
    assert hk.apply_retention(10**13) == 0 and not Compactor(log).step(10**13) and not hk.flush(10**13, if_due=True)
    assert not log.opened
    assert log.housekeeping.segment_count == 1 and log.opened      # anything else opens it
    assert log.config is compact
    ld.close()


def test_unopened_partition_is_deleted_without_open_handles(tmp_path, windows_files):
    ld = LogDir(tmp_path, cfg())
    ld.open()
    ld.create("doomed", 0).append(batch(2))
    ld.create("kept", 0).append(batch(1))
    ld.close()
    ld = LogDir(tmp_path, cfg())
    ld.open()
    assert not ld.get("doomed", 0).opened
    ld.delete_partition("doomed", 0)
    assert not (tmp_path / "doomed-0").exists() and windows_files.vetoes == 0
    ld.close()
    ld = LogDir(tmp_path, cfg())
    assert set(ld.open()) == {("kept", 0)}
    ld.close()


def test_partitions_with_rolled_segments_are_checked_at_open(tmp_path):
    """Acknowledged data sits in rolled segments: damage there still refuses the whole open, before
    the broker serves anything (the supervisor then quarantines the journal)."""
    ld = LogDir(tmp_path, cfg(segment_bytes=1024))
    ld.open()
    log = ld.create("t", 0)
    for i in range(30):
        log.append(batch(2, tag=f"b{i}"))
    segs = log.housekeeping.segment_paths()
    assert len(segs) >= 3
    ld.create("idle", 0)
    ld.close()
    ld = LogDir(tmp_path, cfg(segment_bytes=1024))
    logs = ld.open()
    assert logs[("t", 0)].opened and not logs[("idle", 0)].opened
    ld.close()
    with open(segs[0], "r+b") as f:
        f.seek(16)
        f.write(b"\x07")   # bad magic in the first, acknowledged segment
    with pytest.raises(UnrecoverableJournalError):
        LogDir(tmp_path, cfg(segment_bytes=1024)).open()
    assert not (tmp_path / ".lock").exists()


def test_leftovers_make_a_partition_open_at_start(tmp_path):
    ld = LogDir(tmp_path, cfg())
    ld.open()
    ld.create("t", 0).append(batch(2))
    ld.close()
    (tmp_path / "t-0" / "00000000000000000000.index.tmp").write_bytes(b"x")
    ld = LogDir(tmp_path, cfg())
    log = ld.open()[("t", 0)]
    assert log.opened and not (tmp_path / "t-0" / "00000000000000000000.index.tmp").exists()
    ld.close()


def test_a_failed_first_open_leaves_the_log_unopened_and_retries(tmp_path, monkeypatch):
    ld = LogDir(tmp_path, cfg())
    ld.open()
    ld.create("t", 0).append(batch(2))
    ld.close()
    ld = LogDir(tmp_path, cfg())
    log = ld.open()[("t", 0)]
    real = PartitionLog._load

    def failing(self, *a):
        raise OSError(5, "simulated I/O error")

    monkeypatch.setattr(PartitionLog, "_load", failing)
    with pytest.raises(OSError):
        log.log_end_offset
    assert not log.opened
    monkeypatch.setattr(PartitionLog, "_load", real)
    assert log.log_end_offset == 2 and log.opened
    ld.close()
    assert os.listdir(tmp_path / "t-0")


def test_retention_opens_an_unopened_partition_only_when_its_segment_may_be_past_it(tmp_path):
    """An idle partition's records go once past retention.ms, as Kafka's (retention takes the
    active segment too); one whose file is recent stays unopened."""
    ld = LogDir(tmp_path, cfg(retention_ms=60_000))
    ld.open()
    ld.create("t", 0).append(batch(2, ts=1_000))
    ld.close()
    ld = LogDir(tmp_path, cfg(retention_ms=60_000))
    log = ld.open()[("t", 0)]
    written = int(os.stat(tmp_path / "t-0" / f"{0:020d}.log").st_mtime * 1000)
    assert log.housekeeping.apply_retention(written + 30_000) == 0 and not log.opened
    assert log.housekeeping.apply_retention(written + 61_000) > 0 and log.opened
    assert log.log_start_offset == log.log_end_offset == 2
    ld.close()


def test_a_retention_check_opens_at_most_a_few_unopened_partitions(tmp_path):
    """Review: the first retention check after a restart opened every idle partition past
    retention at once, each a CRC scan of its segment on the event loop."""
    from types import SimpleNamespace

    from sandbox.broker.log_housekeeping import LAZY_RETENTION_OPENS
    from sandbox.broker.state import BrokerState

    ld = LogDir(tmp_path, cfg(retention_ms=60_000))
    ld.open()
    n = LAZY_RETENTION_OPENS + 4
    for i in range(n):
        ld.create(f"t{i}", 0).append(batch(2, ts=1_000))
    ld.close()
    ld = LogDir(tmp_path, cfg(retention_ms=60_000))
    logs = ld.open()
    later = max(os.stat(p).st_mtime for p in tmp_path.glob("t*-0/*.log")) + 3600
    me = SimpleNamespace(partitions=logs, clock=lambda: later, config=SimpleNamespace(producer_id_expiration_ms=10**12))
    BrokerState.apply_retention(me)
    assert sum(log.opened for log in logs.values()) == LAZY_RETENTION_OPENS
    BrokerState.apply_retention(me)
    assert all(log.opened and log.log_start_offset == 2 for log in logs.values())
    ld.close()
