#!/usr/bin/env bash
# Installs what is missing, builds and runs every test.
#   scripts/test.sh           release build (CUDA sources compiled when nvcc is present)
#   scripts/test.sh asan      AddressSanitizer + UndefinedBehaviorSanitizer build
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"

bash scripts/install_deps.sh
cmake --preset "$preset"
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset"
