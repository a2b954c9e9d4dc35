#!/usr/bin/env bash
# Build the base image `tekton-base:bookworm` from Debian's packages with debootstrap,
# for hosts that reach no registry of container images (an air-gapped site, a CI machine
# that has a Debian mirror and a package index only). The image holds Debian bookworm's
# Python 3.11 with venv, apt sources with security updates, and this host's CA bundle in
# its system store (a site that reaches the package registries through its own
# certificate authority needs it for pip and apt inside a build). Cached by content: nothing is built again while the mirror, the package list,
# the CA bundle and this script stay the same.
#
#   deploy/offline/base.sh            # needs root, debootstrap and podman
#   MIRROR=http://my-mirror/debian deploy/offline/base.sh
#
# Environment: MIRROR (default: this host's apt source of SUITE), SECURITY_MIRROR (default:
# its source of SUITE-security; none: no security updates), SUITE (bookworm), IMAGE (tekton-base:bookworm), CA_BUNDLE (/etc/ssl/certs/ca-certificates.crt),
# CONTAINERS_CONF (default: containers.conf beside this script).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
SUITE=${SUITE:-bookworm}
IMAGE=${IMAGE:-tekton-base:$SUITE}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
PACKAGES=python3,python3-venv,python-is-python3,ca-certificates

host_sources() { # "MIRROR SECURITY_MIRROR": this host's apt sources of $SUITE and of its
  # security updates (deb822 .sources files and one-line .list files alike)
  python3 - "$SUITE" /etc/apt/sources.list /etc/apt/sources.list.d/* <<'PY'
import sys
suite, found = sys.argv[1], {}
for name in sys.argv[2:]:
    try:
        text = open(name, encoding="utf-8").read()
    except OSError:
        continue
    entries = []
    if name.endswith(".sources"):
        for stanza in text.split("\n\n"):
            fields = dict(
                (k.strip().lower(), v.split()) for k, _, v in
                (line.partition(":") for line in stanza.splitlines()
                 if ":" in line and not line.startswith(("#", " ")))
            )
            if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"]) != ["no"]:
                entries += [(u, s) for u in fields.get("uris", []) for s in fields.get("suites", [])]
    elif name.endswith(".list"):
        for line in text.splitlines():
            words = [w for w in line.split("#")[0].split() if not w.startswith("[")]
            if len(words) >= 3 and words[0] == "deb":
                entries.append((words[1], words[2]))
    for uri, named in entries:
        if named == suite:
            found.setdefault("main", uri)
        elif named == f"{suite}-security":
            found.setdefault("security", uri)
print(found.get("main", ""), found.get("security", ""))
PY
}
read -r found_mirror found_security < <(host_sources)
MIRROR=${MIRROR:-$found_mirror}
SECURITY_MIRROR=${SECURITY_MIRROR:-$found_security}
if [ -z "$MIRROR" ]; then
  echo "base.sh: no Debian $SUITE mirror in this host's apt sources; set MIRROR" >&2
  exit 2
fi
for tool in debootstrap podman; do
  command -v "$tool" >/dev/null || { echo "base.sh: $tool is not installed" >&2; exit 2; }
done
[ -r "$CA_BUNDLE" ] || { echo "base.sh: no CA bundle at $CA_BUNDLE" >&2; exit 2; }

key=$( { echo "$SUITE $MIRROR $SECURITY_MIRROR $PACKAGES"; cat "$CA_BUNDLE" "$0"; } | sha256sum | cut -c1-16)
have=$(podman image inspect --format '{{index .Labels "org.tekton.base-key"}}' "$IMAGE" 2>/dev/null || true)
if [ "$have" = "$key" ]; then
  echo "base.sh: $IMAGE is up to date ($key)"
  exit 0
fi

root=$(mktemp -d "${TMPDIR:-/var/tmp}/tekton-base.XXXXXX")
# --one-file-system: never into a /proc or /dev an interrupted debootstrap left mounted
trap 'rm -rf --one-file-system "$root" "$root.log"' EXIT
echo "base.sh: debootstrap $SUITE from $MIRROR"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 \
  || { tail -n 20 "$root.log" >&2; exit 1; }
{
  echo "deb $MIRROR $SUITE main"
  echo "deb $MIRROR $SUITE-updates main"
  [ -z "$SECURITY_MIRROR" ] || echo "deb $SECURITY_MIRROR $SUITE-security main"
} >"$root/etc/apt/sources.list"
# this host's CA bundle joins the image's system store (apt over https, pip through
# PIP_CERT, anything that reads the system bundle)
cp "$CA_BUNDLE" "$root/usr/local/share/ca-certificates/tekton-host-ca.crt"
chroot "$root" update-ca-certificates >/dev/null 2>&1
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | podman import \
  --change "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt" \
  --change "LABEL org.tekton.base-key=$key" \
  --change 'CMD ["python3"]' \
  - "$IMAGE" >/dev/null
echo "base.sh: built $IMAGE ($key)"
