#!/usr/bin/env bash
# bench/'s smoke tests in the VM, as manifest lines ("name<TAB>command")
# for scripts/vm-test.sh: every suite of `make bench` once, with a few
# hundred requests, so that the suites cannot rot. Nothing is asserted
# but that each run works. Builds offload-bench (release) and the shim
# into BUILD first.
#   vm-manifest.sh BUILD
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
BUILD=${1:?usage: vm-manifest.sh BUILD}
mkdir -p "$BUILD/bench" "$BUILD/preload"
BUILD=$(cd "$BUILD" && pwd)
(cd "$root" && cargo build --release -q -p offload-bench -p offload-preload) >&2
cp "$root/target/release/offload-bench" "$BUILD/bench/"
cp "$root/target/release/liboffload_preload.so" "$BUILD/preload/"
accel=$("$root/scripts/accel.sh")
for s in micro echo redis nginx; do
	printf 'bench-smoke-%s\tout=$(mktemp -d /tmp/bench-smoke.XXXXXX) && /usr/bin/python3 %s/vm/run.py --smoke --suites %s --accel %s --boot smoke --bin %s --so %s --out $out\n' \
		"$s" "$here" "$s" "$accel" "$BUILD/bench/offload-bench" "$BUILD/preload/liboffload_preload.so"
done
