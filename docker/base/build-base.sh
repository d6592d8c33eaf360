#!/usr/bin/env bash
# Builds eppkit's base image, eppkit/debian:bookworm, from Debian's own packages: no image
# registry is needed (or reachable) here. debootstrap makes a minimal root file system in a
# cache directory, `docker import` turns it into an image. Idempotent: does nothing when the
# image exists, and reuses the cached root file system when only the image is gone.
#   docker/base/build-base.sh            build unless present
#   docker/base/build-base.sh --force    rebuild the image (reuses the cached rootfs)
#   EPPKIT_DEBIAN_MIRROR=...             mirror (default http://deb.debian.org/debian)
set -euo pipefail

IMAGE="${EPPKIT_BASE_IMAGE:-eppkit/debian:bookworm}"
EPPKIT_HOME="${EPPKIT_HOME:-$HOME/.cache/eppkit}"
ROOTFS="$EPPKIT_HOME/debootstrap/bookworm-minbase"
MIRROR="${EPPKIT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Docker 20.10 from Debian: the newer client in /usr/local/bin may refuse to talk to it.
DOCKER="${EPPKIT_DOCKER:-/usr/bin/docker}"
[ -x "$DOCKER" ] || DOCKER="$(command -v docker)"
log() { printf '[build-base] %s\n' "$*"; }

force=""
[ "${1:-}" = "--force" ] && force=1

if [ -z "$force" ] && "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
  log "reused $IMAGE ($("$DOCKER" image inspect -f '{{.Id}}' "$IMAGE" | cut -c8-19))"
  exit 0
fi

command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap (scripts/setup-system.sh does)" >&2; exit 1; }

# Fix-ups of the root file system; idempotent, so they run on every import.
configure_rootfs() {
  cat >"$ROOTFS/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
  # Smaller image and no stale indexes: every Dockerfile runs apt-get update itself.
  rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* \
         "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/*
  # Keep docs, man pages and locales out of the layers built on top, too.
  cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/eppkit-nodoc" <<'DPKG'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/info/*
DPKG
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$ROOTFS/etc/apt/apt.conf.d/90eppkit"
  # No init system in a container: packages (nginx) must not try to start their service.
  printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
  chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"
}

# The marker is written last, so an interrupted debootstrap is redone, not imported half-made.
if [ ! -f "$ROOTFS/.eppkit-complete" ]; then
  log "debootstrap --variant=minbase bookworm into $ROOTFS"
  rm -rf "$ROOTFS"
  mkdir -p "$ROOTFS"
  debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" >"$EPPKIT_HOME/debootstrap.log" 2>&1 \
    || { echo "debootstrap failed; see $EPPKIT_HOME/debootstrap.log" >&2; exit 1; }
  touch "$ROOTFS/.eppkit-complete"
fi

configure_rootfs
log "docker import $IMAGE"
tar --exclude=./.eppkit-complete -C "$ROOTFS" -c . \
  | "$DOCKER" import \
      -c 'ENV LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive' \
      -c 'CMD ["/bin/bash"]' \
      -m "eppkit base: debootstrap --variant=minbase bookworm" \
      - "$IMAGE" >/dev/null
log "built $IMAGE ($("$DOCKER" image inspect -f '{{.Id}}' "$IMAGE" | cut -c8-19), $("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1/1e6}'))"
