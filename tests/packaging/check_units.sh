#!/usr/bin/env bash
# Runs `systemd-analyze verify` on the systemd units of every architecture's
# kairos-node and kairos-gateway packages, unpacked into a root of their own
# with systemd's targets and /bin/sh beside them (verify checks that every
# Exec* command exists there). Any message is a failure: verify exits 0 on
# warnings such as an unknown key.
# Usage: check_units.sh SOURCE_DIR BUILD_DIR   (native packages by cpack, ARM ones from dist/)
set -euo pipefail
SRC=$1
BUILD=$2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kairos-units-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fail() { echo "check_units: FAIL: $*" >&2; exit 1; }
command -v systemd-analyze >/dev/null || fail "no systemd-analyze (Debian package systemd)"

(cd "$BUILD" && cpack -G DEB -B "$WORK/native" >/dev/null) || fail "cpack failed"
NATIVE=$(dpkg --print-architecture)
declare -A dirs=([$NATIVE]="$WORK/native")
for arch in armel armhf arm64; do
  if [ -f "$SRC/dist/kairos-node_0.1.0_$arch.deb" ]; then
    dirs[$arch]="$SRC/dist"
  elif [[ " ${KAIROS_REQUIRE_ARCHES:-} " == *" $arch "* ]]; then
    fail "no $arch packages in $SRC/dist (run tools/cross-test $arch)"
  fi
done

checked=()
for arch in "${!dirs[@]}"; do
  for pkg in kairos-node kairos-gateway; do
    deb="${dirs[$arch]}/${pkg}_0.1.0_$arch.deb"
    [ -f "$deb" ] || fail "missing $deb"
    root="$WORK/root-$pkg-$arch"
    dpkg-deb -x "$deb" "$root"
    unit="/lib/systemd/system/$pkg.service"
    [ -f "$root$unit" ] || fail "$deb has no $unit"
    mkdir -p "$root/bin"
    cp /bin/sh "$root/bin/sh"
    cp -a /lib/systemd/system/*.target /lib/systemd/system/*.slice "$root/lib/systemd/system/"
    out=$(systemd-analyze verify --root="$root" --man=no "$unit" 2>&1) || fail "$deb: systemd-analyze verify $unit: $out"
    [ -z "$out" ] || fail "$deb: systemd-analyze verify $unit says: $out"
    checked+=("$pkg/$arch")
  done
done
echo "check_units: systemd-analyze verify is silent on ${checked[*]}"
