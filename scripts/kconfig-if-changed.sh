#!/usr/bin/env bash
# Configure OBJ from tinyconfig + FRAGMENTS unless it already was, from the
# same fragments (scripts/kconfig.sh does the work and the checking).
#   kconfig-if-changed.sh KSRC OBJ FRAGMENT...
set -euo pipefail
ksrc=$1 obj=$2; shift 2
here=$(cd "$(dirname "$0")" && pwd)
want=$(cat "$@" | sha256sum | cut -c1-16)
if [ -f "$obj/.config" ] && [ "$(cat "$obj/.offload-fragments" 2>/dev/null)" = "$want" ]; then
	exit 0
fi
echo "kconfig: configuring $obj from tinyconfig + $*"
"$here/kconfig.sh" "$ksrc" "$obj" "$@"
echo "$want" > "$obj/.offload-fragments"
