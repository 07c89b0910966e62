#!/bin/bash
# Runs inside the test VM: every test of a manifest, one at a time.
#
#   run-in-vm.sh MANIFEST OUTDIR
#
# MANIFEST has one test a line: "name<TAB>command". Each test runs with a
# timeout (TEST_TIMEOUT seconds, default 600), its start and end are marked in
# /dev/kmsg so kernel reports can be tied to it, and its output goes to the
# console and to OUTDIR/NAME.log. Kernel leak reports from before the first
# test are cleared; after the last one kmemleak scans, and the guest's dmesg
# and kmemleak report land in OUTDIR for the host to check. Exits non-zero if
# any test failed.
set -u
manifest=${1:?usage: run-in-vm.sh MANIFEST OUTDIR}
out=${2:?}
per_test=${TEST_TIMEOUT:-600}
kmemleak=/sys/kernel/debug/kmemleak

mark() { echo "offload-vm-test: $*" > /dev/kmsg; }

[ -d /sys/kernel/debug/tracing ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null
[ -e /sys/kernel/tracing/trace ] || mount -t tracefs none /sys/kernel/tracing 2>/dev/null
[ -w "$kmemleak" ] && echo clear > "$kmemleak"

echo "vm: kernel $(uname -r), $(nproc) CPUs"
pass=0 fail=0 failed=()
while IFS=$'\t' read -r name cmd; do
	[ -n "$name" ] || continue
	case $name in \#*) continue ;; esac
	mark "START $name"
	echo "=== RUN   $name"
	start=$(date +%s.%N)
	# The test's stdin is /dev/null: it must not eat the manifest.
	timeout -k 5 "$per_test" bash -c "$cmd" </dev/null 2>&1 | tee "$out/$name.log"
	rc=${PIPESTATUS[0]}
	secs=$(echo "$(date +%s.%N) - $start" | bc)
	if [ "$rc" = 0 ]; then
		pass=$((pass + 1)); verdict=PASS
	else
		fail=$((fail + 1)); verdict=FAIL; failed+=("$name")
		[ "$rc" = 124 ] && echo "$name: timed out after ${per_test}s"
	fi
	printf -- '--- %s  %s (%.1fs, exit %s)\n' "$verdict" "$name" "$secs" "$rc"
	mark "END $name $verdict"
done < "$manifest"

if [ -w "$kmemleak" ]; then
	# Objects younger than 5 s are never reported; two scans settle it.
	sleep 6
	echo scan > "$kmemleak"
	echo scan > "$kmemleak"
	cat "$kmemleak" > "$out/kmemleak.txt"
fi
dmesg > "$out/dmesg.txt"

echo "vm: $pass passed, $fail failed${failed[*]:+: ${failed[*]}}"
[ "$fail" = 0 ]
