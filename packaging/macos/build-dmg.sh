#!/usr/bin/env bash
# Build Transcriber.app from build.spec and pack it into a disk image (run on macOS).
#
#   packaging/macos/build-dmg.sh [--out DIR] [--python PYTHON] [--sign IDENTITY]
#
# Results: OUT/dist/Transcriber.app and OUT/Transcriber-VERSION-macos-ARCH.dmg (the app and
# a link to /Applications, to drag it onto). ARCH is the machine's (arm64 or x86_64): PyInstaller
# freezes for the architecture of the Python that runs it.
#   --out DIR        default: packaging/out
#   --python PY      use this interpreter as it is (with the app's dependencies and PyInstaller)
#                    instead of the build's own virtual environment (packaging/out/venv-macos)
#   --sign IDENTITY  sign with this Developer ID ("Developer ID Application: ..."); without it
#                    the app keeps PyInstaller's ad-hoc signature, and Gatekeeper asks users to
#                    confirm the first start (right-click, Open). Notarisation is not done here.
#
# Written with care but NOT run on these Linux machines.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$root/packaging/out"
python=""
identity=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --sign) identity=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$(uname -s)" != Darwin ]; then
  echo "error: this script builds the macOS app and must run on macOS" >&2
  exit 1
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ -z "$python" ]; then
  venv="$root/packaging/out/venv-macos"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  python="$venv/bin/python"
  # The dependencies only: the app itself is taken from this checkout (PYTHONPATH below).
  "$python" -c 'import sys, tomllib; p = tomllib.load(open(sys.argv[1], "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["window"] + p["optional-dependencies"]["packaging"]))' \
    "$root/pyproject.toml" > "$out/requirements-macos.txt"
  "$python" -m pip install --quiet --disable-pip-version-check -r "$out/requirements-macos.txt"
fi

version=$(PYTHONPATH="$root" "$python" -c "import transcriber; print(transcriber.__version__)")
arch=$(uname -m)
app="$out/dist/Transcriber.app"

echo "== freezing Transcriber $version ($arch)"
rm -rf "$app" "$out/dist/transcriber"
PYTHONPATH="$root" "$python" -m PyInstaller --noconfirm --log-level WARN \
  --distpath "$out/dist" --workpath "$out/work" "$root/build.spec"

echo "== checking the app runs"
"$app/Contents/MacOS/transcriber" --version
"$app/Contents/MacOS/transcriber" self-test

if [ -n "$identity" ]; then
  echo "== signing with $identity"
  # --deep signs the nested libraries too; the hardened runtime is what notarisation requires.
  codesign --force --deep --options runtime --timestamp --sign "$identity" "$app"
  codesign --verify --deep --strict "$app"
fi

dmg="$out/Transcriber-$version-macos-$arch.dmg"
echo "== building $(basename "$dmg")"
staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
cp -R "$app" "$staging/"
ln -s /Applications "$staging/Applications"
rm -f "$dmg"
hdiutil create -volname "Transcriber $version" -srcfolder "$staging" -fs HFS+ -format UDZO -ov "$dmg" >/dev/null
[ -n "$identity" ] && codesign --force --sign "$identity" "$dmg"

echo "app: $app ($(du -sh "$app" | cut -f1))"
echo "dmg: $dmg ($(du -sh "$dmg" | cut -f1))"
