#!/usr/bin/env bash
# Rust unit and client tests of the nginx EPP module's nginx-independent half (epp-core):
# parsing, ext_proc mapping, directive value validation, TLS config, and the gRPC client against
# an in-process ext_proc server; and the compiled bench tools' load executor (eppkit-bench-tools).
# Needs no nginx symbols. Same target dir as `eppkit build nginx`.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${EPPKIT_HOME:-$HOME/.cache/eppkit}/cargo-target}"
export PROTOC="${PROTOC:-/usr/bin/protoc}"
exec cargo test --release --locked -j2 -p epp-core -p eppkit-bench-tools
