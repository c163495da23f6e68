"""Rich rendering of the status model for people (the JSON goes to scripts)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def _mb(n) -> str:
    return "-" if n is None else f"{n / 1e6:.1f} MB"


def print_status(st: dict) -> None:
    console = Console()
    if not st.get("running"):
        console.print(f"sandbox [bold]{st['name']}[/] is not running; start it with `sandbox up`")
        return
    mark = "[green]healthy[/]" if st["healthy"] else "[red]unhealthy[/]"
    console.print(f"sandbox [bold]{st['name']}[/] ({st['mode']}) {mark}  bootstrap {st['bootstrap']}")
    t = Table("service", "state", "pid", "port", "uptime", "restarts", "cpu", "memory", "disk", "latency")
    for s in st["services"]:
        color = "green" if s["healthy"] else "red"
        t.add_row(s["name"], f"[{color}]{s['state']}[/]", str(s["pid"] or "-"), str(s["port"]),
                  "-" if s["uptime_s"] is None else f"{s['uptime_s']:.0f}s", str(s["restarts"]),
                  "-" if s["cpu_percent"] is None else f"{s['cpu_percent']:.0f}%", _mb(s["rss_bytes"]),
                  _mb(s["disk_bytes"]), "-" if s["latency_ms"] is None else f"{s['latency_ms']:.1f} ms")
    console.print(t)
    if st["topics"]:
        tt = Table("topic", "partitions", "end offsets", "leaderless")
        for x in st["topics"]:
            tt.add_row(x["name"], str(x["partitions"]), str(x["end_offsets"]), str(x["leaderless_partitions"]))
        console.print(tt)
    if st["groups"]:
        gt = Table("group", "state", "members", "lag")
        for g in st["groups"]:
            gt.add_row(g["group"], g["state"], str(g["members"]), str(g["lag"]))
        console.print(gt)
    for p in st.get("problems", []):
        console.print(f"[red]problem:[/] {p}")
    for e in st["events"][-5:]:
        console.print(f"{e['time']} {e['service']} {e['kind']}: {e['detail']}")


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
