// SPDX-License-Identifier: GPL-2.0
/*
 * The same work with direct syscalls, through an inline offload ring and
 * through a worker offload ring.
 *
 * Two workloads, each CLIENTS calls per event-loop iteration:
 *  - reply: one 64-byte write() to each client's UNIX socket, as a Redis
 *    or nginx reply phase does; the clients then read their replies;
 *  - getppid: a call that does nearly nothing, so the mode switch is
 *    most of its cost.
 * "direct" makes the calls one by one; "inline" queues them and runs them
 * with one offload_enter(); "worker" queues them on a ring whose kernel
 * worker thread runs them on another CPU: the application thread publishes
 * the SQ tail (store-release, full barrier, then a look at sq_flags; it
 * enters the kernel with OFFLOAD_ENTER_SQ_WAKEUP only if the worker sleeps)
 * and reaps completions by polling the CQ tail, without a syscall. All
 * three must give the same results: every write returns 64 and every
 * client receives its reply, in order; getppid returns the parent.
 *
 * It prints, for each mode:
 *  - the syscalls the application thread entered from user space per
 *    iteration, counted by the kernel over one iteration (see syscount.h:
 *    raw_syscalls:sys_enter minus offload:offload_submit of the thread's
 *    own id, from hist triggers and from a perf counter of that thread;
 *    the worker's entries fire both events in the worker thread);
 *  - the wall time per iteration (which emulation distorts: see --accel);
 *  - the application thread's CPU time per call (CLOCK_THREAD_CPUTIME_ID,
 *    read once per round of up to 4096 calls), for the worker ring without
 *    the time it spins waiting for completions, which is printed apart;
 *  - for the worker ring, the worker thread's own CPU time per call (its
 *    thread CPU clock, polling included; the process CPU clock minus the
 *    application thread's is printed beside it) and the sum, the whole
 *    cost of a call.
 * Counting and timing are separate passes: the tracepoints slow every
 * syscall.
 *
 *   demo [--clients N] [--iterations N] [--accel NAME] [--check]
 *
 * --check exits non-zero if a mode gives a wrong result, unless direct mode
 * enters one syscall per call, the inline ring one per iteration and the
 * worker ring none (its worker is awake: it sleeps only after 10 s idle),
 * and unless the worker thread's tracepoints saw each of its entries. It
 * fails if the kernel has no worker mode. Times and ratios are printed,
 * never checked. Used as a VM test.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "offload.h"	/* the selftests' ring helper */
#include "syscount.h"

#define MSG_LEN 64
#define MAX_CLIENTS 1024
/* Calls in flight at most in worker mode: one round; the CQ is twice that */
#define WORKER_ENTRIES 4096
/* Long enough that the worker never sleeps while the demo uses it */
#define WORKER_IDLE_MS 10000
/* Give up on a completion after this long */
#define WAIT_SECONDS 30

static int clients = 32, iterations = 2000;
static int srv[MAX_CLIENTS], cli[MAX_CLIENTS];
static char reply[MAX_CLIENTS][MSG_LEN];
static struct ring ring;	/* inline */
static pid_t parent;		/* getppid(), read once at start */

static void die(const char *what)
{
	fprintf(stderr, "demo: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* ---- the workloads ---------------------------------------------------------- */

struct workload {
	const char *title;
	uint32_t nr;
	void (*args)(int i, uint64_t a[3]);
	long want;			/* every call's result */
	bool (*direct)(void);		/* the iteration with direct calls */
	bool (*drain)(void);		/* the clients' side, not measured */
};

/* Reply to every client with direct write() calls. */
static bool reply_direct(void)
{
	bool ok = true;
	int i;

	for (i = 0; i < clients; i++)
		ok &= write(srv[i], reply[i], MSG_LEN) == MSG_LEN;
	return ok;
}

static void reply_args(int i, uint64_t a[3])
{
	a[0] = srv[i];
	a[1] = (uintptr_t)reply[i];
	a[2] = MSG_LEN;
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

static bool no_drain(void)
{
	return true;
}

/*
 * The inline ring: queue one entry per client, run them all with one
 * offload_enter(), and check that each completed in order with @w->want.
 */
static bool inline_iteration(const struct workload *w)
{
	struct offload_cqe cqe;
	uint64_t a[3];
	bool ok = true;
	int i;

	for (i = 0; i < clients; i++) {
		w->args(i, a);
		if (ring_prep3(&ring, w->nr, 0, i, a[0], a[1], a[2]))
			return false;
	}
	if (sys_offload_enter(ring.fd, ring_publish(&ring), 0, 0) != clients)
		return false;
	for (i = 0; i < clients; i++) {
		if (ring_reap(&ring, &cqe))
			return false;
		ok &= cqe.user_data == (uint64_t)i && cqe.res == w->want;
	}
	return ok;
}

/* ---- the worker ring ------------------------------------------------------------ */

static struct ring wring;
static bool worker_mode;		/* the kernel has it */
static int app_cpu = -1, worker_cpu = -1;
static pid_t worker_tid;
static uint64_t wsent, wdone;		/* user_data: entries queued, completions reaped */
static long wakeups;			/* offload_enter(SQ_WAKEUP) calls made */
static char wrong[200];			/* what went wrong first */
static uint64_t tsc_per_sec;

static bool fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool fail(const char *fmt, ...)
{
	va_list ap;

	if (!wrong[0]) {
		va_start(ap, fmt);
		vsnprintf(wrong, sizeof(wrong), fmt, ap);
		va_end(ap);
	}
	return false;
}

/*
 * Pin this thread to its first allowed CPU and give the worker the second,
 * so that neither waits for the other to be scheduled. Not with one CPU.
 */
static void pick_cpus(void)
{
	cpu_set_t set;
	int c;

	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	for (c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &set))
			continue;
		if (app_cpu < 0)
			app_cpu = c;
		else if (worker_cpu < 0)
			worker_cpu = c;
	}
	if (worker_cpu < 0) {
		app_cpu = -1;
		return;
	}
	CPU_ZERO(&set);
	CPU_SET(app_cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		app_cpu = worker_cpu = -1;
}

/* TSC ticks per second, for timeouts that make no syscall. */
static void tsc_calibrate(void)
{
	struct timespec a, b, d = { 0, 20000000 };
	uint64_t t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &a);
	t0 = __rdtsc();
	nanosleep(&d, NULL);
	t1 = __rdtsc();
	clock_gettime(CLOCK_MONOTONIC, &b);
	tsc_per_sec = (t1 - t0) / ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
	if (!tsc_per_sec)
		tsc_per_sec = 1000000000;
}

/* The worker's thread id: fdinfo's WorkerTid, else the thread named offload-<fd>. */
static pid_t find_worker_tid(int fd)
{
	char path[300], buf[4096], name[32], want[32];
	struct dirent *e;
	pid_t tid = 0;
	FILE *f;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	while (f && fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "WorkerTid: %d", &tid) == 1)
			break;
	if (f)
		fclose(f);
	if (tid > 0)
		return tid;
	snprintf(want, sizeof(want), "offload-%d\n", fd);
	d = opendir("/proc/self/task");
	while (d && (e = readdir(d)) && !tid) {
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (f && fgets(name, sizeof(name), f) && !strcmp(name, want))
			tid = atoi(e->d_name);
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return tid;
}

/* A worker ring of WORKER_ENTRIES, its worker on worker_cpu if there is one. */
static int worker_ring_init(struct ring *r)
{
	memset(r, 0, sizeof(*r));
	r->p.size = sizeof(r->p);
	r->p.flags = OFFLOAD_SETUP_WORKER;
	r->p.worker_idle_ms = WORKER_IDLE_MS;
	if (worker_cpu >= 0) {
		r->p.flags |= OFFLOAD_SETUP_WORKER_CPU;
		r->p.worker_cpu = worker_cpu;
	}
	r->fd = sys_offload_setup(WORKER_ENTRIES, &r->p);
	if (r->fd < 0)
		return -1;
	r->map = mmap(NULL, r->p.ring_size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd,
		      OFFLOAD_OFF_RING);
	if (r->map == MAP_FAILED) {
		close(r->fd);
		return -1;
	}
	r->sq_head = r->map + r->p.sq_head_off;
	r->sq_tail = r->map + r->p.sq_tail_off;
	r->sq_flags = r->map + r->p.sq_flags_off;
	r->cq_head = r->map + r->p.cq_head_off;
	r->cq_tail = r->map + r->p.cq_tail_off;
	r->sqes = r->map + r->p.sqes_off;
	r->cqes = r->map + r->p.cqes_off;
	wsent = wdone = 0;
	return 0;
}

/*
 * Wake the worker if it sleeps. The full barrier orders the store of the
 * tail before the load of the flags; the worker sets the flag, issues its
 * own barrier and looks at the tail again before it sleeps, so one of the
 * two sees the other.
 */
static bool worker_kick(void)
{
	uint32_t flags;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	flags = __atomic_load_n(wring.sq_flags, __ATOMIC_RELAXED);
	if (flags & OFFLOAD_SQ_WORKER_GONE)
		return fail("the worker stopped (sq_flags %#x)", flags);
	if (!(flags & OFFLOAD_SQ_NEED_WAKEUP))
		return true;
	wakeups++;
	if (sys_offload_enter(wring.fd, 0, 0, OFFLOAD_ENTER_SQ_WAKEUP))
		return fail("offload_enter(SQ_WAKEUP): %s", strerror(errno));
	return true;
}

static bool worker_publish(void)
{
	__atomic_store_n(wring.sq_tail, wring.sq_local_tail, __ATOMIC_RELEASE);
	return worker_kick();
}

/*
 * Spin until @done() holds, without a syscall unless the worker sleeps.
 * Returns false after WAIT_SECONDS.
 */
static bool worker_spin(bool (*done)(void), const char *what)
{
	uint64_t start = __rdtsc();
	unsigned long spins = 0;

	while (!done()) {
		_mm_pause();
		if (++spins % 4096)
			continue;
		if (!worker_kick())
			return false;
		if (__rdtsc() - start > WAIT_SECONDS * tsc_per_sec)
			return fail("no %s after %d s (%llu entries queued, %llu completions reaped, CQ tail %u)",
				    what, WAIT_SECONDS, (unsigned long long)wsent,
				    (unsigned long long)wdone,
				    __atomic_load_n(wring.cq_tail, __ATOMIC_ACQUIRE));
	}
	return true;
}

static bool sq_has_room(void)
{
	return wring.sq_local_tail - __atomic_load_n(wring.sq_head, __ATOMIC_ACQUIRE) <
	       wring.p.sq_entries;
}

static bool all_posted(void)
{
	return ring_cq_ready(&wring) >= wsent - wdone;
}

/* Queue one iteration's calls and publish them: no syscall. */
static bool worker_queue(const struct workload *w)
{
	uint64_t a[3];
	int i;

	for (i = 0; i < clients; i++) {
		w->args(i, a);
		while (ring_prep3(&wring, w->nr, 0, wsent, a[0], a[1], a[2]))
			if (!worker_publish() || !worker_spin(sq_has_room, "room in the SQ"))
				return false;
		wsent++;
	}
	return worker_publish();
}

/* Take the completions that are there: each the next in order, with @want. */
static bool worker_reap(long want)
{
	struct offload_cqe cqe;
	bool ok = true;

	while (!ring_reap(&wring, &cqe)) {
		if (cqe.user_data != wdone || cqe.res != want)
			ok = fail("completion %llu: user_data %llu, res %lld (want %llu, %ld)",
				  (unsigned long long)wdone, (unsigned long long)cqe.user_data,
				  (long long)cqe.res, (unsigned long long)wdone, want);
		wdone++;
	}
	return ok;
}

/* Spin until every queued call has completed. */
static bool worker_wait(void)
{
	return worker_spin(all_posted, "completion");
}

/* ---- measuring ------------------------------------------------------------------ */

enum { DIRECT, INLINE, WORKER, NMODES };
static const char *const mode_names[NMODES] = {
	"direct syscalls", "inline offload ring", "worker offload ring",
};

/*
 * One event-loop iteration of @w. Worker mode queues the calls and takes
 * the completions already there; with @wait it also waits for the rest.
 */
static bool iteration(int mode, const struct workload *w, bool wait)
{
	switch (mode) {
	case DIRECT:
		return w->direct();
	case INLINE:
		return inline_iteration(w);
	default:
		if (!worker_queue(w) || (wait && !worker_wait()))
			return false;
		return worker_reap(w->want);
	}
}

static double clock_ns(clockid_t c)
{
	struct timespec ts;

	if (clock_gettime(c, &ts))
		return NAN;
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED): any thread of this process */
static clockid_t thread_clock(pid_t tid)
{
	return (clockid_t)((~(unsigned int)tid << 3) | 4 | 2);
}

/* The worker's CPU time in ns: its thread CPU clock, else /proc stat ticks */
static const char *worker_clock_how = "its thread CPU clock";
static double worker_cpu_ns(void)
{
	unsigned long ut, st;
	char path[64], buf[1024], *p;
	double ns = clock_ns(thread_clock(worker_tid));
	FILE *f;

	if (!isnan(ns))
		return ns;
	worker_clock_how = "utime+stime in /proc/self/task/TID/stat";
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", worker_tid);
	f = fopen(path, "r");
	if (!f)
		return NAN;
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	/* after "pid (comm)": state and 10 more fields, then utime and stime */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			 &ut, &st) != 2)
		return NAN;
	return (ut + st) * 1e9 / sysconf(_SC_CLK_TCK);
}

/* What the counters say at one point: the application's and the worker's */
struct counts {
	long app_enter, app_submit, wk_enter, wk_submit;	/* hists, by thread id */
	long perf_enter, perf_submit;				/* application's perf counter */
};

static int perf_fds[2] = { -1, -1 };
static int perf_errno;

static bool counts_read(struct counts *c)
{
	pid_t tids[2] = { gettid(), worker_tid };
	long h[2];

	if (syscount_hits_tids(SYSCOUNT_ENTER, tids, 2, h))
		return false;
	c->app_enter = h[0];
	c->wk_enter = h[1];
	if (syscount_hits_tids(SYSCOUNT_OFFLOAD, tids, 2, h))
		return false;
	c->app_submit = h[0];
	c->wk_submit = h[1];
	c->perf_enter = c->perf_submit = 0;
	return perf_fds[0] < 0 || !syscount_perf_read(perf_fds, &c->perf_enter, &c->perf_submit);
}

struct result {
	bool ran, ok;
	double syscalls;	/* application thread, per iteration, hists */
	double perf_syscalls;	/* the same from its perf counter, NAN without one */
	double wall_ns;		/* per iteration */
	double cpu_ns;		/* application thread per call, spinning for completions excluded */
	double spin_ns;		/* application thread per call, spinning for completions */
	double worker_ns;	/* worker thread per call */
	double others_ns;	/* process minus application thread, per call */
	double busy;		/* worker CPU time / wall time, over the rounds */
	long wakeups;		/* SQ_WAKEUP calls in the timed rounds */
	/* the counted iteration */
	struct counts raw, overhead;
	long counted_wakeups;
	pid_t worker_tid;
	char wrong[200];
};

/*
 * Iterations between two readings of the CPU clocks: as many as the worker
 * ring holds, and at most 128 replies waiting in a client's socket (their
 * buffers take about 800 bytes each of the default 208 kB send buffer).
 */
static int round_len(void)
{
	int n = WORKER_ENTRIES / clients;

	if (n > 128)
		n = 128;
	return n < 1 ? 1 : n > iterations ? iterations : n;
}

static void measure(struct result *r, int mode, const struct workload *w)
{
	double wall = 0, cpu = 0, spin = 0, wcpu = 0, pcpu = 0, calls;
	double t0, c0, w0 = 0, p0 = 0, s0, s1;
	struct counts c[3];
	long wk0 = wakeups;
	int done = 0, n, i;

	memset(r, 0, sizeof(*r));
	r->ran = r->ok = true;
	wrong[0] = 0;
	/* Time, in rounds, without the tracepoints (they slow every syscall). */
	while (done < iterations) {
		n = round_len();
		if (n > iterations - done)
			n = iterations - done;
		t0 = clock_ns(CLOCK_MONOTONIC);
		c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		if (mode == WORKER) {
			w0 = worker_cpu_ns();
			p0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
		}
		for (i = 0; i < n; i++)
			r->ok &= iteration(mode, w, false);
		if (mode == WORKER) {
			s0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
			r->ok &= worker_wait();
			s1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
			r->ok &= worker_reap(w->want);
			spin += s1 - s0;
			wcpu += worker_cpu_ns() - w0;
			pcpu += clock_ns(CLOCK_PROCESS_CPUTIME_ID) - p0;
		}
		cpu += clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
		wall += clock_ns(CLOCK_MONOTONIC) - t0;
		for (i = 0; i < n; i++)
			r->ok &= w->drain();
		done += n;
	}
	calls = (double)iterations * clients;
	r->wall_ns = wall / iterations;
	r->cpu_ns = (cpu - spin) / calls;
	r->spin_ns = spin / calls;
	r->worker_ns = wcpu / calls;
	r->others_ns = (pcpu - cpu) / calls;
	r->busy = wall > 0 ? wcpu / wall : 0;
	r->wakeups = wakeups - wk0;
	r->worker_tid = worker_tid;

	/*
	 * Count one iteration, nothing else in between. Reading the counters
	 * costs syscalls of its own: read them twice with nothing between,
	 * then once after the iteration, and subtract.
	 */
	if (syscount_start())
		die("enabling the hist triggers on raw_syscalls:sys_enter and offload:offload_submit "
		    "(tracefs, CONFIG_HIST_TRIGGERS)");
	perf_errno = 0;
	if (syscount_perf_open(perf_fds))
		perf_errno = errno ? errno : ENOENT;
	if (!counts_read(&c[0]) || !counts_read(&c[1]))
		die("reading the hists");
	wk0 = wakeups;
	r->ok &= iteration(mode, w, true);
	r->counted_wakeups = wakeups - wk0;
	if (!counts_read(&c[2]))
		die("reading the hists");
	syscount_perf_close(perf_fds);
	syscount_stop();
	r->ok &= w->drain();

#define D(a, b, f) ((a).f - (b).f)
	r->raw = (struct counts){ D(c[2], c[1], app_enter), D(c[2], c[1], app_submit),
				  D(c[2], c[1], wk_enter), D(c[2], c[1], wk_submit),
				  D(c[2], c[1], perf_enter), D(c[2], c[1], perf_submit) };
	r->overhead = (struct counts){ D(c[1], c[0], app_enter), D(c[1], c[0], app_submit),
				       D(c[1], c[0], wk_enter), D(c[1], c[0], wk_submit),
				       D(c[1], c[0], perf_enter), D(c[1], c[0], perf_submit) };
#undef D
	r->syscalls = (r->raw.app_enter - r->raw.app_submit) -
		      (r->overhead.app_enter - r->overhead.app_submit);
	r->perf_syscalls = perf_errno ? NAN :
			   (r->raw.perf_enter - r->raw.perf_submit) -
			   (r->overhead.perf_enter - r->overhead.perf_submit);
	if (!r->ok)
		snprintf(r->wrong, sizeof(r->wrong), "%s", wrong[0] ? wrong : "a wrong result");
}

/* ---- the report ------------------------------------------------------------------- */

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

static void print_worker_details(const struct result *d, const struct result *r)
{
	const struct counts *c = &r->raw, *o = &r->overhead;
	double total = r->cpu_ns + r->worker_ns;

	printf("  application thread CPU per call, worker / direct: %.2fx (target <= 0.1x)\n",
	       r->cpu_ns / d->cpu_ns);
	printf("  worker thread CPU per call: %.0f ns (%s; process CPU minus the\n"
	       "    application thread's: %.0f ns); it was busy %.0f%% of the wall time, polling\n"
	       "    included. Whole cost per call, application + worker: %.0f ns = %.2fx direct\n",
	       r->worker_ns, worker_clock_how, r->others_ns, 100 * r->busy, total,
	       total / d->cpu_ns);
	printf("  the application also spun %.0f ns per call waiting for completions, not in\n"
	       "    its figure above: an event loop does its own work meanwhile\n",
	       r->spin_ns);
	printf("  counted over one iteration: application thread (tid %d) %ld sys_enter - %ld\n"
	       "    offload_submit - %ld reading the counters = %.0f (perf counter of the thread:\n",
	       gettid(), c->app_enter, c->app_submit, o->app_enter - o->app_submit, r->syscalls);
	if (isnan(r->perf_syscalls))
		printf("    unavailable, %s)", strerror(perf_errno));
	else
		printf("    %ld - %ld - %ld = %.0f)", c->perf_enter, c->perf_submit,
		       o->perf_enter - o->perf_submit, r->perf_syscalls);
	printf(", %ld of them SQ_WAKEUP; worker thread (tid %d)\n"
	       "    %ld sys_enter, %ld offload_submit: the entries entered the kernel there\n",
	       r->counted_wakeups, r->worker_tid, c->wk_enter, c->wk_submit);
	if (r->wakeups)
		printf("  the worker slept and was woken %ld times in the timed rounds\n", r->wakeups);
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
	struct workload workloads[2] = {
		{ "reply: one 64-byte write() to each client's UNIX socket",
		  __NR_write, reply_args, MSG_LEN, reply_direct, drain_clients },
		{ "getppid(): next to no work, the mode switch is the cost",
		  __NR_getppid, no_args, 0, getppid_direct, no_drain },
	};
	static struct result res[2][NMODES];
	bool check = false, ok = true, counts_ok = true, worker_counts_ok = true;
	char no_worker[160] = "";
	struct utsname u;
	int opt, i, w, m, sv[2];

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
	if (!offload_present()) {
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
	workloads[1].want = parent;
	if (ring_init(&ring, clients, 0))
		die("offload_setup/mmap");
	worker_mode = ring.p.features & OFFLOAD_FEAT_WORKER;
	if (!worker_mode)
		snprintf(no_worker, sizeof(no_worker),
			 "not in this kernel (features %#x, no OFFLOAD_FEAT_WORKER)", ring.p.features);
	pick_cpus();
	tsc_calibrate();

	for (w = 0; w < 2; w++) {
		measure(&res[w][DIRECT], DIRECT, &workloads[w]);
		measure(&res[w][INLINE], INLINE, &workloads[w]);
		if (!worker_mode)
			continue;
		/* A ring of its own per workload: its worker polls only while measured */
		if (worker_ring_init(&wring)) {
			snprintf(no_worker, sizeof(no_worker), "offload_setup(OFFLOAD_SETUP_WORKER%s): %s",
				 worker_cpu >= 0 ? " | OFFLOAD_SETUP_WORKER_CPU" : "", strerror(errno));
			worker_mode = false;
			continue;
		}
		worker_tid = find_worker_tid(wring.fd);
		if (worker_tid <= 0) {
			snprintf(no_worker, sizeof(no_worker),
				 "no worker thread found (no WorkerTid in fdinfo, no thread offload-%d)",
				 wring.fd);
			worker_mode = false;
			ring_exit(&wring);
			continue;
		}
		measure(&res[w][WORKER], WORKER, &workloads[w]);
		ring_exit(&wring);
		worker_tid = 0;
	}

	uname(&u);
	printf("syscall offload demo: Linux %s, accelerator %s%s\n", u.release, accel,
	       strcmp(accel, "kvm") ? " (emulated CPU: times are not hardware times)" : "");
	printf("boot options: %s; page-table isolation (Meltdown mitigation): %s\n",
	       cmdline_opts(), pti_active() ? "on" : "off");
	printf("%d calls per event-loop iteration, %d iterations, CPU clocks read every %d.\n"
	       "Syscalls entered from user space by the application thread, counted by the\n"
	       "kernel over one iteration: raw_syscalls:sys_enter minus offload:offload_submit\n"
	       "events of its thread id (hist triggers; a perf counter of the thread checks\n"
	       "them). Times measured without the counters; CPU time of the application\n"
	       "thread from CLOCK_THREAD_CPUTIME_ID.\n",
	       clients, iterations, round_len());
	if (app_cpu >= 0)
		printf("Application thread pinned to CPU %d, the worker ring's worker to CPU %d.\n",
		       app_cpu, worker_cpu);
	else
		printf("One CPU: the worker ring's worker shares it with the application.\n");
	if (worker_mode)
		printf("Worker ring: %d entries; its worker sleeps after %d ms idle, so it stays awake.\n",
		       WORKER_ENTRIES, WORKER_IDLE_MS);
	else
		printf("worker mode: %s\n", no_worker);
	for (w = 0; w < 2; w++) {
		printf("\n%s\n", workloads[w].title);
		printf("  %-21s %16s %12s %14s %8s\n", "", "syscalls entered", "time per",
		       "app thread CPU", "results");
		printf("  %-21s %16s %12s %14s\n", "", "per iteration", "iteration", "per call");
		for (m = 0; m < NMODES; m++) {
			struct result *r = &res[w][m];

			if (!r->ran) {
				printf("  %-21s %s\n", mode_names[m], no_worker);
				continue;
			}
			printf("  %-21s %16.0f %9.1f us %11.0f ns %8s\n", mode_names[m], r->syscalls,
			       r->wall_ns / 1e3, r->cpu_ns, r->ok ? "ok" : "WRONG");
			if (!r->ok) {
				printf("  %-21s %s\n", "", r->wrong);
				ok = false;
			}
		}
		printf("  %-21s %15.1fx %11.2fx %13.2fx\n", "direct / inline",
		       res[w][DIRECT].syscalls / (res[w][INLINE].syscalls ? res[w][INLINE].syscalls : 1),
		       res[w][DIRECT].wall_ns / res[w][INLINE].wall_ns,
		       res[w][DIRECT].cpu_ns / res[w][INLINE].cpu_ns);
		if (res[w][DIRECT].syscalls != clients || res[w][INLINE].syscalls != 1)
			counts_ok = false;
		for (m = 0; m < NMODES; m++)
			if (res[w][m].ran && !isnan(res[w][m].perf_syscalls) &&
			    res[w][m].perf_syscalls != res[w][m].syscalls) {
				printf("  %s: the perf counter says %.0f syscalls, the hists %.0f\n",
				       mode_names[m], res[w][m].perf_syscalls, res[w][m].syscalls);
				counts_ok = false;
			}
		if (res[w][WORKER].ran) {
			struct result *r = &res[w][WORKER];

			print_worker_details(&res[w][DIRECT], r);
			if (r->syscalls != 0 || r->counted_wakeups ||
			    (!isnan(r->perf_syscalls) && r->perf_syscalls != 0))
				counts_ok = false;
			if (r->raw.wk_enter != clients || r->raw.wk_submit != clients)
				worker_counts_ok = false;
		}
	}

	ring_exit(&ring);
	if (!ok) {
		fprintf(stderr, "demo: a mode gave wrong results\n");
		return 1;
	}
	if (!check)
		return 0;
	if (!worker_mode) {
		fprintf(stderr, "demo: worker mode: %s; the kernel under test must have it\n",
			no_worker);
		return 1;
	}
	if (!counts_ok) {
		fprintf(stderr, "demo: expected %d syscalls direct, 1 with the inline ring and 0 with "
			"the worker ring (an awake worker needs no SQ_WAKEUP)\n", clients);
		return 1;
	}
	if (!worker_counts_ok) {
		fprintf(stderr, "demo: the worker thread's raw_syscalls:sys_enter and "
			"offload:offload_submit events did not count each of its %d entries once\n",
			clients);
		return 1;
	}
	return 0;
}
