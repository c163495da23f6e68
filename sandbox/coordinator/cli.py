"""Entry point of `sandbox coordinator`: run the coordinator service in the foreground.

The typer command calls run(); errors a user can cause (port taken: OSError; corrupt journal:
JournalCorruptError; journal in use: JournalLockedError) propagate for the CLI to phrase.
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sandbox.lifecycle import raise_open_files_limit

from .server import CoordinatorConfig, run_coordinator, setup_logging


def run(port: int, data_dir: Path, host: str = "127.0.0.1", session_timeout_ms: int = 9000,
        log_level: str = "INFO", default_replication_factor: int = 1,
        min_insync_replicas: int = 1, leader_imbalance_check_interval_s: float = 300.0,
        default_partitions: int = 1, settings: dict[str, str] | None = None,
        seed_acls: Path | None = None) -> int:
    """Serve until SIGINT/SIGTERM/SIGBREAK or `<data_dir>/stop` appears; returns the exit code."""
    setup_logging(log_level)
    raise_open_files_limit(logging.getLogger("sandbox.coordinator"))
    config = CoordinatorConfig(data_dir=Path(data_dir), host=host, port=port,
                               session_timeout_ms=session_timeout_ms,
                               default_replication_factor=default_replication_factor,
                               min_insync_replicas=min_insync_replicas, default_partitions=default_partitions,
                               auto_leader_rebalance=leader_imbalance_check_interval_s > 0,
                               leader_imbalance_check_interval_s=max(leader_imbalance_check_interval_s, 0.1),
                               settings=dict(settings or {}), seed_acls=seed_acls)
    try:
        return asyncio.run(run_coordinator(config))
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were installed
        return 0
