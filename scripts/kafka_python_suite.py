#!/usr/bin/env python3
"""kafka-python's own integration tests (test/integration of its source distribution, the version
installed here) against a fresh native sandbox: one broker, 4 partitions per auto-created topic
(the suite's own fixture starts its Kafka with num.partitions 4), on free 127.0.0.1 ports in a
temporary folder, stopped again on exit, also on failure or Ctrl-C.

The suite runs against an external broker when KAFKA_URI is set. Its source distribution lacks
the helper that spawns Kafka (test/service.py) and the folder of Kafka's binaries it checks for;
neither is used against an external broker, so a stand-in and an empty folder take their place.
SASL and SSL tests are left out (every sandbox listener is PLAINTEXT). Its captured logs are cut to warnings,
so a failure's report stays readable.

    python scripts/kafka_python_suite.py [PYTEST ARGS ...]

docs/protocol.md ("Client suites") lists the last result and why each failure is not a sandbox
fault. The source is cached in $KAFKA_PYTHON_SUITE_DIR (default ~/.cache/sandbox-kafka-python-suite).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

from suite_stack import sandbox_stack

ROOT = Path(__file__).resolve().parents[1]
KAFKA_VERSION = "4.0.0"   # the Kafka release whose API versions the sandbox answers (the suite picks its tests by it)
SERVICE_STAND_IN = '''"""Stand-in for the suite's process helpers (not in its source distribution): against an
external broker (KAFKA_URI) nothing is spawned."""


class ExternalService:
    def __init__(self, host, port):
        self.host, self.port = host, port

    def open(self):
        pass

    def close(self):
        pass


class SpawnedService:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("this run uses an external broker (KAFKA_URI)")
'''


def source() -> Path:
    """The unpacked source distribution of the installed kafka-python, fetched once."""
    from importlib.metadata import version
    ver = version("kafka-python")
    cache = Path(os.environ.get("KAFKA_PYTHON_SUITE_DIR", Path.home() / ".cache" / "sandbox-kafka-python-suite"))
    src = cache / f"kafka_python-{ver}"
    if not (src / "test" / "integration").is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        "-d", str(cache), f"kafka-python=={ver}"], check=True)
        with tarfile.open(cache / f"kafka_python-{ver}.tar.gz") as tar:
            tar.extractall(cache, filter="data")
    (src / "test" / "__init__.py").touch()
    (src / "test" / "service.py").write_text(SERVICE_STAND_IN, encoding="utf-8")
    (src / "servers" / KAFKA_VERSION / "kafka-bin").mkdir(parents=True, exist_ok=True)
    return src


def main() -> int:
    src = source()
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "pytest-timeout", "pytest-mock", "py",
                    # its codec tests run only with these (the broker checks every codec)
                    "python-snappy", "lz4", "zstandard", "xxhash"], check=True)
    with sandbox_stack("kafka-python-suite-", brokers=1, partitions=4) as (_project, env, port):
        run_env = dict(env, KAFKA_VERSION=KAFKA_VERSION, KAFKA_URI=f"kafka://127.0.0.1:{port}")
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test/integration", "-k",
             "not sasl and not ssl", "--timeout", "120", "--timeout-method", "signal", "--tb=native",
             "-rfEs", "-W", "ignore", "-o", "log_level=WARNING", *sys.argv[1:]], cwd=src, env=run_env, timeout=1800).returncode


if __name__ == "__main__":
    sys.exit(main())
