// SPDX-License-Identifier: GPL-2.0
/*
 * openat() calls made through an offload ring only, for audit-test.sh.
 *
 *   audit-probe PREFIX N WATCHED
 *
 * Queues N read-only openat() entries of PREFIX.0 .. PREFIX.<N-1> and one
 * write-open of WATCHED, runs them with one offload_enter(), and prints
 * for each entry the arguments it gave and the result it got:
 *
 *   pid 312
 *   entry 0 name=/tmp/x.0 a0=ffffffffffffff9c a1=55d0c0a2 a2=80000 res=3
 *
 * so that the audit records can be matched against them. The probe itself
 * makes no openat() call after the dynamic loader's (which name libraries,
 * not these files), and no stdio stream opens a file. Exits non-zero if
 * the ring is unavailable or an entry failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "offload.h"	/* the selftests' ring helper */

#define MAX_FILES 64

int main(int argc, char **argv)
{
	static char names[MAX_FILES + 1][256];
	uint64_t a2[MAX_FILES + 1];
	int64_t res[MAX_FILES + 1];
	struct offload_cqe cqe;
	struct ring r;
	int n, i, ret, bad = 0;

	if (argc != 4 || (n = atoi(argv[2])) < 1 || n > MAX_FILES) {
		fprintf(stderr, "usage: audit-probe PREFIX N(1..%d) WATCHED\n", MAX_FILES);
		return 2;
	}
	/* Never call 463-465 on a kernel without offload: they may be other calls */
	if (access("/proc/sys/kernel/offload_disabled", F_OK)) {
		fprintf(stderr, "audit-probe: this kernel has no syscall offload\n");
		return 1;
	}
	ret = ring_init(&r, n + 1, 0);
	if (ret) {
		fprintf(stderr, "audit-probe: offload_setup: %s\n", strerror(-ret));
		return 1;
	}
	for (i = 0; i <= n; i++) {
		if (i < n) {
			snprintf(names[i], sizeof(names[i]), "%s.%d", argv[1], i);
			a2[i] = O_RDONLY | O_CLOEXEC;
		} else {
			snprintf(names[i], sizeof(names[i]), "%s", argv[3]);
			a2[i] = O_WRONLY | O_CLOEXEC;
		}
		res[i] = -ENODATA;
		ring_prep(&r, __NR_openat, 0, i, (uint64_t)(int64_t)AT_FDCWD,
			  (uintptr_t)names[i], a2[i], 0, 0, 0);
	}
	ret = sys_offload_enter(r.fd, ring_publish(&r), 0, 0);
	if (ret != n + 1) {
		fprintf(stderr, "audit-probe: offload_enter returned %d (%s), want %d\n",
			ret, ret < 0 ? strerror(errno) : "short", n + 1);
		return 1;
	}
	while (!ring_reap(&r, &cqe))
		if (cqe.user_data <= (uint64_t)n)
			res[cqe.user_data] = cqe.res;

	printf("pid %d\n", getpid());
	for (i = 0; i <= n; i++) {
		printf("entry %d name=%s a0=%llx a1=%lx a2=%llx res=%lld\n", i, names[i],
		       (unsigned long long)(int64_t)AT_FDCWD, (unsigned long)(uintptr_t)names[i],
		       (unsigned long long)a2[i], (long long)res[i]);
		if (res[i] < 0) {
			fprintf(stderr, "audit-probe: entry %d (%s): %s\n", i, names[i],
				strerror(-res[i]));
			bad = 1;
		}
	}
	return bad;
}
