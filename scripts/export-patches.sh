#!/usr/bin/env bash
# Regenerate patches/ from the kernel tree's commits on top of its base,
# with a cover letter whose text is the branch description (the previous
# cover letter's, unless you changed it: git config branch.offload.description).
#   export-patches.sh KSRC PATCHDIR
set -euo pipefail
ksrc=${1:?usage: export-patches.sh KSRC PATCHDIR}; pdir=${2:?}
n=$(git -C "$ksrc" rev-list --count base..HEAD)
[ "$n" -gt 0 ] || { echo "export-patches: no commits on top of base in $ksrc" >&2; exit 1; }
if [ -n "$(git -C "$ksrc" status --porcelain --untracked-files=no)" ]; then
	echo "export-patches: $ksrc has uncommitted changes; commit them first" >&2
	exit 1
fi
git -C "$ksrc" config branch.offload.description >/dev/null ||
	{ echo "export-patches: set the cover letter first: git -C $ksrc branch --edit-description" >&2; exit 1; }
tmp=$(mktemp -d)
git -C "$ksrc" format-patch -q --cover-letter --cover-from-description=subject \
	--no-signature --zero-commit -o "$tmp" base..HEAD
rm -f "$pdir"/*.patch
mkdir -p "$pdir"
mv "$tmp"/*.patch "$pdir"/
rmdir "$tmp"
# The tree now matches the series: later builds must not see "local commits".
. "$(dirname "$0")/series-state.sh"
series_record "$ksrc" "$pdir"
echo "export-patches: wrote $n patches and a cover letter to $pdir"
