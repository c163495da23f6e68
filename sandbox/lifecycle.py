"""How a service process lives: logging to stderr, and running until SIGINT / SIGTERM / SIGBREAK
(or its own stop request), then stopping cleanly. Shared by the broker and the coordinator."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any


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
