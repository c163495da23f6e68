"""The sandbox the client-library suite scripts (kafka_python_suite.py, aiokafka_suite.py,
confluent_kafka_suite.py) run against: a fresh native stack in a temporary folder, on free
127.0.0.1 ports (brokers on port .. port + brokers - 1, then the coordinator, then the supervisor's
HTTP port), brought down again on exit, also on failure or Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def sandbox_stack(prefix: str, *, brokers: int, partitions: int) -> Iterator[tuple[Path, dict, int]]:
    """(the project folder, the environment that runs this checkout's sandbox, the first broker's port)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import listen_port

    port = listen_port(brokers + 2)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    sandbox = [sys.executable, "-m", "sandbox"]
    with tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True) as project:
        Path(project, "sandbox.toml").write_text(
            f"[sandbox]\nbrokers = {brokers}\nport = {port}\ncoordinator_port = {port + brokers}\n"
            f"http_port = {port + brokers + 1}\npartitions = {partitions}\n", encoding="utf-8")
        try:
            subprocess.run(sandbox + ["up"], cwd=project, env=env, check=True, timeout=180)
            yield Path(project), env, port
        finally:
            subprocess.run(sandbox + ["down"], cwd=project, env=env, timeout=180,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
