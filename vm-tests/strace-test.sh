#!/bin/bash
# A program that uses an offload ring still works under strace, and strace
# shows its calls (spec HARDENING.md 8): under PTRACE_SYSCALL tracing
# offload_enter() runs nothing and fails with EPERM; the program (as the
# crate does) then makes the queued calls directly, so the tracer sees them
# as ordinary syscalls.
#
#   strace-test.sh [PROBE]     PROBE: vm-tests/strace-probe, built on the host
set -u
here=$(cd "$(dirname "$0")" && pwd)
probe=${1:-${BUILD:-$here/../build}/vm-tests/strace-probe}

fail() { echo "strace-test: FAIL: $*"; exit 1; }

command -v strace >/dev/null || fail "no strace: apt-get install strace (scripts/deps.sh)"
[ -x "$probe" ] || fail "no probe at $probe (build vm-tests/ first)"
work=$(mktemp -d /tmp/strace-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
trap 'exit 1' INT TERM HUP

markers() { grep -c '^strace-probe: marker line [012]$' "$1"; }

# Untraced, the calls run on the ring
timeout 60 "$probe" > "$work/plain.out" 2>&1 || { cat "$work/plain.out"; fail "the probe failed untraced"; }
cat "$work/plain.out"
grep -qx 'strace-probe: 4 calls ran on the ring' "$work/plain.out" ||
	fail "untraced, the calls did not run on the ring"
[ "$(markers "$work/plain.out")" = 3 ] || fail "untraced, the output lacks the marker lines"

# Traced, the program still works and every call shows in the trace
timeout 120 strace -f -qq -s 64 -o "$work/strace.log" "$probe" > "$work/traced.out" 2>&1
rc=$?
cat "$work/traced.out"
[ "$rc" = 0 ] || fail "the probe failed under strace -f (exit $rc)"
[ "$(markers "$work/traced.out")" = 3 ] || fail "under strace, the output lacks the marker lines"
grep -qx 'strace-probe: 4 calls made directly (offload_enter: EPERM)' "$work/traced.out" ||
	fail "under strace, offload_enter() did not refuse with EPERM (the entries ran unseen)"
# strace 6.1 predates the offload calls: 464 shows as syscall_0x1d0
grep -E '^[0-9]+ +(offload_enter|syscall_0x1d0)\(.*= -1 EPERM' "$work/strace.log" ||
	{ cat "$work/strace.log"; fail "the trace shows no offload_enter() failing with EPERM"; }
for i in 0 1 2; do
	c=$(grep -cE '^[0-9]+ +write\(1, "strace-probe: marker line '"$i"'\\n", 28\) += 28$' "$work/strace.log")
	[ "$c" = 1 ] || { cat "$work/strace.log"; fail "the trace shows the write of marker line $i $c times, want 1"; }
done
# one getppid() for the expected value, one for the queued call
c=$(grep -cE '^[0-9]+ +getppid\(\) += [0-9]+$' "$work/strace.log")
[ "$c" = 2 ] || { cat "$work/strace.log"; fail "the trace shows getppid() $c times, want 2"; }
echo "strace-test: PASS: the probe worked under strace -f and the trace shows its 3 writes and getppid()"
