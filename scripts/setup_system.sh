#!/usr/bin/env bash
# Install the Debian packages geo-crm needs, only those that are missing.
#   scripts/setup_system.sh          server side: PostGIS + pgRouting for PostgreSQL 15
#   scripts/setup_system.sh --test   also Chromium for the browser tests
set -euo pipefail
want=(postgresql-15 postgresql-15-postgis-3 postgresql-15-pgrouting)
[[ "${1:-}" == "--test" ]] && want+=(chromium)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "system packages: all present (${want[*]})"
  exit 0
fi
echo "system packages: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "error: need root to install ${missing[*]}; run: sudo apt-get install ${missing[*]}" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null || { echo "error: apt-get update failed (no package mirror reachable?)" >&2; exit 1; }
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
  || { echo "error: apt-get install ${missing[*]} failed" >&2; exit 1; }
echo "system packages: installed ${missing[*]}"
