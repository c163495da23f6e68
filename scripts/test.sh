#!/usr/bin/env bash
# Installs the project with its test extras and runs the whole test suite.
# Exit code 5 from pytest (no tests collected) is a failure here, never a pass.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
set +e
python3 -m pytest -q -p no:cacheprovider --durations=40 "$@"
code=$?
set -e
if [ "$code" = "5" ]; then
  echo "no tests were collected: failing" >&2
  exit 1
fi
exit "$code"
