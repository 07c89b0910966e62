#!/usr/bin/env bash
# The shim's tests in the VM, as manifest lines ("name<TAB>command") for
# scripts/vm-test.sh. Builds the shim (release) into BUILD/preload first.
# The crate's cargo tests (tests/*.rs) run in the VM too: vm-test.sh runs
# every workspace test binary there, on the kernel backend.
#   vm-manifest.sh BUILD
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
BUILD=${1:?usage: vm-manifest.sh BUILD}
# The release shim for the lines below, and the debug one next to the
# cargo test binaries that vm-test.sh runs in the guest (cargo test does
# not build a cdylib by itself, and the guest cannot build).
(cd "$root" && cargo build --release -q -p offload-preload && cargo build -q -p offload-preload --lib) >&2
mkdir -p "$BUILD/preload"
cp "$root/target/release/liboffload_preload.so" "$BUILD/preload/"
so=$BUILD/preload/liboffload_preload.so
# Sized for TCG: about 7 minutes together. Off shows the checks are sound.
for mode in off inline worker; do
	n=20000; [ "$mode" = off ] && n=10000
	printf 'preload-redis-bench-%s\tN=%s %s/vm/redis-bench.sh %s %s\n' "$mode" "$n" "$here" "$so" "$mode"
	printf 'preload-nginx-wrk-%s\tWRK_SECONDS=2 %s/vm/nginx-wrk.sh %s %s\n' "$mode" "$here" "$so" "$mode"
done
# The figures (8 minutes under TCG) are `make preload-figures`, not a test.
