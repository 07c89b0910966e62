// SPDX-License-Identifier: GPL-2.0
/*
 * The same work with direct syscalls and through an inline offload ring.
 *
 * Workload: an event-loop iteration that answers CLIENTS ready clients,
 * one 64-byte write() to each client's UNIX socket, as a Redis or nginx
 * reply phase does. "direct" makes the writes one by one; "ring" queues
 * them and runs them with one offload_enter(). Both must give the same
 * results (every write returns 64, every client receives its reply).
 *
 * It prints, for each mode, the syscalls entered per iteration (counted by
 * the kernel's raw_syscalls:sys_enter tracepoint, which emulation does not
 * distort) and the time per iteration (which it does: see --accel).
 *
 *   demo [--clients N] [--iterations N] [--accel NAME] [--check]
 *
 * --check exits non-zero unless the ring enters exactly one syscall per
 * iteration and direct mode one per write (used as a VM test).
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

/* Reply to every client through the ring: one offload_enter(). */
static bool iteration_ring(void)
{
	struct offload_cqe cqe;
	bool ok = true;
	int i;

	for (i = 0; i < clients; i++)
		if (ring_prep3(&ring, __NR_write, 0, i, srv[i], reply[i], MSG_LEN))
			return false;
	if (sys_offload_enter(ring.fd, ring_publish(&ring), 0, 0) != clients)
		return false;
	for (i = 0; i < clients; i++) {
		if (ring_reap(&ring, &cqe))
			return false;
		ok &= cqe.user_data == (uint64_t)i && cqe.res == MSG_LEN;
	}
	return ok;
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

struct result {
	const char *name;
	double syscalls;	/* per iteration */
	double ns;		/* per iteration, work only */
	bool ok;
};

static void measure(struct result *r, bool (*iteration)(void), long overhead)
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
		r->ok &= drain_clients();
	}
	r->ns = total / iterations;

	/* Count one iteration's syscalls, with the trigger, nothing else in between. */
	if (syscount_start())
		die("enabling the raw_syscalls hist trigger (tracefs, CONFIG_HIST_TRIGGERS)");
	before = syscount_now();
	r->ok &= iteration();
	after = syscount_now();
	syscount_stop();
	r->ok &= drain_clients();
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
	struct result direct = { .name = "direct write()" };
	struct result ring_r = { .name = "inline offload ring" };
	bool check = false;
	struct utsname u;
	long overhead;
	int opt, i, sv[2];

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
	if (ring_init(&ring, clients, 0))
		die("offload_setup/mmap");

	overhead = syscount_start() ? -1 : syscount_overhead();
	syscount_stop();
	if (overhead < 0)
		die("counting syscalls with the raw_syscalls hist trigger");

	measure(&direct, iteration_direct, overhead);
	measure(&ring_r, iteration_ring, overhead);

	uname(&u);
	printf("syscall offload demo: Linux %s, accelerator %s%s\n", u.release, accel,
	       strcmp(accel, "kvm") ? " (emulated CPU: times are not hardware times, the ratio is the result)" : "");
	printf("workload: one event-loop iteration answers %d clients, "
	       "one %d-byte write() to each client's UNIX socket; %d iterations\n\n",
	       clients, MSG_LEN, iterations);
	printf("%-22s %18s %18s %10s\n", "", "syscalls entered", "time", "results");
	printf("%-22s %18s %18s\n", "", "per iteration", "per iteration");
	for (i = 0; i < 2; i++) {
		struct result *r = i ? &ring_r : &direct;

		printf("%-22s %18.0f %15.1f us %10s\n", r->name, r->syscalls, r->ns / 1e3,
		       r->ok ? "ok" : "WRONG");
	}
	printf("%-22s %17.1fx %17.2fx\n", "direct / ring",
	       direct.syscalls / (ring_r.syscalls ? ring_r.syscalls : 1), direct.ns / ring_r.ns);

	ring_exit(&ring);
	if (!direct.ok || !ring_r.ok) {
		fprintf(stderr, "demo: a mode gave wrong results\n");
		return 1;
	}
	if (check && (direct.syscalls != clients || ring_r.syscalls != 1)) {
		fprintf(stderr, "demo: expected %d syscalls direct and 1 with the ring\n", clients);
		return 1;
	}
	return 0;
}
