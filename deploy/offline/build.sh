#!/usr/bin/env bash
# Build every image of the offline stack with podman, from package registries only:
# the base (base.sh: Debian bookworm by debootstrap, cached by content), tekton:latest
# on it, and NATS, PostgreSQL and Milvus Lite (infra.Dockerfile). Builds use the host's
# network (to reach the package registries); the running stack does not.
#
#   deploy/offline/build.sh            # then: deploy/offline/compose.sh up -d
#   EXTRAS=embed deploy/offline/build.sh   # with the real embedding model in tekton:latest
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
BASE_IMAGE=${BASE_IMAGE:-tekton-base:${SUITE:-bookworm}}
IMAGE="$BASE_IMAGE" "$here/base.sh"
case $BASE_IMAGE in
  */*) base=$BASE_IMAGE ;;
  *) base=localhost/$BASE_IMAGE ;; # podman's name for an image made here
esac
log=$(mktemp "${TMPDIR:-/var/tmp}/tekton-build.XXXXXX")
trap 'rm -f "$log"' EXIT
build() { # name, then podman build arguments; the build's output shown when it fails
  local name=$1 started=$SECONDS
  shift
  echo "build.sh: building $name"
  if ! podman build --network host --build-arg "BASE=$base" "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "build.sh: $name failed" >&2
    exit 1
  fi
  echo "build.sh: $name built in $((SECONDS - started)) s"
}
build tekton:latest -f "$repo/deploy/Dockerfile" --build-arg "EXTRAS=${EXTRAS:-}" \
  -t tekton:latest "$repo"
for target in nats postgres milvus; do
  build "tekton-$target:offline" -f "$here/infra.Dockerfile" --target "$target" \
    -t "tekton-$target:offline" "$here"
done
podman images --filter reference='tekton*' --format '{{.Repository}}:{{.Tag}} {{.Size}}'
