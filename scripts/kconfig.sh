#!/usr/bin/env bash
# Configure an out-of-tree kernel build: tinyconfig, then the given
# fragments merged in order, then olddefconfig. Fails when an option a
# fragment asks for did not take effect (a missing dependency, a typo).
set -euo pipefail
src=${1:?usage: kconfig.sh SRC OBJ FRAGMENT...}; obj=${2:?}; shift 2
mkdir -p "$obj"; src=$(realpath "$src"); obj=$(realpath "$obj")
make -s -C "$src" O="$obj" tinyconfig >/dev/null
"$src"/scripts/kconfig/merge_config.sh -m -O "$obj" "$obj/.config" "$@" >/dev/null
make -s -C "$src" O="$obj" olddefconfig >/dev/null
bad=0
for f in "$@"; do
	while IFS= read -r line; do
		case $line in
		CONFIG_*=*) want=$line; opt=${line%%=*} ;;
		"# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}; want="# $opt is not set" ;;
		*) continue ;;
		esac
		got=$(grep -E "^$opt=|^# $opt is not set" "$obj/.config" || true)
		[ -n "$got" ] || got="# $opt is not set"
		if [ "$got" != "$want" ]; then
			echo "kconfig: $(basename "$f"): wanted '$want', got '$got'" >&2
			bad=1
		fi
	done < "$f"
done
exit $bad
