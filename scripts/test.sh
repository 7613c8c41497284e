#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, then run them.
#   - Debian/Ubuntu system packages (when run as root, or with sudo available)
#   - the project with its test extras (pip)
# Extra arguments go to pytest, e.g. scripts/test.sh -k export
set -euo pipefail
cd "$(dirname "$0")/.."

packages=$(grep -v '^#' scripts/test-system-packages.txt | xargs)
missing=""
for package in $packages; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing="$missing $package"
done
if [ -n "$missing" ] && command -v apt-get >/dev/null; then
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  echo "installing system packages: $missing"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
exec python3 -m pytest "$@"
