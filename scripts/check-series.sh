#!/usr/bin/env bash
# Build every prefix of the series: with the feature on (vm.config +
# offload.config) and off (vm.config alone, which also leaves SECCOMP off),
# then the whole series once more with the feature on and SECCOMP off.
# (SECCOMP=y with SECCOMP_FILTER=n cannot be configured on x86, the one
# architecture with offload: SECCOMP_FILTER is def_bool y there.)
# Uses its own object directories under BUILD and a scratch worktree, so
# the developer's tree and kernels are left alone.
#   check-series.sh KSRC BUILD
set -euo pipefail
ksrc=$(realpath "${1:?usage: check-series.sh KSRC BUILD}"); mkdir -p "${2:?}"; build=$(realpath "$2")
here=$(cd "$(dirname "$0")/.." && pwd)
cfg=$here/kernel-config
wt=$build/series-worktree
jobs=$(nproc)
cc="gcc"; command -v ccache >/dev/null && cc="ccache gcc"

git -C "$ksrc" worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
git -C "$ksrc" worktree add -q --detach "$wt" base
trap 'git -C "$ksrc" worktree remove --force "$wt"' EXIT
noseccomp=$(mktemp)
{ grep -v '^CONFIG_SECCOMP' "$cfg/offload.config"; echo '# CONFIG_SECCOMP is not set'; } > "$noseccomp"

# Configure from scratch at every commit (an option a later patch adds
# must not be defaulted off by olddefconfig), build, and fail on a build
# error or on any compiler warning in a file the series touches.
build_one() {	# name obj fragments...
	local name=$1 obj=$2; shift 2
	"$here/scripts/kconfig.sh" "$wt" "$obj" "$@" >/dev/null 2>&1 || true
	if ! make -s -C "$wt" O="$obj" -j"$jobs" CC="$cc" bzImage >"$obj.log" 2>&1; then
		echo "  FAIL  $name (log: $obj.log)"; tail -n 20 "$obj.log"; return 1
	fi
	local touched
	touched=$(git -C "$wt" diff --name-only base HEAD | paste -sd'|')
	if grep -E "^$wt/($touched):[0-9]+:[0-9]+: warning" "$obj.log"; then
		echo "  FAIL  $name: warnings in files the series touches"; return 1
	fi
	echo "  ok    $name"
}

status=0
for c in $(git -C "$ksrc" rev-list --reverse base..HEAD); do
	git -C "$wt" checkout -q --detach "$c"
	echo "$(git -C "$ksrc" log -1 --format='%h %s' "$c")"
	build_one "offload on " "$build/obj-series-on" "$cfg/vm.config" "$cfg/offload.config" || status=1
	build_one "offload off" "$build/obj-series-off" "$cfg/vm.config" || status=1
done
# Here every option must take effect (at earlier prefixes the feature's
# own option cannot, hence build_one's tolerance).
if ! "$here/scripts/kconfig.sh" "$wt" "$build/obj-series-noseccomp" "$cfg/vm.config" "$noseccomp"; then
	echo "  FAIL  whole series, SECCOMP=n: the configuration did not take"; status=1
fi
build_one "whole series, offload on, SECCOMP=n" "$build/obj-series-noseccomp" \
	"$cfg/vm.config" "$noseccomp" || status=1
rm -f "$noseccomp"
exit $status
