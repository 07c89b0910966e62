/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Count the system calls this process enters from user space (its mode
 * switches), with the kernel's own tracepoints and hist triggers keyed on
 * the pid: raw_syscalls:sys_enter fires for every syscall, including each
 * entry an offload ring runs, so the entries that offload:offload_submit
 * reports are subtracted. (An entry refused before it runs, by the
 * allowlist or seccomp, fires no sys_enter: the workloads counted here
 * have none.) Reading the count costs a few syscalls itself;
 * syscount_overhead() measures that once so callers can subtract it.
 */
#ifndef SYSCOUNT_H
#define SYSCOUNT_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SYSCOUNT_EVENTS  "/sys/kernel/tracing/events/"
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

/* Hits of the event in directory @dir for this process so far, or -1. */
static long syscount_hits(const char *dir)
{
	static char buf[1 << 20];
	char path[256];
	ssize_t n, len = 0;
	long val = 0;
	char *p;
	int fd;

	snprintf(path, sizeof(path), "%shist", dir);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += n;
	close(fd);
	buf[len] = 0;
	for (p = buf; (p = strstr(p, "common_pid:")); ) {
		p += strlen("common_pid:");
		if (strtol(p, &p, 10) != getpid())
			continue;
		p = strstr(p, "hitcount:");
		if (p)
			val = strtol(p + strlen("hitcount:"), NULL, 10);
		break;
	}
	return val;
}

/* Syscalls entered from user space so far by this process, or -1. */
static long syscount_now(void)
{
	long entered = syscount_hits(SYSCOUNT_ENTER);
	long offloaded = syscount_hits(SYSCOUNT_OFFLOAD);

	return entered < 0 || offloaded < 0 ? -1 : entered - offloaded;
}

/* What one syscount_now() adds to the next one's result. */
static long syscount_overhead(void)
{
	long a = syscount_now(), b = syscount_now();

	return a < 0 || b < 0 ? -1 : b - a;
}

#endif
