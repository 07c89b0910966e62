// SPDX-License-Identifier: GPL-2.0
/*
 * The same work with direct syscalls and through an inline offload ring.
 *
 * Two workloads, each CLIENTS calls per event-loop iteration:
 *  - reply: one 64-byte write() to each client's UNIX socket, as a Redis
 *    or nginx reply phase does; the clients then read their replies;
 *  - getppid: a call that does nearly nothing, so the mode switch is
 *    most of its cost.
 * "direct" makes the calls one by one; "ring" queues them and runs them
 * with one offload_enter(). Both must give the same results (every write
 * returns 64 and every client receives its reply; getppid the parent).
 *
 * It prints, for each mode, the syscalls entered from user space per
 * iteration (counted by the kernel's tracepoints, which emulation does not
 * distort: raw_syscalls:sys_enter, which also fires for each entry a ring
 * runs, minus offload:offload_submit; see syscount.h) and the time per
 * iteration (which emulation does distort: see --accel).
 *
 *   demo [--clients N] [--iterations N] [--accel NAME] [--check]
 *
 * --check exits non-zero unless the ring enters exactly one syscall per
 * iteration and direct mode one per call (used as a VM test).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "offload.h"	/* the selftests' ring helper */
#include "syscount.h"

#define MSG_LEN 64
#define MAX_CLIENTS 1024

static int clients = 32, iterations = 2000;
static int srv[MAX_CLIENTS], cli[MAX_CLIENTS];
static char reply[MAX_CLIENTS][MSG_LEN];
static struct ring ring;

static void die(const char *what)
{
	fprintf(stderr, "demo: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Reply to every client with direct write() calls. */
static bool iteration_direct(void)
{
	bool ok = true;
	int i;

	for (i = 0; i < clients; i++)
		ok &= write(srv[i], reply[i], MSG_LEN) == MSG_LEN;
	return ok;
}

/*
 * Queue one entry per client, syscall @nr with args(i), run them all with
 * one offload_enter(), and check that each completed in order with @want.
 */
static bool ring_iteration(uint32_t nr, void (*args)(int i, uint64_t a[3]), long want)
{
	struct offload_cqe cqe;
	uint64_t a[3];
	bool ok = true;
	int i;

	for (i = 0; i < clients; i++) {
		args(i, a);
		if (ring_prep3(&ring, nr, 0, i, a[0], a[1], a[2]))
			return false;
	}
	if (sys_offload_enter(ring.fd, ring_publish(&ring), 0, 0) != clients)
		return false;
	for (i = 0; i < clients; i++) {
		if (ring_reap(&ring, &cqe))
			return false;
		ok &= cqe.user_data == (uint64_t)i && cqe.res == want;
	}
	return ok;
}

static void reply_args(int i, uint64_t a[3])
{
	a[0] = srv[i];
	a[1] = (uintptr_t)reply[i];
	a[2] = MSG_LEN;
}

/* Reply to every client through the ring. */
static bool iteration_ring(void)
{
	return ring_iteration(__NR_write, reply_args, MSG_LEN);
}

static pid_t parent;	/* getppid(), read once at start */

/* N calls that do next to nothing, direct. */
static bool getppid_direct(void)
{
	bool ok = true;
	int i;

	for (i = 0; i < clients; i++)
		ok &= syscall(__NR_getppid) == parent;
	return ok;
}

static void no_args(int i __attribute__((unused)), uint64_t a[3])
{
	a[0] = a[1] = a[2] = 0;
}

/* The same N calls through the ring. */
static bool getppid_ring(void)
{
	return ring_iteration(__NR_getppid, no_args, parent);
}

static bool no_drain(void)
{
	return true;
}

/* The clients read their replies (not part of the measured work). */
static bool drain_clients(void)
{
	char buf[MSG_LEN];
	int i;

	for (i = 0; i < clients; i++)
		if (read(cli[i], buf, MSG_LEN) != MSG_LEN || memcmp(buf, reply[i], MSG_LEN))
			return false;
	return true;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* The first line of a small file, or "unknown"; valid until the next call. */
static const char *first_line(const char *path)
{
	static char buf[4096];	/* virtme-ng's kernel command lines are long */
	FILE *f = fopen(path, "r");

	if (!f || !fgets(buf, sizeof(buf), f))
		strcpy(buf, "unknown");
	if (f)
		fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return buf;
}

/* The boot options that change syscall cost (pti=, mitigations=), or "default". */
static const char *cmdline_opts(void)
{
	static char out[256];
	char *tok, *save, *line = strdup(first_line("/proc/cmdline"));

	out[0] = 0;
	for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		if (!strncmp(tok, "pti=", 4) || !strncmp(tok, "mitigations=", 12) ||
		    !strncmp(tok, "nopti", 5) || !strncmp(tok, "spectre", 7)) {
			if (strlen(out) + strlen(tok) + 2 < sizeof(out))
				strcat(strcat(out, out[0] ? " " : ""), tok);
		}
	free(line);
	return out[0] ? out : "default";
}

/* Whether the kernel isolates page tables: the "pti" flag in /proc/cpuinfo. */
static bool pti_active(void)
{
	char line[4096];
	bool on = false;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "flags", 5)) {
			on = strstr(line, " pti ") || strstr(line, " pti\n");
			break;
		}
	if (f)
		fclose(f);
	return on;
}

struct result {
	double syscalls;	/* per iteration */
	double ns;		/* per iteration, work only */
	bool ok;
};

static void measure(struct result *r, bool (*iteration)(void), bool (*drain)(void),
		    long overhead)
{
	double total = 0;
	long before, after;
	int i;

	r->ok = true;
	/* Time, without the tracepoint trigger (it slows every syscall). */
	for (i = 0; i < iterations; i++) {
		double t0 = now_ns();

		r->ok &= iteration();
		total += now_ns() - t0;
		r->ok &= drain();
	}
	r->ns = total / iterations;

	/* Count one iteration's syscalls, with the trigger, nothing else in between. */
	if (syscount_start())
		die("enabling the raw_syscalls hist trigger (tracefs, CONFIG_HIST_TRIGGERS)");
	before = syscount_now();
	r->ok &= iteration();
	after = syscount_now();
	syscount_stop();
	r->ok &= drain();
	if (before < 0 || after < 0)
		die("reading the raw_syscalls hist");
	r->syscalls = after - before - overhead;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "clients", required_argument, NULL, 'c' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "accel", required_argument, NULL, 'a' },
		{ "check", no_argument, NULL, 'k' },
		{}
	};
	const char *accel = "unknown";
	const struct {
		const char *title;
		bool (*direct)(void), (*ring)(void), (*drain)(void);
	} workloads[2] = {
		{ "reply: one 64-byte write() to each client's UNIX socket",
		  iteration_direct, iteration_ring, drain_clients },
		{ "getppid(): next to no work, the mode switch is the cost",
		  getppid_direct, getppid_ring, no_drain },
	};
	struct result res[2][2] = {};
	bool check = false, ok = true, counts_ok = true;
	struct utsname u;
	long overhead;
	int opt, i, w, sv[2];

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': clients = atoi(optarg); break;
		case 'n': iterations = atoi(optarg); break;
		case 'a': accel = optarg; break;
		case 'k': check = true; break;
		default: return 2;
		}
	}
	if (clients < 1 || clients > MAX_CLIENTS || iterations < 1) {
		fprintf(stderr, "demo: --clients 1..%d, --iterations >= 1\n", MAX_CLIENTS);
		return 2;
	}
	if (access("/proc/sys/kernel/offload_disabled", F_OK)) {
		fprintf(stderr, "demo: this kernel has no syscall offload "
			"(/proc/sys/kernel/offload_disabled is missing); boot the patched kernel\n");
		return 1;
	}

	for (i = 0; i < clients; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
			die("socketpair");
		srv[i] = sv[0];
		cli[i] = sv[1];
		snprintf(reply[i], MSG_LEN, "+OK reply %d to client %d\r\n", i, i);
	}
	parent = getppid();
	if (ring_init(&ring, clients, 0))
		die("offload_setup/mmap");

	overhead = syscount_start() ? -1 : syscount_overhead();
	syscount_stop();
	if (overhead < 0)
		die("counting syscalls with the raw_syscalls hist trigger");

	for (w = 0; w < 2; w++) {
		measure(&res[w][0], workloads[w].direct, workloads[w].drain, overhead);
		measure(&res[w][1], workloads[w].ring, workloads[w].drain, overhead);
	}

	uname(&u);
	printf("syscall offload demo: Linux %s, accelerator %s%s\n", u.release, accel,
	       strcmp(accel, "kvm") ? " (emulated CPU: times are not hardware times)" : "");
	printf("boot options: %s; page-table isolation (Meltdown mitigation): %s\n",
	       cmdline_opts(), pti_active() ? "on" : "off");
	printf("%d calls per event-loop iteration, %d iterations; syscalls entered from user\n"
	       "space counted by the kernel's tracepoints (raw_syscalls:sys_enter minus\n"
	       "offload:offload_submit), time measured without them\n",
	       clients, iterations);
	for (w = 0; w < 2; w++) {
		printf("\n%s\n", workloads[w].title);
		printf("  %-21s %17s %16s %8s\n", "", "syscalls entered", "time", "results");
		printf("  %-21s %17s %16s\n", "", "per iteration", "per iteration");
		for (i = 0; i < 2; i++) {
			struct result *r = &res[w][i];

			printf("  %-21s %17.0f %13.1f us %8s\n", i ? "inline offload ring" : "direct syscalls",
			       r->syscalls, r->ns / 1e3, r->ok ? "ok" : "WRONG");
			ok &= r->ok;
			if (check && r->syscalls != (i ? 1 : clients))
				counts_ok = false;
		}
		printf("  %-21s %16.1fx %15.2fx\n", "direct / ring",
		       res[w][0].syscalls / (res[w][1].syscalls ? res[w][1].syscalls : 1),
		       res[w][0].ns / res[w][1].ns);
	}

	ring_exit(&ring);
	if (!ok) {
		fprintf(stderr, "demo: a mode gave wrong results\n");
		return 1;
	}
	if (!counts_ok) {
		fprintf(stderr, "demo: expected %d syscalls direct and 1 with the ring\n", clients);
		return 1;
	}
	return 0;
}
