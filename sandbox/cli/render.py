"""Rich rendering of the status model for people (the JSON goes to scripts)."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.markup import escape as esc   # data ("[like.this]", topic names) is text, not markup
from rich.table import Table

PIPE_WIDTH = 160   # not a terminal: nothing to fit, so never squeeze names into "coor…"


def _console() -> Console:
    c = Console()
    return c if c.is_terminal else Console(width=max(c.width, PIPE_WIDTH))


def _or_dash(value) -> str:
    """A figure, or "-" where it is unknown (None)."""
    return "-" if value is None else str(value)


def _table(*headers: str) -> Table:
    """A compact table (one space between columns, 80 columns hold the services table) whose
    cells never wrap: names and pids are worth more whole than a narrower table."""
    t = Table(box=box.SIMPLE_HEAD, padding=0, pad_edge=False, show_edge=False)
    for h in headers:
        t.add_column(h, no_wrap=True)
    return t


def _num(v, fmt: str, scale: float = 1.0) -> str:
    return "-" if v is None else fmt.format(v / scale)


def print_status(st: dict) -> None:
    console = _console()
    if not st.get("running") and not st.get("services"):   # services left running are listed below
        console.print(f"sandbox [bold]{esc(st['name'])}[/] is not running; start it with `sandbox up`")
        return
    mark = "[green]healthy[/]" if st["healthy"] else "[red]unhealthy[/]"
    sasl = f"  SASL_PLAINTEXT {esc(st['sasl_bootstrap'])}" if st.get("sasl_bootstrap") else ""
    console.print(f"sandbox [bold]{esc(st['name'])}[/] ({st['mode']}) {mark}  bootstrap {esc(st['bootstrap'])}{sasl}")
    t = _table("service", "state", "pid", "port", "uptime", "restarts", "cpu", "mem MB", "disk MB", "ms")
    for s in st["services"]:
        color = "green" if s["healthy"] else "red"
        t.add_row(s["name"], f"[{color}]{s['state']}[/]", str(s["pid"] or "-"), str(s["port"]),
                  _num(s["uptime_s"], "{:.0f}s"), str(s["restarts"]), _num(s["cpu_percent"], "{:.0f}%"),
                  _num(s["rss_bytes"], "{:.1f}", 1e6), _num(s["disk_bytes"], "{:.1f}", 1e6),
                  _num(s["latency_ms"], "{:.1f}"))
    console.print(t)
    if st["topics"]:
        tt = _table("topic", "partitions", "replication", "end offsets", "leaderless", "under-replicated", "under min ISR")
        for x in st["topics"]:
            tt.add_row(esc(x["name"]), str(x["partitions"]), str(x.get("replication", "-")), esc(str(x["end_offsets"])),
                       esc(str(x["leaderless_partitions"])), str(x.get("under_replicated_partitions", "-")),
                       str(x.get("under_min_isr_partitions", "-")))
        console.print(tt)
    if st["groups"]:
        gt = _table("group", "state", "members", "lag")
        for g in st["groups"]:
            gt.add_row(esc(g["group"]), esc(str(g["state"])), _or_dash(g["members"]), _or_dash(g["lag"]))
        console.print(gt)
    if st.get("transactions"):
        from sandbox.health.transactions import age_text, partitions_text

        xt = _table("open transaction", "state", "age", "partitions")
        for x in st["transactions"]:
            state = esc(x["state"]) + (" [red](hanging)[/]" if x.get("hanging") else "")
            xt.add_row(esc(x["transactional_id"]), state, age_text(x.get("age_ms")), esc(partitions_text(x["partitions"])))
        console.print(xt)
    for p in st.get("problems", []):
        console.print(f"[red]problem:[/] {esc(p)}")
    for e in st["events"][-5:]:
        console.print(f"{e['time']} {e['service']} {e['kind']}: {esc(str(e['detail']))}")


def format_columns(headers: list[str], rows: list[list], max_width: int | None = None) -> list[str]:
    """Plain left-aligned columns (two spaces apart), like Kafka's command-line tools print them;
    lines longer than max_width end in an ellipsis."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for r in cells:
        line = "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
        if max_width is not None and len(line) > max_width:
            line = line[:max(max_width - 1, 0)] + "…"
        out.append(line)
    return out
