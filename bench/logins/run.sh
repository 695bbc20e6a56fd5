#!/usr/bin/env bash
# bench/logins/run.sh measures login rates (issues 12, 13 and 14) with `turnstile bench --scenario
# conn`, Turnstile against Mosquitto (a mosquitto_passwd file, its default PBKDF2-SHA512) and
# Mochi (its auth ledger: plaintext passwords, no hashing) in the same run, one broker after the
# other on loopback:
#
#   one user     LOGINS logins of one user from DIALERS dialers (u0, created through Turnstile)
#   users        USERS logins, each of a distinct user, created through Turnstile's management
#                API with the default hashing of new users (bcrypt cost 10 and a verifier)
#   imported     IMPORTED first logins of users imported from a definitions file (bcrypt cost 10,
#                no verifier yet: one bcrypt run each), Turnstile only
#   jwt          LOGINS logins with distinct ES256 JWTs (keys from [oauth] jwks_file), Turnstile only
#   tokens       ApplyToken requests/s of the token service (64 AccessKeys), then LOGINS logins with
#                the tokens it issued, Turnstile only
#
# The users are provisioned once per work directory (USERS bcrypt runs: minutes on 2 cores) and
# Turnstile starts every run from a copy of that store and its key files. Run it under the CPU
# lock where other work shares the machine: flock /tmp/bench.lock bench/logins/run.sh
#
# Usage: bench/logins/run.sh [--runs N] [--users N] [--logins N] [--dialers N] [--imported N]
#                            [--brokers LIST] [--work DIR] [--out FILE]
set -euo pipefail

RUNS=3
USERS=10000
LOGINS=2000
DIALERS=64
IMPORTED=200
BROKERS=turnstile,mosquitto,mochi
WORK=""
OUT=""

while [ $# -gt 0 ]; do
	case "$1" in
	--runs) RUNS=$2; shift 2 ;;
	--users) USERS=$2; shift 2 ;;
	--logins) LOGINS=$2; shift 2 ;;
	--dialers) DIALERS=$2; shift 2 ;;
	--imported) IMPORTED=$2; shift 2 ;;
	--brokers) BROKERS=$2; shift 2 ;;
	--work) WORK=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "logins: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ -n "$WORK" ] || WORK=$(mktemp -d "${TMPDIR:-/tmp}/turnstile-logins.XXXXXX")
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
RESULTS=$WORK/results.tsv # run, case, broker, connects/s (or requests/s), failures, p99 ms
: >"$RESULTS"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh" # log, has, jget, cpu_ticks, free_port, broker_answers

MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
MOSQUITTO_PASSWD=$(command -v mosquitto_passwd || echo /usr/bin/mosquitto_passwd)

log "building turnstile, the logins tool and the mochi runner into $WORK"
(cd "$ROOT" && go build -o "$WORK/turnstile" ./cmd/turnstile && go build -o "$WORK/logins" ./bench/logins)
(cd "$ROOT/bench/mochi" && go build -o "$WORK/mochi" .)

want_fds=$((USERS * 2 + 1024))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$want_fds" ]; then
	ulimit -Hn "$want_fds" 2>/dev/null || log "warning: hard limit on open files is $(ulimit -Hn), below $want_fds"
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n "$want_fds" 2>/dev/null || true

# wait_port PID PORT NAME [tcp]: waits until the broker answers an MQTT CONNECT on PORT
# (mqtt_answers), or with tcp until PORT accepts connections (the HTTP ports).
wait_port() {
	for _ in $(seq 600); do
		broker_answers "$2" "${4:-}" && return 0
		kill -0 "$1" 2>/dev/null || { log "logins: $3 exited at start, see $WORK/$3.log"; exit 1; }
		sleep 0.1
	done
	log "logins: $3 did not open port $2"
	exit 1
}

BPID=""
stop_broker() {
	[ -n "$BPID" ] || return 0
	kill -TERM "$BPID" 2>/dev/null || true
	for _ in $(seq 300); do
		kill -0 "$BPID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$BPID" 2>/dev/null || true
	wait "$BPID" 2>/dev/null || true
	BPID=""
}
trap stop_broker EXIT

# --- Turnstile --------------------------------------------------------------------------------

PORT="" MPORT="" TPORT=""
start_turnstile() { # start_turnstile DATA_DIR
	PORT=$(free_port) MPORT=$(free_port) TPORT=$(free_port)
	cat >"$WORK/turnstile.ini" <<EOF
[main]
log_level = warn
data_dir = $1
auth_backends = local,oauth
definitions_file = $WORK/imported.json
[mqtt]
bind = 127.0.0.1
port = $PORT
allow_anonymous = false
ws_port = -1
[mgmt]
bind = 127.0.0.1
port = $MPORT
[oauth]
issuer = https://bench.turnstile.invalid
resource_server_id = turnstile
jwks_file = $WORK/jwks.json
[tokens]
bind = 127.0.0.1
port = $TPORT
EOF
	"$WORK/turnstile" serve --config "$WORK/turnstile.ini" 2>>"$WORK/turnstile.log" &
	BPID=$!
	wait_port "$BPID" "$PORT" turnstile
	wait_port "$BPID" "$MPORT" turnstile tcp
	wait_port "$BPID" "$TPORT" turnstile tcp
}

SNAP=$WORK/snapshot
if [ ! -f "$SNAP/done" ] || [ "$(cat "$SNAP/done")" != "$USERS $IMPORTED" ]; then
	log "provisioning $USERS users through the management API ($USERS bcrypt runs), $IMPORTED imported users, $LOGINS JWTs"
	rm -rf "$SNAP"
	mkdir -p "$SNAP"
	"$WORK/logins" defs --count "$IMPORTED" --prefix i --password imported-secret --out "$WORK/imported.json"
	"$WORK/logins" jwt --count "$LOGINS" --jwks "$WORK/jwks.json" --out "$WORK/jwt.tsv"
	start_turnstile "$SNAP/data"
	"$WORK/logins" users --api "http://127.0.0.1:$MPORT" --count "$USERS" --prefix u --password 'p{i}'
	stop_broker
	echo "$USERS $IMPORTED" >"$SNAP/done"
	# Mosquitto's password file (mosquitto_passwd's default hashing) and Mochi's ledger.
	awk -v n="$USERS" 'BEGIN { for (i = 0; i < n; i++) printf "u%d:p%d\n", i, i }' >"$WORK/mosquitto.pw"
	"$MOSQUITTO_PASSWD" -U "$WORK/mosquitto.pw"
	awk -v n="$USERS" 'BEGIN { printf "{\"users\": {"; for (i = 0; i < n; i++) printf "%s\"u%d\": {\"username\": \"u%d\", \"password\": \"p%d\"}", (i ? ", " : ""), i, i, i; print "}}" }' >"$WORK/mochi.json"
fi
# Tokens live two hours: make fresh ones when the work directory is reused later.
"$WORK/logins" jwt --count "$LOGINS" --jwks "$WORK/jwks.json" --out "$WORK/jwt.tsv"

STEP=0
TICK=$(getconf CLK_TCK)
# conn RUN CASE BROKER ARGS...: one conn run against 127.0.0.1:$PORT, recorded in RESULTS with
# the broker's CPU time per login (µs), which does not depend on what the load generator leaves
# of the machine.
conn() {
	local run=$1 case=$2 broker=$3 j c0 c1 n
	shift 3
	STEP=$((STEP + 1))
	sleep 1 # let the previous run's connections close
	c0=$(cpu_ticks "$BPID")
	if ! j=$("$WORK/turnstile" bench --host 127.0.0.1 --port "$PORT" --topic "lg/$STEP" --scenario conn \
		--concurrency "$DIALERS" --duration 100ms --json "$@" 2>>"$WORK/bench.log"); then
		j='{"connect_failures":-1,"first_error":"bench failed, see bench.log"}'
	fi
	sleep 0.5 # the teardown of the connections counts too
	c1=$(cpu_ticks "$BPID")
	printf '%s\t%s\t%s\t%s\n' "$run" "$case" "$broker" "$j" >>"$WORK/results.jsonl"
	local rate fails us
	rate=$(jget "$j" connect_per_s) fails=$(jget "$j" connect_failures) n=$(jget "$j" connects)
	us=$(awk -v t="$((c1 - c0))" -v hz="$TICK" -v n="${n:-0}" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n }')
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$case" "$broker" "${rate:-0}" "${fails:-0}" "$(jget "$j" p99_ms)" >>"$RESULTS"
	[ -z "$us" ] || printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "cpu-$case" "$broker" "$us" 0 "" >>"$RESULTS"
	log "[run $run] $case, $broker: ${rate:-0} conn/s, ${fails:-0} failed, CONNACK p99 $(jget "$j" p99_ms) ms, broker CPU ${us:-?} µs a login$([ -z "$(jget "$j" first_error)" ] || echo ", first error: $(jget "$j" first_error)")"
}

for run in $(seq "$RUNS"); do
	for b in ${BROKERS//,/ }; do
		case $b in
		turnstile)
			rm -rf "$WORK/data" "$WORK/data.auth.key" "$WORK/data.tokens.key"
			cp -a "$SNAP/data" "$WORK/data"
			cp -a "$SNAP/data.auth.key" "$WORK/data.auth.key"
			cp -a "$SNAP/data.tokens.key" "$WORK/data.tokens.key"
			start_turnstile "$WORK/data"
			conn "$run" one-user turnstile --clients "$LOGINS" --username u0 --password p0
			conn "$run" users turnstile --clients "$USERS" --users "$USERS" --username u --password 'p{i}'
			conn "$run" imported turnstile --clients "$IMPORTED" --users "$IMPORTED" --username i --password imported-secret
			conn "$run" jwt turnstile --clients "$LOGINS" --credentials "$WORK/jwt.tsv"
			sleep 1
			if j=$("$WORK/logins" tokens --api "http://127.0.0.1:$MPORT" --tokens "http://127.0.0.1:$TPORT/" --user u0 \
				--keys 64 --seconds 5 --count "$LOGINS" --out "$WORK/tokens.tsv" 2>>"$WORK/bench.log"); then
				printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$run" apply turnstile "$(jget "$j" apply_per_s)" "$(jget "$j" failed)" "" >>"$RESULTS"
				log "[run $run] ApplyToken: $j"
				conn "$run" tokens turnstile --clients "$LOGINS" --credentials "$WORK/tokens.tsv"
			else
				log "[run $run] ApplyToken failed, see $WORK/bench.log"
			fi
			stop_broker
			;;
		mosquitto)
			PORT=$(free_port)
			cat >"$WORK/mosquitto.conf" <<EOF
listener $PORT 127.0.0.1
allow_anonymous false
password_file $WORK/mosquitto.pw
max_keepalive 65535
set_tcp_nodelay true
persistence false
log_dest stderr
log_type error
log_type warning
EOF
			"$MOSQUITTO" -c "$WORK/mosquitto.conf" 2>>"$WORK/mosquitto.log" &
			BPID=$!
			wait_port "$BPID" "$PORT" mosquitto
			conn "$run" one-user mosquitto --clients "$LOGINS" --username u0 --password p0
			conn "$run" users mosquitto --clients "$USERS" --users "$USERS" --username u --password 'p{i}'
			stop_broker
			;;
		mochi)
			PORT=$(free_port)
			"$WORK/mochi" -addr "127.0.0.1:$PORT" -ledger "$WORK/mochi.json" 2>>"$WORK/mochi.log" &
			BPID=$!
			wait_port "$BPID" "$PORT" mochi
			conn "$run" one-user mochi --clients "$LOGINS" --username u0 --password p0
			conn "$run" users mochi --clients "$USERS" --users "$USERS" --username u --password 'p{i}'
			stop_broker
			;;
		*) log "logins: unknown broker $b"; exit 2 ;;
		esac
	done
done

# --- medians ----------------------------------------------------------------------------------

median() { # median CASE BROKER: the median rate over the runs
	awk -F'\t' -v c="$1" -v b="$2" '$2 == c && $3 == b { print $4 }' "$RESULTS" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
runs() { awk -F'\t' -v c="$1" -v b="$2" '$2 == c && $3 == b { printf "%s%d", (n++ ? ", " : ""), $4 + 0.5 }' "$RESULTS"; }
fails() { awk -F'\t' -v c="$1" -v b="$2" '$2 == c && $3 == b { s += $5 } END { print s + 0 }' "$RESULTS"; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b }'; }
{
	echo
	echo "bench/logins/run.sh $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $RUNS runs, $DIALERS dialers; medians (every run)"
	echo
	echo "| case | Turnstile | Mosquitto | Mochi | Turnstile / Mosquitto | Turnstile / Mochi | failed logins (T/Mq/Mc) |"
	echo "|---|---:|---:|---:|---:|---:|---|"
	for c in one-user users imported jwt tokens apply cpu-one-user cpu-users cpu-jwt cpu-tokens; do
		t=$(median $c turnstile) m=$(median $c mosquitto) o=$(median $c mochi)
		case $c in
		one-user) label="$LOGINS logins of one user, conn/s" ;;
		users) label="$USERS logins of $USERS distinct users, conn/s" ;;
		imported) label="$IMPORTED first logins of imported users (bcrypt, no verifier), conn/s" ;;
		jwt) label="$LOGINS logins with distinct ES256 JWTs, conn/s" ;;
		tokens) label="$LOGINS logins with token-service tokens, conn/s" ;;
		apply) label="ApplyToken requests/s (64 AccessKeys)" ;;
		cpu-one-user) label="broker CPU per login, one user, µs (lower is better)" ;;
		cpu-users) label="broker CPU per login, distinct users, µs (lower is better)" ;;
		cpu-jwt) label="broker CPU per login, ES256 JWT, µs" ;;
		cpu-tokens) label="broker CPU per login, token-service token, µs" ;;
		esac
		[ -n "$t$m$o" ] || continue
		echo "| $label | ${t:+$(printf '%.0f' "$t") ($(runs $c turnstile))} | ${m:+$(printf '%.0f' "$m") ($(runs $c mosquitto))} | ${o:+$(printf '%.0f' "$o") ($(runs $c mochi))} | $(ratio "$t" "$m") | $(ratio "$t" "$o") | $(fails $c turnstile)/$(fails $c mosquitto)/$(fails $c mochi) |"
	done
	echo
	echo "raw results: $WORK/results.jsonl, $RESULTS; logs in $WORK"
} | tee ${OUT:+"$OUT"}
