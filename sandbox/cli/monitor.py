"""`sandbox monitor`: a live dashboard (services, topics with records/s, consumer lag and its trend,
recent events) with rich.Live, readable in 80x24; a plain console gets a compact text frame."""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from sandbox.config import SandboxConfig
from sandbox.health.lag import LagTracker
from sandbox.health.transactions import age_text, partitions_text
from sandbox.runner import orphans, stack

from .common import ConfigOpt, client as kafka_client, load
from .render import format_columns

TREND_MARK = {"growing": "↑ growing", "shrinking": "↓ shrinking", "steady": "= steady", "unknown": "…"}
MAX_TOPICS, MAX_GROUPS, MAX_EVENTS = 5, 5, 6


# ---------------------------------------------------------------- figures as short strings
def _uptime(s: Any) -> str:
    if s is None:
        return "-"
    s = int(s)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _bytes(n: Any) -> str:
    if n is None:
        return "-"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def _cpu(c: Any) -> str:
    return "-" if c is None else (f"{c:.1f}%" if c < 10 else f"{c:.0f}%")


def _rate(r: float | None) -> str:
    if r is None:
        return "…"
    return f"{r:.0f}" if r >= 10 or r == 0 else f"{r:.1f}"


def _clock(iso: str) -> str:
    try:
        return datetime.fromisoformat(str(iso).replace("Z", "+00:00")).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return str(iso)[-9:]


def _compact(pairs: list[tuple[int, Any]]) -> str:
    return " ".join(f"{p}:{'-' if v is None else v}" for p, v in pairs)


# ---------------------------------------------------------------- the frame's rows
def replicas_cell(t: dict) -> str:
    """The REPLICAS column: the factor, then what is wrong with the partitions' replicas, if anything."""
    wrong = [f"{n} {what}" for key, what in (("offline_partitions", "offline"),
                                             ("under_min_isr_partitions", "under min ISR"),
                                             ("under_replicated_partitions", "under-replicated"))
             if (n := t.get(key))]
    rf = str(t.get("replication", "-"))
    return f"{rf}: " + ", ".join(wrong) if wrong else f"{rf} in sync" if t.get("replication", 1) > 1 else rf


def sections(st: dict, tracker: LagTracker) -> list[tuple[str, list[str], list[list[str]], str]]:
    """[(title, headers, rows, overflow note)] of one status; shared by the rich and text frames."""
    svc_rows = []
    for s in st.get("services", []):
        svc_rows.append([s["name"], s["state"] + ("" if s.get("healthy") or s["state"] != "running"
                                                  else " (unhealthy)"),
                         _uptime(s.get("uptime_s")), str(s.get("restarts", 0)),
                         _cpu(s.get("cpu_percent")),
                         _bytes(s.get("rss_bytes")), _bytes(s.get("disk_bytes"))])
    topics = st.get("topics", [])
    top_rows = []
    for t in topics[:MAX_TOPICS]:
        per = [(d["partition"], d["end_offset"]) for d in t.get("partition_offsets") or []]
        ends = "-" if t.get("end_offsets") is None else str(t["end_offsets"])
        # the per-partition list is long: last, so a narrow frame cuts it and not REPLICAS
        top_rows.append([t["name"], str(t["partitions"]), replicas_cell(t), _rate(tracker.rate(t["name"])),
                         ends + (f"  ({_compact(per)})" if len(per) > 1 else "")])
    groups = st.get("groups", [])
    grp_rows = []
    for g in groups[:MAX_GROUPS]:
        by_topic: dict[str, list[tuple[int, Any]]] = {}
        for d in g.get("partitions") or []:
            by_topic.setdefault(d["topic"], []).append((d["partition"], d["lag"]))
        per = "  ".join(f"{t}[{_compact(sorted(ps))}]" for t, ps in sorted(by_topic.items()))
        grp_rows.append([g["group"], str(g.get("state") or "-"),
                         "-" if g.get("members") is None else str(g["members"]),
                         "-" if g.get("lag") is None else str(g["lag"]),
                         TREND_MARK.get(tracker.trend(g["group"]), "…"), per or g.get("error", "")])
    txns = st.get("transactions") or []
    txn_rows = [[x["transactional_id"], x["state"] + (" (hanging)" if x.get("hanging") else ""),
                 age_text(x.get("age_ms")), partitions_text(x["partitions"])] for x in txns[:MAX_GROUPS]]
    evt_rows = [[_clock(e.get("time", "")), str(e.get("service", "")), str(e.get("kind", "")),
                 str(e.get("detail", ""))] for e in reversed(st.get("events", [])[-MAX_EVENTS:])]

    # none listed because a broker that coordinates some was left alone: not "none yet"
    hidden = any("are not shown" in p or "are not listed" in p or "did not answer" in p
                 for p in st.get("problems") or [])
    no_groups = "none shown: a broker that coordinates groups is not healthy" if hidden else "no consumer groups yet"

    def more(items: list, shown: int) -> str:
        return f"+{len(items) - shown} more" if len(items) > shown else ""

    return [
        ("services", ["SERVICE", "STATE", "UPTIME", "RESTARTS", "CPU", "MEMORY", "DISK"], svc_rows, ""),
        ("topics", ["TOPIC", "PARTS", "REPLICAS", "REC/S IN", "END OFFSETS"], top_rows,
         more(topics, len(top_rows)) if topics else "no topics yet"),
        ("consumer groups", ["GROUP", "STATE", "MEMBERS", "LAG", "TREND", "LAG PER PARTITION"], grp_rows,
         more(groups, len(grp_rows)) if groups else no_groups),
    ] + ([("open transactions", ["TRANSACTION", "STATE", "AGE", "PARTITIONS"], txn_rows, more(txns, len(txn_rows)))]
         if txns else []) + [
        ("last events", ["TIME", "SERVICE", "KIND", "DETAIL"], evt_rows, "" if evt_rows else "no events"),
    ]


def headline(st: dict | None, name: str, live: bool = True) -> str:
    now = time.strftime("%H:%M:%S")
    if st is None:
        return f"sandbox {name}: not running (waiting for `sandbox up`)  {now}"
    mark = "healthy" if st.get("healthy") else "UNHEALTHY"
    sasl = f"  SASL_PLAINTEXT {st['sasl_bootstrap']}" if st.get("sasl_bootstrap") else ""
    return (f"sandbox {st['name']}  {mark}  bootstrap {st['bootstrap']}{sasl}  {now}"
            + ("  (Ctrl-C quits)" if live else ""))


def text_frame(st: dict | None, tracker: LagTracker, name: str, width: int = 80,
               live: bool = False) -> str:
    """The compact plain-text frame (no colours, no cursor movement)."""
    lines = [headline(st, name, live)[:width]]
    if st is not None:
        for title, headers, rows, note in sections(st, tracker):
            lines.append(f"-- {title}" + (f" ({note})" if note else ""))
            if rows:
                lines += format_columns(headers, rows, max_width=width)
        lines += [f"problem: {p}"[:width] for p in st.get("problems", [])[:3]]
    return "\n".join(lines)


def rich_frame(st: dict | None, tracker: LagTracker, name: str, width: int, height: int):
    """The dashboard as rich renderables, trimmed so it fits in width x height."""
    color = "yellow" if st is None else ("green" if st.get("healthy") else "red")
    parts: list = [Text(headline(st, name), style=f"bold {color}", no_wrap=True, overflow="ellipsis")]
    if st is None:
        return Group(*parts)
    secs = sections(st, tracker)
    problems = st.get("problems", [])[:2]
    # lines: headline + per section (title + header + rows) + problems; events take what is left
    fixed = 1 + len(problems) + sum(2 + max(len(rows), 0) for _, _, rows, _ in secs[:-1])
    room = max(height - fixed - 2 - 1, 0)   # events title + header, one spare line
    title_style = "bold cyan"
    for title, headers, rows, note in secs:
        if title == "last events":
            if len(rows) > room:
                note = f"{len(rows) - room} not shown; enlarge the window"
                rows = rows[:room]
        label = Text(title, style=title_style)
        if note:
            label.append(f"  {note}", style="dim")
        if not rows:
            parts.append(label)
            continue
        t = Table(*headers, box=None, show_edge=False, pad_edge=False, padding=(0, 1),
                  header_style="bold", expand=False, title=None)
        for i, h in enumerate(headers):
            col = t.columns[i]
            col.no_wrap, col.overflow = True, "ellipsis"
            if h in ("DETAIL", "LAG PER PARTITION", "END OFFSETS"):
                col.max_width = max(width // 2, 12)
        for row in rows:
            styled = list(row)
            if title == "services":
                ok = row[1] == "running"
                styled[1] = Text(row[1], style="green" if ok else "red")
            elif title == "topics" and ":" in row[2]:   # replicas missing: red when writes or reads fail
                styled[2] = Text(row[2], style="red" if ("offline" in row[2] or "min ISR" in row[2]) else "yellow")
            elif title == "consumer groups":
                styled[4] = Text(row[4], style="red" if row[4].startswith("↑") else "")
            elif title == "open transactions" and row[1].endswith("(hanging)"):
                styled[1] = Text(row[1], style="red")
            elif title == "last events" and row[2] in ("crash", "wipe", "unhealthy", "crash-loop"):
                styled[2] = Text(row[2], style="red")
            t.add_row(*styled)
        parts += [label, t]
    parts += [Text(f"problem: {p}", style="red", no_wrap=True, overflow="ellipsis") for p in problems]
    return Group(*parts)


# ---------------------------------------------------------------- the loop
def collect(cfg: SandboxConfig, client, tracker: LagTracker) -> dict | None:
    """One status, built as `sandbox status` builds it (the supervisor's live state, else the
    services found running without it, with the same problems); None when nothing runs."""
    from .status_gather import gather

    st, code, said = gather(cfg, client)
    if code == 3 and not said:
        return None
    tracker.observe_status(st)
    return st


def _fancy(console: Console) -> bool:
    return console.is_terminal and not console.is_dumb_terminal and os.environ.get("TERM") != "dumb"


def run_monitor(cfg: SandboxConfig, refresh_s: float = 1.0, once: bool = False, *,
                console: Console | None = None, max_frames: int | None = None,
                stop: threading.Event | None = None) -> int:
    """The live dashboard until Ctrl-C or `stop` (0); 3 with one sentence if the sandbox is not running."""
    console = console or Console()
    if not stack.running_pid(cfg) and not (cfg.mode != "docker" and orphans.left_running(stack.service_specs(cfg))):
        console.print(f"sandbox {cfg.name} is not running; start it with `sandbox up`",
                      markup=False, highlight=False, soft_wrap=True)
        return 3
    tracker = LagTracker()
    client = kafka_client(stack.bootstrap(cfg), client_id="sandbox-monitor", timeout=2.0)
    stop = stop or threading.Event()
    frames = 1 if once else max_frames
    fancy = _fancy(console) and not once
    try:
        if not fancy:
            n = 0
            while frames is None or n < frames:
                if n:
                    console.print("", markup=False)
                st = collect(cfg, client, tracker)
                console.print(text_frame(st, tracker, cfg.name, width=max(console.width, 60),
                                         live=frames != 1),
                              markup=False, highlight=False, soft_wrap=True)
                n += 1
                if (frames is None or n < frames) and stop.wait(refresh_s):
                    break
            return 0
        from rich.live import Live

        with Live(console=console, screen=True, auto_refresh=False, transient=False) as live:
            n = 0
            while frames is None or n < frames:
                st = collect(cfg, client, tracker)
                w, h = console.size
                live.update(rich_frame(st, tracker, cfg.name, w, h), refresh=True)
                n += 1
                if stop.wait(refresh_s):
                    break
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()


def register(app: typer.Typer) -> None:
    """Add `sandbox monitor` to the CLI."""

    @app.command("monitor")
    def monitor(refresh: float = typer.Option(1.0, "--refresh", "-r", min=0.2, help="Seconds between frames."),
                once: bool = typer.Option(False, "--once", help="Print one frame and exit."),
                config: Optional[Path] = ConfigOpt) -> None:
        """Live dashboard: services, topics, throughput, consumer lag, events (Ctrl-C quits)."""
        cfg = load(config, last_good=False)
        raise typer.Exit(run_monitor(cfg, refresh_s=refresh, once=once))
