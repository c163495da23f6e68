"""Property: any sequence of appends (and rolls, flushes) reads back the same after a reopen."""
import itertools
import tempfile

from hypothesis import HealthCheck, given, settings, strategies as st

from sandbox.log import LogConfig, PartitionLog, build_batch, iter_records
from sandbox.log import MAX_TIMESTAMP

_counter = itertools.count()

records = st.lists(st.tuples(st.one_of(st.none(), st.binary(max_size=20)), st.binary(max_size=120)),
                   min_size=1, max_size=6)
ops = st.lists(st.tuples(records, st.integers(0, 2**40), st.booleans()), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=ops, segment_bytes=st.integers(200, 3000), interval=st.integers(0, 500),
       rp_mode=st.sampled_from(["zero", "leo", "half"]))
def test_random_appends_then_reopen_same_reads(tmp_path_factory, ops, segment_bytes, interval, rp_mode):
    d = tmp_path_factory.mktemp("prop") / f"p-{next(_counter)}"
    cfg = LogConfig(segment_bytes=segment_bytes, index_interval_bytes=interval)
    log = PartitionLog(d, cfg)
    expected = []
    batches = []  # (base offset, timestamp)
    for recs, ts, flush in ops:
        info = log.append(build_batch(recs, timestamp_ms=ts))
        batches.append((info.first_offset, ts))
        expected.extend((info.first_offset + i, ts, k, v) for i, (k, v) in enumerate(recs))
        if flush:
            log.housekeeping.flush()
    leo = log.log_end_offset
    probes = sorted({0, leo // 3, leo // 2, leo - 1})
    before = {(o, m): log.read(o, m).tobytes() for o in probes for m in (1, 300, 1 << 20)}
    ts_probes = sorted({e[1] for e in expected})[:5] + [2**41]
    ts_before = {t: log.offset_for_timestamp(t) for t in ts_probes}
    maxts = log.offset_for_timestamp(MAX_TIMESTAMP)
    top = max(t for _, t in batches)
    assert maxts == next(b for b in batches if b[1] == top)
    for t in ts_probes + [ts_probes[0] + 1]:
        assert log.offset_for_timestamp(t) == next((b for b in batches if b[1] >= t), None)
    log.close()
    rp = {"zero": 0, "leo": leo, "half": leo // 2}[rp_mode]
    log = PartitionLog(d, cfg, recovery_point=rp)
    try:
        assert log.log_end_offset == leo
        got = [(o, t, k, v) for o, t, k, v, _h in iter_records(log.read(0, 1 << 30).tobytes())]
        assert got == expected
        for (o, m), data in before.items():
            assert log.read(o, m).tobytes() == data
            assert any(r[0] == o for r in iter_records(data))
        for t, res in ts_before.items():
            assert log.offset_for_timestamp(t) == res
        assert log.offset_for_timestamp(MAX_TIMESTAMP) == maxts
    finally:
        log.close()
