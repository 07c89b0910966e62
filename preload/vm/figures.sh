#!/bin/bash
# In the VM: requests/s and syscalls entered per request for Debian's
# redis-server under redis-benchmark (100 clients, pipeline 16, GET and
# SET), plain, with the inline shim and with the worker shim. Printed, not
# asserted. Syscalls are the kernel's count for the server's main thread:
# raw_syscalls:sys_enter minus offload:offload_submit (each entry a ring
# runs fires sys_enter too), as vm-tests/syscount.h counts them. Timing and
# counting are separate runs (the hist triggers slow every syscall).
#   figures.sh SO [MODES]
SO=${1:?usage: figures.sh SO [MODES]}
MODES=${2:-off inline worker}
. "$(dirname "$0")/lib.sh"
N=${N:-40000}
PORT=7381
EV=/sys/kernel/tracing/events
SPEC='hist:keys=common_pid:vals=hitcount:size=4096'
hits() { awk -v p="$2" '/common_pid:/ { for (i = 1; i <= NF; i++) if ($i ~ /^common_pid:/) { split($i, a, ":"); k = a[2] == "" ? $(i + 1) : a[2] } } /hitcount:/ && k == p { for (i = 1; i <= NF; i++) if ($i ~ /^hitcount:/) { split($i, b, ":"); print (b[2] == "" ? $(i + 1) : b[2]); exit } }' "$EV/$1/hist"; }

printf '%-8s %12s %12s %14s %12s\n' mode "SET req/s" "GET req/s" "syscalls/req" "enters/req"
for MODE in $MODES; do
	DIR=$(mktemp -d /tmp/preload-fig.XXXXXX)
	redis_start $PORT
	out=$(redis-benchmark -p $PORT -c 100 -P 16 -n "$N" -t set,get -q </dev/null 2>&1 | tr '\r' '\n' | grep 'requests per second')
	set_rps=$(echo "$out" | awk '/^SET/ { print $2 }'); get_rps=$(echo "$out" | awk '/^GET/ { print $2 }')
	echo "$SPEC" > $EV/raw_syscalls/sys_enter/trigger
	echo "$SPEC" > $EV/offload/offload_submit/trigger
	redis-benchmark -p $PORT -c 100 -P 16 -n "$N" -t set,get -q </dev/null >/dev/null 2>&1
	enter=$(hits raw_syscalls/sys_enter $REDIS_PID); submit=$(hits offload/offload_submit $REDIS_PID)
	echo "!$SPEC" > $EV/raw_syscalls/sys_enter/trigger
	echo "!$SPEC" > $EV/offload/offload_submit/trigger
	redis_stop $PORT
	enters=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^enters=/) { split($i, a, "="); s += a[2] } } END { print s + 0 }' "$DIR/stats")
	switches=$(( ${enter:-0} - ${submit:-0} ))
	printf '%-8s %12s %12s %14s %12s\n' "$MODE" "$set_rps" "$get_rps" \
		"$(echo "scale=4; $switches / (2 * $N)" | bc)" "$(echo "scale=4; $enters / (4 * $N)" | bc)"
	echo "         (main thread: sys_enter $enter, offloaded entries ${submit:-0}; shim: $(grep -c . "$DIR/stats") stats lines)"
	rm -rf "$DIR"
done
echo "accelerator: $(grep -q hypervisor /proc/cpuinfo && echo 'VM (see vm-run.sh)'), requests: 2 x $N per run"
