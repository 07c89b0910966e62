#!/usr/bin/env bash
# Fail when the guest kernel reported a bug, even if every test passed.
#   check-dmesg.sh OUTDIR    (holds dmesg.txt and, on debug kernels, kmemleak.txt)
set -euo pipefail
out=${1:?usage: check-dmesg.sh OUTDIR}
[ -s "$out/dmesg.txt" ] || { echo "check-dmesg: no guest dmesg in $out" >&2; exit 1; }
pattern='BUG:|WARNING:|KASAN|UBSAN|Oops|general protection fault|Kernel panic|suspicious RCU usage|possible recursive locking|possible circular locking|inconsistent lock state|lock held when returning|unreferenced object|INFO: task .* blocked'
status=0
if grep -nE "$pattern" "$out/dmesg.txt" >/dev/null; then
	echo "check-dmesg: the guest kernel reported problems:" >&2
	# Show each report with the test that was running (marked in /dev/kmsg)
	awk -v pat="$pattern" '/offload-vm-test: START/ {t=$NF} $0 ~ pat {print "  [" (t ? t : "boot") "] " $0}' \
		"$out/dmesg.txt" >&2
	status=1
fi
if [ -s "$out/kmemleak.txt" ]; then
	echo "check-dmesg: kmemleak found leaks:" >&2
	head -n 40 "$out/kmemleak.txt" >&2
	status=1
fi
[ $status = 0 ] && echo "check-dmesg: guest dmesg clean$([ -f "$out/kmemleak.txt" ] && echo ', kmemleak clean')"
exit $status
