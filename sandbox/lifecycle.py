"""How a service process lives, for the broker and the coordinator alike: logging to stderr, EVENT
lines (one format, one level rule), the stop file a supervisor writes, running until SIGINT /
SIGTERM / SIGBREAK (or its own stop request) and stopping cleanly, and the exit code that says
"this cannot run as configured"."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import signal
import sys
from typing import Any

STOP_FILE = "stop"
#: Events that report something that went as planned: logged at INFO; the rest ask for attention.
ROUTINE_EVENTS = frozenset({"start", "compacted"})


def emit_event(logger: logging.Logger, kind: str, detail: dict[str, Any]) -> None:
    """One log line per event, machine-readable after the `EVENT kind` prefix (the supervisor's
    logscan reads it from the service's log)."""
    level = logging.INFO if kind in ROUTINE_EVENTS else logging.WARNING
    logger.log(level, "EVENT %s %s", kind, json.dumps(detail, default=str, sort_keys=True))


def take_stop_file(data_dir, logger: logging.Logger) -> bool:
    """True (and the file removed) when a supervisor asked this service to stop: on Windows it
    cannot signal a console-less child, so it writes `<data_dir>/stop`."""
    from pathlib import Path

    stop = Path(data_dir) / STOP_FILE
    if not stop.exists():
        return False
    logger.info("stop file %s found: stopping", stop)
    try:
        stop.unlink()
    except OSError:
        pass
    return True


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
    found = _ADDRESS_ERRORS.get(e.errno or 0)
    if found is None:
        return None
    return found[0], found[1].format(where=where)


def config_exit(reason: str, message: str, **detail: Any) -> int:
    """Say why the service cannot run as configured: one machine-readable EVENT line (the supervisor
    reads it from the log), one sentence for a person; returns EXIT_CONFIG for the caller to exit with."""
    line = json.dumps({"reason": reason, "message": message, **detail}, default=str, sort_keys=True)
    print(f"EVENT config-error {line}", file=sys.stderr, flush=True)
    print(f"error: {message}", file=sys.stderr, flush=True)
    return EXIT_CONFIG


def stop_signals() -> list[signal.Signals]:
    """Ctrl-C, SIGTERM, and on Windows Ctrl-Break (what a supervisor sends a new process group)."""
    sigs = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGBREAK"):
        sigs.append(signal.SIGBREAK)
    return sigs


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
        await server.stop()
    return 0


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(stream=sys.stderr, level=getattr(logging, str(level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
