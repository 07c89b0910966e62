#!/usr/bin/env bash
# Run every VM test on a built kernel: the offload selftests, the programs
# in vm-tests/ and the Rust crate's tests on the kernel backend. Fails if
# a test fails or the guest kernel reports a problem (scripts/check-dmesg.sh).
#   vm-test.sh BZIMAGE KERNEL_OBJ OUTDIR
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bzimage=${1:?usage: vm-test.sh BZIMAGE KERNEL_OBJ OUTDIR}; obj=${2:?}; out=${3:?}
BUILD=${BUILD:-$here/build}
KSRC=${KSRC:-$BUILD/linux}
rm -rf "$out"; mkdir -p "$out"
manifest=$out/manifest.tsv

{
	# Every kselftest program the series builds (TEST_GEN_PROGS)
	progs=$(sed -n 's/^TEST_GEN_PROGS *:= *//p' "$KSRC/tools/testing/selftests/offload/Makefile")
	[ -n "$progs" ] || { echo "vm-test: no TEST_GEN_PROGS in the offload selftests" >&2; exit 1; }
	for t in $progs; do
		printf 'kselftest-%s\t%s/vm-tests/run-kselftest.sh %s/selftests/offload/%s\n' \
			"${t%_test}" "$here" "$obj" "$t"
	done
	printf 'demo-check\t%s/vm-tests/demo --check --iterations 20 --accel %s\n' \
		"$BUILD" "$("$here/scripts/accel.sh")"
	printf 'audit-offloaded-entries\t%s/vm-tests/audit-test.sh %s/vm-tests/audit-probe\n' "$here" "$BUILD"
	printf 'strace-sees-offloaded-calls\t%s/vm-tests/strace-test.sh %s/vm-tests/strace-probe\n' "$here" "$BUILD"
} > "$manifest"

# The crate's test binaries, built on the host, run in the guest on the
# kernel backend; SYSCALL_OFFLOAD_REQUIRE_KERNEL makes them fail, not skip,
# if it is unavailable.
if [ -f "$here/Cargo.toml" ]; then
	(cd "$here" && cargo test --workspace --no-run --message-format=json 2>/dev/null) |
	python3 -c '
import json, sys, os
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m.get("profile", {}).get("test"):
        exe = m["executable"]
        name = m["target"]["name"] + "-" + m["target"]["kind"][0]
        print("cargo-%s\tcd /tmp && SYSCALL_OFFLOAD_REQUIRE_KERNEL=1 SYSCALL_OFFLOAD_REQUIRE_HEADER=1 %s --test-threads=1" % (name, exe))
' >> "$manifest"
fi

# Parts of the project with tests of their own in the guest (preload/,
# bench/) print their manifest lines from vm-manifest.sh BUILD.
for part in preload bench; do
	if [ -x "$here/$part/vm-manifest.sh" ]; then
		"$here/$part/vm-manifest.sh" "$BUILD" >> "$manifest"
	fi
done

# Last, so that a kernel it breaks fails no other test: the stress test,
# STRESS_SECONDS (default 120) of fuzzing plus up to ~2 min to calibrate,
# settle and check, well within TEST_TIMEOUT (default 900).
printf 'stress\t%s/vm-tests/stress --seconds %s\n' "$BUILD" "${STRESS_SECONDS:-120}" >> "$manifest"

echo "vm-test: $(grep -c . "$manifest") test programs:"; cut -f1 "$manifest" | sed 's/^/  /'
exec "$here/scripts/vm-manifest.sh" vm-test "$bzimage" "$out" "${VM_TIMEOUT:-2400}" "${TEST_TIMEOUT:-900}"
