"""Tests for sandbox.broker.offsets: durability, torn-tail repair, tombstones, compaction."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.broker import offsets as offsets_mod
from sandbox.broker.offsets import JOURNAL, CommittedOffset, OffsetStore

# Windows file semantics (no rename/delete of open files) for every test here, as for the log;
# a moved fixture is an error here, never a silent skip
from log.conftest import windows_files  # noqa: E402,F401  (an autouse fixture)


def test_runs_under_windows_file_semantics(request):
    sem = request.getfixturevalue("windows_files")
    assert sem.active


def test_commit_survives_reopen(tmp_path):
    with OffsetStore(tmp_path) as s:
        s.commit("g1", [("t", 0, 10, 3, "meta"), ("t", 1, 20, -1, "")])
        s.commit("g1", [("t", 0, 11, 3, "m2")])
        s.commit("g2", [("u", 0, 5, -1, None)])
    s = OffsetStore(tmp_path)
    assert s.get("g1", "t", 0) == CommittedOffset(11, 3, "m2")
    assert s.get("g1", "t", 1) == CommittedOffset(20, -1, "")
    assert s.get("g2", "u", 0) == CommittedOffset(5, -1, "")
    assert s.get("g2", "t", 0) is None and s.get("nope", "t", 0) is None
    assert sorted(s.groups()) == ["g1", "g2"]
    assert s.group_offsets("g1") == {("t", 0): CommittedOffset(11, 3, "m2"), ("t", 1): CommittedOffset(20, -1, "")}
    s.close()


def test_unicode_group_and_metadata(tmp_path):
    with OffsetStore(tmp_path, fsync=False) as s:
        s.commit("grüppe", [("tópic", 0, 1, 0, "ünïcode ✓")])
    with OffsetStore(tmp_path) as s:
        assert s.get("grüppe", "tópic", 0).metadata == "ünïcode ✓"


def test_one_write_and_one_fsync_per_commit(tmp_path, monkeypatch):
    s = OffsetStore(tmp_path)
    calls = []
    real = os.fsync
    monkeypatch.setattr(offsets_mod.os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    s.commit("g", [("t", p, p, -1, "") for p in range(50)])
    assert len(calls) == 1
    s.close()


@pytest.mark.parametrize("cut", [1, 4, 7, 9, 20])
def test_torn_tail_is_truncated_and_reported(tmp_path, cut):
    with OffsetStore(tmp_path) as s:
        s.commit("g", [("t", 0, 1, -1, "")])
        good = s.path.stat().st_size
        s.commit("g", [("t", 0, 2, -1, "x" * 30)])
    path = tmp_path / JOURNAL
    data = path.read_bytes()
    path.write_bytes(data[: good + cut])
    events = []
    s = OffsetStore(tmp_path, on_event=lambda k, i: events.append((k, i)))
    assert s.get("g", "t", 0).offset == 1
    assert events == [("repair", {"bytes": cut, "file": str(path)})]
    assert path.stat().st_size == good
    s.commit("g", [("t", 0, 3, -1, "")])  # appends after the repaired tail
    s.close()
    assert OffsetStore(tmp_path).get("g", "t", 0).offset == 3


def test_corrupt_record_truncates_from_there(tmp_path):
    with OffsetStore(tmp_path) as s:
        s.commit("g", [("t", 0, 1, -1, "")])
        good = s.path.stat().st_size
        s.commit("g", [("t", 0, 2, -1, "")])
    path = tmp_path / JOURNAL
    data = bytearray(path.read_bytes())
    data[-2] ^= 0xFF  # flip a payload byte: CRC mismatch
    path.write_bytes(bytes(data))
    events = []
    s = OffsetStore(tmp_path, on_event=lambda k, i: events.append(k))
    assert s.get("g", "t", 0).offset == 1 and events == ["repair"]
    assert path.stat().st_size == good
    s.close()


def test_delete_group_and_topic_persist(tmp_path):
    with OffsetStore(tmp_path) as s:
        s.commit("a", [("t1", 0, 1, -1, ""), ("t2", 0, 2, -1, "")])
        s.commit("b", [("t1", 0, 3, -1, "")])
        s.commit("c", [("t3", 0, 4, -1, "")])
        assert s.delete_topic("t1") == 2
        assert s.delete_topic("t1") == 0
        assert s.delete_group("c") is True
        assert s.delete_group("c") is False
    with OffsetStore(tmp_path) as s:
        assert s.groups() == ["a"]  # b only had t1
        assert s.group_offsets("a") == {("t2", 0): CommittedOffset(2, -1, "")}
        s.commit("c", [("t3", 0, 9, -1, "")])  # a deleted group can come back
    with OffsetStore(tmp_path) as s:
        assert s.get("c", "t3", 0).offset == 9


def test_compaction_preserves_live_set(tmp_path):
    events = []
    s = OffsetStore(tmp_path, compact_min_entries=20, on_event=lambda k, i: events.append((k, i)))
    for i in range(100):
        s.commit("g", [("t", i % 3, i, -1, f"m{i}")])
    s.commit("h", [("t", 0, 7, -1, "")])
    s.delete_group("h")
    assert any(k == "compact" for k, _ in events)
    assert s.file_entries <= 20
    expected = s.group_offsets("g")
    assert expected[("t", 0)] == CommittedOffset(99, -1, "m99")
    s.close()
    assert not (tmp_path / (JOURNAL + ".tmp")).exists()
    with OffsetStore(tmp_path) as s2:
        assert s2.group_offsets("g") == expected and s2.groups() == ["g"]


def test_compaction_retries_permission_error(tmp_path, monkeypatch):
    s = OffsetStore(tmp_path, fsync=False)
    s.commit("g", [("t", 0, 1, -1, "")])
    real, fails = os.replace, [2]

    def flaky(src, dst):
        assert s._fh is None, "journal handle must be closed before replace (Windows)"
        if fails[0]:
            fails[0] -= 1
            raise PermissionError("in use")
        real(src, dst)

    monkeypatch.setattr(offsets_mod.os, "replace", flaky)
    s.compact()
    assert fails[0] == 0
    s.commit("g", [("t", 0, 2, -1, "")])
    s.close()
    assert OffsetStore(tmp_path).get("g", "t", 0).offset == 2


def test_compaction_gives_up_cleanly(tmp_path, monkeypatch):
    events = []
    s = OffsetStore(tmp_path, fsync=False, on_event=lambda k, i: events.append(k))
    s.commit("g", [("t", 0, 1, -1, "")])

    def always(src, dst):
        raise PermissionError("locked")

    monkeypatch.setattr(offsets_mod.os, "replace", always)
    monkeypatch.setattr(offsets_mod.time, "sleep", lambda _s: None)
    s.compact()
    assert events == ["compact_failed"]
    s.commit("g", [("t", 0, 5, -1, "")])  # still writable
    s.close()
    assert OffsetStore(tmp_path).get("g", "t", 0).offset == 5


def test_leftover_tmp_is_ignored(tmp_path):
    with OffsetStore(tmp_path) as s:
        s.commit("g", [("t", 0, 1, -1, "")])
    (tmp_path / (JOURNAL + ".tmp")).write_bytes(b"garbage")
    with OffsetStore(tmp_path) as s:
        assert s.get("g", "t", 0).offset == 1
    assert not (tmp_path / (JOURNAL + ".tmp")).exists()


def test_failed_write_does_not_leave_half_record(tmp_path, monkeypatch):
    s = OffsetStore(tmp_path, fsync=True)
    s.commit("g", [("t", 0, 1, -1, "")])
    size = s.path.stat().st_size

    def boom(fd):
        raise OSError("disk gone")

    monkeypatch.setattr(offsets_mod.os, "fsync", boom)
    with pytest.raises(OSError):
        s.commit("g", [("t", 0, 2, -1, "")])
    assert s.get("g", "t", 0).offset == 1 and s.path.stat().st_size == size
    s.close()


def test_closed_store_refuses_commits(tmp_path):
    s = OffsetStore(tmp_path)
    s.close()
    with pytest.raises(ValueError):
        s.commit("g", [("t", 0, 1, -1, "")])


def test_sigkill_right_after_commit(tmp_path):
    """A commit that returned is on disk even if the process dies without closing anything."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        from sandbox.broker.offsets import OffsetStore
        s = OffsetStore({str(tmp_path)!r})
        for i in range(20):
            s.commit("g", [("t", i % 4, i, 1, "m")])
        print("committed", flush=True)
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
    """)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=60)
    assert "committed" in proc.stdout, proc.stderr
    with OffsetStore(tmp_path) as s:
        assert {p: c.offset for (_t, p), c in s.group_offsets("g").items()} == {0: 16, 1: 17, 2: 18, 3: 19}


ops = st.lists(
    st.one_of(
        st.tuples(st.just("commit"), st.sampled_from("abc"),
                  st.lists(st.tuples(st.sampled_from(["x", "y"]), st.integers(0, 2), st.integers(0, 10**12)),
                           min_size=1, max_size=4)),
        st.tuples(st.just("delete_group"), st.sampled_from("abc")),
        st.tuples(st.just("delete_topic"), st.sampled_from(["x", "y"])),
        st.tuples(st.just("reopen")),
    ),
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(ops)
def test_model_matches_after_any_sequence(tmp_path_factory, sequence):
    d = tmp_path_factory.mktemp("model")
    s = OffsetStore(d, fsync=False, compact_min_entries=5)
    model: dict[str, dict[tuple[str, int], int]] = {}
    for op in sequence:
        if op[0] == "commit":
            s.commit(op[1], [(t, p, o, -1, "") for t, p, o in op[2]])
            model.setdefault(op[1], {}).update({(t, p): o for t, p, o in op[2]})
        elif op[0] == "delete_group":
            s.delete_group(op[1])
            model.pop(op[1], None)
        elif op[0] == "delete_topic":
            s.delete_topic(op[1])
            model = {g: {k: v for k, v in o.items() if k[0] != op[1]} for g, o in model.items()}
            model = {g: o for g, o in model.items() if o}
        else:
            s.close()
            s = OffsetStore(d, fsync=False, compact_min_entries=5)
    s.close()
    s = OffsetStore(d, fsync=False)
    assert {g: {k: c.offset for k, c in s.group_offsets(g).items()} for g in s.groups()} == model
    s.close()
