"""Log compaction (cleanup.policy=compact), under Windows file semantics (tests/log/conftest.py):
the latest record of each key stays at its offset, tombstones go after delete.retention.ms, records
without keys and the active segment are untouched, a crash in the middle of a swap is finished at
the next open, and a log that moved on meanwhile refuses the result."""

from __future__ import annotations

import gzip
import os
import struct

import pytest

from .logkit import Clock
from sandbox.log import LogConfig, PartitionLog, build_batch, iter_records
from sandbox.log.batch import ATTR_CODEC_MASK, HEADER_SIZE, compute_crc, parse_header
from sandbox.log.cleaner import CLEANED_SUFFIX, SWAP_SUFFIX, clean
from sandbox.log.compactor import Compactor


def cfg(**kw) -> LogConfig:
    kw.setdefault("segment_bytes", 400)
    kw.setdefault("index_interval_bytes", 64)
    kw.setdefault("cleanup_policy", "compact")
    return LogConfig(**kw)


def put(log: PartitionLog, key: bytes | None, value: bytes | None, ts: int) -> int:
    return log.append(build_batch([(key, value)], timestamp_ms=ts)).first_offset


def records(log: PartitionLog, start: int | None = None) -> list[tuple[int, bytes | None, bytes | None]]:
    start = log.log_start_offset if start is None else start
    return [(o, k, v) for o, _ts, k, v, _h in iter_records(log.read(start, 1 << 24).tobytes())]


_compactors: dict[int, Compactor] = {}


def compactor(log: PartitionLog) -> Compactor:
    """The log's one Compactor (its compaction state lives as long as the log object)."""
    c = _compactors.get(id(log))
    if c is None or c.log is not log:
        c = _compactors[id(log)] = Compactor(log)
    return c


def compact(log: PartitionLog, now_ms: int, decompress=None):
    """One whole pass through Compactor.step(), as the broker runs it; the result it installed."""
    c = compactor(log)
    c.decompress = decompress
    refs = c.cleanable(now_ms)
    while c.step(now_ms):
        pass
    if not refs:
        return None
    assert c.last_result is not None and c.last_result.refs == refs   # installed
    return c.last_result


@pytest.fixture
def clock():
    return Clock()


def test_latest_value_per_key_stays_at_its_offset(tmp_path, clock):
    log = PartitionLog(tmp_path / "c-0", cfg(), clock=clock)
    written = []
    for rnd in range(6):
        for k in range(4):
            written.append((put(log, b"k%d" % k, b"v%d-%d" % (k, rnd), clock.ms()), b"k%d" % k, b"v%d-%d" % (k, rnd)))
    put(log, None, b"no key", clock.ms())
    assert log.housekeeping.segment_count > 3
    active_base = log.housekeeping.segment_paths()[-1]
    second_base = int(log.housekeeping.segment_paths()[1].stem)
    before = records(log)
    result = compact(log, clock.ms())
    assert result is not None and result.records_after < result.records_before
    after = records(log)
    active = int(active_base.stem)
    # past the first segment, each key appears once at most in the closed part, with an offset
    # nothing later of that key (in the closed part) replaced; the active segment is unchanged.
    # (The first segment stays as it was when nothing of it would be left: it holds the log start.)
    latest = {k: o for o, k, _ in before if o < active}
    middle = [r for r in after if second_base <= r[0] < active]
    assert all(latest[k] == o for o, k, _ in middle if k is not None), middle
    assert [r for r in after if r[0] >= active] == [r for r in before if r[0] >= active]
    assert set(r for r in after if r[0] < second_base) <= set(r for r in before if r[0] < second_base)
    assert (None, b"no key") in [(k, v) for _, k, v in after]
    # the offsets kept are the original ones, in order, with gaps
    assert [o for o, _, _ in after] == sorted(o for o, _, _ in after)
    assert set(after) <= set(before)
    # every key's latest value is still readable, and reading from inside a gap lands on the next record
    by_key = {k: v for _, k, v in after}
    assert by_key == {k: v for _, k, v in before}
    gap = next(o for o in range(before[-1][0]) if o not in {x[0] for x in after})
    assert records(log, gap)[0][0] == min(o for o, _, _ in after if o > gap)
    # nothing new: nothing to do
    assert compactor(log).cleanable(clock.ms()) == []
    log.close()
    # reopened: the recovery check accepts segments that start after their base offset
    assert log.log_start_offset == 0 == int(log.housekeeping.segment_paths()[0].stem)   # the first segment stays
    again = PartitionLog(tmp_path / "c-0", cfg(), clock=clock, recovery_point=log.recovery_point,
                         log_start_offset=log.log_start_offset)
    assert again.log_start_offset == 0 and records(again) == after
    again.close()


def test_tombstones_go_after_delete_retention_ms(tmp_path, clock):
    log = PartitionLog(tmp_path / "t-0", cfg(delete_retention_ms=60_000), clock=clock)
    put(log, b"gone", b"first", clock.ms())
    put(log, b"kept", b"value", clock.ms())
    put(log, b"gone", None, clock.ms())          # the tombstone
    for i in range(30):                           # roll the tombstone into a closed segment
        put(log, b"filler", b"x" * 20, clock.ms())
    result = compact(log, clock.ms())
    assert result.tombstones_due_ms == clock.ms() + 60_000
    kv = [(k, v) for _, k, v in records(log)]
    assert (b"gone", b"first") not in kv and (b"gone", None) in kv and (b"kept", b"value") in kv
    clock.advance_ms(30_000)
    assert compactor(log).cleanable(clock.ms()) == []        # not due yet, and nothing new
    clock.advance_ms(31_000)
    assert compactor(log).cleanable(clock.ms()) != []        # due: cleaned again without new data
    compact(log, clock.ms())
    kv = [(k, v) for _, k, v in records(log)]
    assert b"gone" not in [k for k, _ in kv] and (b"kept", b"value") in kv
    log.close()


def test_delete_policy_topics_and_young_segments_are_left_alone(tmp_path, clock):
    plain = PartitionLog(tmp_path / "p-0", cfg(cleanup_policy="delete"), clock=clock)
    for i in range(40):
        put(plain, b"same", b"v%d" % i, clock.ms())
    assert compactor(plain).cleanable(clock.ms()) == []
    plain.close()
    young = PartitionLog(tmp_path / "y-0", cfg(min_compaction_lag_ms=10_000), clock=clock)
    for i in range(40):
        put(young, b"same", b"v%d" % i, clock.ms())
    assert compactor(young).cleanable(clock.ms()) == []      # every closed segment is younger than the lag
    clock.advance_ms(10_001)
    assert len(compactor(young).cleanable(clock.ms())) == young.housekeeping.segment_count - 1
    young.close()


def _gzip_batch(base_ts: int, pairs: list[tuple[bytes, bytes]]) -> bytes:
    """One gzip-compressed batch, laid out as a Java producer writes it."""
    plain = build_batch(pairs, timestamp_ms=base_ts)
    head = bytearray(plain[:HEADER_SIZE])
    body = gzip.compress(plain[HEADER_SIZE:])
    struct.pack_into(">h", head, 21, parse_header(plain).attributes | 1)
    buf = head + body
    struct.pack_into(">i", buf, 8, len(buf) - 12)
    struct.pack_into(">I", buf, 17, compute_crc(buf, 0, len(buf)))
    return bytes(buf)


def test_compressed_batches_are_cleaned_when_a_codec_is_given(tmp_path, clock):
    log = PartitionLog(tmp_path / "z-0", cfg(segment_bytes=300), clock=clock)
    while log.housekeeping.segment_count == 1:                 # the first segment keeps its last batch: fill it first
        put(log, b"head", b"h", clock.ms())
    for rnd in range(4):
        log.append(_gzip_batch(clock.ms(), [(b"a", b"a%d" % rnd), (b"b", b"b%d" % rnd)]))
    for i in range(10):
        put(log, b"tail", b"t", clock.ms())
    compact(log, clock.ms())                      # without a codec compressed batches stay whole
    assert [v for _, k, v in records_any(log) if k == b"a"] == [b"a0", b"a1", b"a2", b"a3"]
    result = compact_forced(log, clock.ms(), decompress=lambda codec, b: gzip.decompress(b))
    assert result is not None
    kept = [(k, v) for _, k, v in records_any(log) if k in (b"a", b"b")]
    assert kept == [(b"a", b"a3"), (b"b", b"b3")]
    log.close()


def records_any(log: PartitionLog) -> list[tuple[int, bytes | None, bytes | None]]:
    """Records of compressed and plain batches alike."""
    out = []
    data = log.read(0, 1 << 24).tobytes()
    pos = 0
    while pos < len(data):
        h = parse_header(data, pos)
        raw = data[pos:pos + h.size]
        if h.attributes & ATTR_CODEC_MASK:
            plain = bytearray(raw[:HEADER_SIZE]) + gzip.decompress(raw[HEADER_SIZE:])
            struct.pack_into(">h", plain, 21, h.attributes & ~ATTR_CODEC_MASK)
            struct.pack_into(">i", plain, 8, len(plain) - 12)
            raw = bytes(plain)
        out += [(o, k, v) for o, _t, k, v, _h in iter_records(raw)]
        pos += h.size
    return out


def compact_forced(log: PartitionLog, now_ms: int, decompress):
    compactor(log)._cleaned_through = 0   # as if nothing had been cleaned: run again with a codec
    return compact(log, now_ms, decompress)


def test_a_swap_interrupted_by_a_crash_is_finished_at_the_next_open(tmp_path, clock):
    d = tmp_path / "s-0"
    log = PartitionLog(d, cfg(), clock=clock)
    for rnd in range(5):
        for k in range(3):
            put(log, b"k%d" % k, b"%d" % rnd, clock.ms())
    refs = compactor(log).cleanable(clock.ms())
    result = clean(refs, log.config, clock.ms())
    expected = {k: v for _, k, v in records(log)}
    point = log.recovery_point
    log.close()
    # the crash: every .cleaned was renamed to .swap, none replaced its .log yet; plus a stray .cleaned
    assert any(result.outputs.values())
    for base, cleaned in result.outputs.items():
        if cleaned is None:   # a segment with nothing left is deleted by install_cleaned: not yet here
            continue
        os.replace(cleaned, cleaned.with_name(cleaned.name[:-len(CLEANED_SUFFIX)] + SWAP_SUFFIX))
    (d / ("00000000000000009999.log" + CLEANED_SUFFIX)).write_bytes(b"half written")
    again = PartitionLog(d, cfg(), clock=clock, recovery_point=point)
    names = os.listdir(d)
    assert not [n for n in names if n.endswith((SWAP_SUFFIX, CLEANED_SUFFIX))], names
    got = records(again)
    assert {k: v for _, k, v in got} == expected
    assert len(got) < 15
    again.close()


def test_a_log_that_moved_on_refuses_the_result_and_keeps_no_files(tmp_path, clock):
    log = PartitionLog(tmp_path / "m-0", cfg(cleanup_policy="compact,delete", retention_ms=1000), clock=clock)
    for i in range(40):
        put(log, b"same", b"v%d" % i, clock.ms())
    refs = compactor(log).cleanable(clock.ms())
    result = clean(refs, log.config, clock.ms())
    assert result is not None and result.outputs
    before = records(log)
    clock.advance_ms(5000)
    assert log.housekeeping.apply_retention() > 0            # retention removed segments the cleaner read
    left = records(log)
    assert compactor(log).install(result) is False
    assert records(log) == left and len(left) < len(before)
    assert not [n for n in os.listdir(tmp_path / "m-0") if n.endswith(CLEANED_SUFFIX)]
    log.close()


# ---- property: compaction never loses a key's latest value, nor moves or invents a record ----
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_keys = st.sampled_from([b"a", b"b", b"c", b"d", None])
_values = st.one_of(st.none(), st.binary(max_size=40))
_ops = st.lists(st.tuples(st.lists(st.tuples(_keys, _values), min_size=1, max_size=5), st.booleans()),
                min_size=1, max_size=40)


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=_ops, segment_bytes=st.integers(150, 1200), passes=st.integers(1, 3), reopen=st.booleans())
def test_compaction_keeps_every_keys_latest_value(tmp_path_factory, ops, segment_bytes, passes, reopen):
    clock = Clock()
    d = tmp_path_factory.mktemp("cprop") / "p-0"
    config = cfg(segment_bytes=segment_bytes, delete_retention_ms=10**12)   # tombstones stay in this one
    log = PartitionLog(d, config, clock=clock)
    written: list[tuple[int, bytes | None, bytes | None]] = []
    for recs, roll in ops:
        first = log.append(build_batch(recs, timestamp_ms=clock.ms())).first_offset
        written += [(first + i, k, v) for i, (k, v) in enumerate(recs)]
        if roll:
            log.housekeeping.roll()
    for _ in range(passes):
        compact(log, clock.ms())
    if reopen:
        point, start = log.recovery_point, log.log_start_offset
        log.close()
        log = PartitionLog(d, config, clock=clock, recovery_point=point, log_start_offset=start)
    got = records(log, 0)
    assert set(got) <= set(written)                              # nothing invented, nothing moved
    assert [o for o, _, _ in got] == sorted({o for o, _, _ in got})
    last = {k: (o, v) for o, k, v in written if k is not None}
    for k, (o, v) in last.items():                               # every key's latest record is there
        assert (o, k, v) in got
    assert [r for r in written if r[1] is None] == [r for r in got if r[1] is None]   # keyless kept
    assert log.log_end_offset == written[-1][0] + 1
    log.close()


# ---- what a review found (each failed before its fix) --------------------------------------------
from sandbox.log.cleaner import clean_steps  # noqa: E402


def test_an_idempotent_producers_last_sequence_survives_compaction_and_a_crash(tmp_path, clock):
    d = tmp_path / "ip-0"
    log = PartitionLog(d, cfg(segment_bytes=300), clock=clock)
    log.append(build_batch([(b"x", b"1")], timestamp_ms=clock.ms(), producer_id=7, producer_epoch=0, base_sequence=0))
    log.housekeeping.flush()
    log.append(build_batch([(b"a", b"1")], timestamp_ms=clock.ms(), producer_id=7, producer_epoch=0, base_sequence=1))
    # another writer replaces key a: producer 7's last batch is compacted away
    while log.housekeeping.segment_count < 3:
        put(log, b"a", b"2", clock.ms())
    compact(log, clock.ms())
    point = log.recovery_point
    for seg in log._segments:      # kill -9: nothing more is written
        seg.close()
    again = PartitionLog(d, cfg(segment_bytes=300), clock=clock, recovery_point=point, log_start_offset=0)
    # the next batch in order is accepted (its sequence follows 1), and a retry of 1 is a duplicate
    again.append(build_batch([(b"y", b"1")], timestamp_ms=clock.ms(), producer_id=7, producer_epoch=0, base_sequence=2))
    dup = again.append(build_batch([(b"a", b"1")], timestamp_ms=clock.ms(), producer_id=7, producer_epoch=0,
                                   base_sequence=1))
    assert dup.duplicate
    again.close()


def test_a_tombstone_is_timed_from_the_cleaning_that_first_saw_it_not_its_timestamp(tmp_path, clock):
    log = PartitionLog(tmp_path / "old-0", cfg(delete_retention_ms=60_000), clock=clock)
    while log.housekeeping.segment_count == 1:
        put(log, b"head", b"h", clock.ms())
    two_days_ago = clock.ms() - 2 * 86_400_000    # mirrored or replayed data
    put(log, b"user1", b"alice", two_days_ago)
    put(log, b"user1", None, two_days_ago)
    while log.housekeeping.segment_count < 4:
        put(log, b"filler", b"x" * 20, clock.ms())
    compact(log, clock.ms())
    assert (b"user1", None) in [(k, v) for _, k, v in records(log)]   # consumers get to see the delete
    clock.advance_ms(60_001)
    compact(log, clock.ms())
    assert b"user1" not in [k for _, k, _ in records(log)]


def test_a_compressed_batch_that_loses_nothing_stays_byte_for_byte(tmp_path, clock):
    log = PartitionLog(tmp_path / "gz-0", cfg(segment_bytes=600), clock=clock)
    for i in range(6):
        log.append(_gzip_batch(clock.ms(), [(b"unique-%d-%d" % (i, j), b"v" * 50) for j in range(20)]))
    before = log.size_bytes
    compact(log, clock.ms(), decompress=lambda codec, b: gzip.decompress(b))
    assert log.size_bytes == before
    log.close()


def test_unreadable_batches_keep_every_tombstone(tmp_path, clock):
    log = PartitionLog(tmp_path / "nr-0", cfg(segment_bytes=300, delete_retention_ms=0), clock=clock)
    while log.housekeeping.segment_count == 1:
        put(log, b"head", b"h", clock.ms())
    log.append(_gzip_batch(clock.ms(), [(b"user1", b"alice")]))   # no codec given: cannot be read
    put(log, b"user1", None, clock.ms())
    while log.housekeeping.segment_count < 4:
        put(log, b"filler", b"x" * 20, clock.ms())
    for _ in range(2):
        compact(log, clock.ms())
        clock.advance_ms(1)
    last = [v for _, k, v in records_any(log) if k == b"user1"][-1]
    assert last is None   # the delete stays, so alice is never the latest value again
    log.close()


def test_a_pass_that_removes_nothing_is_not_repeated_until_new_segments_close(tmp_path, clock):
    log = PartitionLog(tmp_path / "u-0", cfg(segment_bytes=300), clock=clock)
    for i in range(30):
        put(log, b"unique-%d" % i, b"v", clock.ms())
    result = compact(log, clock.ms())
    assert result is not None and not result.outputs
    assert compactor(log).cleanable(clock.ms()) == []
    for i in range(30):
        put(log, b"more-%d" % i, b"v", clock.ms())
    assert compactor(log).cleanable(clock.ms()) != []
    log.close()


def test_a_failed_swap_leaves_a_readable_log(tmp_path, clock, monkeypatch):
    log = PartitionLog(tmp_path / "f-0", cfg(segment_bytes=300), clock=clock)
    while log.housekeeping.segment_count < 3:
        put(log, b"k", b"v" * 30, clock.ms())
    before = records(log)
    result = clean(compactor(log).cleanable(clock.ms()), log.config, clock.ms())
    real = os.replace

    def refuse_swap(a, b):
        if str(a).endswith(SWAP_SUFFIX):
            raise PermissionError(13, "held by an antivirus scanner")
        return real(a, b)
    monkeypatch.setattr(os, "replace", refuse_swap)
    monkeypatch.setattr("sandbox.log.files.time.sleep", lambda s: None)
    with pytest.raises(PermissionError):
        compactor(log).install(result)
    monkeypatch.setattr(os, "replace", real)
    assert records(log) == before          # the old segment is open again
    log.close()
    again = PartitionLog(tmp_path / "f-0", cfg(segment_bytes=300), clock=clock, recovery_point=log.recovery_point)
    assert {k: v for _, k, v in records(again)} == {k: v for _, k, v in before}   # the .swap is finished now
    again.close()


def test_retention_between_two_steps_ends_the_pass_without_harm(tmp_path, clock):
    """The broker runs clean_steps between requests; retention (compact,delete) may delete a
    segment in between: under Windows semantics nothing the cleaner holds blocks it, and the
    pass then fails on the closed segment instead of installing stale data."""
    log = PartitionLog(tmp_path / "r-0", cfg(segment_bytes=300, cleanup_policy="compact,delete", retention_ms=1000),
                       clock=clock)
    while log.housekeeping.segment_count < 4:
        put(log, b"k", b"v" * 30, clock.ms())
    monkeypatch_steps = clean_steps(compactor(log).cleanable(clock.ms()), log.config, clock.ms())
    next(monkeypatch_steps)
    clock.advance_ms(5000)
    put(log, b"k", b"fresh", clock.ms())   # kept: retention takes the active segment too once all of it is old
    assert log.housekeeping.apply_retention(clock.ms()) > 0   # no PermissionError: no file of the cleaner is open
    with pytest.raises((ValueError, OSError)):
        for _ in monkeypatch_steps:
            pass
    assert records(log)                          # the log reads fine
    assert not [n for n in os.listdir(tmp_path / "r-0") if n.endswith(CLEANED_SUFFIX)]
    log.close()


def test_a_fully_replaced_first_segment_keeps_one_harmless_record(tmp_path, clock):
    log = PartitionLog(tmp_path / "fs-0", cfg(segment_bytes=300, delete_retention_ms=0), clock=clock)
    while log.housekeeping.segment_count == 1:   # the first segment: a, b and gone, all replaced or deleted later
        put(log, b"a", b"a-old", clock.ms())
        put(log, b"gone", b"g", clock.ms())
        put(log, b"b", b"b-old", clock.ms())
    first_end = int(log.housekeeping.segment_paths()[1].stem)
    put(log, b"a", b"a-new", clock.ms())
    put(log, b"b", b"b-new", clock.ms())
    put(log, b"gone", None, clock.ms())
    while log.housekeeping.segment_count < 4:
        put(log, b"filler", b"x", clock.ms())
    for _ in range(2):   # the second pass drops the tombstone (delete.retention.ms = 0 since first seen)
        compact(log, clock.ms())
        clock.advance_ms(1)
    got = records(log)
    head = [r for r in got if r[0] < first_end]
    assert log.log_start_offset == 0 and int(log.housekeeping.segment_paths()[0].stem) == 0
    assert len(head) == 1 and head[0][1] in (b"a", b"b")   # never "gone": it would come back
    final = {}
    for _o, k, v in got:
        final[k] = v
    assert final[b"a"] == b"a-new" and final[b"b"] == b"b-new" and b"gone" not in final
    log.close()


# ---- the Compactor's step(): the pass in steps, its result installed or its failure recorded ----

def test_step_recovers_from_retention_between_two_steps(tmp_path, clock):
    """As above, through step(): the pass ends without raising, leaves no file, is reported and
    is not retried until new segments close."""
    log = PartitionLog(tmp_path / "rs-0", cfg(segment_bytes=300, cleanup_policy="compact,delete", retention_ms=1000),
                       clock=clock)
    while log.housekeeping.segment_count < 4:
        put(log, b"k", b"v" * 30, clock.ms())
    warnings: list[str] = []
    c = Compactor(log, warn=warnings.append)
    assert c.step(clock.ms()) is True
    clock.advance_ms(5000)
    put(log, b"k", b"fresh", clock.ms())   # kept: retention takes the active segment too once all of it is old
    assert log.housekeeping.apply_retention(clock.ms()) > 0
    while c.step(clock.ms()):
        pass
    assert c.last_result is None
    assert len(warnings) == 1 and warnings[0].startswith("compaction of rs-0 skipped until new segments close")
    assert c.cleanable(clock.ms()) == []
    assert records(log)
    assert not [n for n in os.listdir(tmp_path / "rs-0") if n.endswith(CLEANED_SUFFIX)]
    log.close()


def test_step_abandoned_by_close_leaves_no_file_and_changes_nothing(tmp_path, clock):
    log = PartitionLog(tmp_path / "ab-0", cfg(segment_bytes=300), clock=clock)
    while log.housekeeping.segment_count < 4:
        put(log, b"k", b"v" * 30, clock.ms())
    before = records(log)
    c = Compactor(log)
    steps = 0
    while c.step(clock.ms()) and steps < 2:
        steps += 1
    assert any(n.endswith(CLEANED_SUFFIX) for n in os.listdir(tmp_path / "ab-0"))   # a pass under way
    c.close()
    assert not [n for n in os.listdir(tmp_path / "ab-0") if n.endswith(CLEANED_SUFFIX)]
    assert records(log) == before and c.last_result is None
    while c.step(clock.ms()):   # the next pass starts over and installs
        pass
    assert c.last_result is not None and len(records(log)) < len(before)
    log.close()
