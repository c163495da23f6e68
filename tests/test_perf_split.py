"""scripts/perf_split.py: which `perf script` samples count as writing into the page cache (the
figures `bench_replication.py --perf` reports net of)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "perf_split.py"
spec = importlib.util.spec_from_file_location("sandbox_perf_split", SCRIPT)
ps = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ps)

# four samples as `perf script -F ip,sym` prints them: a pwrite to a file, a recv, a write(2) to a
# file on xfs, and a write(2) to a socket (a system call that writes, but not into the page cache)
SCRIPT_OUTPUT = """\
        ffffffff8143a1b0 copy_folio_from_iter_atomic
        ffffffff812f0c11 generic_perform_write
        ffffffff81301b22 vfs_write
        ffffffff81301e33 __x64_sys_pwrite64
        ffffffff81c00134 entry_SYSCALL_64_after_hwframe
            7f00aa12 __libc_pwrite

        ffffffff81a0c0d0 tcp_recvmsg_locked
        ffffffff81a0c1e0 tcp_recvmsg
        ffffffff819a2b11 __x64_sys_recvfrom
            7f00aa34 __libc_recv

        ffffffff8150aa10 iomap_file_buffered_write
        ffffffff81301b22 vfs_write
        ffffffff81301f00 ksys_write
        ffffffff81301f44 __x64_sys_write
            7f00aa56 __libc_write

        ffffffff81a0d0d0 tcp_sendmsg
        ffffffff819a1100 sock_write_iter
        ffffffff81301b22 vfs_write
        ffffffff81301f00 ksys_write
        ffffffff81301f44 __x64_sys_write
            7f00aa78 __libc_write
"""


def test_samples_through_a_buffered_file_write_count_as_writing_and_others_do_not():
    assert ps.count_writing(SCRIPT_OUTPUT) == (4, 2)


def test_a_last_sample_without_a_closing_blank_line_counts_and_nothing_is_nothing():
    assert ps.count_writing(SCRIPT_OUTPUT.rstrip("\n")) == (4, 2)
    assert ps.count_writing("") == (0, 0)
    assert ps.count_writing("   7f00aa34 __libc_recv\n") == (1, 0)
