#!/usr/bin/env bash
# Print the accelerator to boot test VMs with: kvm or tcg.
# ACCEL=kvm or ACCEL=tcg forces one; ACCEL=auto (default) detects.
case ${ACCEL:-auto} in
kvm|tcg) echo "$ACCEL"; exit 0 ;;
auto) ;;
*) echo "ACCEL must be kvm, tcg or auto, not '$ACCEL'" >&2; exit 2 ;;
esac
# /dev/kvm alone proves nothing: paravirtual or nested hypervisors expose it
# and then abort or hang a normal guest. Trust only the hardware modules.
if [ -r /dev/kvm ] && [ -w /dev/kvm ] &&
   { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
	echo kvm
else
	echo tcg
fi
