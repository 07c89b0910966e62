#!/usr/bin/env bash
# make bench: boot BZIMAGE (the plain patched kernel) once per boot option,
# run the suites in each VM (bench/vm/run.py), then write the tables, plots
# and the files with every run (bench/report.py).
#   bench.sh BZIMAGE
# Environment: RESULTS, SUITES, BENCH_QUICK, BENCH_BOOTS, BENCH_REPS,
# BUILD, VENV (see bench/Makefile.inc), ACCEL, VM_CPUS, BENCH_VM_TIMEOUT.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bzimage=${1:?usage: bench.sh BZIMAGE}
BUILD=${BUILD:-$root/build}
VENV=${VENV:-$BUILD/venv}
RESULTS=${RESULTS:-$here/results}
SUITES=${SUITES:-micro echo redis nginx}
BENCH_BOOTS=${BENCH_BOOTS:-default pti=on mitigations=off}
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
bin=$BUILD/bench/offload-bench
so=$BUILD/preload/liboffload_preload.so
for f in "$bin" "$so" "$bzimage"; do
	[ -e "$f" ] || { echo "bench: $f is missing (run make bench)" >&2; exit 2; }
done
accel=$("$root/scripts/accel.sh")
args=(--bin "$bin" --so "$so" --accel "$accel" --suites "${SUITES// /,}")
[ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK}" != 0 ] && args+=(--quick)
[ -n "${BENCH_REPS:-}" ] && args+=(--reps "$BENCH_REPS")
# A whole VM run, per boot: quick mode fits three in about 20 minutes.
if [ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK}" != 0 ]; then t=${BENCH_VM_TIMEOUT:-1800}; else t=${BENCH_VM_TIMEOUT:-5400}; fi

# Each make bench writes a fresh set of runs.
rm -rf "$RESULTS/raw"
rc=0
start=$(date +%s)
for boot in $BENCH_BOOTS; do
	case $boot in default) opts= ;; *) opts=$boot ;; esac
	dir=$RESULTS/raw/$(echo "$boot" | tr '=' '-')
	echo "bench: boot '$boot' ($accel, ${VM_CPUS:-2} vCPUs), suites: $SUITES"
	mkdir -p "$dir"
	VM_APPEND=$opts "$root/scripts/vm-run.sh" -o "$dir" -t "$t" "$bzimage" -- \
		"/usr/bin/python3 $here/vm/run.py --out $dir --boot $boot ${args[*]@Q}" 2>&1 | tee "$dir/log.txt"
	[ "${PIPESTATUS[0]}" = 0 ] || { echo "bench: the '$boot' VM failed (log: $dir/log.txt)" >&2; rc=1; }
done
echo "bench: VMs took $(( $(date +%s) - start )) s"
"$VENV/bin/python" "$here/report.py" "$RESULTS" || rc=1
exit "$rc"
