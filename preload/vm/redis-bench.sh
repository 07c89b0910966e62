#!/bin/bash
# In the VM: Debian's redis-server under the shim in MODE, with
# redis-benchmark GET/SET (50 clients, pipeline 16; every request must be
# answered: the server's command counts must match) and a 1 MiB
# redis-cli --pipe stream (every command answered, no error).
#   redis-bench.sh SO MODE
SO=${1:?usage: redis-bench.sh SO MODE}; MODE=${2:?}
. "$(dirname "$0")/lib.sh"
DIR=$(mktemp -d /tmp/preload-redis.XXXXXX)
N=${N:-20000}
PORT=7379

redis_start $PORT
timeout 300 redis-benchmark -p $PORT -c 50 -P 16 -n "$N" -t set,get -q </dev/null || fail "redis-benchmark: $?"
stats=$(redis-cli -p $PORT info commandstats | tr -d '\r')
echo "$stats" | grep -E '^cmdstat_(get|set):'
for c in get set; do
	calls=$(echo "$stats" | sed -n "s/^cmdstat_$c:calls=\([0-9]*\),.*/\1/p")
	[ "$calls" -ge "$N" ] || fail "$c: $calls calls for $N requests"
done

# 1 MiB of SETs in one --pipe stream
python3 - "$DIR/pipe.txt" <<'PY'
import sys
out, n, size = open(sys.argv[1], "wb"), 0, 0
while size < 1 << 20:
    k, v = b"pipe:%d" % n, b"v" * (n % 200)
    cmd = b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v)
    out.write(cmd); size += len(cmd); n += 1
print(n, file=open(sys.argv[1] + ".n", "w"))
PY
want=$(cat "$DIR/pipe.txt.n")
out=$(timeout 300 redis-cli -p $PORT --pipe < "$DIR/pipe.txt") || fail "redis-cli --pipe: $out"
echo "$out" | tail -1
echo "$out" | grep -q "errors: 0, replies: $want" || fail "--pipe: want $want replies"
[ "$(redis-cli -p $PORT get "pipe:$((want - 1))" | wc -c)" -gt 0 ] || fail "last key missing"
redis_stop $PORT
check_mode
rm -rf "$DIR"
echo "PASS redis-bench $MODE"
