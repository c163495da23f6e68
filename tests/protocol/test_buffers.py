"""Kept receive buffers: one is handed out again only once no view of it is alive."""

from __future__ import annotations

from sandbox.protocol.buffers import MIB, BufferPool, unexported


def test_a_buffer_with_a_live_view_is_seen_as_in_use():
    buf = bytearray(1000)
    assert unexported(buf) and len(buf) == 1000
    view = memoryview(buf)[10:20]
    sub = view[2:4]
    del view
    assert not unexported(buf) and len(buf) == 1000   # a slice of a slice still holds it
    del sub
    assert unexported(buf)


def test_a_pool_hands_out_a_buffer_again_only_once_it_is_free():
    pool = BufferPool(2)
    a = pool.take(300_000)
    a[:] = b"a" * 300_000
    a_id = id(a.obj)
    b = pool.take(300_000)           # a is held: the second kept buffer
    assert id(b.obj) != a_id and pool.sizes() == [MIB, MIB]
    c = pool.take(300_000)           # both held, the pool full: a bytearray of its own
    assert isinstance(c, bytearray) and len(c) == 300_000
    assert bytes(a) == b"a" * 300_000   # never handed out while held
    del a
    d = pool.take(200_000)           # a's buffer is free again
    assert id(d.obj) == a_id and len(d) == 200_000
    del b, c, d
    e = pool.take(MIB + 1)           # larger than both, both free: one is replaced by a larger one
    assert len(e) == MIB + 1 and sorted(pool.sizes()) == [MIB, 2 * MIB]
    assert isinstance(pool.take(1000), bytearray)             # small frames: their own
    assert isinstance(pool.take(2 * MIB + 1), bytearray)      # huge ones too, never kept
    assert sorted(pool.sizes()) == [MIB, 2 * MIB]


def test_an_idle_pool_gives_its_free_buffers_back(monkeypatch):
    """A broker keeps up to 8 Produce buffers (16 MiB) after a load; once no frame asked for one
    for a whole period (the broker's 30 s tick), the free ones are given back to the system
    (glibc's heap trimmed after each release that freed something)."""
    from sandbox.protocol import buffers
    trims = []
    monkeypatch.setattr(buffers, "_trim_heap", lambda: trims.append(1))
    pool = BufferPool(3)
    held = pool.take(300_000)
    pool.take(300_000)
    pool.take(1_500_000)
    assert sorted(pool.sizes()) == [MIB, MIB, 2 * MIB]
    assert pool.release_if_idle() == 0          # frames came since the last tick: kept
    assert pool.release_if_idle() == 3 * MIB    # a whole period idle: the free ones go
    assert pool.sizes() == [MIB]                # the one a view still holds stays
    held[:3] = b"abc"
    assert bytes(held[:3]) == b"abc"
    del held
    assert pool.release_if_idle() == MIB and pool.sizes() == []
    again = pool.take(300_000)                  # the next load keeps new ones
    assert len(again) == 300_000 and pool.sizes() == [MIB]
    assert pool.release_if_idle() == 0
    assert len(trims) == 2                      # after each release that freed something
