#!/bin/bash
# In the VM: Debian's nginx under the shim in MODE, loaded by wrk
# (50 connections, keep-alive) on files of several sizes: no socket
# errors, no non-2xx answers, and the files come back intact (curl).
#   nginx-wrk.sh SO MODE
SO=${1:?usage: nginx-wrk.sh SO MODE}; MODE=${2:?}
. "$(dirname "$0")/lib.sh"
DIR=$(mktemp -d /tmp/preload-nginx.XXXXXX)
PORT=7380
mkdir -p "$DIR/www"
for n in 100 20000 500000; do head -c $n /dev/urandom > "$DIR/www/f$n"; done
cat > "$DIR/nginx.conf" <<CONF
daemon off; master_process on; worker_processes 1; user root;
pid $DIR/nginx.pid; error_log $DIR/error.log;
events { worker_connections 1024; }
http {
  access_log $DIR/access.log; sendfile on; tcp_nopush on; keepalive_requests 1000000;
  client_body_temp_path $DIR/body; proxy_temp_path $DIR/proxy; fastcgi_temp_path $DIR/fastcgi;
  uwsgi_temp_path $DIR/uwsgi; scgi_temp_path $DIR/scgi;
  server { listen 127.0.0.1:$PORT; root $DIR/www; }
}
CONF
LD_PRELOAD=$SO OFFLOAD_PRELOAD=$MODE OFFLOAD_PRELOAD_STATS_FILE=$DIR/stats \
	/usr/sbin/nginx -c "$DIR/nginx.conf" -p "$DIR" >"$DIR/stdout" 2>"$DIR/stderr" </dev/null &
pid=$!
SERVER_PIDS+=("$pid")
for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
for n in 100 20000 500000; do
	# TCG is slow: a generous per-request timeout, so only real failures count.
	out=$(timeout 120 wrk -t 2 -c 50 --timeout 60s -d "${WRK_SECONDS:-4}s" "http://127.0.0.1:$PORT/f$n" 2>&1) || fail "wrk: $out"
	echo "f$n: $(echo "$out" | grep -E 'requests in' | sed 's/^ *//'), $(echo "$out" | grep -E 'Requests/sec' | tr -s ' ')"
	echo "$out" | grep -qE 'Socket errors|Non-2xx' && { echo "$out"; fail "wrk saw errors"; }
	echo "$out" | grep -qE '^ +[1-9][0-9]* requests in' || fail "no requests"
	# The same file, fetched through python's http client over keep-alive, intact.
	python3 - "$PORT" "$n" "$DIR/www/f$n" <<'PY' || fail "f$n differs"
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=60)
want = open(sys.argv[3], "rb").read()
for _ in range(2):
    c.request("GET", "/f" + sys.argv[2]); r = c.getresponse()
    assert r.status == 200 and r.read() == want
PY
done
kill -QUIT $pid; wait $pid || fail "nginx exited with $?"
check_mode
rm -rf "$DIR"
echo "PASS nginx-wrk $MODE"
