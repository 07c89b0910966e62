#!/usr/bin/env bash
# Run every test of a manifest in one VM and judge the run: boot BZIMAGE,
# run the manifest under vm-tests/run-in-vm.sh (kmsg marks, per-test
# timeout, kmemleak scan, dmesg capture), then fail on a failed test or on
# any kernel report (scripts/check-dmesg.sh). Used by vm-test.sh and
# vm-tests/stress-vm.sh.
#   vm-manifest.sh NAME BZIMAGE OUTDIR VM_SECONDS TEST_SECONDS
# OUTDIR/manifest.tsv holds the tests ("name<TAB>command").
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
name=${1:?usage: vm-manifest.sh NAME BZIMAGE OUTDIR VM_SECONDS TEST_SECONDS}
bzimage=${2:?}; out=${3:?}; vm_secs=${4:?}; test_secs=${5:?}

"$here/scripts/vm-run.sh" -o "$out" -t "$vm_secs" "$bzimage" -- \
	"TEST_TIMEOUT=$test_secs $here/vm-tests/run-in-vm.sh $out/manifest.tsv $out"
rc=$?
"$here/scripts/check-dmesg.sh" "$out" || rc=1
if [ "$rc" = 0 ]; then echo "$name: PASS"; else echo "$name: FAIL (logs in $out)"; fi
exit "$rc"
