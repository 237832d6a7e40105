#!/usr/bin/env bash
# Checks that every package's Depends covers what its ELF files load: each
# DT_NEEDED (and program interpreter) is either shipped in the package, in
# a directory its DT_RPATH names, or a file owned by a package that Depends
# names. Owners come from the architecture's Debian packages: the sysroot's
# downloaded .debs (build-sysroot/debs-ARCH) for ARM, `dpkg -S` on this
# machine for its own architecture.
# Usage: check_depends.sh SOURCE_DIR BUILD_DIR   (native packages by cpack, ARM ones from dist/)
#        check_depends.sh --debs SOURCE_DIR DEB...
# KAIROS_REQUIRE_ARCHES="armel armhf arm64": those packages must exist.
set -euo pipefail
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kairos-deps-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fail() { echo "check_depends: FAIL: $*" >&2; exit 1; }
NATIVE=$(dpkg --print-architecture)

debs=()
if [ "${1:-}" = --debs ]; then
  SRC=$2; shift 2; debs=("$@")
else
  SRC=$1 BUILD=$2
  (cd "$BUILD" && cpack -G DEB -B "$WORK/native" >/dev/null) || fail "cpack failed"
  debs=("$WORK/native/kairos-node_0.1.0_$NATIVE.deb" "$WORK/native/kairos-gateway_0.1.0_$NATIVE.deb")
  for arch in armel armhf arm64; do
    if ls "$SRC/dist/"*"_$arch.deb" >/dev/null 2>&1; then
      debs+=("$SRC"/dist/kairos-{node,gateway}_0.1.0_"$arch".deb)
    elif [[ " ${KAIROS_REQUIRE_ARCHES:-} " == *" $arch "* ]]; then
      fail "no $arch packages in $SRC/dist (run tools/cross-test $arch)"
    fi
  done
fi

# soname (or loader path) -> Debian package, per architecture.
declare -A owner=()
index_arch() {
  local arch=$1 deb p f
  [ -n "${owner[@$arch]:-}" ] && return 0
  owner[@$arch]=1
  [ "$arch" = "$NATIVE" ] && return 0   # dpkg -S, one file at a time
  ls "$SRC/build-sysroot/debs-$arch/"*.deb >/dev/null 2>&1 || fail "no $SRC/build-sysroot/debs-$arch (run tools/make-sysroot $arch)"
  for deb in "$SRC/build-sysroot/debs-$arch/"*.deb; do
    p=$(dpkg-deb -f "$deb" Package)
    while read -r f; do
      owner[$arch:$(basename "$f")]=$p
      owner[$arch:${f#.}]=$p
    done < <(dpkg-deb -c "$deb" | awk '{print $6}' | grep -E '^\./(usr/)?lib/' || true)
  done
}
owner_of() {  # ARCH NAME (a soname or an absolute loader path)
  local arch=$1 name=$2 d triplet
  if [ "$arch" != "$NATIVE" ]; then echo "${owner[$arch:$name]:-}"; return; fi
  triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
  if [[ "$name" == /* ]]; then
    dpkg -S "$name" 2>/dev/null | head -1 | cut -d: -f1 && return
    dpkg -S "$(readlink -f "$name")" 2>/dev/null | head -1 | cut -d: -f1
    return
  fi
  for d in "/lib/$triplet" "/usr/lib/$triplet" /lib /usr/lib; do
    [ -e "$d/$name" ] || continue
    dpkg -S "$d/$name" 2>/dev/null | head -1 | cut -d: -f1 && return
  done
}

rows=()
for deb in "${debs[@]}"; do
  [ -f "$deb" ] || fail "missing $deb"
  pkg=$(dpkg-deb -f "$deb" Package)
  arch=$(dpkg-deb -f "$deb" Architecture)
  index_arch "$arch"
  # Names in Depends: every alternative counts, versions and qualifiers do not.
  depends=" $(dpkg-deb -f "$deb" Pre-Depends Depends | sed 's/^[A-Za-z-]*: //' | tr ',|' '\n\n' |
              sed -e 's/([^)]*)//g' -e 's/:[a-z0-9]*//' -e 's/[[:space:]]//g' | sed '/^$/d' | tr '\n' ' ')"
  root="$WORK/root-$pkg-$arch"
  dpkg-deb -x "$deb" "$root"
  mapfile -t elves < <(find "$root" -type f -exec sh -c 'head -c4 "$1" | grep -q "ELF"' _ {} \; -print | sort)
  [ ${#elves[@]} -gt 0 ] || fail "$deb has no ELF file"
  # Directories the package's DT_RPATHs name (they serve every object loaded).
  rpaths=()
  for e in "${elves[@]}"; do
    r=$(readelf -d "$e" | sed -n 's/.*(RPATH).*\[\(.*\)\]$/\1/p')
    [ -n "$r" ] && IFS=: read -ra more <<<"$r" && rpaths+=("${more[@]}")
  done
  used=()
  for e in "${elves[@]}"; do
    rel=${e#"$root"}
    dynamic=$(readelf -d "$e")
    needs=$(sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p' <<<"$dynamic")
    interp=""   # a program's loader; a library's (libc.so.6 runs too) never serves
    grep -q "(SONAME)" <<<"$dynamic" ||
      interp=$(readelf -l "$e" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)\]$/\1/p')
    for so in $interp $needs; do
      if [[ "$so" == /* ]]; then
        [ -e "$root$so" ] && continue
      else
        found=""
        for d in "${rpaths[@]}"; do [ -e "$root$d/$so" ] && { found=1; break; }; done
        [ -n "$found" ] && continue
      fi
      p=$(owner_of "$arch" "$so")
      [ -n "$p" ] || fail "$deb: $rel needs $so, which is neither in the package nor in any known $arch package"
      [[ "$depends" == *" $p "* ]] || fail "$deb: $rel needs $so from $p, but Depends does not name $p (Depends:$depends)"
      used+=("$p")
    done
  done
  rows+=("$(printf '%-15s %-6s %s' "$pkg" "$arch" "$(printf '%s\n' "${used[@]}" | sort -u | tr '\n' ' ')")")
done
echo "check_depends: every DT_NEEDED is bundled or named in Depends; packages providing them:"
printf '  %s\n' "${rows[@]}"
