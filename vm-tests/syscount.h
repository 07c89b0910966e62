/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Count the system calls one thread enters from user space (its mode
 * switches), with the kernel's own tracepoints, two independent ways:
 *
 *  - hist triggers on raw_syscalls:sys_enter and offload:offload_submit,
 *    keyed on common_pid. common_pid is the id of the task the event fired
 *    in, that is the thread id: the entries a worker ring's kernel thread
 *    runs fire both events with the worker's tid, not the application's;
 *  - a perf counter group of the same two tracepoints opened for one
 *    thread (perf_event_open() with pid = its tid, cpu = -1), which counts
 *    only events that fire while that thread runs.
 *
 * raw_syscalls:sys_enter fires for every syscall, including each entry an
 * offload ring runs, so the entries that offload:offload_submit reports in
 * the same thread are subtracted. (An entry refused before it runs, by the
 * allowlist or seccomp, fires no sys_enter: the workloads counted here have
 * none.) Reading a count costs a few syscalls itself: callers read twice
 * with nothing in between and subtract that.
 *
 * syscount_start() turns the hist triggers on (and slows every syscall
 * while they are), syscount_hits_tids() reads them, syscount_stop() turns
 * them off; syscount_perf_open(), _read() and _close() handle a perf group.
 */
#ifndef SYSCOUNT_H
#define SYSCOUNT_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/perf_event.h>

#ifndef SYSCOUNT_EVENTS
#define SYSCOUNT_EVENTS  "/sys/kernel/tracing/events/"
#endif
#define SYSCOUNT_ENTER   SYSCOUNT_EVENTS "raw_syscalls/sys_enter/"
#define SYSCOUNT_OFFLOAD SYSCOUNT_EVENTS "offload/offload_submit/"
#define SYSCOUNT_SPEC    "hist:keys=common_pid:vals=hitcount:size=4096"

static int syscount_write(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	int ok;

	if (fd < 0)
		return -1;
	ok = write(fd, s, strlen(s)) == (ssize_t)strlen(s);
	close(fd);
	return ok ? 0 : -1;
}

static void syscount_stop(void)
{
	syscount_write(SYSCOUNT_ENTER "trigger", "!" SYSCOUNT_SPEC);
	syscount_write(SYSCOUNT_OFFLOAD "trigger", "!" SYSCOUNT_SPEC);
}

static int syscount_start(void)
{
	if (syscount_write(SYSCOUNT_ENTER "trigger", SYSCOUNT_SPEC) ||
	    syscount_write(SYSCOUNT_OFFLOAD "trigger", SYSCOUNT_SPEC)) {
		syscount_stop();
		return -1;
	}
	return 0;
}

/*
 * Hits of the event in directory @dir so far for each of the @n threads
 * in @tids, into @hits (0 for a thread without any). Returns 0 or -1.
 */
static int syscount_hits_tids(const char *dir, const pid_t *tids, int n, long *hits)
{
	static char buf[1 << 20];
	char path[256];
	ssize_t r, len = 0;
	char *p;
	long key;
	int fd, i;

	for (i = 0; i < n; i++)
		hits[i] = 0;
	snprintf(path, sizeof(path), "%shist", dir);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	while ((r = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += r;
	close(fd);
	buf[len] = 0;
	for (p = buf; (p = strstr(p, "common_pid:")); ) {
		p += strlen("common_pid:");
		key = strtol(p, &p, 10);
		for (i = 0; i < n; i++)
			if (tids[i] && key == tids[i])
				break;
		if (i == n)
			continue;
		p = strstr(p, "hitcount:");
		if (!p)
			break;
		hits[i] = strtol(p + strlen("hitcount:"), &p, 10);
	}
	return 0;
}

/* The perf event id of the tracepoint in directory @dir, or -1. */
static long syscount_tp_id(const char *dir)
{
	char path[256], buf[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%sid", dir);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return atol(buf);
}

/*
 * A perf counter group in @fds, sys_enter then offload_submit, counting
 * the events of the calling thread only; counting starts at once.
 * Returns 0, or -1 with errno set.
 */
static int syscount_perf_open(int fds[2])
{
	const char *dirs[2] = { SYSCOUNT_ENTER, SYSCOUNT_OFFLOAD };
	struct perf_event_attr a;
	long id;
	int i;

	fds[0] = fds[1] = -1;
	for (i = 0; i < 2; i++) {
		id = syscount_tp_id(dirs[i]);
		memset(&a, 0, sizeof(a));
		a.size = sizeof(a);
		a.type = PERF_TYPE_TRACEPOINT;
		a.config = id;
		a.read_format = PERF_FORMAT_GROUP;
		if (id >= 0)
			fds[i] = syscall(__NR_perf_event_open, &a, gettid(), -1, fds[0],
					 PERF_FLAG_FD_CLOEXEC);
		if (fds[i] < 0) {
			if (fds[0] >= 0)
				close(fds[0]);
			fds[0] = -1;
			return -1;
		}
	}
	return 0;
}

static void syscount_perf_close(int fds[2])
{
	int i;

	for (i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	fds[0] = fds[1] = -1;
}

/* The group's counts so far: @enter sys_enter, @submit offload_submit. */
static int syscount_perf_read(const int fds[2], long *enter, long *submit)
{
	uint64_t v[3];

	if (read(fds[0], v, sizeof(v)) != (ssize_t)sizeof(v) || v[0] != 2)
		return -1;
	*enter = v[1];
	*submit = v[2];
	return 0;
}

#endif
