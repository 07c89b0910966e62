// SPDX-License-Identifier: GPL-2.0
/*
 * A program that batches its calls on an offload ring and falls back to
 * direct calls when offload_enter() refuses with EPERM, as the crate does
 * under ptrace syscall tracing (spec HARDENING.md 8), for strace-test.sh.
 *
 *   strace-probe
 *
 * Queues three write()s of known lines to stdout and a getppid(), runs
 * them with one offload_enter() or, on EPERM, makes the same calls
 * directly from its own copy of the entries, checks every result, and
 * ends with one of
 *
 *   strace-probe: 4 calls ran on the ring
 *   strace-probe: 4 calls made directly (offload_enter: EPERM)
 *
 * Exits non-zero if any call failed or returned a wrong result.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "offload.h"	/* the selftests' ring helper */

#define NR_CALLS 4

struct call {
	uint32_t nr;
	uint64_t args[6];
	int64_t want;
	int64_t res;
};

int main(void)
{
	static const char * const lines[] = {
		"strace-probe: marker line 0\n",
		"strace-probe: marker line 1\n",
		"strace-probe: marker line 2\n",
	};
	struct call calls[NR_CALLS] = {};
	struct offload_cqe cqe;
	struct ring r;
	int i, ret, direct = 0, bad = 0;

	for (i = 0; i < 3; i++) {
		calls[i].nr = __NR_write;
		calls[i].args[0] = STDOUT_FILENO;
		calls[i].args[1] = (uintptr_t)lines[i];
		calls[i].args[2] = strlen(lines[i]);
		calls[i].want = strlen(lines[i]);
	}
	calls[3].nr = __NR_getppid;
	calls[3].want = getppid();

	/* Never call 463-465 on a kernel without offload: they may be other calls */
	if (access("/proc/sys/kernel/offload_disabled", F_OK)) {
		fprintf(stderr, "strace-probe: this kernel has no syscall offload\n");
		return 1;
	}
	ret = ring_init(&r, NR_CALLS, 0);
	if (ret) {
		fprintf(stderr, "strace-probe: offload_setup: %s\n", strerror(-ret));
		return 1;
	}
	for (i = 0; i < NR_CALLS; i++) {
		const uint64_t *a = calls[i].args;

		calls[i].res = -ENODATA;
		ring_prep(&r, calls[i].nr, 0, i, a[0], a[1], a[2], a[3], a[4], a[5]);
	}
	fflush(stdout);
	ret = sys_offload_enter(r.fd, ring_publish(&r), 0, 0);
	if (ret == -1 && errno == EPERM) {
		/* A tracer must see every call: make them ourselves */
		direct = 1;
		for (i = 0; i < NR_CALLS; i++) {
			const uint64_t *a = calls[i].args;
			long res = syscall(calls[i].nr, a[0], a[1], a[2], a[3], a[4], a[5]);

			calls[i].res = res == -1 ? -errno : res;
		}
	} else if (ret != NR_CALLS) {
		fprintf(stderr, "strace-probe: offload_enter returned %d (%s)\n", ret,
			ret < 0 ? strerror(errno) : "short");
		return 1;
	} else {
		while (!ring_reap(&r, &cqe))
			if (cqe.user_data < NR_CALLS)
				calls[cqe.user_data].res = cqe.res;
	}

	for (i = 0; i < NR_CALLS; i++)
		if (calls[i].res != calls[i].want) {
			fprintf(stderr, "strace-probe: call %d (nr %u): %lld, want %lld\n", i,
				calls[i].nr, (long long)calls[i].res, (long long)calls[i].want);
			bad = 1;
		}
	printf("strace-probe: %d calls %s\n", NR_CALLS,
	       direct ? "made directly (offload_enter: EPERM)" : "ran on the ring");
	ring_exit(&r);
	return bad;
}
