/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Count the system calls this process enters, with the kernel's own
 * raw_syscalls:sys_enter tracepoint and a hist trigger keyed on the pid.
 * Reading the count costs a few syscalls itself; syscount_overhead()
 * measures that once so callers can subtract it.
 */
#ifndef SYSCOUNT_H
#define SYSCOUNT_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SYSCOUNT_TRIGGER "/sys/kernel/tracing/events/raw_syscalls/sys_enter/trigger"
#define SYSCOUNT_HIST    "/sys/kernel/tracing/events/raw_syscalls/sys_enter/hist"
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

static int syscount_start(void)
{
	return syscount_write(SYSCOUNT_TRIGGER, SYSCOUNT_SPEC);
}

static void syscount_stop(void)
{
	syscount_write(SYSCOUNT_TRIGGER, "!" SYSCOUNT_SPEC);
}

/* Syscalls entered so far by this process, or -1. */
static long syscount_now(void)
{
	static char buf[1 << 20];
	ssize_t n, len = 0;
	long val = -1;
	char *p;
	int fd = open(SYSCOUNT_HIST, O_RDONLY);

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

/* What one syscount_now() adds to the next one's result. */
static long syscount_overhead(void)
{
	long a = syscount_now(), b = syscount_now();

	return a < 0 || b < 0 ? -1 : b - a;
}

#endif
