#!/usr/bin/env bash
# librdkafka's own regression suite (the tests/ folder of its source) against a fresh native
# sandbox: 3 brokers and 4 partitions per auto-created topic, as the suite's own clusters have
# (its trivup scenario "default": num_partitions 4, replication_factor 3). Debian/Ubuntu only: it
# fetches the librdkafka source package of this distribution with apt-get source, builds the
# library and the test-runner once (cached in $LIBRDKAFKA_SUITE_DIR, default
# ~/.cache/sandbox-librdkafka-suite), starts the stack on free ports in a temporary folder, runs
# the broker tests in quick mode and stops the stack again, also on failure or Ctrl-C.
#
#   scripts/librdkafka_suite.sh [TESTS=0012,0081 ...]     (TESTS: substrings of test names)
#
# Kafka's shell tools the suite runs (KAFKA_PATH) are stood in for by scripts/kafka_tools.py.
# Tests that need SSL/SASL or the suite's mock cluster do not run here; docs/protocol.md ("Client suites") lists
# the last results and why each failure is not a sandbox fault.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${LIBRDKAFKA_SUITE_DIR:-$HOME/.cache/sandbox-librdkafka-suite}
mkdir -p "$cache"
for arg in "$@"; do export "$arg"; done

if ! ls "$cache"/librdkafka-*/tests/test-runner >/dev/null 2>&1; then
    if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        for f in /etc/apt/sources.list.d/*.sources; do   # deb822 files: the same mirrors, as deb-src
            [ -f "$f" ] && sed 's/^Types: deb$/Types: deb-src/' "$f" > "${f%.sources}-src.sources"
        done
        if [ -f /etc/apt/sources.list ]; then
            sed -n 's/^deb /deb-src /p' /etc/apt/sources.list > /etc/apt/sources.list.d/sandbox-deb-src.list
        fi
    fi
    apt-get update -qq
    apt-get install -y -qq build-essential dpkg-dev zlib1g-dev >/dev/null
    (cd "$cache" && apt-get source -qq librdkafka)
    src=$(ls -d "$cache"/librdkafka-*/ | head -1)
    (cd "$src" && ./configure --disable-ssl --disable-sasl --disable-zstd --disable-lz4-ext \
        --disable-gssapi --disable-curl >/dev/null && make -j"$(nproc)" libs >/dev/null)
    (cd "$src/tests" && make -j"$(nproc)" build >/dev/null)
fi
src=$(ls -d "$cache"/librdkafka-*/ | head -1)

port=$(python3 - <<'PY'
import socket
for _ in range(100):   # five free ports in a row: 3 brokers, the coordinator, the HTTP endpoint
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        base = s.getsockname()[1]
    if base + 4 > 65535:
        continue
    try:
        held = []
        for p in range(base, base + 5):
            t = socket.socket()
            held.append(t)
            t.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        for t in held:
            t.close()
    print(base)
    break
PY
)
project=$(mktemp -d)
printf '[sandbox]\nbrokers = 3\nport = %s\ncoordinator_port = %s\nhttp_port = %s\npartitions = 4\n' \
    "$port" "$((port + 3))" "$((port + 4))" > "$project/sandbox.toml"
cleanup() {
    (cd "$project" && PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" python3 -m sandbox down >/dev/null 2>&1) ||
        echo "sandbox down failed: stopping what is left of the stack by its folder" >&2
    pkill -f -- "$project/" 2>/dev/null || true   # nothing of this stack may outlive the run
    rm -rf "$project"
}
trap cleanup EXIT INT TERM
(cd "$project" && PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" python3 -m sandbox up)

# Kafka's shell tools, as far as the suite uses them (kafka-topics.sh --create, kafka-acls.sh
# --add), made by scripts/kafka_tools.py with the admin client
mkdir -p "$project/kafka/bin"
for tool in topics acls; do
    printf '#!/bin/sh\nexec python3 %s %s "$@"\n' "$here/scripts/kafka_tools.py" "$tool" \
        > "$project/kafka/bin/kafka-$tool.sh"
    chmod +x "$project/kafka/bin/kafka-$tool.sh"
done
export KAFKA_PATH="$project/kafka" BROKERS="127.0.0.1:$port"

cd "$src/tests"
printf 'bootstrap.servers=127.0.0.1:%s\n' "$port" > test.conf
export LD_LIBRARY_PATH=../src:../src-cpp
status=0
TEST_KAFKA_VERSION=${TEST_KAFKA_VERSION:-3.7.0} timeout 2700 ./test-runner -Q -L -E -p2 > "$cache/last-run.log" 2>&1 || status=$?
sed 's/\x1b\[[0-9;]*m//g' "$cache/last-run.log" | grep -a '^| [0-9]' || true
echo "full output: $cache/last-run.log (test-runner exit status $status)"
exit "$status"
