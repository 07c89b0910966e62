#!/bin/bash
# Offloaded entries are audited as their own syscalls (spec HARDENING.md 9):
# a syscall rule (auditctl -S openat) and a file watch (auditctl -w FILE -p w)
# fire for openat() calls that run from an offload ring, each with the
# entry's number, arguments and result, and the key of the rule that matched.
#
#   audit-test.sh [PROBE]     PROBE: vm-tests/audit-probe, built on the host
#
# Runs in the test VM as root with no audit daemon, so the kernel prints the
# records to its log ("audit: type=1300 ..."). The probe names files that it
# never opens directly (only its entries do), so each record naming one of
# them comes from an entry; the test wants exactly one per entry. Audit rules,
# audit state and the printk rate limit are restored on exit, also on failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
probe=${1:-${BUILD:-$here/../build}/vm-tests/audit-probe}
n=${AUDIT_TEST_FILES:-5}
watched=/tmp/watched

fail() { echo "audit-test: FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || fail "must run as root (it runs in the test VM)"
command -v auditctl >/dev/null || fail "no auditctl: apt-get install auditd (scripts/deps.sh)"
[ -x "$probe" ] || fail "no probe at $probe (build vm-tests/ first)"
status=$(auditctl -s 2>&1) ||
	fail "the kernel has no audit support (CONFIG_AUDIT=y, CONFIG_AUDITSYSCALL=y): $status"
field() { awk -v k="$1" '$1 == k { print $2 }' <<<"$status"; }
daemon=$(field pid) prev_enabled=$(field enabled) prev_backlog=$(field backlog_limit)
[ "${daemon:-0}" = 0 ] || fail "an audit daemon (pid $daemon) would take the records"
[ "$prev_enabled" != 2 ] || fail "the audit configuration is locked (enabled 2)"
[ "$(auditctl -l)" = "No rules" ] || fail "audit rules are loaded already; this test deletes all rules"
prev_ratelimit=$(cat /proc/sys/kernel/printk_ratelimit)

work=$(mktemp -d /tmp/audit-test.XXXXXX)
made_watched=
cleanup() {
	auditctl -D >/dev/null 2>&1
	auditctl -e "${prev_enabled:-0}" >/dev/null 2>&1
	[ -n "$prev_backlog" ] && auditctl -b "$prev_backlog" >/dev/null 2>&1
	echo "$prev_ratelimit" > /proc/sys/kernel/printk_ratelimit
	[ -n "$made_watched" ] && rm -f "$watched"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# The files exist before any rule does: only the probe's entries open them
for ((i = 0; i < n; i++)); do : > "$work/f.$i"; done
if [ ! -e "$watched" ]; then : > "$watched" && made_watched=1; fi

# No daemon: every record goes through printk, which must not drop any
echo 0 > /proc/sys/kernel/printk_ratelimit
auditctl -b 8192 >/dev/null || fail "auditctl -b"
auditctl -e 1 >/dev/null || fail "auditctl -e 1"
# The watch first: the first exit rule that matches names the record's key
auditctl -w "$watched" -p w -k offw || fail "auditctl -w $watched"
auditctl -a always,exit -F arch=b64 -S openat -k offl || fail "auditctl -a ... -S openat"
echo "audit-test: rules loaded, probe starts" > /dev/kmsg

"$probe" "$work/f" "$n" "$watched" > "$work/probe.out" 2>&1
rc=$?
auditctl -D >/dev/null
cat "$work/probe.out"
[ "$rc" = 0 ] || fail "the probe failed (exit $rc)"
pid=$(awk '$1 == "pid" { print $2 }' "$work/probe.out")
[ -n "$pid" ] || fail "the probe printed no pid"

# Match the records against the entries. Records of one event share the
# stamp audit(TIME:SERIAL): the PATH record (1302) names the file, the
# SYSCALL record (1300) has the number, arguments, exit, pid, comm and key.
check() {
	dmesg > "$work/kmsg.txt"
	awk -v pid="$pid" -v entries="$work/probe.out" -v watched="$watched" -v verbose="$1" '
	function val(rec, k,    m) {
		if (match(rec, " " k "=[^ ]*")) {
			m = substr(rec, RSTART + length(k) + 2, RLENGTH - length(k) - 2)
			gsub(/"/, "", m)
			return m
		}
		return ""
	}
	BEGIN {
		while ((getline line < entries) > 0) {
			if (line !~ /^entry /)
				continue
			nm = val(line, "name")
			want[nm] = 1; a0[nm] = val(line, "a0"); a1[nm] = val(line, "a1")
			a2[nm] = val(line, "a2"); res[nm] = val(line, "res")
			key[nm] = nm == watched ? "offw" : "offl"
			nwant++
		}
	}
	/audit: type=130[02] audit\(/ {
		match($0, /audit\([0-9.]+:[0-9]+\)/)
		stamp = substr($0, RSTART, RLENGTH)
		rec = substr($0, index($0, "audit: type="))
		if (rec ~ /^audit: type=1302 /) {
			nm = val(rec, "name")
			if (nm in want && !((stamp, nm) in seen)) {
				seen[stamp, nm] = 1
				events[nm] = events[nm] " " stamp
				count[nm]++
			}
		} else {
			sys[stamp] = rec
		}
	}
	END {
		bad = 0
		for (nm in want) {
			if (count[nm] != 1) {
				if (verbose)
					printf "%s: in %d audit events, want 1 (one entry opened it)\n", nm, count[nm]
				bad = 1
				continue
			}
			stamp = substr(events[nm], 2)
			rec = sys[stamp]
			got = sprintf("syscall=%s pid=%s comm=%s key=%s a0=%s a1=%s a2=%s exit=%s",
				      val(rec, "syscall"), val(rec, "pid"), val(rec, "comm"),
				      val(rec, "key"), val(rec, "a0"), val(rec, "a1"),
				      val(rec, "a2"), val(rec, "exit"))
			expect = sprintf("syscall=257 pid=%s comm=audit-probe key=%s a0=%s a1=%s a2=%s exit=%s",
				      pid, key[nm], a0[nm], a1[nm], a2[nm], res[nm])
			if (got != expect || val(rec, "exe") !~ /\/audit-probe$/) {
				if (verbose)
					printf "%s %s:\n  got  %s exe=%s\n  want %s exe=.../audit-probe\n",
					       nm, stamp, got, val(rec, "exe"), expect
				bad = 1
			} else if (verbose) {
				printf "ok: %s %s: %s\n", nm, stamp, got
			}
		}
		exit bad
	}' "$work/kmsg.txt"
}

# kauditd prints asynchronously: give it a few seconds
for ((t = 0; t < 10; t++)); do
	check 0 && break
	sleep 1
done
if ! check 1; then
	echo "audit-test: the probe's records in the kernel log:"
	grep -F "pid=$pid " "$work/kmsg.txt" | grep -F 'audit: type=1300' | head -20
	grep -F "$work/f." "$work/kmsg.txt" | head -20
	fail "offloaded openat() entries were not audited as openat() (rule -S openat key offl: $n, watch -w $watched key offw: 1)"
fi
echo "audit-test: PASS: $n offloaded openat() matched -S openat (key offl), 1 matched the watch on $watched (key offw)"
