# bench/lib.sh: helpers shared by the benchmark scripts (bench/compare, bench/logins/run.sh,
# bench/readgate). Source it; it defines functions only.

# log MSG...: a line on standard error.
log() { printf '%s\n' "$*" >&2; }
# has LIST ITEM: whether the comma-separated LIST holds ITEM.
has() { case ",$1," in *",$2,"*) return 0 ;; esac; return 1; }
# jget JSON KEY: the first scalar named KEY in JSON, empty when there is none.
jget() { printf '%s' "$1" | { grep -o "\"$2\":[^,}]*" || true; } | head -1 | cut -d: -f2- | tr -d '"'; }
# calc EXPR: EXPR evaluated by awk.
calc() { awk "BEGIN { print $* }"; }
# fmt_int N: N rounded, with thousands separators.
fmt_int() { calc "int($1 + 0.5)" | sed -E ':a; s/^(-?[0-9]+)([0-9]{3})/\1,\2/; ta'; }
# cpu_ticks PID: the process's user and system CPU time so far, in clock ticks (getconf CLK_TCK).
# The fields are counted after the command name, which may hold spaces.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# free_port: a TCP port on 127.0.0.1 that nothing listens on, below Linux's ephemeral range
# (32768-60999): a port there may be some client's outgoing port, which no connect test sees,
# and then the broker cannot bind it.
free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 12768))
		if ! tcp_accepts "$p"; then
			echo "$p"
			return
		fi
	done
	log "$(basename "$0"): no free port found"
	exit 1
}

# tcp_accepts PORT: whether something accepts TCP connections on 127.0.0.1:PORT.
tcp_accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# mqtt_answers PORT: whether the broker on 127.0.0.1:PORT answers an MQTT 3.1.1 CONNECT (client
# id "probe", no credentials) with a CONNACK, accepting or refusing it, within 2 s. A port that
# accepts TCP connections is not yet a broker that serves them: Turnstile binds its listeners
# before the rest of its start (store recovery, the password hashing of a first start), and the
# kernel completes handshakes on a listening socket before anything accepts them.
mqtt_answers() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf '\x10\x11\x00\x04MQTT\x04\x02\x00\x3c\x00\x05probe' >&3
		IFS= read -r -t 2 -N 1 b <&3 && [ "$b" = ' ' ] # CONNACK's first byte, 0x20
	) 2>/dev/null
}

# broker_answers PORT [tcp]: mqtt_answers, or with tcp (an HTTP port) tcp_accepts.
broker_answers() {
	if [ "${2:-}" = tcp ]; then tcp_accepts "$1"; else mqtt_answers "$1"; fi
}
