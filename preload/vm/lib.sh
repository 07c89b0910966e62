# Shared by the shim's VM scripts: start a server under the shim, stop it,
# check its stats. Sourced; SO is the shim, MODE the OFFLOAD_PRELOAD mode.
set -uo pipefail
fail() { echo "FAIL: $*"; exit 1; }
# Servers started here never outlive the script (they would hold the test
# runner's output pipe open).
SERVER_PIDS=()
trap 'for p in "${SERVER_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done' EXIT

# redis_start PORT [ARGS...]: redis-server under the shim, in $DIR
redis_start() {
	local port=$1; shift
	LD_PRELOAD=$SO OFFLOAD_PRELOAD=$MODE OFFLOAD_PRELOAD_STATS_FILE=$DIR/stats \
		/usr/bin/redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
		--protected-mode no --daemonize no --dir "$DIR" --logfile "$DIR/redis.log" "$@" \
		>"$DIR/stdout" 2>"$DIR/stderr" </dev/null &
	REDIS_PID=$!
	SERVER_PIDS+=("$REDIS_PID")
	for _ in $(seq 200); do
		redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	cat "$DIR/stderr"; fail "redis did not start"
}

redis_stop() {
	redis-cli -p "$1" shutdown nosave >/dev/null 2>&1
	wait "$REDIS_PID" || fail "redis exited with $?"
}

# The shim ran in $MODE: no fallback line; rings entered (inline/worker).
check_mode() {
	if grep -q "offload-preload:" "$DIR/stderr"; then
		cat "$DIR/stderr"; fail "the shim printed a fallback line in mode $MODE"
	fi
	local line; line=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^calls=/) { split($i, a, "="); if (a[2] > m) { m = a[2]; l = $0 } } } END { print l }' "$DIR/stats")
	echo "shim: $line"
	case $MODE in
	off) ;;
	emulate) echo "$line" | grep -q ' deferred=[1-9]' || fail "nothing deferred" ;;
	*)
		echo "$line" | grep -q ' deferred=[1-9]' || fail "nothing deferred"
		echo "$line" | grep -q ' enters=[1-9]' || fail "no offload_enter"
		;;
	esac
}
