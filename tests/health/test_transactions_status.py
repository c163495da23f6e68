"""Open transactions in the status model: each listed with its partitions and age; one open for
longer than its timeout is hanging and a problem; a client that cannot list them is a problem too."""

from __future__ import annotations

from sandbox.client import KafkaClientError, TransactionInfo
from sandbox.health.transactions import age_text, partitions_text, transaction_entries


class Client:
    def __init__(self, found=None, error: str | None = None) -> None:
        self.found, self.error = found or [], error

    def transactions(self, *, skip=()):
        if self.error:
            raise KafkaClientError(self.error)
        return self.found


def test_open_transactions_and_a_hanging_one():
    young = TransactionInfo("t-young", "Ongoing", 5, 0, 60_000, 99_000, [("orders", 1), ("orders", 0), ("audit", 0)])
    old = TransactionInfo("t-old", "PrepareAbort", 6, 2, 10_000, 50_000, [("orders", 2)])
    entries, problems = transaction_entries(Client([young, old]), now_ms=100_000)
    assert [(e["transactional_id"], e["age_ms"], e["hanging"]) for e in entries] == [
        ("t-young", 1000, False), ("t-old", 50_000, True)]
    assert entries[0]["partitions"][0] == {"topic": "orders", "partition": 1}
    assert len(problems) == 1 and "t-old" in problems[0] and "orders" in problems[0]
    assert partitions_text(entries[0]["partitions"]) == "audit[0] orders[0,1]"


def test_no_start_time_yet_is_no_age_and_never_hanging():
    entries, problems = transaction_entries(Client([TransactionInfo("t", "Ongoing", 1, 0, 1, -1, [])]), now_ms=10**9)
    assert entries[0]["age_ms"] is None and not entries[0]["hanging"] and problems == []


def test_listing_fails():
    assert transaction_entries(Client(error="boom")) == ([], ["transactions unavailable: boom"])


def test_age_text():
    assert [age_text(x) for x in (None, 850, 12_400, 180_000)] == ["-", "850 ms", "12 s", "3 min"]


def test_monitor_and_status_show_open_transactions(monkeypatch):
    import io

    from rich.console import Console

    from health.fake_status import status
    from sandbox.cli import render
    from sandbox.cli.monitor import rich_frame, text_frame
    from sandbox.health.lag import LagTracker

    st = status()
    st["events"] = st["events"] * 20
    st["transactions"] = [{"transactional_id": "spring-tx-0", "state": "Ongoing", "producer_id": 4,
                           "producer_epoch": 0, "partitions": [{"topic": "orders", "partition": 1}],
                           "age_ms": 95_000, "timeout_ms": 60_000, "hanging": True}]
    text = text_frame(st, LagTracker(), "demo", width=100)
    assert "-- open transactions" in text and "spring-tx-0  Ongoing (hanging)  95 s  orders[1]" in text
    buf = io.StringIO()
    Console(file=buf, width=80, height=24, force_terminal=False, color_system=None).print(
        rich_frame(st, LagTracker(), "demo", 80, 24))
    lines = buf.getvalue().rstrip("\n").splitlines()
    assert len(lines) <= 24 and "spring-tx-0" in buf.getvalue()
    assert "open transactions" not in text_frame(status(), LagTracker(), "demo")   # none: no section
    out = io.StringIO()
    monkeypatch.setattr(render, "_console", lambda: Console(file=out, width=160, force_terminal=False, color_system=None))
    render.print_status({**st, "running": True})
    assert "spring-tx-0" in out.getvalue() and "hanging" in out.getvalue()
