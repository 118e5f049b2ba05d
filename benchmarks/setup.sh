#!/usr/bin/env bash
# Install what the benchmarks need outside Python: the Debian `wrk` load generator.
# Idempotent: does nothing when wrk is already on PATH. Exits 0 even when the
# install is impossible (no root, no network); the HTTP suite then says it was skipped.
set -u
if command -v wrk >/dev/null 2>&1; then
    exit 0
fi
echo "benchmarks/setup.sh: installing Debian wrk" >&2
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "benchmarks/setup.sh: not root and no password-less sudo: cannot install wrk" >&2
        exit 0
    fi
fi
if ! ($SUDO apt-get install -y -qq wrk >/dev/null 2>&1 || \
      ($SUDO apt-get update -qq >/dev/null 2>&1 && \
       DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null 2>&1)); then
    echo "benchmarks/setup.sh: apt-get could not install wrk" >&2
fi
command -v wrk >/dev/null 2>&1 && echo "benchmarks/setup.sh: $(wrk --version 2>&1 | head -1)" >&2
exit 0
