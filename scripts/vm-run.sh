#!/usr/bin/env bash
# Boot KERNEL (a bzImage) under virtme-ng and run a command in the guest.
#
#   vm-run.sh [-o OUTDIR] [-t SECONDS] KERNEL -- COMMAND...   run, exit with its status
#   vm-run.sh KERNEL                                       interactive shell
#
# ACCEL=kvm|tcg|auto (default auto) picks the accelerator. auto uses KVM only
# where it really works: /dev/kvm is usable *and* a kvm_intel or kvm_amd module
# is loaded. A paravirtual /dev/kvm (kvm_pvm, nested hypervisors) aborts or hangs
# ordinary guests, so it counts as no KVM. The guest shares the host's / read-only
# over 9p; OUTDIR (created) is shared read-write at the same path.
# The whole VM gets a timeout (VM_TIMEOUT, -t; default 1800 s). VM_APPEND
# adds kernel boot options (e.g. pti=on).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
VNG=${VNG:-vng}
# vng runs its helpers (virtme-run, ...) from PATH: put its venv first
case $VNG in */*) VNG=$(cd "$(dirname "$VNG")" && pwd)/$(basename "$VNG"); PATH=$(dirname "$VNG"):$PATH ;; esac
out=
timeout_s=${VM_TIMEOUT:-1800}
while getopts "o:t:" opt; do
	case $opt in
	o) out=$OPTARG ;;
	t) timeout_s=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
kernel=${1:?usage: vm-run.sh [-o OUTDIR] [-t SECONDS] KERNEL [-- COMMAND...]}
shift
[ "${1:-}" = "--" ] && shift
[ -f "$kernel" ] || { echo "vm-run: no kernel image at $kernel (run make kernel)" >&2; exit 2; }

accel=$("$here/accel.sh")
# Tests write sysctls and tracefs: run them as root in the guest whoever
# runs the VM (vng's default is the host user, e.g. on CI runners).
args=(--run "$kernel" --force-9p --user root --memory "${VM_MEMORY:-2G}" --cpus "${VM_CPUS:-2}")
[ "$accel" = tcg ] && args+=(--disable-kvm)
[ -n "${VM_APPEND:-}" ] && args+=(--append "$VM_APPEND")
if [ -n "$out" ]; then
	mkdir -p "$out"
	args+=(--rwdir "$out")
fi
echo "vm-run: accelerator $accel, kernel $kernel${VM_APPEND:+, boot options: $VM_APPEND}" >&2

if [ $# -eq 0 ]; then
	exec "$VNG" "${args[@]}"
fi

# vng must not write to a file directly (QEMU reopens /proc/self/fd/1 and
# truncates it), nor read our stdin: pipe its output, give it /dev/null.
set +e
timeout --foreground -k 10 "$timeout_s" "$VNG" "${args[@]}" --exec "$*" </dev/null 2>&1 | cat
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 124 ] && echo "vm-run: the VM did not finish within ${timeout_s}s" >&2
exit "$rc"
