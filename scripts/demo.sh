#!/usr/bin/env bash
# Installs what is missing, builds, and shows cinch at work: what this machine
# offers, then a tensor quantized and converted on every backend.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install_deps.sh
cmake --preset release > /dev/null
cmake --build --preset release -j "$(nproc)" --target cinch_cli quantize_tensor

build/release/src/cli/cinch info
echo
build/release/examples/quantize_tensor 4096 4096
