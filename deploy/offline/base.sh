#!/usr/bin/env bash
# Build the base image `tekton-base:bookworm` from Debian's packages with debootstrap,
# for hosts that reach no registry of container images (an air-gapped site, a CI machine
# that has a Debian mirror and a package index only). The image holds Debian bookworm's
# Python 3.11 with venv, and this host's CA bundle (a site that reaches the package
# registries through its own certificate authority needs it for pip and apt inside a
# build). Cached by content: nothing is built again while the mirror, the package list,
# the CA bundle and this script stay the same.
#
#   deploy/offline/base.sh            # needs root, debootstrap and podman
#   MIRROR=http://my-mirror/debian deploy/offline/base.sh
#
# Environment: MIRROR (default: the first Debian mirror in this host's apt sources),
# SUITE (bookworm), IMAGE (tekton-base:bookworm), CA_BUNDLE (/etc/ssl/certs/ca-certificates.crt),
# CONTAINERS_CONF (default: containers.conf beside this script).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
SUITE=${SUITE:-bookworm}
IMAGE=${IMAGE:-tekton-base:$SUITE}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
PACKAGES=python3,python3-venv,python-is-python3,ca-certificates

host_mirror() {
  # the first "URIs:" (deb822) or "deb URL" line of this host's apt sources naming a
  # Debian archive that is not the security one
  { cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true; } \
    | sed -n -e 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' \
      -e 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p' \
    | grep -v security | head -n 1 || true
}
MIRROR=${MIRROR:-$(host_mirror)}
if [ -z "$MIRROR" ]; then
  echo "base.sh: no Debian mirror found in /etc/apt; set MIRROR" >&2
  exit 2
fi
for tool in debootstrap podman; do
  command -v "$tool" >/dev/null || { echo "base.sh: $tool is not installed" >&2; exit 2; }
done
[ -r "$CA_BUNDLE" ] || { echo "base.sh: no CA bundle at $CA_BUNDLE" >&2; exit 2; }

key=$( { echo "$SUITE $MIRROR $PACKAGES"; cat "$CA_BUNDLE" "$0"; } | sha256sum | cut -c1-16)
have=$(podman image inspect --format '{{index .Labels "org.tekton.base-key"}}' "$IMAGE" 2>/dev/null || true)
if [ "$have" = "$key" ]; then
  echo "base.sh: $IMAGE is up to date ($key)"
  exit 0
fi

root=$(mktemp -d "${TMPDIR:-/var/tmp}/tekton-base.XXXXXX")
trap 'rm -rf "$root"' EXIT
echo "base.sh: debootstrap $SUITE from $MIRROR"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 \
  || { tail -n 20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
cp "$CA_BUNDLE" "$root/etc/ssl/certs/tekton-host-ca.crt"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
ca=/etc/ssl/certs/tekton-host-ca.crt
tar -C "$root" -c . | podman import \
  --change "ENV SSL_CERT_FILE=$ca" --change "ENV PIP_CERT=$ca" --change "ENV REQUESTS_CA_BUNDLE=$ca" \
  --change "LABEL org.tekton.base-key=$key" \
  --change 'CMD ["python3"]' \
  - "$IMAGE" >/dev/null
echo "base.sh: built $IMAGE ($key)"
