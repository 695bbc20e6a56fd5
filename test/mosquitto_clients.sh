#!/usr/bin/env bash
# Interop test: the built turnstile binary against Debian's mosquitto_pub and mosquitto_sub, over
# MQTT 3.1.1 and 5. Every port is picked free at the start (none is fixed, the management API's
# included); every wait is bounded; any failure stops the script with a message and the broker's
# log, and a non-zero status. The broker is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "FAIL: $*" >&2; exit 1; }
for tool in go mosquitto_pub mosquitto_sub openssl python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (Debian: apt-get install mosquitto-clients openssl python3)"
done

tmp=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  jobs -p | xargs -r kill 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
# Any command that fails outside a test of its status stops the script (set -e): say which.
trap 'status=$?; echo "FAIL: line $LINENO: \"$BASH_COMMAND\" exited with status $status" >&2; [ -f "$tmp/broker.log" ] && { echo "--- broker log" >&2; cat "$tmp/broker.log" >&2; }' ERR
fail() {
  echo "FAIL: $*" >&2
  echo "--- broker log" >&2
  cat "$tmp/broker.log" >&2 2>/dev/null || true
  exit 1
}

go build -o "$tmp/turnstile" ./cmd/turnstile || die "go build failed"
# freeports N: N distinct ports free on 127.0.0.1 at this moment (all held open while choosing).
freeports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}
read -r port tlsport mgmtport < <(freeports 3) || die "could not pick free ports"
[ -n "$mgmtport" ] || die "could not pick free ports"

# A throwaway CA and a server certificate for 127.0.0.1, for the TLS listener.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/ca.key" -out "$tmp/ca.pem" \
  -days 1 -subj /CN=turnstile-test-ca 2>/dev/null || die "openssl: CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/server.key" -out "$tmp/server.csr" \
  -subj /CN=localhost 2>/dev/null || die "openssl: server key"
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost' >"$tmp/ext"
openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
  -out "$tmp/server.pem" -days 1 -extfile "$tmp/ext" 2>/dev/null || die "openssl: server certificate"

# Every listener that would otherwise take a default port is given a free one or turned off.
cat >"$tmp/turnstile.ini" <<INI
[main]
data_dir = $tmp/data
tls_cert = $tmp/server.pem
tls_key = $tmp/server.key
[mqtt]
port = $port
tls_port = $tlsport
sys_interval = 1
allow_anonymous = true
ws_port = -1
wss_port = -1
[mgmt]
port = $mgmtport
tls_port = -1
INI
"$tmp/turnstile" validate-config --config "$tmp/turnstile.ini" >/dev/null || die "validate-config rejects the test configuration"
"$tmp/turnstile" serve --config "$tmp/turnstile.ini" 2>"$tmp/broker.log" &
pid=$!
"$tmp/turnstile" ctl --uri "http://127.0.0.1:$mgmtport" wait-ready --timeout 20s >/dev/null ||
  fail "the broker did not become ready (ports $port, $tlsport, $mgmtport)"
kill -0 "$pid" 2>/dev/null || fail "the broker exited during start"
mosquitto_pub -p "$port" -t ready -m x || fail "MQTT on port $port refuses a publish after wait-ready"

# wait_for FILE PATTERN COUNT: up to 5 s for COUNT lines matching PATTERN.
wait_for() {
  for _ in $(seq 50); do
    [ "$(grep -c -- "$2" "$1" 2>/dev/null || true)" -ge "$3" ] && return 0
    sleep 0.1
  done
  return 1
}

pass=0
for V in mqttv311 mqttv5; do
  out="$tmp/sub-$V"
  mosquitto_sub -V "$V" -p "$port" -i "sub-$V" -t "it/$V/#" -q 2 -v -W 20 >"$out" &
  sub=$!
  # The subscription is live once a sync message comes back.
  for _ in $(seq 50); do
    mosquitto_pub -V "$V" -p "$port" -t "it/$V/sync" -m sync
    grep -q sync "$out" 2>/dev/null && break
    sleep 0.1
  done
  grep -q sync "$out" || fail "$V: subscription never became live"
  for q in 0 1 2; do
    mosquitto_pub -V "$V" -p "$port" -t "it/$V/q$q" -m "hello qos $q" -q "$q"
  done
  wait_for "$out" "hello qos" 3 || fail "$V: expected 3 messages, got: $(cat "$out")"
  for q in 0 1 2; do grep -qx "it/$V/q$q hello qos $q" "$out" || fail "$V: qos $q message missing"; done
  kill "$sub" 2>/dev/null; wait "$sub" 2>/dev/null || true
  echo "ok   $V publish/subscribe at QoS 0, 1, 2"; pass=$((pass+1))

  # Retained: stored, delivered to a later subscriber, cleared by an empty retained payload [MQTT-3.3.1-6].
  mosquitto_pub -V "$V" -p "$port" -t "ret/$V" -m "kept" -r -q 1
  got=$(mosquitto_sub -V "$V" -p "$port" -t "ret/$V" -C 1 -W 5)
  [ "$got" = "kept" ] || fail "$V: retained message not delivered (got '$got')"
  mosquitto_pub -V "$V" -p "$port" -t "ret/$V" -n -r -q 1
  if mosquitto_sub -V "$V" -p "$port" -t "ret/$V" -C 1 -W 1 >/dev/null 2>&1; then fail "$V: retained message not cleared"; fi
  echo "ok   $V retained store and clear"; pass=$((pass+1))

  # Will: published when the connection drops without DISCONNECT [MQTT-3.1.2-8].
  wout="$tmp/will-$V"
  mosquitto_sub -V "$V" -p "$port" -t "will/$V" -C 1 -W 10 >"$wout" &
  wsub=$!
  sleep 0.3
  mosquitto_sub -V "$V" -p "$port" -t "nothing/$V" --will-topic "will/$V" --will-payload "gone" -W 30 &
  victim=$!
  sleep 0.5
  kill -9 "$victim"; wait "$victim" 2>/dev/null || true
  wait "$wsub" || fail "$V: will not received"
  [ "$(cat "$wout")" = "gone" ] || fail "$V: will payload wrong: $(cat "$wout")"
  echo "ok   $V will on abrupt disconnect"; pass=$((pass+1))
done

# $SYS statistics, in mosquitto's topic names.
got=$(mosquitto_sub -p "$port" -t '$SYS/broker/version' -C 1 -W 5)
case "$got" in turnstile*) ;; *) fail "\$SYS/broker/version: '$got'";; esac
got=$(mosquitto_sub -p "$port" -t '$SYS/broker/uptime' -C 1 -W 5)
case "$got" in *seconds) ;; *) fail "\$SYS/broker/uptime: '$got'";; esac
echo "ok   \$SYS/broker tree"; pass=$((pass+1))

# TLS with --cafile, as the default user (allowed from loopback on every listener).
out="$tmp/tls-sub"
mosquitto_sub --cafile "$tmp/ca.pem" -h 127.0.0.1 -p "$tlsport" -u guest -P guest -t tls/x -C 1 -W 10 >"$out" &
tsub=$!
for _ in $(seq 50); do
  mosquitto_pub --cafile "$tmp/ca.pem" -h 127.0.0.1 -p "$tlsport" -u guest -P guest -t tls/x -m "over tls"
  [ -s "$out" ] && break
  sleep 0.1
done
wait "$tsub" || fail "TLS subscriber got nothing"
[ "$(cat "$out")" = "over tls" ] || fail "TLS payload: $(cat "$out")"
echo "ok   TLS with --cafile as guest"; pass=$((pass+1))

# A wrong password is refused: return code 4 (bad user name or password).
if mosquitto_pub -h 127.0.0.1 -p "$port" -u guest -P wrong -t x -m x 2>"$tmp/refused"; then
  fail "wrong password accepted"
fi
grep -qi "bad user name or password\|not authori" "$tmp/refused" || fail "refusal reason: $(cat "$tmp/refused")"
echo "ok   wrong password refused"; pass=$((pass+1))

# Graceful shutdown on SIGTERM.
kill -TERM "$pid"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "broker did not stop on SIGTERM"
wait "$pid" || fail "broker exited non-zero after SIGTERM"
pid=""
echo "ok   graceful shutdown on SIGTERM"; pass=$((pass+1))
echo "$pass passed, 0 failed"
