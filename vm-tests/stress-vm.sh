#!/usr/bin/env bash
# Run the offload stress test (vm-tests/stress.c) alone in a VM, as
# scripts/vm-test.sh runs every test: boot BZIMAGE, run it under
# run-in-vm.sh (kmsg marks, kmemleak scan, dmesg capture), then fail on
# any kernel report with scripts/check-dmesg.sh.
#
#   stress-vm.sh BZIMAGE OUTDIR
#
# STRESS_SECONDS (default 120) is how long it fuzzes; STRESS_PROCS and
# STRESS_SEED are passed on. Calibrating, settling and checking take up
# to about 2 more minutes; the per-test and VM timeouts allow for that.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bzimage=${1:?usage: stress-vm.sh BZIMAGE OUTDIR}; out=${2:?}
BUILD=${BUILD:-$here/build}
secs=${STRESS_SECONDS:-120}
prog=$BUILD/vm-tests/stress
[ -x "$prog" ] || { echo "stress-vm: no $prog (run make vm-progs)" >&2; exit 2; }

rm -rf "$out"; mkdir -p "$out"
printf 'stress\t%s --seconds %s%s%s\n' "$prog" "$secs" \
	"${STRESS_PROCS:+ --procs $STRESS_PROCS}" "${STRESS_SEED:+ --seed $STRESS_SEED}" \
	> "$out/manifest.tsv"
test_timeout=$((secs + 600))

echo "stress-vm: $secs s of stress in a VM, logs in $out"
exec "$here/scripts/vm-manifest.sh" stress-vm "$bzimage" "$out" $((test_timeout + 300)) "$test_timeout"
