"""`sandbox bench`: a producer/consumer benchmark against the running stack of this folder.

It creates its own topic, produces N records from one process (`python -m sandbox.bench_worker
produce`), then consumes them from the beginning from another, and reports records/s and MB/s of
each phase, the producer's delivery latency percentiles, and the brokers' CPU seconds per million
records of each phase (psutil user+system of the broker pids from the supervisor's state file,
before and after the phase). The topic is deleted afterwards. Every wait is bounded by --timeout.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

import typer

from sandbox.lifecycle import stop_signals
from sandbox.runner import stack

from .common import client as kafka_client, config_option, deprecated, fail, json_option, running_cfg
from .render import format_columns

PIP_HINT = "confluent-kafka is not installed (sandbox bench drives it); install it with `pip install confluent-kafka`"


def confluent_available() -> bool:
    try:
        return importlib.util.find_spec("confluent_kafka") is not None
    except (ImportError, ValueError):
        return False


class BenchError(Exception):
    """A benchmark phase failed; the message is one sentence for the user."""


# ---- brokers' CPU --------------------------------------------------------------------------------

def broker_pids(st: dict | None) -> dict[str, int]:
    """{service name: pid} of the brokers in the supervisor's state file (in docker mode, the
    container's main process as this machine sees it, when the engine runs on this kernel)."""
    return {s["name"]: s.get("pid") or s.get("host_pid") for s in (st or {}).get("services", [])
            if s.get("role") == "broker" and (s.get("pid") or s.get("host_pid"))}


def cpu_seconds(pids: dict[str, int]) -> dict[str, float | None]:
    """user+system CPU seconds of each pid so far (None when it cannot be read)."""
    import psutil

    out: dict[str, float | None] = {}
    for name, pid in pids.items():
        try:
            t = psutil.Process(pid).cpu_times()
            out[name] = t.user + t.system
        except (psutil.Error, OSError):
            out[name] = None
    return out


def cpu_delta(before: dict[str, float | None], after: dict[str, float | None]) -> float | None:
    vals = [after[n] - before[n] for n in before if before[n] is not None and after.get(n) is not None]
    return round(sum(vals), 4) if vals and len(vals) == len(before) else None


# ---- one worker process ----------------------------------------------------------------------------

def run_worker(args: list[str], total: int, timeout: float, on_progress: Callable[[int], None]) -> dict:
    """Run `python -m sandbox.bench_worker ARGS`, feed its progress to on_progress, return its result.
    The worker is killed at the timeout, on error and on Ctrl-C."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # a source checkout runs without being installed
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") else root
    env["PYTHONUNBUFFERED"] = "1"
    with tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen([sys.executable, "-m", "sandbox.bench_worker", *args], stdout=subprocess.PIPE,
                                stderr=errf, stdin=subprocess.DEVNULL, env=env)
        lines: queue.Queue = queue.Queue()

        def pump() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                lines.put(raw)
            lines.put(None)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        result = error = None
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"the {args[0]} worker did not finish within the {timeout:.0f} s timeout")
                try:
                    raw = lines.get(timeout=min(left, 0.5))
                except queue.Empty:
                    continue
                if raw is None:
                    break
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                if "done" in msg:
                    on_progress(min(int(msg["done"]), total))
                elif "result" in msg:
                    result = msg["result"]
                elif "error" in msg:
                    error = msg["error"]
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise BenchError(f"the {args[0]} worker did not exit within the {timeout:.0f} s timeout") from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()
        if error:
            raise BenchError(error)
        if result is None:
            errf.seek(0)
            tail = errf.read().decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise BenchError(f"the {args[0]} worker exited with code {proc.returncode} ({tail[0]})")
        return result


# ---- progress display --------------------------------------------------------------------------------

class Progress:
    """A rich progress bar on a terminal (stderr); a few plain lines otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._rich = None
        if self.tty:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress,
                                       TaskProgressColumn, TextColumn, TimeElapsedColumn)

            self._rich = RichProgress(TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(),
                                      TaskProgressColumn(), TimeElapsedColumn(),
                                      console=Console(stderr=True), transient=False)

    def __enter__(self) -> "Progress":
        if self._rich is not None:
            self._rich.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._rich is not None:
            self._rich.__exit__(*exc)

    def phase(self, name: str, total: int) -> Callable[[int], None]:
        if self._rich is not None:
            task = self._rich.add_task(name, total=total)
            return lambda done: self._rich.update(task, completed=done)
        state = {"next": 0.0, "last": -1}
        typer.echo(f"{name}: 0/{total:,}", err=True)

        def plain(done: int) -> None:
            now = time.monotonic()
            if done != state["last"] and (now >= state["next"] or done >= total):
                if state["next"] or done >= total:
                    typer.echo(f"{name}: {done:,}/{total:,}", err=True)
                state["next"], state["last"] = now + 2.0, done
        return plain


# ---- the command ---------------------------------------------------------------------------------------

def _phase_summary(res: dict, cpu: float | None) -> dict:
    secs = max(float(res["seconds"]), 1e-9)
    n = int(res["records"])
    out = {"records": n, "bytes": int(res["bytes"]), "seconds": round(secs, 3),
           "records_per_s": round(n / secs, 1), "mb_per_s": round(res["bytes"] / secs / 1e6, 3),
           "broker_cpu_s": cpu,
           "broker_cpu_s_per_million": None if cpu is None or n == 0 else round(cpu / n * 1e6, 4)}
    if "latency_ms" in res:
        out["latency_ms"] = res["latency_ms"]
        out["latency_sampled_every"] = int(res.get("latency_sampled", 1))
    return out


def run_bench(cfg, *, records: int, size: int, acks: str, partitions: int, topic: str | None,
              rate: float, linger_ms: float, timeout: float) -> dict:
    from sandbox.client import KafkaClientError

    deadline = time.monotonic() + timeout
    bootstrap = stack.bootstrap(cfg)
    name = topic or f"bench-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    brokers = broker_pids(stack.read_status_file(cfg))
    client = kafka_client(bootstrap, timeout=min(10.0, timeout))
    created = False
    try:
        try:
            created = client.create_topic(name, partitions=partitions, exist_ok=topic is not None)
        except KafkaClientError as e:
            raise BenchError(f"could not create topic {name}: {e}") from None
        if not created:
            raise BenchError(f"topic {name} already exists; name a new one with --topic or leave --topic out")
        common = ["--bootstrap", bootstrap, "--topic", name]
        with Progress() as progress:
            cpu0 = cpu_seconds(brokers)
            prod = run_worker(["produce", *common, "--records", str(records), "--size", str(size),
                               "--acks", acks, "--rate", str(rate), "--linger-ms", str(linger_ms),
                               "--timeout", str(max(1.0, deadline - time.monotonic()))],
                              records, deadline - time.monotonic(), progress.phase("produce", records))
            cpu1 = cpu_seconds(brokers)
            cons = run_worker(["consume", *common, "--records", str(prod["records"]),
                               "--timeout", str(max(1.0, deadline - time.monotonic()))],
                              prod["records"], deadline - time.monotonic(), progress.phase("consume", prod["records"]))
            cpu2 = cpu_seconds(brokers)
    finally:
        if created:
            try:
                client.delete_topic(name)
            except KafkaClientError as e:
                typer.echo(f"warning: could not delete topic {name}: {e}", err=True)
        client.close()
    return {"topic": name, "bootstrap": bootstrap, "records": records, "size": size, "acks": acks,
            "partitions": partitions, "rate": rate or None, "linger_ms": linger_ms,
            "brokers": [{"name": n, "pid": p} for n, p in brokers.items()],
            "produce": _phase_summary(prod, cpu_delta(cpu0, cpu1)),
            "consume": _phase_summary(cons, cpu_delta(cpu1, cpu2))}


def print_report(r: dict) -> None:
    typer.echo(f"{r['records']:,} records of {r['size']} B, acks={r['acks']}, linger.ms={r['linger_ms']:g}, "
               f"{r['partitions']} partition(s), "
               f"topic {r['topic']} on {r['bootstrap']}")
    rows = []
    for phase in ("produce", "consume"):
        p = r[phase]
        cpu = p["broker_cpu_s_per_million"]
        rows.append([phase, f"{p['records']:,}", f"{p['seconds']:.2f}", f"{p['records_per_s']:,.0f}",
                     f"{p['mb_per_s']:.1f}", "-" if cpu is None else f"{cpu:.3f}"])
    for line in format_columns(["PHASE", "RECORDS", "SECONDS", "RECORDS/S", "MB/S", "BROKER-CPU-S/M"], rows):
        typer.echo(line)
    lat = r["produce"].get("latency_ms") or {}
    if lat.get("p50") is not None:
        every = r["produce"].get("latency_sampled_every", 1)
        typer.echo(f"produce latency (delivery report{'' if every == 1 else f', 1 record in {every}'}): "
                   f"p50 {lat['p50']:.2f} ms, p95 {lat['p95']:.2f} ms, p99 {lat['p99']:.2f} ms, max {lat['max']:.2f} ms")
    if not r["brokers"]:
        typer.echo("broker CPU unknown: the supervisor's state file lists no broker pid")


@contextlib.contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """While the bench runs, SIGTERM (a `kill`, a CI job's timeout, Docker stopping a container;
    Ctrl-Break on Windows) interrupts it as Ctrl-C does, so its topic is deleted and its worker
    stopped. Before, SIGTERM ended the process at once and left the bench topic behind."""
    def interrupt(signum, frame) -> None:
        raise KeyboardInterrupt
    sigs = [sig for sig in stop_signals() if sig != signal.SIGINT]
    try:
        previous = {sig: signal.signal(sig, interrupt) for sig in sigs}
    except ValueError:   # not the main thread (an embedding caller): leave the signals alone
        previous = {}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def bench(
    records: int = typer.Option(1_000_000, "--records", "-n", min=1, help="How many records to produce and consume."),
    size: int = typer.Option(100, "--size", min=0, help="Value size in bytes."),
    acks: str = typer.Option("1", "--acks", help="Producer acks: 0, 1 or all."),
    partitions: int = typer.Option(1, "--partitions", min=1, max=10_000, help="Partitions of the bench topic."),
    topic: Optional[str] = typer.Option(None, "--topic", help="Name of the topic to create (default: bench-<time>); deleted afterwards."),
    rate: float = typer.Option(0.0, "--rate", min=0.0, help="Pace the producer at this many records/s (0: as fast as it goes)."),
    linger_ms: float = typer.Option(5.0, "--linger-ms", min=0.0, help="The producer's linger.ms (batching delay)."),
    timeout: float = typer.Option(300.0, "--timeout", min=1.0, help="Give up after this many seconds."),
    as_json: bool = json_option("Print the result as JSON."),
    config: Optional[Path] = config_option(),
    old_partitions: Optional[int] = typer.Option(None, "-p", hidden=True, min=1),
) -> None:
    """Produce and consume against the running sandbox from two processes; report rates, latency and broker CPU."""
    if acks not in ("1", "all", "-1", "0"):
        fail(f"--acks must be 0, 1 or all, not {acks!r}")
    if old_partitions is not None:
        deprecated("`bench -p N`", "--partitions N (-p is one partition everywhere)")
        partitions = old_partitions
    cfg = running_cfg(config)
    if not confluent_available():
        fail(PIP_HINT)
    try:
        with _stop_signals_interrupt():
            result = run_bench(cfg, records=records, size=size, acks=acks, partitions=partitions, topic=topic,
                               rate=rate, linger_ms=linger_ms, timeout=timeout)
    except BenchError as e:
        fail(str(e), 1)
        return
    except KeyboardInterrupt:
        fail("interrupted", 130)
        return
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_report(result)


def register(app: typer.Typer) -> None:
    """Add `sandbox bench` to the CLI."""
    app.command()(bench)
