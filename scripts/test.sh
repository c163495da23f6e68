#!/usr/bin/env bash
# Installs the project with its test extras and runs the whole test suite.
#
# With no arguments, in two phases: first every test not marked `serial` (tests/conftest.py),
# two at a time by file (pytest-xdist); then the serial ones (fault campaigns, failovers, Docker),
# one at a time with nothing beside them. With arguments, one plain pytest run of what they name.
# Exit code 5 from pytest (no tests collected) is a failure here, never a pass.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check -e '.[test]'

run() {
  set +e
  python3 -m pytest -q -p no:cacheprovider "$@"
  local code=$?
  set -e
  if [ "$code" = "5" ]; then
    echo "no tests were collected: failing" >&2
    return 1
  fi
  return "$code"
}

if [ "$#" -gt 0 ]; then
  run --durations=40 "$@"
  exit $?
fi

workers="${SANDBOX_TEST_WORKERS:-2}"
status=0
echo "== phase 1 of 2: tests not marked serial, $workers at a time =="
run -m "not serial" -n "$workers" --dist loadfile --durations=20 || status=$?
echo "== phase 2 of 2: serial tests (fault campaigns, failovers, Docker), one at a time =="
run -m serial --durations=20 || status=$?
exit "$status"
