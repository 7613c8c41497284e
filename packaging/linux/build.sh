#!/usr/bin/env bash
# Build the Linux packages of transcriber from a checkout, in one go:
#
#   OUT/dist/transcriber/                               the PyInstaller bundle (one folder, runs in place)
#   OUT/transcriber-VERSION-linux-ARCH.tar.gz           that folder, for any distribution
#   OUT/transcriber_VERSION_DEBARCH.deb                 for Debian/Ubuntu: /opt/transcriber, /usr/bin/transcriber,
#                                                       menu entry, icons, AppStream metadata
#
# Usage: packaging/linux/build.sh [--out DIR] [--venv DIR | --python PYTHON] [--no-tar]
#   --out DIR       where the results go (default: packaging/out)
#   --venv DIR      the build's own virtual environment, created and filled from pyproject.toml
#                   when needed (default: packaging/out/venv, kept between builds)
#   --python PY     build with this interpreter as it is (it needs the app's dependencies and
#                   PyInstaller), instead of a virtual environment
#   --no-tar        skip the .tar.gz
# The virtual environment is made with $PYTHON (default: python3); its version is the one frozen.
#
# Needs: Python 3.11+, binutils (objdump, strip: PyInstaller uses them too), dpkg-deb,
# ldconfig and dpkg-query (Debian/Ubuntu). It uses the network only to fill the virtual
# environment from the package index.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$root/packaging/out"
venv=""
python=""
make_tar=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --venv) venv=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --no-tar) make_tar=0; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)

for tool in objdump strip dpkg-deb dpkg-query ldconfig; do
  if ! command -v "$tool" >/dev/null; then
    echo "error: $tool is missing (apt install binutils dpkg libc-bin)" >&2
    exit 1
  fi
done

started=$(date +%s)
step() { echo "== $* ($(( $(date +%s) - started )) s)" >&2; }

if [ -z "$python" ]; then
  venv=${venv:-$root/packaging/out/venv}
  if [ ! -x "$venv/bin/python" ]; then
    step "creating the build environment in $venv"
    "${PYTHON:-python3}" -m venv "$venv"
  fi
  python="$venv/bin/python"
  step "installing the app's dependencies and PyInstaller into it"
  # The dependencies only: the app itself is always taken from this checkout (PYTHONPATH below),
  # so an installed copy can never be stale.
  "$python" - "$root/pyproject.toml" > "$out/requirements.txt" <<'EOF'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["window"] + project["optional-dependencies"]["packaging"]))
EOF
  "$python" -m pip install --quiet --disable-pip-version-check -r "$out/requirements.txt"
fi

version=$(PYTHONPATH="$root" "$python" -c "import transcriber; print(transcriber.__version__)")
arch=$(uname -m)
debarch=$(dpkg --print-architecture)
bundle="$out/dist/transcriber"

step "freezing transcriber $version with PyInstaller"
rm -rf "$bundle"
PYTHONPATH="$root" "$python" -m PyInstaller --noconfirm --log-level WARN \
  --distpath "$out/dist" --workpath "$out/work" "$root/build.spec"

step "stripping debug symbols"
"$python" "$here/elfdeps.py" strip "$bundle"

step "checking the bundle runs"
LANG=C.UTF-8 "$bundle/transcriber" --version
LANG=C.UTF-8 HF_HUB_OFFLINE=1 "$bundle/transcriber" self-test

tarball="$out/transcriber-$version-linux-$arch.tar.gz"
if [ "$make_tar" = 1 ]; then
  step "packing $(basename "$tarball")"
  rm -f "$tarball"
  tar -C "$out/dist" --owner=0 --group=0 --numeric-owner \
    --transform "s,^transcriber,transcriber-$version," -czf "$tarball" transcriber
fi

step "staging the .deb"
stage="$out/deb/transcriber_${version}_$debarch"
rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$stage/opt" "$stage/usr/bin" "$stage/usr/share/applications" \
  "$stage/usr/share/metainfo" "$stage/usr/share/icons/hicolor/scalable/apps"
cp -al "$bundle" "$stage/opt/transcriber" 2>/dev/null || cp -a "$bundle" "$stage/opt/transcriber"
ln -s /opt/transcriber/transcriber "$stage/usr/bin/transcriber"
install -m 644 "$root/resources/transcriber.desktop" "$stage/usr/share/applications/"
install -m 644 "$root/resources/transcriber.metainfo.xml" "$stage/usr/share/metainfo/"
install -m 644 "$root/resources/icons/transcriber.svg" "$stage/usr/share/icons/hicolor/scalable/apps/"
cp -r "$root/resources/icons/hicolor/." "$stage/usr/share/icons/hicolor/"

# sounddevice opens PortAudio with ctypes when recording; nothing links it, so name it here.
depends=$("$python" "$here/elfdeps.py" debian "$stage/opt/transcriber" --depends libportaudio2)
installed_size=$(du -sk --apparent-size "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<EOF
Package: transcriber
Version: $version
Architecture: $debarch
Maintainer: The transcriber developers <transcriber@localhost>
Installed-Size: $installed_size
Depends: $depends
Section: sound
Priority: optional
Description: transcribe audio and video files on your own computer
 Turns recordings into text with Whisper speech recognition running locally:
 no account, no upload, no network needed. The English model (tiny.en) is
 included. A window, a durable queue, and a command line (transcriber).
EOF
chmod -R u+rwX,go+rX,go-w "$stage"

deb="$out/transcriber_${version}_$debarch.deb"
step "building $(basename "$deb")"
rm -f "$deb"
# zstd at level 3: 10 s here, against minutes for xz at a 20% smaller file.
dpkg-deb --build --root-owner-group -Zzstd -z3 "$stage" "$deb" >/dev/null
rm -rf "$stage"

step "done"
size() { du -sh "$1" | cut -f1; }
echo "bundle:  $bundle ($(size "$bundle"))"
[ "$make_tar" = 1 ] && echo "tar.gz:  $tarball ($(size "$tarball"))"
echo ".deb:    $deb ($(size "$deb"))"
echo "time:    $(( $(date +%s) - started )) s"
