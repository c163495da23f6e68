#!/usr/bin/env python3
"""confluent-kafka-python's own integration tests (tests/integration) against a fresh native
sandbox: three brokers (ports P, P+1, P+2; the coordinator on P+3, the supervisor on P+4), 4
partitions per auto-created topic, on free 127.0.0.1 ports in a temporary folder, stopped again on
exit, also on failure or Ctrl-C.

The suite runs against an external cluster when BROKERS is set (its `kafka_cluster` fixture then
is a ByoFixture, "bring your own", instead of a trivup cluster it would download and start).

The source distribution of the installed version (2.16.1) has no tests: its MANIFEST.in says
`prune tests`. So the tests come from the project's git repository, as a `tests/` folder laid
beside the unpacked source distribution in the cache ($CONFLUENT_KAFKA_SUITE_DIR, default
~/.cache/sandbox-confluent-kafka-suite, e.g. `confluent_kafka-2.16.1/tests` from a checkout of
tag v2.16.1); without one this script says so and exits 2. The source distribution still gives
the suite its pytest settings (pyproject.toml: asyncio_mode = "auto"). (A folder laid by hand
from stored copies of the repository says so in its tests/SOURCE.txt.)

Left out: Schema Registry (schema_registry/, serialization/: no registry here), SASL, SSL and
OAuth (share_consumer_sasl/, share_consumer_oauth/, the `sasl_cluster` tests such as
admin/test_describe_operations.py and admin/test_authorized_operations.py: every sandbox listener
is PLAINTEXT without an authorizer), share groups (share_consumer/: KIP-932, Kafka 4.2; the sandbox
answers as Kafka 4.0), the Java client interop (java/, java_fixture.py: a Maven build) and the old
standalone script integration_test.py (run as `python integration_test.py testconf.json`, not by
pytest). Its module-level imports still need trivup and the Schema Registry client's packages,
which are installed, not used. Deselected: producer/test_concurrency.py's
test_close_propagates_signal_while_waiting_for_active_calls, which sends SIGINT to the pytest
process itself (client-side; a late signal ends the whole run).

    python scripts/confluent_kafka_suite.py [PYTEST ARGS ...]

TEST_CONSUMER_GROUP_PROTOCOL=consumer (passed through) runs the consumer tests with the KIP-848
protocol, as the suite's own CI does in a second pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

from suite_stack import sandbox_stack

ROOT = Path(__file__).resolve().parents[1]
# Not collected: what needs a Schema Registry, SASL/SSL/OAuth, share groups (Kafka 4.2), Java or the
# standalone script (see the docstring).
LEFT_OUT = [
    "tests/integration/schema_registry", "tests/integration/serialization",
    "tests/integration/share_consumer", "tests/integration/share_consumer_sasl",
    "tests/integration/share_consumer_oauth", "tests/integration/java",
    "tests/integration/java_fixture.py", "tests/integration/integration_test.py",
    "tests/integration/admin/test_describe_operations.py",
    "tests/integration/admin/test_authorized_operations.py",
]


# It sends SIGINT to the test process while the producer's close() waits, a client-side test whose
# signal, if it comes late, stops the whole pytest run.
SIGINT_TEST = "test_close_propagates_signal_while_waiting_for_active_calls"


def cache_dir() -> Path:
    return Path(os.environ.get("CONFLUENT_KAFKA_SUITE_DIR",
                               Path.home() / ".cache" / "sandbox-confluent-kafka-suite"))


def source() -> Path | None:
    """The unpacked source distribution of the installed confluent-kafka, fetched once, or None
    when no tests/integration folder is there (the source distribution prunes it)."""
    from importlib.metadata import version
    ver = version("confluent-kafka")
    cache = cache_dir()
    src = cache / f"confluent_kafka-{ver}"
    if not (src / "pyproject.toml").is_file():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        "-d", str(cache), f"confluent-kafka=={ver}"], check=True)
        with tarfile.open(cache / f"confluent_kafka-{ver}.tar.gz") as tar:
            tar.extractall(cache, filter="data")
    if not (src / "tests" / "integration" / "conftest.py").is_file():
        print(f"confluent-kafka {ver}'s source distribution has no tests (its MANIFEST.in prunes tests/).\n"
              f"Put the tests/ folder of the project's git repository at tag v{ver} at {src / 'tests'} "
              "and run this again.", file=sys.stderr)
        return None
    return src


def main() -> int:
    src = source()
    if src is None:
        return 2
    from importlib.metadata import version
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "pytest-timeout", "pytest-asyncio", "trivup",
                    # the fixture module imports the Schema Registry clients and the Avro consumer
                    f"confluent-kafka[avro,schemaregistry]=={version('confluent-kafka')}"], check=True)
    with sandbox_stack("confluent-kafka-suite-", brokers=3, partitions=4) as (_project, env, port):
        run_env = dict(env, BROKERS=",".join(f"127.0.0.1:{port + i}" for i in range(3)))
        run_env.pop("SR_URL", None)
        ignores = [f"--ignore={p}" for p in LEFT_OUT]
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/integration", *ignores,
             "-k", f"not sasl and not ssl and not oauth and not {SIGINT_TEST}", "--timeout", "180",
             "--timeout-method", "signal", "--tb=short", "-rfEs", "-W", "ignore", "-o", "log_level=WARNING",
             *sys.argv[1:]], cwd=src, env=run_env, timeout=3600).returncode


if __name__ == "__main__":
    sys.exit(main())
