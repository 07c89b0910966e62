#!/usr/bin/env bash
# Bring the kernel tree to base + patches/ (git am), unless a developer
# has committed there since the series was last applied: then the tree is
# the truth and is built as it is (run `make patches` to export it).
#   prepare-tree.sh KSRC PATCHDIR
set -euo pipefail
ksrc=${1:?usage: prepare-tree.sh KSRC PATCHDIR}; pdir=${2:?}
. "$(dirname "$0")/series-state.sh"
state=$ksrc/.git/offload-applied
series=$(series_patches "$pdir")
[ -n "$series" ] || { echo "prepare-tree: no patches in $pdir" >&2; exit 1; }
hash=$(series_hash "$pdir")
head=$(git -C "$ksrc" rev-parse HEAD)

if [ -f "$state" ]; then
	read -r applied_hash applied_head < "$state"
	if [ "$head" != "$applied_head" ]; then
		echo "prepare-tree: $ksrc has commits made after the series was applied;"
		echo "prepare-tree: building it as it is (make patches exports them, make reset-tree drops them)"
		exit 0
	fi
	if [ "$hash" = "$applied_hash" ]; then
		echo "prepare-tree: series already applied ($(echo "$series" | wc -l) patches)"
		exit 0
	fi
fi

if [ -n "$(git -C "$ksrc" status --porcelain --untracked-files=no)" ]; then
	echo "prepare-tree: $ksrc has uncommitted changes; commit or drop them first" >&2
	exit 1
fi
git -C "$ksrc" checkout -q -B offload base
# Ignore the cover letter; apply the rest in order
git -C "$ksrc" am -q --whitespace=nowarn $series
# The cover letter's text becomes the branch description for `make patches`
cover=$(ls "$pdir"/0000-*.patch 2>/dev/null || true)
if [ -n "$cover" ]; then
	python3 - "$cover" > "$ksrc/.git/offload-cover.txt" <<'PY'
import email, re, sys
msg = email.message_from_binary_file(open(sys.argv[1], "rb"))
subject = re.sub(r"\s+", " ", str(msg["Subject"]))
subject = re.sub(r"^\[[^]]*\] ", "", subject)
body = []
for line in msg.get_payload().splitlines():
    if re.match(r"^\S.* \(\d+\):$", line):   # the shortlog starts
        break
    body.append(line)
print(subject + "\n\n" + "\n".join(body).strip())
PY
	git -C "$ksrc" config branch.offload.description "$(cat "$ksrc/.git/offload-cover.txt")"
fi
series_record "$ksrc" "$pdir"
echo "prepare-tree: applied $(echo "$series" | wc -l) patches on $(git -C "$ksrc" log -1 --format=%s base)"
