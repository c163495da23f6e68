"""How a service process lives, for the broker and the coordinator alike: logging to stderr, EVENT
lines (one format, one level rule), the stop file a supervisor writes and its watcher, periodic
housekeeping, running until SIGINT / SIGTERM / SIGBREAK (or its own stop request) and stopping
cleanly, and the exit code that says "this cannot run as configured"."""

from __future__ import annotations

import asyncio
import errno
import functools
import inspect
import json
import logging
import re
import signal
import socket
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

STOP_FILE = "stop"
# what a service logs right before it opens its journal: a crash loop whose runs never got this
# far is not the journal's doing, and the supervisor does not quarantine it (runner/recovery.py)
JOURNAL_OPENING = "opening the journal in"
#: Events that report something that went as planned: logged at INFO; the rest ask for attention.
ROUTINE_EVENTS = frozenset({"start", "compacted"})


def event_line(kind: str, detail: dict[str, Any]) -> str:
    """The one EVENT format: `EVENT kind {json}`, machine-readable after the prefix (the
    supervisor's runner/logscan.py reads it from the service's log)."""
    return f"EVENT {kind} {json.dumps(detail, default=str, sort_keys=True)}"


_EVENT_AT = re.compile(r"EVENT ([\w-]+) \{")


def parse_event_line(line: str) -> tuple[str, dict] | None:
    """(kind, detail) of a line holding an EVENT (after any log prefix), else None; detail that
    is not a JSON object comes back as {"raw": text} or {"value": value}.

    A line may hold the head of a record whose tail a full disk never took, then a whole one
    written once there was space again ("...DENY CREA2026-12-05 ... EVENT storage-ok {}"): the
    first EVENT in it whose detail reads as JSON is the one, so the whole record is not lost."""
    rest = line.rstrip()
    if not rest.endswith("}"):
        return None
    found: tuple[str, str] | None = None
    for m in _EVENT_AT.finditer(rest):
        text = rest[m.end() - 1:]
        try:
            detail = json.loads(text)
        except ValueError:
            found = found or (m.group(1), text)
            continue
        return m.group(1), detail if isinstance(detail, dict) else {"value": detail}
    return None if found is None else (found[0], {"raw": found[1]})


def emit_event(logger: logging.Logger, kind: str, detail: dict[str, Any]) -> bool:
    """One log line per event: INFO for a routine one (ROUTINE_EVENTS), WARNING for the rest.
    False if a service log (WholeLines) could not take it: a full disk. Who tells a state that
    way (storage-error / storage-ok) tells it again later, or the supervisor keeps the last one
    it read for ever."""
    level = logging.INFO if kind in ROUTINE_EVENTS else logging.WARNING
    if not logger.isEnabledFor(level):
        return True
    record = logger.makeRecord(logger.name, level, "(event)", 0, "%s", (event_line(kind, detail),), None)
    logger.handle(record)
    return not getattr(record, "unwritten", False)   # set by WholeLines, on this record only


def event_emitter(logger: logging.Logger) -> Callable[[str, dict[str, Any]], bool]:
    """emit_event bound to a service's logger: the on_event callback its parts are given."""
    return functools.partial(emit_event, logger)


def clear_stop_file(data_dir) -> None:
    """Remove a stop file left by an earlier run (a killed service never took it): not meant for us."""
    (Path(data_dir) / STOP_FILE).unlink(missing_ok=True)


def take_stop_file(data_dir, logger: logging.Logger) -> bool:
    """True (and the file removed) when a supervisor asked this service to stop: on Windows it
    cannot signal a console-less child, so it writes `<data_dir>/stop`."""
    stop = Path(data_dir) / STOP_FILE
    if not stop.exists():
        return False
    logger.info("stop file %s found: stopping", stop)
    try:
        stop.unlink()
    except OSError:
        pass
    return True


async def watch_stop_file(data_dir, on_stop: Callable[[], None], logger: logging.Logger,
                          interval: float = 0.25) -> None:
    """Look for the stop file every `interval` seconds; call on_stop() when it appears."""
    while True:
        await asyncio.sleep(interval)
        if take_stop_file(data_dir, logger):
            on_stop()


async def every(interval: float, fn: Callable[[], Any], logger: logging.Logger,
                on_error: Callable[[Callable, Exception], None] | None = None) -> None:
    """Housekeeping: call fn() (awaited if it returns an awaitable) every `interval` seconds for
    ever; a failure is reported by on_error(fn, e) (default: logged with its traceback) and the
    task goes on."""
    while True:
        await asyncio.sleep(interval)
        try:
            result = fn()
            if inspect.isawaitable(result):
                await result
        except Exception as e:
            if on_error is not None:
                on_error(fn, e)
            else:
                logger.exception("housekeeping task %s failed", getattr(fn, "__name__", fn))


#: A service exits with this code when it cannot run as configured (address not on this machine,
#: port taken, permission denied, bad setting, unusable data folder): restarting it or moving its
#: journal aside would not help, so the supervisor stops it and says why (sysexits' EX_CONFIG).
EXIT_CONFIG = 78

_ADDRESS_ERRORS = {
    errno.EADDRINUSE: ("port-taken", "{where} is already in use by another program; stop it or choose another port"),
    errno.EADDRNOTAVAIL: ("address-not-local", "{where} is not an address of this machine; use 127.0.0.1 "
                                               "or one of this machine's addresses as host"),
    errno.EACCES: ("permission-denied", "{where} may not be opened by this user; choose a port above 1023"),
}
if sys.platform == "win32":   # WSAEADDRINUSE, WSAEADDRNOTAVAIL, WSAEACCES
    _ADDRESS_ERRORS.update({10048: _ADDRESS_ERRORS[errno.EADDRINUSE], 10049: _ADDRESS_ERRORS[errno.EADDRNOTAVAIL],
                            10013: _ADDRESS_ERRORS[errno.EACCES]})


def address_problem(e: OSError, where: str) -> tuple[str, str] | None:
    """(reason, sentence) when a bind failed for a reason the user must fix, else None."""
    if isinstance(e, socket.gaierror):   # a host name that does not resolve, or "999.1.1.1"
        return "address-not-local", (f"{where} is not an address this machine can use ({e.strerror or e}); "
                                     f"use 127.0.0.1 or one of this machine's addresses as host")
    found = _ADDRESS_ERRORS.get(e.errno or 0)
    if found is None:
        return None
    return found[0], found[1].format(where=where)


def config_exit(reason: str, message: str, **detail: Any) -> int:
    """Say why the service cannot run as configured: one machine-readable EVENT line (the supervisor
    reads it from the log), one sentence for a person; returns EXIT_CONFIG for the caller to exit with."""
    print(event_line("config-error", {"reason": reason, "message": message, **detail}), file=sys.stderr, flush=True)
    print(f"error: {message}", file=sys.stderr, flush=True)
    return EXIT_CONFIG


def stop_signals() -> list[signal.Signals]:
    """Ctrl-C, SIGTERM, and on Windows Ctrl-Break (what a supervisor sends a new process group)."""
    sigs = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGBREAK"):
        sigs.append(signal.SIGBREAK)
    return sigs


class Service:
    """What every service shares: serve_forever() until request_stop() (a stop signal, the stop
    file, or the service itself). Subclasses set `_stopping = asyncio.Event()` and write
    start() and stop()."""

    _stopping: asyncio.Event

    async def serve_forever(self) -> None:
        await self._stopping.wait()

    def request_stop(self) -> None:
        self._stopping.set()


async def cancel_and_wait(tasks: Iterable["asyncio.Future"], again_every: float = 0.25) -> None:
    """Cancel the tasks and wait until every one has finished, cancelling again those still
    running every `again_every` s. Once is not always enough on Python 3.11: asyncio.wait_for
    drops a cancellation that arrives as the awaited call completes (CPython gh-86296), and a
    loop that retries on errors then runs on for ever, which hung a broker's SIGTERM until it
    was killed. Errors of the tasks are dropped (as gather(return_exceptions=True)). A task's
    own async cleanup (awaits in a `finally`) gets `again_every` s before it is cancelled again."""
    tasks = list(tasks)
    pending = {t for t in tasks if not t.done()}
    while pending:
        for t in pending:
            t.cancel()
        _done, pending = await asyncio.wait(pending, timeout=again_every)
    for t in tasks:
        if t.done() and not t.cancelled():
            t.exception()   # retrieved: no "exception was never retrieved" at exit


async def serve_until_stopped(server: Any) -> int:
    """start(), then serve until a stop signal or server.request_stop(); always stop(). Exit code 0."""
    await server.start()
    loop = asyncio.get_running_loop()
    for s in stop_signals():
        try:
            loop.add_signal_handler(s, server.request_stop)
        except (NotImplementedError, RuntimeError):  # Windows: no add_signal_handler
            signal.signal(s, lambda *_: loop.call_soon_threadsafe(server.request_stop))
    try:
        await server.serve_forever()
    finally:
        slow = loop.call_later(STOP_REPORT_S, _report_slow_stop, asyncio.current_task())
        try:
            await server.stop()
        finally:
            slow.cancel()
    return 0


STOP_REPORT_S = 3.0


def _report_slow_stop(stopping: "asyncio.Task | None") -> None:
    """A stop that takes longer than it should names what it still waits for (each unfinished
    task and the line it waits at), so a hung shutdown can be told from a slow one."""
    waiting = [f"{'stop' if task is stopping else task.get_name()} at {_innermost(task)}"
               for task in asyncio.all_tasks()]
    logging.getLogger("sandbox").warning("still stopping after %.0f s; waiting on: %s", STOP_REPORT_S,
                                         "; ".join(sorted(waiting)))


_ASYNCIO_DIR = str(Path(asyncio.__file__).parent)


def _innermost(task: "asyncio.Task") -> str:
    """file:line of the innermost coroutine a task waits in (following each await), asyncio's
    own (sleep, wait_for) left out."""
    where, coro = "?", task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None and (where == "?" or _ASYNCIO_DIR not in frame.f_code.co_filename):
            where = f"{frame.f_code.co_filename}:{frame.f_lineno}"
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return where


class WholeLines(logging.StreamHandler):
    """A StreamHandler (the service's log file is its stderr) whose every record starts on a line
    of its own, also after a write failed part way: on a full disk the file may take the head of
    a line and none of its tail, and the supervisor, which reads EVENT lines from the log
    (runner/logscan.py), would find the next one glued to it. A record that cannot be written is
    dropped without the traceback logging would print: that goes to the same full disk."""

    torn = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + self.terminator
            self._write("\n" + text if self.torn else text)
            self.torn = False
        except RecursionError:
            raise
        except OSError:
            self.torn = True
            record.unwritten = True   # emit_event tells its caller (another thread may write next)
        except Exception:   # noqa: BLE001 - as logging.StreamHandler does
            self.handleError(record)

    def _write(self, text: str) -> None:
        """Write all of `text` or raise. A service's stderr (PYTHONUNBUFFERED, as the supervisor
        starts it) is a write-through text stream over the file itself, which takes a short write
        (the head of the line: a full disk's last page) without a word and drops the rest; so the
        bytes go to the binary layer here, and a short write counts as a failed one."""
        stream = self.stream
        binary = getattr(stream, "buffer", None)
        if binary is None:   # a text stream of its own (tests, a StringIO)
            stream.write(text)
            self.flush()
            return
        stream.flush()   # anything written to the text layer before us goes first
        data = memoryview(text.encode(getattr(stream, "encoding", None) or "utf-8",
                                      getattr(stream, "errors", None) or "backslashreplace"))
        while data:
            n = binary.write(data)
            if not n:   # a raw file that took nothing (None: would block) and said no error
                raise OSError(errno.ENOSPC, "the log took no more bytes")
            data = data[n:]
        binary.flush()


#: open files a service asks for: a broker holds one per segment of every partition it has opened,
#: and one per connection. Kafka asks its users to raise the limit to 100,000 or more by hand
OPEN_FILES_WANTED = 1 << 20
DARWIN_OPEN_MAX = 10240   # macOS refuses a soft limit above OPEN_MAX although the hard one says unlimited
OPEN_FILES_LOW = 4096     # below this, with the hard limit reached, a service warns how to raise it


def raise_open_files_limit(logger: logging.Logger | None = None) -> tuple[int, int] | None:
    """Raise this process's soft limit of open files to its hard limit (as Go's runtime does), so
    a broker with a few hundred partitions does not run out of handles: a Mac's terminal starts
    programs with 256. (soft, hard) after, or None where there is no such limit (Windows: the
    C runtime allows 8,192). Children inherit it. A limit still low is a WARNING with the fix."""
    try:
        import resource
    except ImportError:
        return None
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return None
    infinite = resource.RLIM_INFINITY
    target = OPEN_FILES_WANTED if hard == infinite else min(OPEN_FILES_WANTED, hard)
    if sys.platform == "darwin":
        target = min(target, DARWIN_OPEN_MAX)
    # the most the system takes (macOS refuses more than kern.maxfilesperproc, which may be lower
    # than OPEN_MAX): a search between what the process has and the target
    if soft != infinite:
        ok, refused, candidate = soft, target + 1, target
        while candidate > ok:   # ok: taken (or had); refused: the least refused; at most ~20 tries
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (candidate, hard))
                ok = candidate
            except (OSError, ValueError):
                refused = candidate
            candidate = (ok + refused) // 2
        soft = ok
    if logger is not None and soft != infinite and soft < OPEN_FILES_LOW:
        logger.warning("this process may open only %d files; a broker needs one per segment of each "
                       "partition and one per connection: raise the limit (`ulimit -n 65536`, or the "
                       "system's hard limit as root) before `sandbox up`", soft)
    return soft, hard


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(handlers=[WholeLines(sys.stderr)],
                        level=getattr(logging, str(level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
