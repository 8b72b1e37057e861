#!/usr/bin/env bash
# Installs the Debian packages cinch builds with, if any are missing.
set -euo pipefail

packages=(cmake ninja-build g++ ccache libhwy-dev catch2 libbenchmark-dev libcli11-dev
          libeigen3-dev libxtensor-dev libdlpack-dev nlohmann-json3-dev libjpeg-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
