#!/usr/bin/env bash
# Runs the README's install steps ("## Install on a Pi", the shell blocks
# marked <!-- readme-steps: NAME -->) verbatim, in the README's order, in a
# scratch working folder, on this machine:
#   gateway-package, provision, provision again (must change nothing),
#   broker, gateway, operator, node, watch.
# Everything runs in private mount, network and PID namespaces: /etc, /usr,
# /var and /run are overlays, so the apt installs, /etc/mosquitto and
# /etc/kairos stay in there; loopback is the only network and gateway.local
# is 127.0.0.1. Needs root. The native packages are built with cpack first.
#
# Stand-ins, first on PATH, only for what a container lacks: `sudo` (runs the
# command; we are root) when sudo is not installed, and `systemctl`
# (tests/readme/systemctl: start/restart/stop/status/is-active only).
# What differs from a person at a terminal: the watch block's mosquitto_sub
# line (which never ends) runs under `timeout 10`; each block gets `set -e`
# and line markers; apt's "Do you want to continue?" is answered yes by the
# namespace's apt configuration; stdin is /dev/null (any other prompt fails).
#
# Usage: run_steps.sh SOURCE_DIR BUILD_DIR
# Logs (blocks, mosquitto, gateway, node) are kept in BUILD_DIR/readme-steps/
# and printed on failure. KAIROS_README_KEEP=1 keeps the scratch folder.
# KAIROS_README_FRESH_BROKER=1 purges Mosquitto in the namespace first (a
# machine without a broker; its .deb must be in apt's cache, as no network is
# there).
set -euo pipefail

BLOCKS=(gateway-package provision broker gateway operator node watch)

if [ "${1:-}" != "--inside" ]; then
  # ---------------------------------------------------------------- outside
  [ $# -eq 2 ] || { echo "usage: $0 SOURCE_DIR BUILD_DIR" >&2; exit 2; }
  SRC=$(cd "$1" && pwd)
  BUILD=$(cd "$2" && pwd)
  fail() { echo "readme-steps: FAIL: $*" >&2; exit 1; }
  if [ "$(id -u)" -ne 0 ]; then
    echo "readme-steps: SKIP: needs root (private namespaces, overlay mounts, apt)" >&2
    exit 77
  fi
  start=$(date +%s.%N)
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/kairos-readme-XXXXXX")
  chmod 0755 "$WORK"
  cleanup() {
    if [ "${KAIROS_README_KEEP:-0}" = 1 ]; then echo "readme-steps: scratch folder kept: $WORK"; else rm -rf "$WORK"; fi
  }
  trap cleanup EXIT
  LOGS="$BUILD/readme-steps"
  rm -rf "$LOGS"
  mkdir -p "$LOGS" "$WORK/site/dist" "$WORK/blocks" "$WORK/bin"

  # 1. The packages, where the README's steps expect them: ./dist/.
  (cd "$BUILD" && cpack -G DEB -B "$WORK/cpack" >"$LOGS/cpack.log" 2>&1) || { cat "$LOGS/cpack.log" >&2; fail "cpack -G DEB in $BUILD failed"; }
  cp "$WORK/cpack/"*.deb "$WORK/site/dist/"
  ARCH=$(dpkg --print-architecture)
  for deb in "kairos-gateway_0.1.0_$ARCH.deb" "kairos-node_0.1.0_$ARCH.deb" kairos-boards_0.1.0_all.deb; do
    [ -f "$WORK/site/dist/$deb" ] || fail "cpack made no dist/$deb (made: $(ls "$WORK/site/dist" | tr '\n' ' '))"
  done

  # 2. The marked blocks: the lines of the ```sh fence right after each marker.
  for name in "${BLOCKS[@]}"; do
    awk -v marker="<!-- readme-steps: $name -->" -v out="$WORK/blocks/$name.body" '
      $0 == marker { found++; state = 1; next }
      state == 1 && /^[[:space:]]*$/ { next }
      state == 1 { if ($0 != "```sh") { print "the marker is not followed by a ```sh fence (found: " $0 ")"; exit 1 } state = 2; next }
      state == 2 && /^```/ { state = 3; next }
      state == 2 { print > out; lines++ }
      END {
        if (!found) { print "no marker <!-- readme-steps: " substr(marker, 20, length(marker) - 23) " -->"; exit 1 }
        if (found > 1) { print "the marker is there " found " times"; exit 1 }
        if (state != 3) { print "its ```sh fence does not close"; exit 1 }
        if (!lines) { print "its block is empty"; exit 1 }
      }' "$SRC/README.md" >"$WORK/blocks/$name.err" || fail "README.md, block \"$name\": $(cat "$WORK/blocks/$name.err")"
  done

  # 4. Stand-ins.
  install -m 0755 "$SRC/tests/readme/systemctl" "$WORK/bin/systemctl"
  if ! command -v sudo >/dev/null; then
    printf '%s\n' '#!/bin/sh' '# Stand-in for sudo where it is not installed: the test runs as root.' 'exec "$@"' >"$WORK/bin/sudo"
    chmod 0755 "$WORK/bin/sudo"
  fi

  # 3. What the host has before, to check it has the same after.
  host_state() {
    local p
    for p in /etc/kairos /var/lib/kairos /etc/mosquitto/conf.d/kairos.conf /etc/mosquitto/kairos.passwd /etc/mosquitto/kairos.acl; do
      [ -e "$p" ] && echo "$p exists" || echo "$p absent"
    done
    echo "kairos-gateway: $(dpkg-query -W -f='${db:Status-Status}' kairos-gateway 2>/dev/null || echo not-installed)"
    echo "kairos-node: $(dpkg-query -W -f='${db:Status-Status}' kairos-node 2>/dev/null || echo not-installed)"
    echo "kairos user: $(getent passwd kairos >/dev/null && echo yes || echo no)"
    echo "/etc/hosts: $(sha256sum </etc/hosts)"
  }
  host_state >"$WORK/host.before"

  set +e
  unshare --mount --net --pid --fork --kill-child --mount-proc \
    env WORK="$WORK" SRC="$SRC" BUILD="$BUILD" LOGS="$LOGS" bash "$0" --inside
  rc=$?
  set -e

  host_state >"$WORK/host.after"
  if ! diff -u "$WORK/host.before" "$WORK/host.after" >&2; then
    fail "the host changed (above: before and after); the steps must stay in the namespace"
  fi
  end=$(date +%s.%N)
  wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  [ "$rc" -eq 0 ] || fail "README steps failed (exit $rc) after ${wall} s; logs in $LOGS"
  echo "readme-steps: PASS: all README install steps ran verbatim in ${wall} s (host unchanged)"
  exit 0
fi

# ------------------------------------------------------------------ inside
# PID 1 of fresh mount/net/PID namespaces: whatever is left running dies
# with us.
[ $$ -eq 1 ] || { echo "readme-steps: --inside runs only as PID 1 of the namespaces $0 makes" >&2; exit 2; }
SITE="$WORK/site"
UNITS=(kairos-node kairos-gateway mosquitto)
step="setting up the namespace"
fail() { echo "readme-steps: FAIL: $*" >&2; exit 1; }

print_logs() {
  local f
  for f in /var/log/mosquitto/mosquitto.log /var/log/kairos-readme/*.log; do
    [ -f "$f" ] || continue
    echo "----- $f (last 60 lines)" >&2
    tail -n 60 "$f" >&2
  done
}
on_exit() {
  local rc=$?
  set +e
  for u in "${UNITS[@]}"; do PATH="$WORK/bin:$PATH" systemctl stop "$u" >/dev/null 2>&1; done
  mkdir -p "$LOGS"
  cp /var/log/mosquitto/mosquitto.log /var/log/kairos-readme/*.log "$LOGS/" 2>/dev/null
  if [ "$rc" -ne 0 ]; then
    echo "readme-steps: failed while: $step" >&2
    print_logs
  fi
  exit "$rc"
}
trap on_exit EXIT

mount --make-rprivate /
mkdir -p "$WORK/ns"
mount -t tmpfs -o mode=0755 kairos-readme "$WORK/ns"  # the overlays' uppers: gone with the namespace
for d in etc usr var run; do
  mkdir -p "$WORK/ns/$d.upper" "$WORK/ns/$d.work"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$WORK/ns/$d.upper,workdir=$WORK/ns/$d.work" "/$d" ||
    fail "overlay over /$d"
done
ip link set lo up
echo "127.0.0.1 gateway.local" >>/etc/hosts
getent hosts gateway.local | grep -q '^127\.0\.0\.1' || fail "gateway.local does not resolve to 127.0.0.1"
# apt asks "Do you want to continue? [Y/n]" before installing local .deb
# files even when nothing else is installed; a person answers it. The answer,
# in the namespace's apt configuration (any other prompt still fails: the
# blocks' stdin is /dev/null).
echo 'APT::Get::Assume-Yes "true";' >/etc/apt/apt.conf.d/99kairos-readme-steps
# When a real sudo is installed, its secure_path must still find the stand-in.
command -v sudo >/dev/null && [ ! -e "$WORK/bin/sudo" ] && install -m 0755 "$WORK/bin/systemctl" /usr/local/sbin/systemctl
if [ "${KAIROS_README_FRESH_BROKER:-0}" = 1 ]; then
  # A machine without Mosquitto (it is in apt's cache here, for the offline install).
  ls /var/cache/apt/archives/mosquitto_*.deb >/dev/null 2>&1 || fail "KAIROS_README_FRESH_BROKER=1: no mosquitto .deb in apt's cache"
  dpkg --purge mosquitto >/dev/null || fail "dpkg --purge mosquitto"
fi

# A block as a script: `set -e`, a message naming the block and line when a
# command fails, and a marker line before each command (for the output).
make_script() {  # NAME [TRANSFORM]
  local name=$1 out="$WORK/blocks/$1.sh"
  printf '%s\n' "set -e; trap 'readme_rc=\$?; echo \"readme-steps: block \\\"$name\\\", line \$((LINENO-1)): \\\`\$BASH_COMMAND\\\` failed (exit \$readme_rc)\" >&2' ERR; trap 'echo \"@@readme-line \$((LINENO-1))\"' DEBUG" >"$out"
  if [ -n "${2:-}" ]; then sed -e "$2" "$WORK/blocks/$name.body" >>"$out"; else cat "$WORK/blocks/$name.body" >>"$out"; fi
  echo "$out"
}
# Shows a block's output with each command before its own output.
show() {  # BODY
  awk -v body="$1" 'BEGIN { while ((getline l < body) > 0) line[++n] = l }
    /^@@readme-line / { k = $2; if (k != last) { print "$ " line[k]; last = k } next } { print "  " $0 }'
}
# Runs block NAME from the working folder. Extra PATH entries first.
run_block() {  # NAME OUTFILE [PATH-PREFIX [TRANSFORM]]
  local name=$1 out=$2 prefix=${3:-} script rc
  step="running the README block \"$name\""
  script=$(make_script "$name" "${4:-}")
  echo "== README block \"$name\""
  set +e
  (cd "$SITE" && PATH="$WORK/bin:${prefix:+$prefix:}$PATH" bash "$script" </dev/null) >"$out" 2>&1
  rc=$?
  set -e
  show "$WORK/blocks/$name.body" <"$out"
  cp "$out" "$LOGS/block-$(basename "$out")" 2>/dev/null || true
  if [ "$rc" -ne 0 ]; then
    local n cmd
    n=$(sed -n 's/^@@readme-line //p' "$out" | tail -n1)
    cmd=$(sed -n "${n:-0}p" "$WORK/blocks/$name.body")
    fail "README block \"$name\" failed (exit $rc) at its line ${n:-?}: $cmd"
  fi
}
# Which commands' output says TEXT: every command line of the block must.
each_command_says() {  # BODY OUTFILE TEXT
  awk -v body="$1" -v text="$3" '
    BEGIN { while ((getline l < body) > 0) { n++; if (l !~ /^[[:space:]]*(#|$)/) cmd[n] = l } }
    /^@@readme-line / { k = $2; next }
    index($0, text) { said[k] = 1 }
    END { for (i in cmd) if (!said[i]) { print "line " i " (" cmd[i] ") did not say \"" text "\""; bad = 1 } exit bad }' "$2"
}
snapshot() {  # DIR
  (cd "$1" && find . -printf '%p %y %m %u:%g %s %T@\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum)
}
alive() { PATH="$WORK/bin:$PATH" systemctl is-active "$1" >/dev/null; }
wait_port() {  # PORT SECONDS
  local i
  for i in $(seq $(($2 * 5))); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.2; done
  return 1
}
log_errors() {  # LOGFILE: the lines that report an error (level "error", or unformatted ones that say so)
  grep -inE '^[0-9:.]+ error |error|fatal|fail|denied|cannot|refus|unable|terminate|abort' "$1" |
    grep -vE '^[0-9]+:([0-9:.]+ (debug|info|warn) |-- systemctl \(stand-in\))' || true
}

# ---- the gateway machine's packages (they bring kairosctl)
run_block gateway-package "$WORK/gateway-package.out"
step="checking the gateway package"
[ "$(dpkg-query -W -f='${db:Status-Status}' kairos-gateway)" = installed ] || fail "kairos-gateway is not installed after the gateway-package block"
getent passwd kairos >/dev/null || fail "the gateway package made no kairos user"
[ "$(stat -c '%U:%G' /var/lib/kairos)" = kairos:kairos ] || fail "/var/lib/kairos is $(stat -c '%U:%G' /var/lib/kairos), not kairos:kairos"
[ "$(command -v kairosctl)" = /usr/bin/kairosctl ] || fail "kairosctl is not the package's /usr/bin/kairosctl"

# ---- provision, twice
run_block provision "$WORK/provision.out"
[ -d "$SITE/kairos-provision" ] || fail "the provision block made no kairos-provision/"
snapshot "$SITE/kairos-provision" >"$WORK/provision.snap1"
run_block provision "$WORK/provision-again.out"
step="checking that provisioning again changed nothing"
bad=$(each_command_says "$WORK/blocks/provision.body" "$WORK/provision-again.out" "nothing changed") ||
  fail "provision, run again: $bad"
snapshot "$SITE/kairos-provision" >"$WORK/provision.snap2"
diff -u "$WORK/provision.snap1" "$WORK/provision.snap2" >&2 ||
  fail "provision, run again: files in kairos-provision/ changed (above: path type mode owner size mtime, then sha256)"
echo "   provision again: every command said \"nothing changed\"; kairos-provision/ unchanged"

B="$SITE/kairos-provision"
GW_BUNDLE="$B/gateway/etc/kairos"
OP_BUNDLE="$B/operators/alice/etc/kairos"
NODE_BUNDLE="$B/nodes/barn-1/etc/kairos"
for d in "$GW_BUNDLE" "$OP_BUNDLE" "$NODE_BUNDLE" "$B/mosquitto"; do [ -d "$d" ] || fail "provisioning made no ${d#"$SITE"/}"; done

# ---- broker
run_block broker "$WORK/broker.out"
step="checking the broker"
wait_port 1883 10 || fail "after the broker block nothing listens on 127.0.0.1:1883"
alive mosquitto || fail "after the broker block mosquitto is not running"
for f in kairos.passwd:mosquitto:600 kairos.acl:mosquitto:644; do
  IFS=: read -r file owner mode <<<"$f"
  got=$(stat -c '%U %a' "/etc/mosquitto/$file")
  [ "$got" = "$owner $mode" ] || fail "/etc/mosquitto/$file is $got, not $owner $mode"
done

run_block gateway "$WORK/gateway.out"
step="checking the gateway"
GW_LOG=/var/log/kairos-readme/kairos-gateway.log
for i in $(seq 150); do grep -q '\[gateway\] connected to' "$GW_LOG" 2>/dev/null && break; sleep 0.2; done
alive kairos-gateway || fail "kairos-gateway is not running after the gateway block"
errs=$(log_errors "$GW_LOG")
[ -z "$errs" ] || fail "the gateway's log reports errors:
$errs"
grep -q '\[gateway\] connected to tcp://gateway.local:1883' "$GW_LOG" || fail "the gateway's log does not say it connected to tcp://gateway.local:1883"
grep -E ' warn ' "$GW_LOG" | sed 's/^/   gateway warns: /' || true
# Its broker user is the gateway's id (gw1) in the broker's log.
for i in $(seq 25); do grep -q "u'gw1'" /var/log/mosquitto/mosquitto.log 2>/dev/null && break; sleep 0.2; done
grep -q "u'gw1'" /var/log/mosquitto/mosquitto.log || fail "the broker's log shows no connection as user gw1"
grep -E "u'gw1'" /var/log/mosquitto/mosquitto.log | tail -n1 | sed 's/^/   broker: /'
bad=
while IFS= read -r f; do
  got=$(stat -c '%a %G' "$f")
  [ "$got" = "640 kairos" ] || bad+="
  $f: mode $got"
done < <(find /etc/kairos/keys /etc/kairos/gateway.password -type f)
[ -z "$bad" ] || fail "after the gateway block, key files are not mode 0640 group kairos:$bad"

# ---- operator
run_block operator "$WORK/operator.out"

# ---- node
run_block node "$WORK/node.out"
step="checking the node"
NODE_LOG=/var/log/kairos-readme/kairos-node.log
for i in $(seq 150); do grep -q 'connected to' "$NODE_LOG" 2>/dev/null && break; sleep 0.2; done
alive kairos-node || fail "kairos-node is not running after the node block"
errs=$(log_errors "$NODE_LOG")
[ -z "$errs" ] || fail "the node's log reports errors:
$errs"
grep -E ' warn ' "$NODE_LOG" | sed 's/^/   node warns: /' || true
for f in /etc/kairos/node.key /etc/kairos/broker.password; do
  got=$(stat -c '%a %G' "$f")
  [ "$got" = "640 kairos" ] || fail "$f is mode $got after the node's unit started, not 640 kairos"
done

# ---- the three bundles in one /etc/kairos, none overwriting another
step="checking /etc/kairos"
list() { (cd "$1" && find . -type f | sed 's|^\./||' | sort); }
list "$GW_BUNDLE" >"$WORK/files.gateway"
list "$OP_BUNDLE" >"$WORK/files.operator"
list "$NODE_BUNDLE" >"$WORK/files.node"
for pair in gateway:operator gateway:node operator:node; do
  a=${pair%:*}; b=${pair#*:}
  clash=$(comm -12 "$WORK/files.$a" "$WORK/files.$b")
  [ -z "$clash" ] || fail "the $a and $b bundles both have: $clash"
done
sort -u "$WORK/files.gateway" "$WORK/files.operator" "$WORK/files.node" >"$WORK/files.union"
list /etc/kairos >"$WORK/files.etc"
conffiles=$(dpkg-query -W -f='${Conffiles}\n' kairos-gateway kairos-node | awk '{print $1}' | sed 's|^/etc/kairos/||' | sort -u)
extra=$(comm -13 "$WORK/files.union" "$WORK/files.etc" | grep -vxF -f <(printf '%s\n' "$conffiles") || true)
missing=$(comm -23 "$WORK/files.union" "$WORK/files.etc")
[ -z "$missing" ] || fail "/etc/kairos lacks bundle files: $missing"
[ -z "$extra" ] || fail "/etc/kairos has files of no bundle nor package: $extra"
for who in gateway operator node; do
  case $who in gateway) dir=$GW_BUNDLE ;; operator) dir=$OP_BUNDLE ;; node) dir=$NODE_BUNDLE ;; esac
  while IFS= read -r f; do
    cmp -s "$dir/$f" "/etc/kairos/$f" || fail "/etc/kairos/$f differs from the $who bundle's"
  done <"$WORK/files.$who"
done
echo "   /etc/kairos: $(wc -l <"$WORK/files.union") files, the union of the gateway, operator and node bundles, each as provisioned"

# ---- watch: barn-1 online, then the whole block with mosquitto_sub bounded
step="waiting for barn-1 to be online (the watch block's first line)"
# `kairosctl nodes` prints a table (NODE CLUSTER BOARD CLASS STATUS ...); a node
# is online in any STATUS but OFFLINE (COMPLIANT, PROCESSING, VARIANCE_WARNING,
# QUARANTINED, FROZEN).
online_in() {
  awk '$1 == "NODE" && $5 == "STATUS" { table = 1; next }
       table && $1 == "barn-1" && $5 != "OFFLINE" && $5 != "?" { found = 1 } END { exit !found }'
}
first=$(grep -v '^[[:space:]]*\(#\|$\)' "$WORK/blocks/watch.body" | head -n1)
online=
for i in $(seq 30); do
  if out=$(cd "$SITE" && PATH="$WORK/bin:$PATH" bash -c "$first" </dev/null 2>&1) && online_in <<<"$out"; then
    online=1; break
  fi
  sleep 1
done
[ -n "$online" ] || fail "\`$first\` did not list barn-1 online within 30 s; it said:
$out"
echo "   barn-1 online after ${i} s: $(awk '$1 == "barn-1"' <<<"$out")"
run_block watch "$WORK/watch.out" "" \
  's/^\(mosquitto_sub .*\)$/timeout 10 \1 || [ $? -eq 124 ]/'
step="checking the watch block's output"
online_in <"$WORK/watch.out" ||
  fail "the watch block's \`$first\` does not list barn-1 online"
frames=$(grep -cE '^kairos/v1/farm/[^ ]+/barn-1/(hb|phase) [0-9]+$' "$WORK/watch.out" || true)
[ "$frames" -ge 1 ] || fail "mosquitto_sub printed no kairos/v1/farm/.../barn-1/hb or /phase line with a payload size in 10 s"
echo "   mosquitto_sub: $frames hb/phase lines of barn-1 in 10 s, e.g. $(grep -m1 -E '^kairos/v1/farm/[^ ]+/barn-1/(hb|phase) [0-9]+$' "$WORK/watch.out")"

step="stopping the services"
alive kairos-gateway || fail "kairos-gateway stopped running during the steps"
alive kairos-node || fail "kairos-node stopped running during the steps"
echo "readme-steps: every block ran"
