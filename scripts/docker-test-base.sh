#!/usr/bin/env bash
# Makes the local base image the docker-mode tests build the sandbox image FROM, for machines
# that reach no image registry: a minimal Debian bookworm with python3 and venv (debootstrap,
# about a minute), imported as sandbox-test-base:bookworm. Does nothing if it already exists.
set -euo pipefail
IMAGE="${SANDBOX_TEST_BASE_IMAGE:-sandbox-test-base:bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  exit 0
fi
ROOTFS="$(mktemp -d /tmp/sandbox-rootfs.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv bookworm "$ROOTFS" "$MIRROR" >/tmp/debootstrap.log 2>&1 \
  || { tail -20 /tmp/debootstrap.log >&2; exit 1; }
tar -C "$ROOTFS" -c . | docker import - "$IMAGE" >/dev/null
echo "built $IMAGE"
