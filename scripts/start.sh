#!/usr/bin/env bash
# Install Tekton into .venv (first run only), start the whole fleet on the embedded
# default (nats-server with JetStream under .tekton/, every CI its own process), and
# put a goal to the team. Offline, every CI answers with the simulated model.
#   scripts/start.sh "Add rate limiting to the public API"
set -euo pipefail
cd "$(dirname "$0")/.."
GOAL=${1:-"Plan a small, safe improvement to this platform"}
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/tekton ]; then
  echo "== installing into .venv (first run)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e .
fi
echo "== starting the fleet"
.venv/bin/tekton up
echo "== the goal, put to every CI (replies arrive as they come)"
.venv/bin/tekton team "$GOAL" --deadline 10
echo "== status"
.venv/bin/tekton status
echo
echo "The fleet keeps running. Talk to it with .venv/bin/tekton ask apollo \"...\";"
echo "stop it with .venv/bin/tekton down."
