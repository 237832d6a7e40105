#!/usr/bin/env bash
# Checks the Debian packages: control fields, contents, conffiles and
# maintainer scripts (dpkg-deb --info / --contents); unpacks the amd64 ones
# into a scratch root and runs their binaries; runs the ARM ones (dist/)
# under qemu-user with their sysroot, and the armhf node (ARMv6, its own
# runtime) with nothing but its package. Builds the native packages with
# cpack first. Depends and units: check_depends.sh and check_units.sh.
# Usage: check_packages.sh SOURCE_DIR BUILD_DIR
# KAIROS_REQUIRE_ARCHES="armel armhf arm64": those packages must exist
# (tools/test builds them with tools/cross-test before running ctest).
set -euo pipefail
SRC=$1
BUILD=$2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kairos-pkg-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fail() { echo "check_packages: FAIL: $*" >&2; exit 1; }

(cd "$BUILD" && cpack -G DEB -B "$WORK/native" >/dev/null) || fail "cpack failed"
NATIVE=$(dpkg --print-architecture)
declare -A DEBDIR=([$NATIVE]="$WORK/native")
for arch in armel armhf arm64; do
  if ls "$SRC/dist/"*"_$arch.deb" >/dev/null 2>&1; then
    DEBDIR[$arch]="$SRC/dist"
  elif [[ " ${KAIROS_REQUIRE_ARCHES:-} " == *" $arch "* ]]; then
    fail "no $arch packages in $SRC/dist (run tools/cross-test $arch)"
  fi
done

checked=0
for arch in "${!DEBDIR[@]}"; do
  dir=${DEBDIR[$arch]}
  for pkg in kairos-node kairos-gateway; do
    deb="$dir/${pkg}_0.1.0_${arch}.deb"
    [ -f "$deb" ] || fail "missing $deb"
    info=$(dpkg-deb --info "$deb")
    grep -q "^ Package: $pkg$" <<<"$info" || fail "$deb: Package"
    grep -q "^ Architecture: $arch$" <<<"$info" || fail "$deb: Architecture is not $arch"
    deps=("libc6 (>= 2.36)" "libstdc++6" "libmbedcrypto7" "libpaho-mqttpp3-1" "libpaho-mqtt1.3" "libtomlplusplus3" "libasound2" "libgpiod2" "adduser")
    # The armhf node brings its libraries (tools/bundle-armv6).
    [ "$pkg/$arch" = kairos-node/armhf ] && deps=("adduser")
    for dep in "${deps[@]}"; do
      grep -q "^ Depends:.*$dep" <<<"$info" || fail "$deb: Depends lacks $dep"
    done
    for f in conffiles postinst prerm; do grep -qE "^ +[0-9]+ bytes, +[0-9]+ lines +\*? +$f" <<<"$info" || fail "$deb: no $f"; done
    contents=$(dpkg-deb --contents "$deb" | awk '{print $6}')
    ctl="$WORK/ctl-$pkg-$arch"
    dpkg-deb -e "$deb" "$ctl"
    case $pkg in
      kairos-node)
        for f in ./usr/bin/kairos-node ./lib/systemd/system/kairos-node.service ./etc/kairos/node.toml \
                 ./usr/lib/sysusers.d/kairos-node.conf ./usr/share/kairos/ball-peer; do
          grep -qx "$f" <<<"$contents" || fail "$deb lacks $f"
        done
        grep -qx "/etc/kairos/node.toml" "$ctl/conffiles" || fail "$deb: node.toml is not a conffile"
        grep -q "^ Depends:.*kairos-boards (= 0.1.0)" <<<"$info" || fail "$deb: Depends lacks kairos-boards"
        grep -q "kairos-node.service" "$ctl/postinst" || fail "$deb: postinst does not enable the unit"
        ;;
      kairos-gateway)
        for f in ./usr/bin/kairos-gateway ./usr/bin/kairosctl ./usr/bin/kairos-sim ./lib/systemd/system/kairos-gateway.service \
                 ./etc/kairos/gateway.toml ./etc/kairos/kairosctl.toml ./usr/lib/sysusers.d/kairos-gateway.conf; do
          grep -qx "$f" <<<"$contents" || fail "$deb lacks $f"
        done
        grep -q "libsqlite3-0" <<<"$info" || fail "$deb: Depends lacks libsqlite3-0"
        grep -qx "/etc/kairos/gateway.toml" "$ctl/conffiles" || fail "$deb: gateway.toml is not a conffile"
        grep -q "install -d -o root -g kairos -m 0750 /etc/kairos/keys /etc/kairos/keys/nodes" "$ctl/postinst" ||
          fail "$deb: postinst does not make /etc/kairos/keys root:kairos 0750"
        ;;
    esac
    grep -q "adduser --system" "$ctl/postinst" || fail "$deb: no system user"
    checked=$((checked + 1))
  done

  # The architecture-independent board files.
  boards_deb=$(ls "$dir"/kairos-boards_0.1.0_all.deb 2>/dev/null) || fail "no kairos-boards package in $dir"
  grep -q "^ Architecture: all$" <<<"$(dpkg-deb --info "$boards_deb")" || fail "$boards_deb: not Architecture all"
  board_files=$(dpkg-deb --contents "$boards_deb" | awk '{print $6}')
  for b in pi-zero pi-zero-w pi-zero-2-w pi-2-b pi-3-b pi-4-b pi-5-b generic-linux; do
    grep -qx "./usr/share/kairos/boards/$b.toml" <<<"$board_files" || fail "$boards_deb lacks $b"
  done

  # Unpack into a scratch root and run what was packaged.
  root="$WORK/root-$arch"
  dpkg -x "$boards_deb" "$root"
  dpkg -x "$dir/kairos-node_0.1.0_${arch}.deb" "$root"
  dpkg -x "$dir/kairos-gateway_0.1.0_${arch}.deb" "$root"
  unit="$root/lib/systemd/system/kairos-node.service"
  for line in "User=kairos" "Restart=on-failure" "NoNewPrivileges=yes" "DeviceAllow=char-gpiochip rw" "DeviceAllow=char-alsa rw" "LimitRTPRIO=10"; do
    grep -qx "$line" "$unit" || fail "$arch node unit lacks $line"
  done
  run=() node_run=()
  case $arch in
    armel) run=(qemu-arm-static -cpu arm1176 -L "$SRC/build-sysroot/armel") ;;
    # The node is ARMv6 with its own runtime: an ARM1176 and only the package.
    armhf) run=(qemu-arm-static -cpu cortex-a7 -L "$SRC/build-sysroot/armhf")
           node_run=(qemu-arm-static -cpu arm1176 -L "$root") ;;
    arm64) run=(qemu-aarch64-static -cpu cortex-a53 -L "$SRC/build-sysroot/arm64") ;;
  esac
  [ ${#node_run[@]} -gt 0 ] || node_run=("${run[@]}")
  out=$("${node_run[@]}" "$root/usr/bin/kairos-node" --config "$root/etc/kairos/node.toml" \
        --boards "$root/usr/share/kairos/boards" --dump-config) || fail "$arch kairos-node --dump-config"
  grep -q '^node.board = "generic-linux"$' <<<"$out" || fail "$arch: packaged node.toml not read"
  grep -q '^context_hash = "' <<<"$out" || fail "$arch: no context hash"
  "${run[@]}" "$root/usr/bin/kairos-gateway" --help >/dev/null 2>&1 || fail "$arch kairos-gateway --help"
  help=$("${run[@]}" "$root/usr/bin/kairosctl" --help) || fail "$arch kairosctl --help"
  grep -q "usage: kairosctl" <<<"$help" || fail "$arch kairosctl --help says no usage"
  "${run[@]}" "$root/usr/bin/kairos-sim" --help >/dev/null || fail "$arch kairos-sim --help"
  size=$(stat -c %s "$root/usr/bin/kairos-node")
  echo "check_packages: $arch ok, stripped kairos-node $size bytes"
done
echo "check_packages: $checked packages checked"
