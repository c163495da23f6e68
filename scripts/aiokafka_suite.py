#!/usr/bin/env python3
"""aiokafka's own test suite (the tests/ folder of the installed version's release) against a
fresh native sandbox: one broker, 2 partitions per auto-created topic (the suite's own Docker
Kafka is started with NUM_PARTITIONS 2), on free 127.0.0.1 ports in a temporary folder, stopped
again on exit, also on failure or Ctrl-C.

aiokafka's source distribution on PyPI has no tests (its MANIFEST.in excludes tests/**, checked
for 0.8.1 to 0.14.0), so the tests come from the first of:
  1. $AIOKAFKA_SUITE_DIR/aiokafka-<version>/tests (default ~/.cache/sandbox-aiokafka-suite), e.g.
     the tests/ folder of a checkout of the release's tag v<version> put there by hand;
  2. the source distribution, should a release ship them (it is fetched and unpacked there anyway);
  3. a shallow git clone of the tag v<version> of the repository named in the installed package's
     metadata (Project-URL "Source"), where the machine reaches it.
Without any of them it stops with exit code 4 and says where to put them.

The suite starts Kafka in Docker (fixture kafka_server, needing --docker-image). A pytest plugin
written to the temporary folder replaces, through the pytest_fixture_setup hook, the fixtures that
touch Docker: kafka_server is the sandbox broker, docker/kafka_image/ssl_folder do nothing, and
acl_manager, kafka_config and kerberos_utils (Kafka's shell tools run by docker exec in the
suite's container) skip the test that uses them. --docker-image still names a stand-in image
whose tag gives the suite its Kafka version, 4.0.0 (the tests' kafka_versions decorator). The
suite's tests run from a copy of its tests/ folder, so that the installed aiokafka (with its C
extension) is the one imported, not the source tree's. SASL and SSL tests are left out (every
sandbox listener is PLAINTEXT).

    python scripts/aiokafka_suite.py [PYTEST ARGS ...]      (e.g. -k TestKafkaConsumerIntegration)

The last result, and why each failure is not a sandbox fault, belong in docs/protocol.md
("Client suites"), next to the other client suites'.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from suite_stack import sandbox_stack

ROOT = Path(__file__).resolve().parents[1]
KAFKA_VERSION = "4.0.0"   # the Kafka release whose API versions the sandbox answers
DOCKER_IMAGE = f"sandbox-stand-in/kafka:2.13_{KAFKA_VERSION}"   # never pulled; its tag is the Kafka version
PARTITIONS = 2            # the suite's own Kafka: NUM_PARTITIONS 2
PLUGIN = "sandbox_aiokafka_broker"
PLUGIN_TEXT = '''"""Points aiokafka's test suite at an external broker (SANDBOX_KAFKA_HOST/PORT) instead of
the Kafka container its conftest starts. The suite's conftest fixtures take precedence over a
plugin's, so they are replaced at setup (pytest_fixture_setup) by name."""

import os
import pathlib

import pytest

HOST = os.environ["SANDBOX_KAFKA_HOST"]
PORT = int(os.environ["SANDBOX_KAFKA_PORT"])
SHELL_TOOLS = "needs Kafka's shell tools (docker exec into the suite's Kafka container)"


class _SkipOnUse:
    """Stands in for a helper that runs Kafka's shell tools in the container: using it skips the
    test. cleanup() (called after every test by some versions' autouse fixture) does nothing."""

    def __init__(self, what):
        self._what = what

    def cleanup(self):
        pass

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        pytest.skip(f"{self._what}.{name} {SHELL_TOOLS}")


class ExternalKafka:
    """The suite's KafkaServer: the sandbox broker; no SSL or SASL listeners, no container."""

    host = HOST
    port = PORT
    ssl_port = None
    sasl_plain_port = None
    sasl_ssl_port = None
    container = _SkipOnUse("container")

    @property
    def hosts(self):
        return [f"{self.host}:{self.port}"]

    def __getitem__(self, i):   # older conftests used a tuple (host, port, ssl, sasl, sasl_ssl, container)
        return (self.host, self.port, None, None, None, self.container)[i]


OVERRIDES = {
    "docker": lambda request: _SkipOnUse("docker"),   # not None: None lets the hook fall through
    "kafka_image": lambda request: request.config.getoption("--docker-image"),
    "ssl_folder": lambda request: pathlib.Path("tests/ssl_cert"),
    "kafka_server": lambda request: ExternalKafka(),
    "acl_manager": lambda request: _SkipOnUse("acl_manager"),
    "kafka_config": lambda request: _SkipOnUse("kafka_config"),
    "kerberos_utils": lambda request: _SkipOnUse("kerberos_utils"),
}


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(fixturedef, request):
    make = OVERRIDES.get(fixturedef.argname)
    if make is None:
        return None
    value = make(request)
    fixturedef.cached_result = (value, fixturedef.cache_key(request), None)
    return value
'''


def _has_tests(folder: Path) -> bool:
    return (folder / "tests" / "conftest.py").is_file()


def source() -> Path:
    """The source of the installed aiokafka with its tests/ folder (see the module docstring)."""
    from importlib.metadata import metadata, version
    ver = version("aiokafka")
    cache = Path(os.environ.get("AIOKAFKA_SUITE_DIR", Path.home() / ".cache" / "sandbox-aiokafka-suite"))
    src = cache / f"aiokafka-{ver}"
    if _has_tests(src):
        return src
    cache.mkdir(parents=True, exist_ok=True)
    sdist = cache / f"aiokafka-{ver}.tar.gz"
    if not sdist.is_file():
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        "-d", str(cache), f"aiokafka=={ver}"], check=True, timeout=600)
    with tarfile.open(sdist) as tar:
        tar.extractall(cache, filter="data")
    if _has_tests(src):
        return src
    repo = next((u.split(",", 1)[1].strip() for u in metadata("aiokafka").get_all("Project-URL") or []
                 if u.split(",", 1)[0].strip().lower() == "source"), None)
    if repo and shutil.which("git"):
        clone = cache / f"aiokafka-{ver}-git"
        shutil.rmtree(clone, ignore_errors=True)
        try:
            done = subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", f"v{ver}", repo, str(clone)],
                                  check=False, env=dict(os.environ, GIT_TERMINAL_PROMPT="0"), timeout=180,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
        except subprocess.TimeoutExpired:
            done = False
        if done and _has_tests(clone):
            shutil.copytree(clone / "tests", src / "tests")
            return src
        shutil.rmtree(clone, ignore_errors=True)
    raise SystemExit(
        f"aiokafka {ver}'s tests are not in its source distribution, and no clone of tag v{ver} of "
        f"{repo or 'its repository'} could be made here. Put the tests/ folder of that tag at "
        f"{src / 'tests'} and run this again.")


def main() -> int:
    try:
        src = source()
    except SystemExit as stop:
        print(stop, file=sys.stderr)
        return 4
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "pytest-asyncio", "pytest-mock",
                    "pytest-timeout", "docker", "cramjam"], check=True)
    with sandbox_stack("aiokafka-suite-", brokers=1, partitions=PARTITIONS) as (project, env, port):
        plugins = project / "plugins"
        plugins.mkdir()
        Path(plugins, f"{PLUGIN}.py").write_text(PLUGIN_TEXT, encoding="utf-8")
        run = project / "suite"   # a copy: the source tree's aiokafka/ must not shadow the installed one
        shutil.copytree(src / "tests", run / "tests", ignore=shutil.ignore_patterns("__pycache__", "ssl_cert"))
        if (src / "pyproject.toml").is_file():   # its [tool.pytest.ini_options]
            shutil.copy(src / "pyproject.toml", run / "pyproject.toml")
        else:
            (run / "pytest.ini").write_text("[pytest]\nasyncio_mode = auto\nmarkers =\n    ssl: SSL tests\n",
                                            encoding="utf-8")
        run_env = dict(env, SANDBOX_KAFKA_HOST="127.0.0.1", SANDBOX_KAFKA_PORT=str(port),
                       PYTHONPATH=os.pathsep.join((str(plugins), env["PYTHONPATH"])))
        ignore = [f"--ignore={p}" for p in sorted((run / "tests").rglob("test_sasl*.py"))]
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", PLUGIN, "tests",
             f"--docker-image={DOCKER_IMAGE}", "--no-pull", *ignore,
             "-m", "not ssl", "-k", "not sasl and not ssl and not gssapi and not kerberos",
             "--timeout", "120", "--timeout-method", "signal", "--tb=native", "-rfEs",
             "-o", "log_level=WARNING", *sys.argv[1:]], check=False, cwd=run, env=run_env, timeout=3000).returncode


if __name__ == "__main__":
    sys.exit(main())
