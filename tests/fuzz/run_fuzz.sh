#!/usr/bin/env bash
# Builds a libFuzzer target with clang-14 (ASan + UBSan) and runs it for a
# short, bounded time on a copy of its seed corpus. A crash, a sanitizer
# report or a broken invariant fails the run and leaves the reproducer
# (crash-<sha1>) in the output directory. docs/FUZZING.md describes the targets.
# Usage: tests/fuzz/run_fuzz.sh SOURCE_DIR OUT_DIR TARGET SECONDS [LIBFUZZER_FLAG...]
# SECONDS 0 only builds. Flags after SECONDS go to libFuzzer (-runs=N,
# -print_coverage=1, ...). A reproducer runs with OUT_DIR/TARGET FILE.
set -euo pipefail
SRC=$(realpath "$1") OUT=$(realpath -m "$2") TARGET=$3 SECONDS_TO_RUN=$4
shift 4
CXX=${KAIROS_FUZZ_CXX:-clang++-14}
CC=${KAIROS_FUZZ_CC:-clang-14}
GXX=${KAIROS_FUZZ_GXX:-g++}
for tool in "$CXX" "$CC"; do
  command -v "$tool" >/dev/null || { echo "run_fuzz: $tool not found: tools/setup installs clang-14" >&2; exit 1; }
done
mkdir -p "$OUT"
BIN="$OUT/$TARGET"

# Per target, relative to SOURCE_DIR: SOURCES (clang), GXX_SOURCES (g++:
# files clang-14 cannot compile, linked in with the same sanitizers but no
# coverage feedback), extra LIBS, WIRE=1 when it needs the nanopb code of
# proto/kairos.proto (generated here into OUT/<target>_proto), the largest input.
GXX_SOURCES=() LIBS=() DEFINES=() WIRE=0 MAX_LEN=4200 PROTOS=(kairos)
FRAME_CORE=(common/core/frame.cpp common/core/utf8.cpp common/core/topic.cpp common/core/crypto.cpp common/core/bytes.cpp)
case "$TARGET" in
  ball_fuzz) SOURCES=(tests/fuzz/ball_fuzz.cpp common/core/ball.cpp common/core/topic.cpp common/core/crypto.cpp
                      common/core/bytes.cpp) ;;
  frame_fuzz) SOURCES=(tests/fuzz/frame_fuzz.cpp tests/fuzz/envelope_checks.cpp "${FRAME_CORE[@]}")
              WIRE=1 MAX_LEN=17000 ;;
  control_fuzz) SOURCES=(tests/fuzz/control_fuzz.cpp tests/fuzz/envelope_checks.cpp "${FRAME_CORE[@]}" common/core/ball.cpp
                         common/core/keywrap.cpp gateway/schedule/scheduler.cpp)
                WIRE=1 MAX_LEN=17000 ;;
  topic_fuzz) SOURCES=(tests/fuzz/topic_fuzz.cpp common/core/topic.cpp) MAX_LEN=512 ;;
  # What a broker sends the gateway's ingest connection, packet after packet.
  mqtt_wire_fuzz) SOURCES=(tests/fuzz/mqtt_wire_fuzz.cpp common/core/mqtt_wire.cpp) MAX_LEN=8192 ;;
  # A host's NCMD as the Sparkplug B bridge decodes it (proto/sparkplug_b.proto; node_facts.h needs kairos.proto's too).
  sparkplug_fuzz) SOURCES=(tests/fuzz/sparkplug_fuzz.cpp gateway/sparkplug/edge.cpp common/core/utf8.cpp)
                  WIRE=1 PROTOS=(kairos sparkplug_b) MAX_LEN=70000 ;;
  # node_config.cpp captures a structured binding in a lambda (C++20), which
  # clang-14 rejects; it needs no driver (kairos_node_config in firmware/CMakeLists.txt).
  config_fuzz) SOURCES=(tests/fuzz/config_fuzz.cpp common/core/board.cpp common/core/config.cpp common/core/broker.cpp
                        common/core/topic.cpp common/core/crypto.cpp common/core/bytes.cpp common/core/kairos.cpp
                        common/io/files.cpp common/io/log.cpp gateway/gateway_config.cpp tools/kairosctl/ctl_config.cpp
                        firmware/outputs/channel_map.cpp)
               GXX_SOURCES=(firmware/node_config.cpp) WIRE=1 MAX_LEN=8192
               # toml++ as the product links it: the shared library (docs/FUZZING.md, Known findings).
               read -r -a DEFINES <<<"$(pkg-config --cflags tomlplusplus)"
               LIBS=($(pkg-config --libs tomlplusplus)) ;;
  *) echo "run_fuzz: unknown target $TARGET (ball_fuzz, frame_fuzz, control_fuzz, topic_fuzz, config_fuzz, sparkplug_fuzz, mqtt_wire_fuzz)" >&2; exit 2 ;;
esac
SOURCES=("${SOURCES[@]/#/$SRC/}" "$SRC/tests/fuzz/sanitizer_options.cpp")
[ ${#GXX_SOURCES[@]} -eq 0 ] || GXX_SOURCES=("${GXX_SOURCES[@]/#/$SRC/}")

INCLUDES=(-I "$SRC")
LIBS+=(-lmbedcrypto)
if [ "$WIRE" = 1 ]; then
  # As the top CMakeLists.txt generates it, but into OUT (generated code lives
  # only in build trees), one copy per target: ctest may build several at once.
  PROTO_OUT="$OUT/${TARGET}_proto"
  mkdir -p "$PROTO_OUT"
  for proto in "${PROTOS[@]}"; do
    if [ ! -f "$PROTO_OUT/$proto.pb.c" ] || [ "$SRC/proto/$proto.proto" -nt "$PROTO_OUT/$proto.pb.c" ] ||
       [ "$SRC/proto/$proto.options" -nt "$PROTO_OUT/$proto.pb.c" ]; then
      protoc --plugin=protoc-gen-nanopb="$(command -v protoc-gen-nanopb)" -I"$SRC/proto" \
        --nanopb_opt=-f"$SRC/proto/$proto.options" --nanopb_out="$PROTO_OUT" "$SRC/proto/$proto.proto"
    fi
  done
  INCLUDES+=(-I "$PROTO_OUT")
  LIBS+=(-lprotobuf-nanopb)
fi

# Rebuilt when the binary is older than anything it was built from: the
# sources, every header they include (-MM, recorded at the last build), the
# generated wire code and this script.
DEPS="$BIN.deps"
stale() {
  [ -x "$BIN" ] && [ -f "$DEPS" ] || return 0
  local f
  while read -r f; do
    [ -e "$f" ] && [ ! "$f" -nt "$BIN" ] || return 0
  done <"$DEPS"
  return 1
}
if stale; then
  # UBSan reports halt (sanitizer_options.cpp) unless tests/fuzz/ubsan.supp
  # names them as known; a suppression needs a recoverable check.
  FLAGS=(-std=c++20 -O1 -g -fsanitize=address,undefined -DKAIROS_BOARDS_DIR="\"$SRC/boards\"" -DKAIROS_WEB_DIR="\"$SRC/gateway/web/static\""
         -DKAIROS_FUZZ_UBSAN_SUPP="\"$SRC/tests/fuzz/ubsan.supp\"" "${DEFINES[@]}" "${INCLUDES[@]}")
  OBJS=()
  if [ "$WIRE" = 1 ]; then
    for proto in "${PROTOS[@]}"; do
      "$CC" -O1 -g -fsanitize=address,undefined,fuzzer-no-link -w -I "$PROTO_OUT" -c "$PROTO_OUT/$proto.pb.c" \
        -o "$PROTO_OUT/$proto.pb.o"
      OBJS+=("$PROTO_OUT/$proto.pb.o")
    done
  fi
  for s in "${GXX_SOURCES[@]}"; do
    o="$OUT/${TARGET}_$(basename "$s" .cpp).o"
    "$GXX" "${FLAGS[@]}" -fsanitize=float-cast-overflow -c "$s" -o "$o"
    OBJS+=("$o")
  done
  "$CXX" "${FLAGS[@]}" -MM "${SOURCES[@]}" "${GXX_SOURCES[@]}" |
    tr ' \\' '\n\n' | grep -v -e '^$' -e ':$' | sort -u >"$DEPS.new"
  realpath "$0" >>"$DEPS.new"
  "$CXX" "${FLAGS[@]}" -fsanitize=fuzzer "${SOURCES[@]}" "${OBJS[@]}" "${LIBS[@]}" -o "$BIN"
  mv "$DEPS.new" "$DEPS"
fi
[ "$SECONDS_TO_RUN" -gt 0 ] || exit 0

CORPUS="$OUT/${TARGET}_corpus"
mkdir -p "$CORPUS"
cp -n "$SRC/tests/fuzz/corpus/${TARGET%_fuzz}/"* "$CORPUS/" 2>/dev/null || true
cd "$OUT"
nice -n "${KAIROS_FUZZ_NICE:-10}" "$BIN" -max_total_time="$SECONDS_TO_RUN" -max_len="$MAX_LEN" -timeout=10 \
  -print_final_stats=1 "$@" "$CORPUS"
