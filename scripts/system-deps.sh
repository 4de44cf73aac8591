#!/usr/bin/env bash
# Debian packages the tests need (Chromium + ChromeDriver for the web page's browser tests; curl for
# the README's server steps, run as written).
# Installs only what is missing; needs root (or sudo) the first time.
set -euo pipefail
need=()
for pkg in chromium chromium-driver curl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing Debian packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
