"""The monitor's frames from a fake status: what a person sees in 80x24, with no stack running."""

from __future__ import annotations

import io

from rich.console import Console

from sandbox.cli.monitor import rich_frame, text_frame
from sandbox.cli.render import format_columns
from sandbox.health.lag import LagTracker

from health.fake_status import status  # tests/ is on sys.path (pytest's pythonpath)


def tracked(st: dict, lags: list[int]) -> LagTracker:
    t = [0.0]
    tr = LagTracker(clock=lambda: t[0])
    for lag in lags:
        st["groups"][0]["partitions"][1]["lag"] = lag
        st["topics"][0]["partition_offsets"][1]["end_offset"] += 100
        tr.observe_status(st)
        t[0] += 1.0
    return tr


def test_text_frame_has_every_section():
    st = status()
    tr = tracked(st, [100, 120, 150])
    text = text_frame(st, tr, "demo", width=80)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    for needle in ["coordinator", "broker-1", "orders", "billing", "150", "growing", "crash",
                   "exit code -9", "100"]:   # 100 records/s into orders
        assert needle in text, needle
    assert "healthy" in lines[0]


def test_rich_frame_fits_80x24():
    st = status()
    st["events"] = st["events"] * 20
    tr = tracked(st, [150, 150, 150])
    buf = io.StringIO()
    console = Console(file=buf, width=80, height=24, force_terminal=False, color_system=None)
    console.print(rich_frame(st, tr, "demo", 80, 24))
    lines = buf.getvalue().rstrip("\n").splitlines()
    assert len(lines) <= 24, "\n".join(lines)
    assert all(len(line) <= 80 for line in lines)
    out = buf.getvalue()
    for needle in ["coordinator", "broker-1", "orders", "billing", "150", "steady", "restart"]:
        assert needle in out, needle


def test_not_running_frame():
    tr = LagTracker()
    assert "not running" in text_frame(None, tr, "demo")


def test_format_columns():
    lines = format_columns(["A", "LONGER"], [["x", 1], [None, "yy"]])
    assert lines == ["A  LONGER", "x  1", "-  yy"]
    assert format_columns(["A"], [["z" * 20]], max_width=5)[1] == "zzzz…"


def test_the_headline_names_the_sasl_bootstrap_when_there_is_one():
    from sandbox.cli.monitor import headline
    st = status()
    assert "SASL" not in headline(st, "demo")
    st["sasl_bootstrap"] = "127.0.0.1:9095"
    assert "bootstrap 127.0.0.1:9092  SASL_PLAINTEXT 127.0.0.1:9095" in headline(st, "demo")
