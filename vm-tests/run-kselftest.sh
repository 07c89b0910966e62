#!/bin/bash
# Run a kselftest-harness binary; fail on a failure *or* a skip: in the test
# VM the patched kernel is there, so an offload test has no reason to skip.
#   run-kselftest.sh BINARY [ARGS...]
set -o pipefail
log=$(mktemp)
"$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if grep -qE '^(ok|not ok) .*# SKIP' "$log"; then
	echo "run-kselftest: tests were skipped:"
	grep -E '# SKIP' "$log"
	rc=1
fi
rm -f "$log"
exit "$rc"
