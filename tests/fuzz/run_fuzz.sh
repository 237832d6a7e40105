#!/usr/bin/env bash
# Builds a libFuzzer target with clang-14 (ASan + UBSan) and runs it for a
# short, bounded time on a copy of its seed corpus. A crash or a sanitizer
# report fails the test and leaves the reproducer in the output directory.
# Usage: tests/fuzz/run_fuzz.sh SOURCE_DIR OUT_DIR TARGET SECONDS
set -euo pipefail
SRC=$(realpath "$1") OUT=$(realpath -m "$2") TARGET=$3 SECONDS_TO_RUN=$4
CXX=${KAIROS_FUZZ_CXX:-clang++-14}
command -v "$CXX" >/dev/null || { echo "run_fuzz: $CXX not found: tools/setup installs clang-14" >&2; exit 1; }
mkdir -p "$OUT"
BIN="$OUT/$TARGET"
case "$TARGET" in
  ball_fuzz) SOURCES=("$SRC/tests/fuzz/ball_fuzz.cpp" "$SRC/common/core/ball.cpp" "$SRC/common/core/topic.cpp" "$SRC/common/core/crypto.cpp"
                      "$SRC/common/core/bytes.cpp") ;;
  *) echo "run_fuzz: unknown target $TARGET" >&2; exit 2 ;;
esac
newest=0
for s in "${SOURCES[@]}" "$SRC/common/core/ball.h"; do t=$(stat -c %Y "$s"); [ "$t" -gt "$newest" ] && newest=$t; done
if [ ! -x "$BIN" ] || [ "$(stat -c %Y "$BIN")" -lt "$newest" ]; then
  "$CXX" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I "$SRC" \
    "${SOURCES[@]}" -lmbedcrypto -o "$BIN"
fi
CORPUS="$OUT/${TARGET}_corpus"
mkdir -p "$CORPUS"
cp -n "$SRC/tests/fuzz/corpus/${TARGET%_fuzz}/"* "$CORPUS/" 2>/dev/null || true
cd "$OUT"
"$BIN" -max_total_time="$SECONDS_TO_RUN" -max_len=4200 -timeout=10 -print_final_stats=1 "$CORPUS"
