// SPDX-License-Identifier: GPL-2.0
/*
 * Stress the syscall offload rings for a bounded time, then check that the
 * kernel is back where it started.
 *
 * A supervisor runs fuzzing child processes and SIGKILLs them (or SIGTERMs,
 * or SIGSTOPs and then kills them) at random times, mid-batch, restarting
 * each one. A child runs as an unprivileged user (nobody) in a private
 * directory on a small tmpfs, with stdin/stdout/stderr on /dev/null, and is
 * threaded, single-threaded ("solo": the only way to reach the kernel's
 * no-reference fdget() path, so half of them make no worker ring), or a
 * ledger child (below). Rings are inline or worker rings (short or default
 * idle times, sometimes pinned, sometimes to a CPU it may not use):
 *
 *  - submitters queue random entries: valid and invalid syscall numbers,
 *    garbage arguments, pointers to unmapped, read-only, guard-page and
 *    kernel addresses, LINK chains, SKIP_SUCCESS, ASYNC (often on worker
 *    rings, where blocking calls then tie up helper threads), unknown
 *    flags, and entries that close the ring's own fd, dup3() over it, dup()
 *    it or send it over a UNIX socket; they enter with random to_submit,
 *    min_complete and flags (GETEVENTS and SQ_WAKEUP among them), or on a
 *    worker ring mostly not at all (the NEED_WAKEUP protocol), reap or
 *    leave the CQ full, and call offload_register();
 *  - a scribbler rewrites sq_tail, cq_head, the kernel-written indices, the
 *    sizes, and SQEs while they are being consumed;
 *  - a chaos thread closes ring fds, dup2()s pipes over them, munmap()s,
 *    remaps, mremap()s, mprotect()s and overlays the rings, recreates
 *    them, closes and dups pool fds, reads fdinfo, installs a seccomp
 *    filter, forks (the child tries the inherited fd and the inherited ring
 *    address, then exits, execs /bin/true, execs a checker of inherited
 *    fds, or runs a single-threaded session of its own) and execs itself
 *    while the other threads are inside offload_enter(); starts threads
 *    that create a worker ring, queue entries and exit (the worker stops:
 *    the ring stays in use a while, refusing with EOWNERDEAD); tries
 *    worker parameters the contract refuses; and it runs the
 *    batch behind the unhardened series' use-after-free on purpose:
 *    entries queued, the ring unmapped, then an entry that closes the
 *    ring's own fd or dup3()s over it, with more entries after it;
 *  - a signaller and POSIX timers interrupt the submitters (SA_RESTART
 *    and not).
 *
 * One child in six keeps a ledger instead (see ledger_child()): its threads
 * drive worker and inline rings of their own with entries whose results
 * are known (LINK chains that fail, SKIP_SUCCESS, ASYNC chains, ASYNC
 * reads blocked until a later write on the same ring, full CQs, GETEVENTS
 * waits, SQ_WAKEUP, eventfds, creator threads that exit, rings closed with
 * entries in flight and a worker stalled in a blocking call) and account
 * for every completion: a lost, duplicated, unexpected, wrong or
 * out-of-order one, or a break of the worker-mode contract, fails the run.
 * The supervisor kills ledgers as it kills every child, mid-flight; half
 * of them live 5 to 35 s so that their timeouts can fire.
 *
 * Only throwaway fds exist in a child, so garbage fd numbers are safe; path
 * arguments are names in the private directory or bad pointers, never
 * random bytes; unlinkat() and renameat2() only name files that do not
 * exist; fcntl() never sets an owner or a signal.
 *
 * Before and after, it settles the kernel (drop caches, shrink every slab
 * cache, which also empties KASAN's quarantine, wait for RCU) and compares
 * user tasks, processes of its uid, rings open anywhere, its own fds, file
 * handles, the slab caches a ring allocates from (found by creating 200
 * rings and watching which caches grow), unreclaimable slab, vmalloc and
 * kernel stacks (see supervise() for the tolerances and why). It fails if
 * one is not back, if a child cannot be killed, if a contract check fails
 * (a forked child can touch the parent's ring, an inherited ring fd works
 * in another process, a new ring fd lacks FD_CLOEXEC, invalid worker
 * parameters are accepted, the ledger finds a fault), or if the kernel
 * logged a BUG, WARNING, KASAN, lockdep or RCU report during the run.
 *
 *   stress [--seconds N] [--procs N] [--seed N]
 *
 * STRESS_SECONDS (default 120), STRESS_PROCS (default 3) and STRESS_SEED
 * in the environment do the same. A child is also started as
 * "stress --fuzz-child ..." when it execs itself, and a forked child execs
 * "stress --exec-check STATS" to try the fds it inherited.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/audit.h>
#include <linux/falloc.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>

#include "offload.h"	/* the selftests' ring helper */

#define NRING		3	/* rings per child */
#define MAX_THREADS	8	/* submitters per threaded child */
#define MAX_PROCS	16
#define HALF		(1UL << 20)	/* a ring mapping fits in one half of its slot */
#define POOL_MAX	32
#define BUF_LEN		(64 * 1024)
#define SCRATCH_LEN	(16 * 1024)
/* the kernel writes past a structure when a count is larger: up to 1024 mmsghdrs */
#define SCRATCH_SLACK	(128 * 1024)
#define NOFILE		256
#define FSIZE_LIMIT	(8 << 20)
#define NERR		134
#define UNPRIV_ID	65534

/* ---- shared counters: a file every child maps ---------------------------- */

struct stats {
	uint64_t entries;		/* SQEs written and published */
	uint64_t enters, consumed, enter_err[NERR], enter_bad_fd;
	uint64_t max_enter_ns;
	uint64_t cqes, resyncs;
	uint64_t registers;
	uint64_t setups, setup_fail, setup_fuzz;
	uint64_t self_closes;
	uint64_t ring_close, ring_dup2, ring_lost, munmaps, remaps, overlays,
		 mremaps, mprotects, scribbles, fdinfo_reads, pool_refresh, fd_reaps;
	uint64_t forks, execs_true, execs_check, execs_self, solo_sessions;
	uint64_t signals, segv_recovered, sigsys, sigio;
	uint64_t seccomp_filters;
	uint64_t children, solo_children;
	/* contract checks: each must stay 0 */
	uint64_t inherited_checked, inherited_ring_touch, inherited_not_eperm;
	uint64_t exec_inherited_fds, exec_not_eperm;
	uint64_t setup_no_cloexec;
	uint64_t setup_bad_worker;	/* invalid worker parameters accepted */
	uint64_t child_errors;
	/* worker rings under chaos */
	uint64_t worker_setups, creator_exits, owner_dead, wakeup_enters, getevents_enters;
	uint64_t async_entries, hot_submits;
	/* the ledger: exact accounting on well-formed rings */
	uint64_t lg_children, lg_rings, lg_worker_rings, lg_entries, lg_cqes, lg_async,
		 lg_async_eagain,
		 lg_paired, lg_wakeups, lg_getevents, lg_eintr, lg_cq_full, lg_orphans,
		 lg_not_run_checked, lg_close_in_flight, lg_stalled_worker, lg_threads_gone,
		 lg_evfd, lg_quiescent, lg_setup_fail;
	/* ledger checks: each must stay 0 */
	uint64_t lg_lost, lg_dup, lg_wrong, lg_order, lg_contract;
	char lg_note[300];		/* the first ledger violation */
	char note[400];			/* the last child error, or where one died */
	char contract_note[200];	/* the last contract violation */
};

static struct stats *st;

#define INC(f)		__atomic_fetch_add(&st->f, 1, __ATOMIC_RELAXED)
#define ADD(f, n)	__atomic_fetch_add(&st->f, (n), __ATOMIC_RELAXED)

static void note(const char *fmt, ...)
{
	va_list ap;

	INC(child_errors);
	va_start(ap, fmt);
	vsnprintf(st->note, sizeof(st->note), fmt, ap);
	va_end(ap);
}

/* ---- randomness ------------------------------------------------------------- */

static __thread uint64_t rs = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return rs;
}

static uint32_t rn(uint32_t n)
{
	return n ? rnd() % n : 0;
}

static bool chance(unsigned int pct)
{
	return rn(1000) < pct * 10;
}

static bool permille(unsigned int pm)
{
	return rn(1000) < pm;
}

static void seed_thread(uint64_t s)
{
	rs = s * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
	if (!rs)
		rs = 1;
	rnd();
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- recovering from faults on the ring ----------------------------------- */

/*
 * The chaos thread unmaps, moves and protects rings while other threads
 * write to them. A thread touches ring memory only inside protected(); a
 * fault there jumps back out of it.
 */
static __thread sigjmp_buf *tls_jb;
static __thread char *scratch;

/* The mappings of /proc/self/maps around @addr, into @out (a dying child's note). */
static void maps_around(uintptr_t addr, char *out, size_t len)
{
	static char buf[1 << 16];
	char *line, *prev = NULL, *save;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	ssize_t n = 0, r;

	out[0] = 0;
	if (fd < 0)
		return;
	while (n < (ssize_t)sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += r;
	close(fd);
	buf[n] = 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx", &lo, &hi) != 2)
			continue;
		if (addr < hi) {
			snprintf(out, len, "%.60s | %.60s", prev ? prev : "-",
				 addr >= lo ? line : "(unmapped)");
			return;
		}
		prev = line;
	}
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	sigjmp_buf *jb = tls_jb;
	ucontext_t *ctx = uc;

	if (jb) {
		tls_jb = NULL;
		siglongjmp(*jb, 1);
	}
	/* a fault outside: say where, then die of it */
	{
		char maps[140];

		maps_around((uintptr_t)si->si_addr, maps, sizeof(maps));
		note("signal %d code %d at %p, ip %#llx, scratch %p, tid %d: %s", sig,
		     si->si_code, si->si_addr,
		     (unsigned long long)ctx->uc_mcontext.gregs[REG_RIP], scratch, gettid(),
		     maps);
	}
	signal(sig, SIG_DFL);
}

/* Run fn(arg); returns false if it faulted. */
static bool protected(void (*fn)(void *), void *arg)
{
	sigjmp_buf jb;

	if (sigsetjmp(jb, 0)) {
		INC(segv_recovered);
		return false;
	}
	tls_jb = &jb;
	fn(arg);
	tls_jb = NULL;
	return true;
}

static void on_signal(int sig)
{
	if (sig == SIGSYS)
		INC(sigsys);
	else if (sig == SIGIO)
		INC(sigio);
	INC(signals);
}

/* ---- the child's world ------------------------------------------------------ */

struct fring {
	int fd;
	bool worker;			/* a worker ring */
	int half;			/* which half of the slot it is mapped in */
	struct offload_params p;
	uintptr_t map;			/* 0 when unmapped; atomic */
	size_t maplen;
};

struct rslot {
	char *resv;			/* 2 * HALF of placeholder or ring */
	struct fring *cur;		/* atomic */
};

static struct {
	const char *statspath, *dir;
	int slot;
	bool solo;
	bool forked;			/* a forked child: forks no further */
	bool seccomp_on;
	struct rslot rings[NRING];
	struct fring *frings;
	unsigned int nfrings, maxfrings;
	int pool[POOL_MAX];
	int npool;
	int dirfd, evfd, unixpair[2];
	uint16_t tcp_port, udp_port;
	char *buf;			/* BUF_LEN read-write, then a PROT_NONE page */
	char *ro;			/* a read-only page */
	char *hole;			/* an unmapped page */
	const char *names[40];
	unsigned int nnames;
	const char *absent[8];
	const char *unterminated;	/* runs into the guard page */
	uint8_t offloadable[(1024 + 7) / 8];
	unsigned int nr_syscalls;
	int nthreads;
	pid_t tids[MAX_THREADS];
	int check_rings;		/* a submitter saw EBADF */
	int ncpus;			/* CPUs this process may run on */
	bool use_workers;		/* this child makes worker rings too */
	bool had_worker;		/* kernel threads of ours have run entries */
	pid_t ppid, uid;		/* getppid() and getuid() of the child */
	struct {
		pid_t pid;
		uint64_t started;
	} kids[4];			/* forked children not yet reaped */
	volatile int stop;
} C;

/* Per-thread area for the structures entries point to (scratch, above) */
static __thread unsigned int scratch_off;

static char *scratch_map(void)
{
	char *p = mmap(NULL, SCRATCH_LEN + SCRATCH_SLACK + 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	mprotect(p + SCRATCH_LEN + SCRATCH_SLACK, 4096, PROT_NONE);
	return p;
}

static void *scratch_get(size_t len)
{
	void *p;

	len = (len + 15) & ~15UL;
	if (scratch_off + len > SCRATCH_LEN)
		scratch_off = 0;
	p = scratch + scratch_off;
	scratch_off += len;
	return p;
}

static bool is_offloadable(unsigned int nr)
{
	return nr < 1024 && (C.offloadable[nr / 8] & (1 << (nr % 8)));
}

static int pool_fd(void)
{
	int n = __atomic_load_n(&C.npool, __ATOMIC_RELAXED);

	return n ? __atomic_load_n(&C.pool[rn(n)], __ATOMIC_RELAXED) : -1;
}

static struct fring *ring_cur(int i)
{
	return __atomic_load_n(&C.rings[i].cur, __ATOMIC_ACQUIRE);
}

static int ring_fd(int i)
{
	struct fring *fr = ring_cur(i);

	return fr ? fr->fd : -1;
}

static const uint64_t kernel_ptrs[] = {
	0xffff800000000000ULL, 0xffff888000000000ULL, 0xffffffff81000000ULL,
	0xffffc90000000000ULL, 0xffffea0000000000ULL, 0xfffffe0000000000ULL,
	0xffffffffff600000ULL,	/* vsyscall page */
	0xfffffffffffff000ULL, 0xffffffffffffffffULL,
};

static const uint64_t odd_ptrs[] = {
	0, 1, 0x1000, 0x7ffffffff000ULL, 0x800000000000ULL,	/* top of user, first non-canonical */
	0x8000000000000000ULL, 0x0000deadbeef0000ULL,
};

/* A pointer nothing valid is behind. */
static uint64_t bad_ptr(void)
{
	switch (rn(5)) {
	case 0:
		return kernel_ptrs[rn(sizeof(kernel_ptrs) / sizeof(kernel_ptrs[0]))] + rn(4) * 8;
	case 1:
		return odd_ptrs[rn(sizeof(odd_ptrs) / sizeof(odd_ptrs[0]))];
	case 2:
		return (uintptr_t)C.hole + rn(4096);
	case 3:
		return (uintptr_t)C.buf + BUF_LEN + rn(4096);	/* guard page */
	default:
		return rnd();
	}
}

/* A value for any argument: mostly absurd. */
static uint64_t garbage(void)
{
	switch (rn(6)) {
	case 0:
		return bad_ptr();
	case 1:
		return -(uint64_t)rn(200);
	case 2:
		return 1ULL << rn(64);
	case 3:
		return rn(1 << 16);
	case 4:
		return 0x7fffffff + (uint64_t)rn(3);
	default:
		return rnd();
	}
}

/* A user pointer: mostly the pool, sometimes the ring itself, or bad. */
static uint64_t ptr_pick(struct fring *fr)
{
	unsigned int c = rn(100);
	uintptr_t map;

	if (c < 74)
		return (uintptr_t)C.buf + rn(BUF_LEN - 4096);
	if (c < 80 && fr && (map = __atomic_load_n(&fr->map, __ATOMIC_RELAXED)))
		return map + rn(fr->maplen);	/* the kernel writes into the ring */
	if (c < 85)
		return (uintptr_t)C.buf + BUF_LEN - rn(64);	/* runs into the guard */
	if (c < 89)
		return (uintptr_t)C.ro + rn(4000);
	return bad_ptr();
}

static uint64_t len_pick(void)
{
	unsigned int c = rn(100);

	if (c < 60)
		return rn(512);
	if (c < 85)
		return rn(4096);
	if (c < 95)
		return rn(BUF_LEN);
	return garbage();
}

static uint64_t off_pick(void)
{
	unsigned int c = rn(100);

	if (c < 30)
		return 0;
	if (c < 70)
		return rn(8192);
	if (c < 90)
		return rn(FSIZE_LIMIT + 4096);
	return garbage();
}

static int fd_pick(struct fring *fr)
{
	unsigned int c = rn(100);

	if (c < 55)
		return pool_fd();
	if (c < 65 && fr)
		return fr->fd;
	if (c < 70)
		return ring_fd(rn(NRING));
	if (c < 80)
		return rn(40);
	if (c < 90)
		return rn(NOFILE + 40);
	return (int)garbage();
}

/* ---- building entries -------------------------------------------------------- */

/* How to make each argument. K_PATH, K_ABSENT, K_FCNTL_CMD, K_DOMAIN are strict:
 * they never take a garbage value (see the header comment). */
enum kind {
	K_0, K_FD, K_DIRFD, K_BUF, K_LEN, K_OFF, K_IOV, K_CNT, K_SADDR, K_SALEN,
	K_SALENP, K_MSG, K_MMSG, K_EPEV, K_POLLFD, K_TIMEOUT, K_OFFP, K_SMALL,
	K_FCNTL_CMD, K_FCNTL_ARG, K_DOMAIN, K_STYPE, K_PROTO, K_LEVEL, K_OPTNAME,
	K_OPTVAL, K_OPTLEN, K_OPTLENP, K_PATH, K_ABSENT, K_MODE, K_OPENFL,
	K_OPENHOW, K_HOWSIZE, K_ITS, K_TSP, K_INTP, K_NEWFD, K_RWF, K_MSGFL,
	K_SOCKFL, K_HOW, K_EPOP, K_PIPEFL, K_EFDFL, K_TFDFL, K_ATFL, K_STATXMASK,
	K_WHENCE, K_FALLOC, K_FLOCKOP, K_SPLICEFL, K_CLOEXEC,
	K_STRICT_FIRST = K_PATH,
};

struct spec {
	uint16_t nr;
	uint8_t weight;
	uint8_t k[6];
};

#define S(name, w, ...) { __NR_##name, w, { __VA_ARGS__ } }

static const struct spec specs[] = {
	S(read, 10, K_FD, K_BUF, K_LEN),
	S(write, 10, K_FD, K_BUF, K_LEN),
	S(pread64, 3, K_FD, K_BUF, K_LEN, K_OFF),
	S(pwrite64, 3, K_FD, K_BUF, K_LEN, K_OFF),
	S(readv, 3, K_FD, K_IOV, K_CNT),
	S(writev, 3, K_FD, K_IOV, K_CNT),
	S(preadv, 2, K_FD, K_IOV, K_CNT, K_OFF, K_OFF),
	S(pwritev, 2, K_FD, K_IOV, K_CNT, K_OFF, K_OFF),
	S(preadv2, 2, K_FD, K_IOV, K_CNT, K_OFF, K_OFF, K_RWF),
	S(pwritev2, 2, K_FD, K_IOV, K_CNT, K_OFF, K_OFF, K_RWF),
	S(socket, 3, K_DOMAIN, K_STYPE, K_PROTO),
	S(socketpair, 2, K_DOMAIN, K_STYPE, K_PROTO, K_INTP),
	S(bind, 2, K_FD, K_SADDR, K_SALEN),
	S(listen, 2, K_FD, K_SMALL),
	S(accept, 2, K_FD, K_SADDR, K_SALENP),
	S(accept4, 2, K_FD, K_SADDR, K_SALENP, K_SOCKFL),
	S(connect, 3, K_FD, K_SADDR, K_SALEN),
	S(shutdown, 1, K_FD, K_HOW),
	S(sendto, 4, K_FD, K_BUF, K_LEN, K_MSGFL, K_SADDR, K_SALEN),
	S(recvfrom, 4, K_FD, K_BUF, K_LEN, K_MSGFL, K_SADDR, K_SALENP),
	S(sendmsg, 4, K_FD, K_MSG, K_MSGFL),
	S(recvmsg, 4, K_FD, K_MSG, K_MSGFL),
	S(sendmmsg, 2, K_FD, K_MMSG, K_CNT, K_MSGFL),
	S(recvmmsg, 2, K_FD, K_MMSG, K_CNT, K_MSGFL, K_TSP),
	S(getsockname, 1, K_FD, K_SADDR, K_SALENP),
	S(getpeername, 1, K_FD, K_SADDR, K_SALENP),
	S(setsockopt, 3, K_FD, K_LEVEL, K_OPTNAME, K_OPTVAL, K_OPTLEN),
	S(getsockopt, 3, K_FD, K_LEVEL, K_OPTNAME, K_OPTVAL, K_OPTLENP),
	S(close, 6, K_FD),
	S(dup, 3, K_FD),
	S(dup3, 3, K_FD, K_NEWFD, K_CLOEXEC),
	S(fcntl, 4, K_FD, K_FCNTL_CMD, K_FCNTL_ARG),
	S(pipe2, 2, K_INTP, K_PIPEFL),
	S(eventfd2, 1, K_SMALL, K_EFDFL),
	S(epoll_create1, 1, K_CLOEXEC),
	S(epoll_ctl, 3, K_FD, K_EPOP, K_FD, K_EPEV),
	S(epoll_wait, 2, K_FD, K_EPEV, K_CNT, K_TIMEOUT),
	S(poll, 2, K_POLLFD, K_CNT, K_TIMEOUT),
	S(timerfd_settime, 2, K_FD, K_TFDFL, K_ITS, K_ITS),
	S(timerfd_gettime, 1, K_FD, K_ITS),
	S(openat, 6, K_DIRFD, K_PATH, K_OPENFL, K_MODE),
	S(openat2, 2, K_DIRFD, K_PATH, K_OPENHOW, K_HOWSIZE),
	S(fstat, 2, K_FD, K_BUF),
	S(newfstatat, 2, K_DIRFD, K_PATH, K_BUF, K_ATFL),
	S(statx, 2, K_DIRFD, K_PATH, K_ATFL, K_STATXMASK, K_BUF),
	S(lseek, 2, K_FD, K_OFF, K_WHENCE),
	S(getdents64, 2, K_FD, K_BUF, K_LEN),
	S(fsync, 1, K_FD),
	S(fdatasync, 1, K_FD),
	S(sync_file_range, 1, K_FD, K_OFF, K_OFF, K_SMALL),
	S(fallocate, 2, K_FD, K_FALLOC, K_OFF, K_OFF),
	S(ftruncate, 2, K_FD, K_OFF),
	S(fadvise64, 1, K_FD, K_OFF, K_OFF, K_SMALL),
	S(flock, 2, K_FD, K_FLOCKOP),
	S(sendfile, 2, K_FD, K_FD, K_OFFP, K_LEN),
	S(splice, 2, K_FD, K_OFFP, K_FD, K_OFFP, K_LEN, K_SPLICEFL),
	S(tee, 1, K_FD, K_FD, K_LEN, K_SPLICEFL),
	S(copy_file_range, 2, K_FD, K_OFFP, K_FD, K_OFFP, K_LEN, K_0),
	S(mkdirat, 2, K_DIRFD, K_PATH, K_MODE),
	S(unlinkat, 2, K_DIRFD, K_ABSENT, K_ATFL),
	S(renameat2, 2, K_DIRFD, K_ABSENT, K_DIRFD, K_ABSENT, K_SMALL),
	S(readlinkat, 1, K_DIRFD, K_PATH, K_BUF, K_LEN),
	S(faccessat2, 1, K_DIRFD, K_PATH, K_SMALL, K_ATFL),
	S(fchmod, 1, K_FD, K_MODE),
	S(fchmodat, 1, K_DIRFD, K_PATH, K_MODE),
	S(getpid, 2), S(getppid, 2), S(gettid, 1), S(getuid, 1),
	S(geteuid, 1), S(getgid, 1), S(getegid, 1),
};

/* Real syscalls that must never run from a ring: they complete -EOPNOTSUPP */
static const uint16_t never[] = {
	__NR_fork, __NR_vfork, __NR_clone, __NR_clone3, __NR_execve, __NR_exit,
	__NR_exit_group, __NR_kill, __NR_tkill, __NR_tgkill, __NR_mmap,
	__NR_munmap, __NR_mprotect, __NR_mremap, __NR_madvise, __NR_brk,
	__NR_rt_sigreturn, __NR_rt_sigaction, __NR_rt_sigprocmask, __NR_ioctl,
	__NR_ptrace, __NR_setuid, __NR_setns, __NR_unshare, __NR_prctl,
	__NR_seccomp, __NR_bpf, __NR_reboot, __NR_io_uring_setup,
	__NR_io_uring_enter, __NR_offload_setup, __NR_offload_enter,
	__NR_offload_register, __NR_restart_syscall, __NR_chdir, __NR_mount,
	__NR_umount2, __NR_setpgid, __NR_setsid, __NR_unlink, __NR_rmdir,
	__NR_rename, __NR_truncate, __NR_creat, __NR_open, __NR_pause,
};

/* Fields whose values the scribbler may write into an SQE's nr */
static const uint16_t scribble_nrs[] = {
	__NR_read, __NR_write, __NR_pread64, __NR_pwrite64, __NR_readv,
	__NR_writev, __NR_close, __NR_dup, __NR_getpid, __NR_getppid, __NR_lseek,
	__NR_fstat, __NR_shutdown, __NR_listen, __NR_fsync, __NR_ftruncate,
	__NR_sendto, __NR_recvfrom,
};

static unsigned int spec_total;

struct gen {
	struct fring *fr;
	uint64_t cnt;		/* element count of the last array built */
	uint64_t salen;		/* length of the last sockaddr built */
};

static uint64_t saddr_build(struct gen *g)
{
	unsigned int c = rn(100);

	if (c < 40) {
		struct sockaddr_in *sin = scratch_get(sizeof(*sin));

		sin->sin_family = chance(95) ? AF_INET : rn(64);
		sin->sin_port = htons(chance(45) ? C.tcp_port : chance(60) ? C.udp_port : rn(65536));
		sin->sin_addr.s_addr = chance(85) ? htonl(INADDR_LOOPBACK) :
				       chance(50) ? htonl(INADDR_ANY) : (uint32_t)rnd();
		g->salen = sizeof(*sin);
		return (uintptr_t)sin;
	}
	if (c < 70) {
		struct sockaddr_un *sun = scratch_get(sizeof(*sun));

		memset(sun, 0, sizeof(*sun));
		sun->sun_family = AF_UNIX;
		if (chance(60)) {
			/* abstract: private to this child by its slot */
			snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1,
				 "offload-stress-%d-%u", C.slot, rn(4));
			g->salen = offsetof(struct sockaddr_un, sun_path) + 1 +
				   strlen(sun->sun_path + 1);
		} else {
			snprintf(sun->sun_path, sizeof(sun->sun_path), "sock%u", rn(3));
			g->salen = sizeof(*sun);
		}
		return (uintptr_t)sun;
	}
	g->salen = rn(130);
	if (c < 90)
		return (uintptr_t)C.buf + rn(BUF_LEN - 256);	/* random bytes */
	return chance(50) ? 0 : bad_ptr();
}

static uint64_t iov_build(struct gen *g, struct fring *fr)
{
	unsigned int n = 1 + rn(8), i;
	struct iovec *iov = scratch_get(n * sizeof(*iov));

	for (i = 0; i < n; i++) {
		iov[i].iov_base = (void *)(uintptr_t)ptr_pick(fr);
		iov[i].iov_len = len_pick();
	}
	g->cnt = n;
	return (uintptr_t)iov;
}

static void msg_fill(struct gen *g, struct msghdr *m, struct fring *fr)
{
	memset(m, 0, sizeof(*m));
	if (chance(30)) {
		m->msg_name = (void *)(uintptr_t)saddr_build(g);
		m->msg_namelen = g->salen;
	}
	m->msg_iov = (void *)(uintptr_t)iov_build(g, fr);
	m->msg_iovlen = g->cnt;
	if (chance(30)) {
		unsigned int n = 1 + rn(3), i;
		size_t len = CMSG_SPACE(n * sizeof(int));
		struct cmsghdr *cm = scratch_get(len);
		int *fds = (int *)CMSG_DATA(cm);

		cm->cmsg_len = CMSG_LEN(n * sizeof(int));
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		for (i = 0; i < n; i++)
			fds[i] = chance(30) && fr ? fr->fd : fd_pick(fr);
		m->msg_control = cm;
		m->msg_controllen = len;
	} else if (chance(10)) {
		m->msg_control = (void *)(uintptr_t)ptr_pick(fr);
		m->msg_controllen = rn(256);
	}
	if (chance(5))
		m->msg_flags = rnd();
}

static uint64_t fcntl_cmd(void)
{
	static const int cmds[] = {
		F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_GETLK, F_SETLK,
		F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW, F_GETOWN,
		F_GETSIG, F_GETLEASE, F_SETLEASE, F_DUPFD_CLOEXEC, F_SETPIPE_SZ,
		F_GETPIPE_SZ, F_ADD_SEALS, F_GET_SEALS, F_NOTIFY,
	};
	uint32_t cmd;

	if (chance(90))
		return cmds[rn(sizeof(cmds) / sizeof(cmds[0]))];
	/* never an owner or a signal for SIGIO: that could signal others */
	do
		cmd = chance(50) ? rn(2048) : (uint32_t)rnd();
	while (cmd == F_SETOWN || cmd == F_SETSIG || cmd == F_SETOWN_EX);
	return cmd | (chance(10) ? rnd() << 32 : 0);
}

static uint64_t path_pick(void)
{
	unsigned int c = rn(100);

	if (c < 88)
		return (uintptr_t)C.names[rn(C.nnames)];
	if (c < 92)
		return (uintptr_t)C.unterminated;
	if (c < 95)
		return (uintptr_t)C.ro;		/* "" */
	return bad_ptr();	/* never random bytes: those could name anything */
}

static uint64_t arg_build(struct gen *g, enum kind k)
{
	struct fring *fr = g->fr;

	if (k < K_STRICT_FIRST && k != K_0 && permille(k == K_TIMEOUT ? 5 : 40))
		return garbage();

	switch (k) {
	case K_0:
		return chance(97) ? 0 : rnd();
	case K_FD:
		return (uint32_t)fd_pick(fr) | (permille(5) ? rnd() << 32 : 0);
	case K_DIRFD:
		return chance(50) ? (uint64_t)AT_FDCWD : chance(40) ? (uint64_t)C.dirfd :
		       (uint64_t)fd_pick(fr);
	case K_BUF:
		return ptr_pick(fr);
	case K_LEN:
		return len_pick();
	case K_OFF:
		return off_pick();
	case K_IOV:
		return iov_build(g, fr);
	case K_CNT:
		return chance(85) ? g->cnt : chance(50) ? rn(3) : chance(50) ? 1024 + rn(2) : garbage();
	case K_SADDR:
		return saddr_build(g);
	case K_SALEN:
		return chance(85) ? g->salen : rn(300);
	case K_SALENP: {
		socklen_t *l = scratch_get(sizeof(*l));

		*l = chance(70) ? 128 : rn(300);
		return chance(90) ? (uintptr_t)l : bad_ptr();
	}
	case K_MSG: {
		struct msghdr *m = scratch_get(sizeof(*m));

		msg_fill(g, m, fr);
		return (uintptr_t)m;
	}
	case K_MMSG: {
		unsigned int n = 1 + rn(4), i;
		struct mmsghdr *mm = scratch_get(n * sizeof(*mm));

		for (i = 0; i < n; i++) {
			msg_fill(g, &mm[i].msg_hdr, fr);
			mm[i].msg_len = 0;
		}
		g->cnt = n;
		return (uintptr_t)mm;
	}
	case K_EPEV: {
		unsigned int n = 1 + rn(8), i;
		struct epoll_event *ev = scratch_get(n * sizeof(*ev));

		for (i = 0; i < n; i++) {
			ev[i].events = chance(80) ? (EPOLLIN | EPOLLOUT | EPOLLET | EPOLLONESHOT |
						     EPOLLRDHUP | EPOLLEXCLUSIVE) & rnd() : rnd();
			ev[i].data.u64 = rnd();
		}
		g->cnt = n;
		return (uintptr_t)ev;
	}
	case K_POLLFD: {
		unsigned int n = 1 + rn(8), i;
		struct pollfd *p = scratch_get(n * sizeof(*p));

		for (i = 0; i < n; i++) {
			p[i].fd = fd_pick(fr);
			p[i].events = rnd();
			p[i].revents = 0;
		}
		g->cnt = n;
		return (uintptr_t)p;
	}
	case K_TIMEOUT:
		return chance(70) ? 0 : chance(95) ? rn(5) : chance(80) ? rn(50) : (uint64_t)-1;
	case K_OFFP: {
		int64_t *o = scratch_get(sizeof(*o));

		*o = off_pick();
		return chance(40) ? 0 : chance(92) ? (uintptr_t)o : bad_ptr();
	}
	case K_SMALL:
		return rn(16);
	case K_FCNTL_CMD:
		return fcntl_cmd();
	case K_FCNTL_ARG:
		if (chance(40)) {
			struct flock *fl = scratch_get(sizeof(*fl));

			fl->l_type = rn(4);
			fl->l_whence = rn(3);
			fl->l_start = rn(8192);
			fl->l_len = rn(8192);
			fl->l_pid = 0;
			return (uintptr_t)fl;
		}
		return chance(50) ? rn(NOFILE + 8) : (O_NONBLOCK | O_APPEND | O_ASYNC | O_DIRECT |
						     O_NOATIME) & rnd();
	case K_DOMAIN:	/* no netlink, packet or other families */
		return chance(45) ? AF_UNIX : chance(80) ? AF_INET :
		       chance(30) ? AF_INET6 : chance(50) ? (uint64_t)-1 : 46 + rn(1000);
	case K_STYPE:
		return chance(85) ? (uint64_t)((SOCK_STREAM + rn(5)) |
					       ((SOCK_NONBLOCK | SOCK_CLOEXEC) & rnd()))
				  : rnd();
	case K_PROTO:
		return chance(70) ? 0 : chance(70) ? (uint64_t)(IPPROTO_TCP + rn(17)) : rn(300);
	case K_LEVEL: {
		static const int levels[] = { SOL_SOCKET, IPPROTO_IP, IPPROTO_TCP, IPPROTO_UDP,
					      SOL_SOCKET, 1 /* SOL_SOCKET */, 270 /* SOL_UNIX? */ };

		return chance(90) ? (uint64_t)levels[rn(7)] : rnd();
	}
	case K_OPTNAME:
		return chance(90) ? rn(80) : rnd();
	case K_OPTVAL: {
		int *v = scratch_get(64);

		v[0] = chance(50) ? rn(2) : rn(1 << 20);
		return chance(60) ? (uintptr_t)v : ptr_pick(fr);
	}
	case K_OPTLEN:
		return chance(60) ? 4 : chance(50) ? rn(64) : rn(1 << 16);
	case K_OPTLENP: {
		socklen_t *l = scratch_get(sizeof(*l));

		*l = chance(60) ? 4 : rn(300);
		return chance(90) ? (uintptr_t)l : bad_ptr();
	}
	case K_PATH:
		return path_pick();
	case K_ABSENT:
		return chance(85) ? (uintptr_t)C.absent[rn(8)] : bad_ptr();
	case K_MODE:
		return chance(95) ? rn(010000) : rnd();
	case K_OPENFL:
		if (chance(95))
			return (uint64_t)rn(3) | ((O_CREAT | O_EXCL | O_TRUNC | O_APPEND | O_NONBLOCK |
				O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_PATH | O_DIRECT | O_SYNC |
				O_NOATIME | O_NOCTTY | O_LARGEFILE) & rnd() & rnd()) |
				(permille(20) ? O_TMPFILE : 0);
		return rnd();
	case K_OPENHOW: {
		struct open_how *h = scratch_get(sizeof(*h) + 16);

		memset(h, 0, sizeof(*h) + 16);
		h->flags = arg_build(g, K_OPENFL) & (chance(90) ? 0xffffffff : ~0ULL);
		h->mode = chance(70) && (h->flags & (O_CREAT | O_TMPFILE)) ? rn(01000) : 0;
		h->resolve = chance(60) ? 0 : rn(64);
		if (chance(5))
			((char *)h)[sizeof(*h) + rn(16)] = 1;	/* non-zero tail */
		return chance(95) ? (uintptr_t)h : bad_ptr();
	}
	case K_HOWSIZE:
		return chance(80) ? sizeof(struct open_how) :
		       chance(50) ? sizeof(struct open_how) + 8 * rn(3) : rn(5000);
	case K_ITS: {
		struct itimerspec *its = scratch_get(sizeof(*its));

		its->it_value.tv_sec = 0;
		its->it_value.tv_nsec = chance(50) ? 0 : rn(5000000);
		its->it_interval.tv_sec = 0;
		its->it_interval.tv_nsec = chance(60) ? 0 : 100000 + rn(5000000);
		if (chance(5))
			its->it_value.tv_nsec = rnd();
		return chance(10) ? 0 : chance(95) ? (uintptr_t)its : bad_ptr();
	}
	case K_TSP: {
		struct timespec *ts = scratch_get(sizeof(*ts));

		ts->tv_sec = 0;
		ts->tv_nsec = chance(95) ? rn(1000000) : rnd();
		return chance(90) ? (uintptr_t)ts : chance(50) ? 0 : bad_ptr();
	}
	case K_INTP: {
		int *p = scratch_get(2 * sizeof(int));

		return chance(92) ? (uintptr_t)p : chance(50) ? (uintptr_t)C.ro : bad_ptr();
	}
	case K_NEWFD:
		return chance(40) ? rn(64) : chance(30) && fr ? (uint64_t)fr->fd :
		       chance(50) ? (uint64_t)pool_fd() : rn(NOFILE + 40);
	case K_RWF:
		return chance(90) ? rnd() & 0x1f : rnd();
	case K_MSGFL:
		return (chance(75) ? MSG_DONTWAIT : 0) |
		       (chance(30) ? (MSG_PEEK | MSG_TRUNC | MSG_WAITALL | MSG_NOSIGNAL | MSG_OOB |
				      MSG_MORE | MSG_ZEROCOPY | MSG_CMSG_CLOEXEC) & rnd() : 0);
	case K_SOCKFL:
		return chance(90) ? (SOCK_NONBLOCK | SOCK_CLOEXEC) & rnd() : rnd();
	case K_HOW:
		return chance(90) ? rn(3) : rnd();
	case K_EPOP:
		return chance(90) ? 1 + rn(3) : rnd();
	case K_PIPEFL:
		return chance(90) ? (O_NONBLOCK | O_CLOEXEC | O_DIRECT) & rnd() : rnd();
	case K_EFDFL:
		return chance(90) ? (EFD_NONBLOCK | EFD_CLOEXEC | EFD_SEMAPHORE) & rnd() : rnd();
	case K_TFDFL:
		return chance(90) ? rn(4) : rnd();
	case K_ATFL:
		return chance(90) ? (AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_REMOVEDIR |
				     AT_NO_AUTOMOUNT | AT_EACCESS | AT_STATX_FORCE_SYNC) & rnd() : rnd();
	case K_STATXMASK:
		return chance(80) ? 0xfff & rnd() : rnd();
	case K_WHENCE:
		return chance(90) ? rn(5) : rnd();
	case K_FALLOC: {
		static const int modes[] = {
			0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			FALLOC_FL_ZERO_RANGE, FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE,
		};

		return chance(90) ? (uint64_t)modes[rn(6)] : rnd();
	}
	case K_FLOCKOP:
		return chance(90) ? (uint64_t)((1 << rn(3)) | (chance(85) ? LOCK_NB : 0)) : rnd();
	case K_SPLICEFL:
		return (chance(85) ? SPLICE_F_NONBLOCK : 0) | (chance(10) ? rnd() : 0);
	case K_CLOEXEC:
		return chance(50) ? 0 : chance(90) ? O_CLOEXEC : rnd();
	}
	return rnd();
}

/* Entries aimed at the ring itself, from inside its own batch */
static void attack_entry(struct gen *g, struct offload_sqe *s)
{
	struct fring *fr = g->fr;
	int self = fr ? fr->fd : ring_fd(0);

	memset(s->args, 0, sizeof(s->args));
	switch (rn(6)) {
	case 0:
		s->nr = __NR_close;
		s->args[0] = self;
		break;
	case 1:	/* replace the ring's fd with a pipe or another ring */
		s->nr = __NR_dup3;
		s->args[0] = chance(70) ? pool_fd() : ring_fd(rn(NRING));
		s->args[1] = self;
		s->args[2] = chance(50) ? O_CLOEXEC : 0;
		break;
	case 2:
		s->nr = __NR_dup;
		s->args[0] = self;
		break;
	case 3: {	/* the ring in flight in a UNIX socket */
		struct msghdr *m = scratch_get(sizeof(*m));
		struct cmsghdr *cm = scratch_get(CMSG_SPACE(sizeof(int)));
		struct iovec *iov = scratch_get(sizeof(*iov));

		memset(m, 0, sizeof(*m));
		iov->iov_base = C.buf;
		iov->iov_len = 1;
		m->msg_iov = iov;
		m->msg_iovlen = 1;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		*(int *)CMSG_DATA(cm) = self;
		m->msg_control = cm;
		m->msg_controllen = CMSG_SPACE(sizeof(int));
		s->nr = __NR_sendmsg;
		s->args[0] = C.unixpair[rn(2)];
		s->args[1] = (uintptr_t)m;
		s->args[2] = MSG_DONTWAIT;
		break;
	}
	case 4:
		s->nr = __NR_close;
		s->args[0] = ring_fd(rn(NRING));
		break;
	default:	/* ring fds as arguments of calls that do not take one */
		s->nr = chance(50) ? __NR_read : __NR_fcntl;
		s->args[0] = self;
		s->args[1] = s->nr == __NR_read ? (uintptr_t)C.buf : F_DUPFD;
		s->args[2] = s->nr == __NR_read ? 16 : rn(NOFILE);
		break;
	}
}

static uint32_t sqe_flags(bool worker)
{
	unsigned int c = rn(100);

	if (worker && chance(15))
		return OFFLOAD_SQE_ASYNC | (chance(30) ? OFFLOAD_SQE_LINK : 0) |
		       (chance(20) ? OFFLOAD_SQE_SKIP_SUCCESS : 0);
	if (c < 66)
		return 0;
	if (c < 80)
		return OFFLOAD_SQE_LINK;
	if (c < 89)
		return OFFLOAD_SQE_SKIP_SUCCESS;
	if (c < 95)
		return OFFLOAD_SQE_LINK | OFFLOAD_SQE_SKIP_SUCCESS;
	if (c < 98)
		return OFFLOAD_SQE_ASYNC | (rnd() & 3);
	return rnd();
}

static void entry_build(struct gen *g, struct offload_sqe *s)
{
	unsigned int c = rn(1000), i;

	s->flags = sqe_flags(g->fr && g->fr->worker);
	if (s->flags & OFFLOAD_SQE_ASYNC)
		INC(async_entries);
	s->user_data = rnd();
	if (c < 12) {
		attack_entry(g, s);
		return;
	}
	if (c < 880) {
		unsigned int w = rn(spec_total);
		const struct spec *sp = specs;

		while (w >= sp->weight) {
			w -= sp->weight;
			sp++;
		}
		s->nr = sp->nr;
		if (!is_offloadable(s->nr) && chance(50)) {
			/* this kernel does not offload it: make it an invalid one */
			s->nr = C.nr_syscalls + rn(100);
		}
		g->cnt = 1;
		g->salen = 16;
		for (i = 0; i < 6; i++)
			s->args[i] = arg_build(g, sp->k[i]);
		return;
	}
	for (i = 0; i < 6; i++)
		s->args[i] = chance(50) ? garbage() : (uint64_t)fd_pick(g->fr);
	if (c < 940) {
		/* a syscall no ring may run; skip one this kernel offloads */
		s->nr = never[rn(sizeof(never) / sizeof(never[0]))];
		if (is_offloadable(s->nr))
			s->nr = __NR_getpid;
	} else if (c < 970) {
		do
			s->nr = rn(C.nr_syscalls);
		while (is_offloadable(s->nr));
	} else {
		static const uint32_t odd_nrs[] = {
			0xffffffff, 0x80000000, 0x40000000 /* x32 bit */, 0x40000001, 1024, 4096,
		};

		s->nr = chance(50) ? odd_nrs[rn(6)] : C.nr_syscalls + rn(2000);
	}
}

/* ---- submitting --------------------------------------------------------------- */

struct batch {
	struct fring *fr;
	uintptr_t map;
	struct offload_sqe sqes[64];
	unsigned int n, queued;
	bool wake;			/* the worker asks for OFFLOAD_ENTER_SQ_WAKEUP */
};

/* Copy the entries into the ring and publish them; may fault. */
static void batch_publish(void *arg)
{
	struct batch *b = arg;
	struct fring *fr = b->fr;
	char *map = (char *)b->map;
	uint32_t *head = (uint32_t *)(map + fr->p.sq_head_off);
	uint32_t *tail = (uint32_t *)(map + fr->p.sq_tail_off);
	struct offload_sqe *sqes = (struct offload_sqe *)(map + fr->p.sqes_off);
	uint32_t h = __atomic_load_n(head, __ATOMIC_ACQUIRE);
	uint32_t t = *tail, mask = fr->p.sq_entries - 1, i;

	/* after a scribble, start again from the head the kernel shows */
	if (t - h > fr->p.sq_entries || chance(3))
		t = h;
	for (i = 0; i < b->n && t - h < fr->p.sq_entries; i++, t++)
		sqes[t & mask] = b->sqes[i];
	__atomic_store_n(tail, t, __ATOMIC_RELEASE);
	b->queued = t - h;
	ADD(entries, i);
}

/*
 * After publishing the tail: a full barrier, then the worker's flags (the
 * NEED_WAKEUP protocol); may fault.
 */
static void worker_flags(void *arg)
{
	struct batch *b = arg;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	b->wake = __atomic_load_n((uint32_t *)(b->map + b->fr->p.sq_flags_off),
				  __ATOMIC_RELAXED) & OFFLOAD_SQ_NEED_WAKEUP;
}

/* Reap every CQE, or leave them (a full CQ), or misplace the head. */
static void cq_reap(void *arg)
{
	struct batch *b = arg;
	struct fring *fr = b->fr;
	char *map = (char *)b->map;
	uint32_t *head = (uint32_t *)(map + fr->p.cq_head_off);
	uint32_t *tail = (uint32_t *)(map + fr->p.cq_tail_off);
	struct offload_cqe *cqes = (struct offload_cqe *)(map + fr->p.cqes_off);
	uint32_t h = *head, t = __atomic_load_n(tail, __ATOMIC_ACQUIRE), n = 0;
	volatile int64_t sink = 0;

	if (chance(10))
		return;
	while (h != t && t - h <= fr->p.cq_entries) {
		sink += cqes[h & (fr->p.cq_entries - 1)].res;
		h++;
		n++;
	}
	(void)sink;
	__atomic_store_n(head, chance(97) ? t : (uint32_t)rnd(), __ATOMIC_RELEASE);
	ADD(cqes, n);
}

/* The ring's fdinfo as a string in @buf; false if unreadable */
static bool fdinfo_text(int fd, char *buf, size_t size)
{
	char path[64];
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return false;
	n = read(f, buf, size - 1);
	close(f);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return true;
}

/* The kernel's private SQ head and CQ tail, from fdinfo */
static bool fdinfo_indices(int fd, uint32_t *sq_head, uint32_t *cq_tail)
{
	char buf[1024], *p, *q;

	if (!fdinfo_text(fd, buf, sizeof(buf)))
		return false;
	p = strstr(buf, "SqHead:");
	q = strstr(buf, "CqTail:");
	if (!p || !q)
		return false;
	*sq_head = strtoul(p + 7, NULL, 10);
	*cq_tail = strtoul(q + 7, NULL, 10);
	return true;
}

struct resync {
	struct fring *fr;
	uintptr_t map;
	uint32_t sq_head, cq_tail;
};

static void resync_indices(void *arg)
{
	struct resync *r = arg;
	char *map = (char *)r->map;

	*(uint32_t *)(map + r->fr->p.sq_head_off) = r->sq_head;
	__atomic_store_n((uint32_t *)(map + r->fr->p.sq_tail_off), r->sq_head, __ATOMIC_RELEASE);
	*(uint32_t *)(map + r->fr->p.cq_tail_off) = r->cq_tail;
	__atomic_store_n((uint32_t *)(map + r->fr->p.cq_head_off), r->cq_tail, __ATOMIC_RELEASE);
}

/*
 * After a scribble the ring may refuse every batch (a tail more than a
 * ring ahead, a CQ head past the tail): usually put the indices back where
 * the kernel has them, so that entries keep running.
 */
static void resync(struct fring *fr, uintptr_t map)
{
	struct resync r = { .fr = fr, .map = map };

	if (fdinfo_indices(fr->fd, &r.sq_head, &r.cq_tail) && protected(resync_indices, &r))
		INC(resyncs);
}

static void update_max(uint64_t *p, uint64_t v)
{
	uint64_t old = __atomic_load_n(p, __ATOMIC_RELAXED);

	while (v > old && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_RELAXED,
						       __ATOMIC_RELAXED))
		;
}

static void do_register(struct fring *fr)
{
	uint64_t *words = scratch_get(65 * 8);
	unsigned int op = chance(95) ? rn(4) : rnd();
	unsigned int nr_args = chance(80) ? 1 + rn(64) : rn(100);
	void *arg = words;
	int fd = chance(95) ? fr->fd : fd_pick(fr);

	switch (op) {
	case OFFLOAD_REGISTER_ALLOWLIST:
		/* narrowing for real is rare: the ring would stop running much */
		memset(words, 0xff, 65 * 8);
		if (permille(5))
			words[rn(8)] &= rnd();
		break;
	case OFFLOAD_REGISTER_EVENTFD:
		*(int *)words = chance(70) ? C.evfd : fd_pick(fr);
		nr_args = chance(90) ? 1 : nr_args;
		break;
	case OFFLOAD_UNREGISTER_EVENTFD:
		if (chance(90)) {
			arg = NULL;
			nr_args = 0;
		}
		break;
	}
	if (chance(5))
		arg = (void *)(uintptr_t)bad_ptr();
	sys_offload_register(fd, op, arg, nr_args);
	INC(registers);
}

/* One batch: write entries, enter, reap. */
static void submit_once(void)
{
	struct batch b;
	struct gen g = {};
	struct fring *fr = ring_cur(rn(NRING));
	unsigned int max, i, to_submit, minc = 0, flags = 0;
	uint64_t t0, dt;
	int fd, ret;

	if (!fr)
		return;
	if (chance(3)) {
		do_register(fr);
		return;
	}
	g.fr = fr;
	b.fr = fr;
	b.queued = 0;
	b.map = __atomic_load_n(&fr->map, __ATOMIC_ACQUIRE);
	max = fr->p.sq_entries < 64 ? fr->p.sq_entries : 64;
	b.n = chance(20) ? 1 : 1 + rn(max);
	for (i = 0; i < b.n; i++)
		entry_build(&g, &b.sqes[i]);
	if (b.map)
		protected(batch_publish, &b);

	/* A worker ring's hot path: enter only if the worker sleeps, then reap */
	if (fr->worker && b.map && chance(60)) {
		INC(hot_submits);
		b.wake = false;
		if (protected(worker_flags, &b) && b.wake) {
			sys_offload_enter(fr->fd, 0, 0, OFFLOAD_ENTER_SQ_WAKEUP);
			INC(wakeup_enters);
		}
		protected(cq_reap, &b);
		return;
	}

	switch (rn(20)) {
	case 0:
		to_submit = 0;
		break;
	case 1:
		to_submit = rnd();
		break;
	case 2:
	case 3:
		to_submit = 1 + rn(2 * fr->p.sq_entries);
		break;
	default:
		to_submit = b.queued ? b.queued : b.n;
	}
	if (chance(4))
		minc = chance(50) ? 1 : rnd();
	if (chance(4))
		flags = chance(50) ? 1 + rn(3) : rnd();
	if (fr->worker && chance(15)) {
		/* wait for some of them, interrupted by the timers if need be */
		flags = OFFLOAD_ENTER_GETEVENTS | (chance(50) ? OFFLOAD_ENTER_SQ_WAKEUP : 0);
		minc = 1 + rn(b.queued ? b.queued : 1);
	}
	if (flags & OFFLOAD_ENTER_GETEVENTS)
		INC(getevents_enters);
	if (flags & OFFLOAD_ENTER_SQ_WAKEUP)
		INC(wakeup_enters);
	fd = fr->fd;
	if (chance(3)) {
		fd = chance(50) ? fd_pick(fr) : (int)garbage();
		INC(enter_bad_fd);
	}

	t0 = now_ns();
	ret = sys_offload_enter(fd, to_submit, minc, flags);
	dt = now_ns() - t0;
	INC(enters);
	update_max(&st->max_enter_ns, dt);
	if (ret > 0) {
		ADD(consumed, ret);
	} else if (ret < 0) {
		int err = errno;

		INC(enter_err[err < NERR ? err : 0]);
		if (err == EBADF && fd == fr->fd) {
			/* the ring's fd is gone: let the chaos thread replace it */
			__atomic_store_n(&C.check_rings, 1, __ATOMIC_RELAXED);
			if (C.nthreads)
				sleep_us(500);
		}
		if ((err == EINVAL || err == EBUSY) && fd == fr->fd && !minc && !flags && b.map &&
		    chance(80))
			resync(fr, b.map);
	}

	if (b.map)
		protected(cq_reap, &b);
}

/* ---- scribbling on the shared mapping ---------------------------------------- */

static void scribble(void *arg)
{
	struct fring *fr = arg;
	char *map = (char *)__atomic_load_n(&fr->map, __ATOMIC_ACQUIRE);
	uint32_t *sq_head, *sq_tail, *cq_head, *cq_tail;
	struct offload_sqe *sqes;
	struct offload_cqe *cqes;
	unsigned int i, n;

	if (!map)
		return;
	sq_head = (uint32_t *)(map + fr->p.sq_head_off);
	sq_tail = (uint32_t *)(map + fr->p.sq_tail_off);
	cq_head = (uint32_t *)(map + fr->p.cq_head_off);
	cq_tail = (uint32_t *)(map + fr->p.cq_tail_off);
	sqes = (struct offload_sqe *)(map + fr->p.sqes_off);
	cqes = (struct offload_cqe *)(map + fr->p.cqes_off);

	switch (rn(10)) {
	case 0:
		*sq_tail = chance(50) ? (uint32_t)rnd() : *sq_head + rn(3 * fr->p.sq_entries) - 1;
		break;
	case 1:
		*cq_head = chance(50) ? (uint32_t)rnd() : *cq_tail - rn(3 * fr->p.cq_entries);
		break;
	case 2:	/* indices the kernel writes */
		if (chance(50))
			*sq_head = rnd();
		else
			*cq_tail = rnd();
		break;
	case 3:	/* sizes, masks and flags, which the kernel must never read back */
		*(uint32_t *)(map + fr->p.sq_mask_off) = rnd();
		*(uint32_t *)(map + fr->p.sq_entries_off) = rnd();
		*(uint32_t *)(map + fr->p.cq_mask_off) = rnd();
		*(uint32_t *)(map + fr->p.cq_entries_off) = rnd();
		*(uint32_t *)(map + fr->p.sq_flags_off) = rnd();
		break;
	case 4:
		for (i = 0; i < 16; i++)
			cqes[rn(fr->p.cq_entries)].res = rnd();
		break;
	default:	/* SQEs while they are being consumed */
		n = 50 + rn(500);
		for (i = 0; i < n; i++) {
			struct offload_sqe *s = &sqes[(*sq_head + rn(8)) & (fr->p.sq_entries - 1)];

			switch (rn(4)) {
			case 0:
				s->nr = chance(50) ? scribble_nrs[rn(sizeof(scribble_nrs) / 2)] :
					chance(50) ? C.nr_syscalls + rn(64) : (uint32_t)rnd();
				break;
			case 1:
				s->flags = chance(80) ? rn(4) : rnd();
				break;
			case 2:	/* never pointers to random bytes: see scribble_nrs */
				s->args[rn(6)] = chance(50) ? (uint64_t)fd_pick(fr) :
						 chance(50) ? bad_ptr() : rn(1 << 16);
				break;
			default:
				s->user_data = rnd();
			}
		}
	}
	INC(scribbles);
}

static void scribble_once(void)
{
	struct fring *fr = ring_cur(rn(NRING));

	if (fr)
		protected(scribble, fr);
}

/* ---- rings: creating, mapping, replacing --------------------------------------- */

static void placeholder(char *addr)
{
	/* PROT_NONE, so a stale pointer faults instead of writing elsewhere */
	mmap(addr, HALF, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
}

static bool ring_map(struct fring *fr, int slot, int half)
{
	char *addr = C.rings[slot].resv + half * HALF;
	size_t len = fr->p.ring_size;
	void *m;

	if (chance(3))
		len = chance(50) ? 4096 : len + 4096;	/* partial, or too long: EINVAL */
	m = mmap(addr, len, PROT_READ | PROT_WRITE,
		 (chance(2) ? MAP_PRIVATE : MAP_SHARED) | MAP_FIXED, fr->fd,
		 chance(2) ? 4096 : OFFLOAD_OFF_RING);
	if (m == MAP_FAILED) {
		placeholder(addr);
		return false;
	}
	fr->half = half;
	fr->maplen = len;
	__atomic_store_n(&fr->map, (uintptr_t)m, __ATOMIC_RELEASE);
	return true;
}

static void ring_unmap(struct fring *fr, int slot)
{
	uintptr_t m = __atomic_exchange_n(&fr->map, 0, __ATOMIC_ACQ_REL);

	if (m) {
		munmap((void *)m, fr->maplen);
		placeholder(C.rings[slot].resv + fr->half * HALF);
	}
}

static unsigned int pick_entries(void)
{
	unsigned int c = rn(100);

	if (c < 40)
		return 1 << rn(6);
	if (c < 80)
		return 1 + rn(200);
	if (c < 98)
		return 256 << rn(3);
	return OFFLOAD_MAX_ENTRIES;
}

/*
 * Worker parameters: mostly a short idle time, so that unfed workers sleep
 * and wake often; sometimes the default second; sometimes pinned.
 */
static void worker_params(struct offload_params *p)
{
	p->flags |= OFFLOAD_SETUP_WORKER;
	p->worker_idle_ms = chance(10) ? 0 : chance(70) ? 1 + rn(10) : rn(200);
	if (chance(20)) {
		p->flags |= OFFLOAD_SETUP_WORKER_CPU;
		p->worker_cpu = chance(95) ? rn(C.ncpus) : rn(64);
	}
}

/*
 * Create a new ring in @slot, mapped in the half the old one does not use:
 * a worker ring if @worker is 1, an inline one if 0, either if -1.
 */
static void ring_replace_kind(int slot, int worker)
{
	struct fring *old = ring_cur(slot), *fr;
	unsigned int entries;
	int fd, half, fl;

	if (C.nfrings >= C.maxfrings)
		return;
	fr = &C.frings[C.nfrings++];
	memset(fr, 0, sizeof(*fr));
	fr->p.size = sizeof(fr->p);
	entries = pick_entries();
	if (chance(30)) {
		fr->p.flags |= OFFLOAD_SETUP_CQSIZE;
		fr->p.cq_entries = entries * (1 + rn(2));
	}
	if (chance(50))
		fr->p.flags |= OFFLOAD_SETUP_CLOEXEC;
	if (worker < 0)
		worker = C.use_workers && chance(C.solo ? 20 : 40);
	if (worker)
		worker_params(&fr->p);
	fd = sys_offload_setup(entries, &fr->p);
	if (fd < 0) {
		INC(setup_fail);
		C.nfrings--;
		return;
	}
	INC(setups);
	if (worker) {
		INC(worker_setups);
		fr->worker = true;
		C.had_worker = true;
	}
	/*
	 * Only where no other thread runs entries: one could close the new
	 * fd and another take its number before fcntl() looks. A worker or
	 * helper thread of any ring counts.
	 */
	if (!C.nthreads && !C.had_worker) {
		fl = fcntl(fd, F_GETFD);
		if (fl >= 0 && !(fl & FD_CLOEXEC))
			INC(setup_no_cloexec);
	}
	fr->fd = fd;
	half = old && __atomic_load_n(&old->map, __ATOMIC_RELAXED) ? !old->half : (int)rn(2);
	ring_map(fr, slot, half);
	__atomic_store_n(&C.rings[slot].cur, fr, __ATOMIC_RELEASE);
	if (old) {
		ring_unmap(old, slot);
		close(old->fd);	/* may be another fd by now: fine, it is chaos */
	}
}

static void ring_replace(int slot)
{
	ring_replace_kind(slot, -1);
}

/* offload_setup() with broken parameters; close whatever it returns. */
static void setup_fuzz(void)
{
	struct offload_params *p = scratch_get(sizeof(*p) + 64);
	unsigned int entries = chance(50) ? pick_entries() : rnd();
	uint32_t *w = (uint32_t *)p;
	void *arg = p;
	bool refuse = false;
	int fd;

	memset(p, 0, sizeof(*p) + 64);
	p->size = sizeof(*p);
	switch (rn(7)) {
	case 0:
		p->flags = rnd();
		break;
	case 1:
		w[2 + rn(sizeof(*p) / 4 - 2)] = rnd();	/* out fields and resv */
		break;
	case 2:
		p->size = chance(50) ? rn(200) : rnd();
		break;
	case 3:
		p->size = sizeof(*p) + 8 * (1 + rn(8));
		if (chance(50))
			((char *)p)[sizeof(*p) + rn(64)] = 1;
		break;
	case 4:
		arg = (void *)(uintptr_t)(chance(50) ? bad_ptr() : (uintptr_t)C.ro);
		break;
	case 5:
		p->flags = OFFLOAD_SETUP_CQSIZE;
		p->cq_entries = rnd();
		break;
	default:	/* worker parameters that worker-contract.md refuses */
		refuse = true;
		switch (rn(5)) {
		case 0:
			p->flags = OFFLOAD_SETUP_WORKER;
			p->worker_idle_ms = OFFLOAD_MAX_WORKER_IDLE_MS + 1 + rn(1 << 20);
			break;
		case 1:
			p->worker_idle_ms = 1 + rn(1000);	/* without OFFLOAD_SETUP_WORKER */
			break;
		case 2:
			p->flags = OFFLOAD_SETUP_WORKER_CPU;	/* without OFFLOAD_SETUP_WORKER */
			break;
		case 3:
			p->flags = OFFLOAD_SETUP_WORKER;	/* a CPU without its flag */
			p->worker_cpu = 1 + rn(64);
			break;
		default:
			p->flags = OFFLOAD_SETUP_WORKER | OFFLOAD_SETUP_WORKER_CPU;
			p->worker_cpu = 8192 + rn(1 << 20);	/* >= nr_cpu_ids */
		}
	}
	fd = sys_offload_setup(entries, arg);
	INC(setup_fuzz);
	if (fd >= 0) {
		if (refuse) {
			INC(setup_bad_worker);
			snprintf(st->contract_note, sizeof(st->contract_note),
				 "offload_setup(%u) accepted flags %#x worker_cpu %u worker_idle_ms %u",
				 entries, p->flags, p->worker_cpu, p->worker_idle_ms);
		}
		close(fd);
	}
}

/* ---- the pool of throwaway fds ---------------------------------------------------- */

static void pool_add(int fd)
{
	if (fd < 0)
		return;
	if (C.npool < POOL_MAX)
		__atomic_store_n(&C.pool[C.npool++], fd, __ATOMIC_RELAXED);
	else
		__atomic_store_n(&C.pool[rn(POOL_MAX)], fd, __ATOMIC_RELAXED);
}

static uint16_t bound_port(int fd)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) ||
	    getsockname(fd, (struct sockaddr *)&sin, &len))
		return 0;
	return ntohs(sin.sin_port);
}

static void pool_fill(void)
{
	int p[2], s, l, c;

	C.npool = 0;
	C.dirfd = open(".", O_RDONLY | O_DIRECTORY);
	pool_add(open("/dev/null", O_RDWR));
	if (!pipe2(p, O_NONBLOCK)) {
		pool_add(p[0]);
		pool_add(p[1]);
	}
	if (!pipe2(p, 0)) {	/* blocking: a read waits until a signal */
		pool_add(p[0]);
		pool_add(p[1]);
	}
	if (!socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, C.unixpair)) {
		pool_add(C.unixpair[0]);
		pool_add(C.unixpair[1]);
	}
	if (!socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, p)) {
		pool_add(p[0]);
		pool_add(p[1]);
	}
	if (!socketpair(AF_UNIX, SOCK_SEQPACKET, 0, p)) {
		pool_add(p[0]);
		pool_add(p[1]);
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	C.udp_port = bound_port(s);
	pool_add(s);
	l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	C.tcp_port = bound_port(l);
	listen(l, 8);
	pool_add(l);
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c >= 0) {
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(C.tcp_port) };

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		connect(c, (struct sockaddr *)&sin, sizeof(sin));
		pool_add(c);
		sleep_us(1000);
		pool_add(accept4(l, NULL, NULL, SOCK_NONBLOCK));
	}
	C.evfd = eventfd(0, EFD_NONBLOCK);
	pool_add(C.evfd);
	pool_add(epoll_create1(0));
	pool_add(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK));
	s = memfd_create("offload-stress", 0);
	if (s >= 0) {
		if (write(s, C.buf, 16384) < 0)
			note("memfd write: %s", strerror(errno));
		pool_add(s);
	}
	pool_add(openat(C.dirfd, "f0", O_RDWR | O_CREAT, 0600));
	pool_add(openat(C.dirfd, "f1", O_RDWR | O_CREAT | O_APPEND, 0600));
	pool_add(C.dirfd);
	pool_add(open(".", O_PATH));
}

/* Close fds that pile up (dup(), accept() ...) beyond the pool and the rings. */
static void fd_reap(void)
{
	bool keep[NOFILE] = {};
	int i, fd;

	for (i = 0; i < C.npool; i++)
		if (C.pool[i] >= 0 && C.pool[i] < NOFILE)
			keep[C.pool[i]] = true;
	for (i = 0; i < NRING; i++) {
		fd = ring_fd(i);
		if (fd >= 0 && fd < NOFILE)
			keep[fd] = true;
	}
	keep[0] = keep[1] = keep[2] = true;
	for (fd = 3; fd < NOFILE; fd++)
		if (!keep[fd] && chance(70))
			close(fd);
	INC(fd_reaps);
}

/* ---- fork, exec ---------------------------------------------------------------- */

static bool is_ring_fd(int fd)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = 0;
	return !strncmp(link, "anon_inode:", 11) && strstr(link, "offload");
}

static void foreign_worked(uint64_t *counter, const char *what, int fd, long ret)
{
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
	snprintf(st->contract_note, sizeof(st->contract_note),
		 "%s on an inherited ring fd %d in pid %d returned %ld (%s)", what, fd, getpid(),
		 ret, ret < 0 ? strerror(errno) : "success");
}

/* The rings of another mm must refuse this process. */
static void try_foreign_ring_fd(int fd, uint64_t *not_eperm)
{
	uint64_t words[8];
	long ret;
	void *m;

	ret = sys_offload_enter(fd, 1, 0, 0);
	if (ret >= 0 || errno != EPERM)
		foreign_worked(not_eperm, "offload_enter", fd, ret);
	ret = sys_offload_register(fd, OFFLOAD_REGISTER_PROBE, words, 8);
	if (ret >= 0 || errno != EPERM)
		foreign_worked(not_eperm, "offload_register", fd, ret);
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m != MAP_FAILED) {
		foreign_worked(not_eperm, "mmap", fd, 0);
		munmap(m, 4096);
	}
}

static void touch_ring(void *arg)
{
	volatile uint32_t *tail = arg;

	*tail = *tail;	/* a forked child must have no ring mapping */
	INC(inherited_ring_touch);
}

static void solo_loop(long iterations);
static void reset_child_signals(void);

/* In a forked child of a threaded fuzzing process. Never returns. */
static void forked_child(void)
{
	int i, fd;
	unsigned int c;

	C.forked = true;
	memset(C.kids, 0, sizeof(C.kids));
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGALRM, SIG_DFL);
	alarm(10);	/* whatever happens, do not outlive this */
	seed_thread(getpid() ^ now_ns());
	for (i = 0; i < NRING; i++) {
		struct fring *fr = ring_cur(i);
		uintptr_t map;

		if (!fr)
			continue;
		fd = fr->fd;
		if (is_ring_fd(fd)) {
			INC(inherited_checked);
			try_foreign_ring_fd(fd, &st->inherited_not_eperm);
		}
		map = __atomic_load_n(&fr->map, __ATOMIC_RELAXED);
		if (map && chance(50))
			protected(touch_ring, (void *)(map + fr->p.sq_tail_off));
	}
	c = rn(100);
	if (c < 40)
		_exit(0);
	if (c < 60) {
		char *argv[] = { "true", NULL };

		INC(execs_true);
		execve("/bin/true", argv, environ);
		_exit(127);
	}
	if (c < 70) {
		char *argv[] = { "stress", "--exec-check", (char *)C.statspath, NULL };

		INC(execs_check);
		execve("/proc/self/exe", argv, environ);
		_exit(127);
	}
	/* a single-threaded session on rings of its own */
	INC(solo_sessions);
	C.nthreads = 0;
	C.had_worker = false;	/* fork() copied no worker thread */
	C.use_workers = chance(50);
	reset_child_signals();
	signal(SIGALRM, SIG_DFL);
	for (i = 0; i < NRING; i++)
		ring_replace(i);
	solo_loop(50 + rn(300));
	_exit(0);
}

/* Reap forked children; kill those that take more than 3 s. */
static void kids_reap(void)
{
	unsigned int i;
	int status;

	for (i = 0; i < sizeof(C.kids) / sizeof(C.kids[0]); i++) {
		pid_t pid = C.kids[i].pid;

		if (!pid)
			continue;
		if (now_ns() - C.kids[i].started > 3000000000ULL)
			kill(pid, SIGKILL);
		if (waitpid(pid, &status, WNOHANG) != 0)
			C.kids[i].pid = 0;
	}
}

static void do_fork(void)
{
	unsigned int i;
	pid_t pid;

	if (C.forked)
		return;
	kids_reap();
	for (i = 0; i < sizeof(C.kids) / sizeof(C.kids[0]); i++)
		if (!C.kids[i].pid)
			break;
	if (i == sizeof(C.kids) / sizeof(C.kids[0]))
		return;
	pid = fork();
	if (pid == 0)
		forked_child();
	if (pid < 0)
		return;
	INC(forks);
	C.kids[i].pid = pid;
	C.kids[i].started = now_ns();
}

/* Replace this (threaded) process while its threads are in offload_enter(). */
static void exec_self(void)
{
	char slot[16], seed[32];
	char *argv[] = { "stress", "--fuzz-child", (char *)C.statspath, (char *)C.dir, slot,
			 seed, NULL };

	snprintf(slot, sizeof(slot), "%d", C.slot);
	snprintf(seed, sizeof(seed), "%llu", (unsigned long long)rnd());
	INC(execs_self);
	execve("/proc/self/exe", argv, environ);
}

/*
 * The known use-after-free of the unhardened series, on purpose: entries
 * queued, the ring unmapped (the mapping no longer holds the file), then a
 * batch in which an entry closes the ring's own fd or dup3()s over it and
 * more entries follow. Single-threaded, offload_enter() got its file
 * without a reference; close(2) releases the file synchronously.
 */
static void self_close(void)
{
	int slot = rn(NRING);
	struct fring *fr = ring_cur(slot);
	struct gen g = { .fr = fr };
	struct batch b;
	unsigned int i, at;

	if (!fr || !(b.map = __atomic_load_n(&fr->map, __ATOMIC_ACQUIRE)))
		return;
	if (fr->p.sq_entries < 2)
		return;
	b.fr = fr;
	b.queued = 0;
	b.n = 2 + rn(fr->p.sq_entries < 8 ? fr->p.sq_entries - 1 : 7);
	for (i = 0; i < b.n; i++) {
		struct offload_sqe *s = &b.sqes[i];

		memset(s, 0, sizeof(*s));
		s->nr = chance(50) ? __NR_getpid : __NR_getppid;
		s->user_data = i;
		if (chance(30))
			entry_build(&g, s);
		s->flags &= ~OFFLOAD_SQE_LINK;	/* nothing cancels the close */
	}
	at = rn(b.n - 1);
	b.sqes[at].nr = chance(70) ? __NR_close : __NR_dup3;
	b.sqes[at].args[0] = b.sqes[at].nr == __NR_close ? (uint64_t)fr->fd : (uint64_t)pool_fd();
	b.sqes[at].args[1] = fr->fd;
	b.sqes[at].args[2] = 0;
	if (!protected(batch_publish, &b))
		return;
	ring_unmap(fr, slot);
	INC(self_closes);
	sys_offload_enter(fr->fd, b.queued, 0, 0);
	INC(enters);
}

/* ---- seccomp --------------------------------------------------------------------- */

/* ERRNO, TRAP and LOG for calls of the identity family; the rest allowed */
static void install_seccomp(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getegid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getgid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_geteuid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_LOG),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_fchmod, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };

	if (C.seccomp_on)
		return;
	C.seccomp_on = true;
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (!syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog))
		INC(seccomp_filters);
}

/* ---- chaos ------------------------------------------------------------------------ */

static void read_fdinfo(int fd)
{
	char path[64], buf[512];
	int f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY);
	if (f < 0)
		return;
	while (read(f, buf, sizeof(buf)) > 0)
		;
	close(f);
	INC(fdinfo_reads);
}

/*
 * A thread that creates a worker ring in @slot, submits a little and
 * exits. Its scratch area outlives it (entries it queued on other worker
 * rings may still point there), one for all: they run one at a time.
 */
static void *creator(void *arg)
{
	static char *creator_scratch;
	/* SIGUSR2: a forked child leaves SIGALRM to its alarm() */
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGUSR2 };
	struct itimerspec its = { { 0, 2000000 }, { 0, 2000000 } };
	int slot = (int)(intptr_t)arg, i, n = rn(4);
	timer_t timer;
	bool timed;

	seed_thread(rnd() ^ gettid());
	if (!creator_scratch)
		creator_scratch = scratch_map();
	scratch = creator_scratch;
	if (!scratch)
		return NULL;
	/* its own timer ends a blocking entry or a wait, as the submitters' do */
	sev._sigev_un._tid = gettid();
	timed = !timer_create(CLOCK_MONOTONIC, &sev, &timer);
	if (timed)
		timer_settime(timer, 0, &its, NULL);
	ring_replace_kind(slot, 1);
	for (i = 0; i < n; i++)
		submit_once();
	if (chance(30))
		sleep_us(rn(3000));	/* let the worker run some */
	if (timed)
		timer_delete(timer);
	return NULL;
}

/*
 * The creator thread of a worker ring exits with entries queued: the
 * worker stops, later entries never run, offload_enter() says EOWNERDEAD.
 * Joined at once, so rings are still created by one thread at a time.
 */
static void creator_exits(int slot)
{
	pthread_t t;

	if (!pthread_create(&t, NULL, creator, (void *)(intptr_t)slot)) {
		pthread_join(t, NULL);
		INC(creator_exits);
	}
}

static void chaos_once(bool allow_exec)
{
	int slot = rn(NRING), p[2];
	struct fring *fr = ring_cur(slot);
	unsigned int c = rn(1000);
	uintptr_t m;

	if (!fr) {
		ring_replace(slot);
		return;
	}
	if (c < 60) {	/* the ring fd closed under everyone */
		close(fr->fd);
		INC(ring_close);
	} else if (c < 110) {	/* a pipe dup2()ed over the ring fd */
		if (!pipe2(p, O_NONBLOCK)) {
			dup2(p[chance(50)], fr->fd);
			close(p[0]);
			close(p[1]);
			INC(ring_dup2);
		}
	} else if (c < 170) {
		ring_unmap(fr, slot);
		INC(munmaps);
	} else if (c < 240) {
		if (!__atomic_load_n(&fr->map, __ATOMIC_RELAXED) && ring_map(fr, slot, rn(2)))
			INC(remaps);
	} else if (c < 280) {
		/* anonymous memory over the ring (an implicit munmap), then the ring again */
		m = __atomic_load_n(&fr->map, __ATOMIC_RELAXED);
		if (m && mmap((void *)m, fr->maplen, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
			INC(overlays);
			sleep_us(rn(2000));
			if (mmap((void *)m, fr->maplen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
				 fr->fd, 0) == MAP_FAILED) {
				__atomic_store_n(&fr->map, 0, __ATOMIC_RELEASE);
				placeholder(C.rings[slot].resv + fr->half * HALF);
			}
		}
	} else if (c < 320) {
		m = __atomic_exchange_n(&fr->map, 0, __ATOMIC_ACQ_REL);
		if (m) {
			char *to = C.rings[slot].resv + !fr->half * HALF;
			void *n = mremap((void *)m, fr->maplen, fr->maplen,
					 MREMAP_MAYMOVE | MREMAP_FIXED, to);

			if (n != MAP_FAILED) {
				placeholder((char *)m);
				fr->half = !fr->half;
				m = (uintptr_t)n;
				INC(mremaps);
			}
			if (chance(10))	/* grow it: refused, VM_DONTEXPAND */
				mremap((void *)m, fr->maplen, fr->maplen + 4096, 0);
			__atomic_store_n(&fr->map, m, __ATOMIC_RELEASE);
		}
	} else if (c < 360) {
		m = __atomic_load_n(&fr->map, __ATOMIC_RELAXED);
		if (m && !mprotect((void *)m, fr->maplen, chance(50) ? PROT_READ : PROT_NONE)) {
			INC(mprotects);
			sleep_us(rn(2000));
			mprotect((void *)m, fr->maplen, PROT_READ | PROT_WRITE);
		}
	} else if (c < 450) {
		ring_replace(slot);
	} else if (c < 500) {
		setup_fuzz();
	} else if (c < 560) {
		read_fdinfo(fr->fd);
	} else if (c < 640) {
		close(pool_fd());
	} else if (c < 690) {
		dup2(pool_fd(), 3 + rn(60));
	} else if (c < 720) {
		int i;

		for (i = 0; i < C.npool; i++)
			close(C.pool[i]);
		pool_fill();
		INC(pool_refresh);
	} else if (c < 740) {
		fd_reap();
	} else if (c < 800) {
		do_fork();
	} else if (c < 803 && allow_exec) {
		exec_self();
	} else if (c < 806) {
		install_seccomp();
	} else if (c < 900) {
		do_register(fr);
	} else if (c < 930) {
		self_close();
	} else if (c < 960 && C.use_workers) {
		creator_exits(slot);
	}

	/*
	 * A ring whose fd is gone or is something else now is replaced; one
	 * whose creator exited (EOWNERDEAD) mostly stays a while: entries
	 * queued on it must never run.
	 */
	for (slot = 0; slot < NRING; slot++) {
		fr = ring_cur(slot);
		if (fr && sys_offload_enter(fr->fd, 0, 0, 0) < 0) {
			if (errno == EOWNERDEAD && chance(90)) {
				INC(owner_dead);
				continue;
			}
			INC(ring_lost);
			ring_replace(slot);
		}
	}
}

/* ---- threads ---------------------------------------------------------------------- */

static void *submitter(void *arg)
{
	int idx = (int)(intptr_t)arg;
	timer_t timer;
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGALRM };
	struct itimerspec its = {};

	seed_thread(rnd() ^ idx ^ gettid());
	scratch = scratch_map();
	if (!scratch)
		return NULL;
	__atomic_store_n(&C.tids[idx], gettid(), __ATOMIC_RELEASE);
	/* a timer of its own interrupts it now and then */
	sev._sigev_un._tid = gettid();	/* sigev_notify_thread_id in newer glibc */
	if (!timer_create(CLOCK_MONOTONIC, &sev, &timer)) {
		its.it_value.tv_nsec = 1000000 + rn(20000000);
		its.it_interval.tv_nsec = 2000000 + rn(50000000);
		timer_settime(timer, 0, &its, NULL);
	}
	while (!C.stop)
		submit_once();
	return NULL;
}

static void *scribbler(void *arg)
{
	(void)arg;
	seed_thread(rnd() ^ gettid());
	while (!C.stop) {
		scribble_once();
		if (chance(50))
			sched_yield();
		else
			sleep_us(rn(500));
	}
	return NULL;
}

static void *signaller(void *arg)
{
	(void)arg;
	seed_thread(rnd() ^ gettid());
	while (!C.stop) {
		int i = rn(C.nthreads);
		pid_t tid = __atomic_load_n(&C.tids[i], __ATOMIC_ACQUIRE);

		if (tid)
			syscall(__NR_tgkill, getpid(), tid, chance(50) ? SIGUSR1 : SIGUSR2);
		sleep_us(chance(90) ? rn(20000) : 0);
	}
	return NULL;
}

static void *chaos(void *arg)
{
	(void)arg;
	seed_thread(rnd() ^ gettid());
	scratch = scratch_map();
	if (!scratch)
		return NULL;
	while (!C.stop) {
		chaos_once(true);
		kids_reap();
		if (!__atomic_exchange_n(&C.check_rings, 0, __ATOMIC_RELAXED))
			sleep_us(rn(5000));
	}
	return NULL;
}

/* One thread does everything: the path where offload_enter() holds no file reference. */
static void solo_loop(long iterations)
{
	timer_t timer;
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR2 };
	struct itimerspec its = {};
	long i;

	if (!timer_create(CLOCK_MONOTONIC, &sev, &timer)) {
		its.it_value.tv_nsec = 1000000 + rn(20000000);
		its.it_interval.tv_nsec = 2000000 + rn(30000000);
		timer_settime(timer, 0, &its, NULL);
	}
	for (i = 0; iterations < 0 || i < iterations; i++) {
		unsigned int c = rn(100);

		if (c < 60)
			submit_once();
		else if (c < 72)
			scribble_once();
		else
			chaos_once(iterations < 0);
		if (!(i % 16))
			kids_reap();
	}
}

/* ---- a fuzzing child ------------------------------------------------------------- */

static void sigact(int sig, void (*h)(int), int flags)
{
	struct sigaction sa = { .sa_handler = h, .sa_flags = flags };

	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

static void reset_child_signals(void)
{
	struct sigaction sa = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO | SA_NODEFER };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigact(SIGUSR1, on_signal, SA_RESTART);
	sigact(SIGUSR2, on_signal, 0);
	sigact(SIGALRM, on_signal, 0);
	sigact(SIGSYS, on_signal, SA_RESTART);
	sigact(SIGIO, on_signal, SA_RESTART);
	sigact(SIGPIPE, SIG_IGN, 0);
	sigact(SIGXFSZ, SIG_IGN, 0);
	sigact(SIGTTOU, SIG_IGN, 0);
	sigact(SIGTTIN, SIG_IGN, 0);
}

static int map_stats(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -1;
	st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return st == MAP_FAILED ? -1 : 0;
}

static void drop_privileges(void)
{
	if (getuid() != 0)
		return;
	if (setgroups(0, NULL) || setresgid(UNPRIV_ID, UNPRIV_ID, UNPRIV_ID) ||
	    setresuid(UNPRIV_ID, UNPRIV_ID, UNPRIV_ID))
		_exit(3);
	prctl(PR_SET_DUMPABLE, 1);
}

static void limits(void)
{
	struct rlimit nofile = { NOFILE, NOFILE }, fsize = { FSIZE_LIMIT, FSIZE_LIMIT };
	struct rlimit nproc = { 512, 512 }, core = { 0, 0 };

	setrlimit(RLIMIT_NOFILE, &nofile);
	setrlimit(RLIMIT_FSIZE, &fsize);
	setrlimit(RLIMIT_NPROC, &nproc);
	setrlimit(RLIMIT_CORE, &core);
}

static char *map_or_die(size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		_exit(4);
	return p;
}

/*
 * An address with nothing mapped, now or later. Not a page we unmap
 * ourselves: the next mapping (a thread's stack) may take its place, and
 * entries would write into it. The allocator works top-down, so low
 * addresses stay free; mincore() says whether one is.
 */
static char *hole_find(void)
{
	unsigned char vec;
	char *p;

	for (p = (char *)0x200000; p < (char *)0x10000000; p += 0x100000)
		if (mincore(p, 4096, &vec) && errno == ENOMEM)
			return p;
	p = map_or_die(4096, PROT_NONE);	/* mapped, but no access either */
	return p;
}

static void names_init(void)
{
	static const char *fixed[] = {
		"f0", "f1", "f2", "f3", "d0", "d1", "d0/f0", "d0/d2", "d1/f1", ".", "sock0",
		"sock1", "f0/", "d0/.", "d0//f0", "",
	};
	char *region = map_or_die(8192, PROT_READ | PROT_WRITE), *p = region;
	unsigned int i, j, n = sizeof(fixed) / sizeof(fixed[0]);

	for (i = 0; i < n; i++) {
		C.names[C.nnames++] = p;
		p = stpcpy(p, fixed[i]) + 1;
	}
	/* random names: letters and digits only, never a slash or a dot */
	for (i = 0; i < 20; i++) {
		unsigned int len = 1 + rn(12);

		C.names[C.nnames++] = p;
		for (j = 0; j < len; j++)
			*p++ = "abcdefghijklmnopqrstuvwxyz0123456789_-"[rn(38)];
		*p++ = 0;
	}
	C.names[C.nnames++] = p;	/* too long */
	memset(p, 'n', 300);
	p += 301;
	for (i = 0; i < 8; i++) {	/* nothing ever creates these */
		C.absent[i] = p;
		p += sprintf(p, "absent-%u", i) + 1;
	}
	mprotect(region, 8192, PROT_READ);
	/* a name without its NUL, ending at the guard page */
	memset(C.buf + BUF_LEN - 16, 'u', 16);
	C.unterminated = C.buf + BUF_LEN - 16;
}

/* ---- the ledger: exact accounting on well-formed rings --------------------------- */

/*
 * A ledger child runs no chaos: its threads each drive rings of their own
 * (worker and inline) with entries whose results are known in advance,
 * and account for every completion. A completion that was not expected
 * (twice, or for an entry whose success posts none) or that is missing
 * once the kernel says the ring is quiescent fails the run, and so do a
 * wrong result, completions of one worker out of order, and the
 * worker-mode contract: OFFLOAD_SQ_WORKER_GONE and EOWNERDEAD once the
 * creator thread exited and nothing run after that, a GETEVENTS wait that
 * returns early, worker and helper threads that outlive the last close.
 * Signals interrupt it all the time, and the supervisor kills it as it
 * kills every child, with entries in flight.
 */

#define LG_SLOTS	1024	/* entries tracked per ring: more than SQ + CQ */
#define LG_MAX_SQ	256
#define LG_WAIT_NS	30000000000ULL	/* a worker that takes nothing this long is stuck */
#define LG_GONE_NS	10000000000ULL	/* threads must be gone this long after the last close */

enum { LS_FREE, LS_EXPECT, LS_NONE, LS_NEVER };

struct lslot {
	uint32_t seq;
	uint8_t state;		/* LS_* */
	uint8_t ordered;	/* posted in SQ order with the other ordered ones */
	uint8_t read;		/* an ASYNC read of the ring's pipe */
	int64_t want, alt;	/* the result; alt is accepted too when alt_ok */
	bool alt_ok;
	bool any;		/* any result will do */
};

struct lring {
	int fd, evfd;
	bool worker, orphan;
	struct offload_params p;
	char *map;
	uint32_t *sq_head, *sq_tail, *sq_flags, *cq_head, *cq_tail;
	struct offload_sqe *sqes;
	struct offload_cqe *cqes;
	uint32_t tail;		/* the SQ tail published */
	uint32_t gen;		/* high half of user_data */
	uint32_t seq;		/* low half of the next user_data */
	uint32_t expect;	/* CQEs still to come */
	uint32_t unpaired;	/* ASYNC reads of the pipe whose write is not queued */
	uint32_t reads;		/* ASYNC reads not completed */
	bool have_ordered;
	uint32_t last_ordered;	/* seq of the last ordered CQE */
	uint64_t posted;	/* CQEs reaped */
	int pipe[2];		/* blocking: ASYNC reads wait on it */
	int stall[2];		/* never written: a plain read stalls the worker */
	char rbuf[8 * 16];
	struct lslot s[LG_SLOTS];
};

static int lg_null = -1;

static void lg_bad(uint64_t *counter, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lg_bad(uint64_t *counter, const char *fmt, ...)
{
	char buf[sizeof(st->lg_note) - 20];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* the first one is the one to read */
	if (!__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED) && !st->lg_note[0])
		snprintf(st->lg_note, sizeof(st->lg_note), "pid %d: %s", getpid(), buf);
}

static const char *lg_kind(const struct lring *r)
{
	return r->worker ? "worker" : "inline";
}

static bool lg_setup(struct lring *r, bool worker)
{
	unsigned int entries = 1 + rn(chance(50) ? 16 : LG_MAX_SQ);

	memset(r, 0, offsetof(struct lring, s));
	r->fd = r->evfd = r->pipe[0] = r->pipe[1] = r->stall[0] = r->stall[1] = -1;
	r->worker = worker;
	r->p.size = sizeof(r->p);
	if (chance(30)) {
		/* a CQ no larger than the SQ fills up: the worker must wait for room */
		r->p.flags |= OFFLOAD_SETUP_CQSIZE;
		for (r->p.cq_entries = 1; r->p.cq_entries < entries; r->p.cq_entries <<= 1)
			;
	}
	if (worker) {
		r->p.flags |= OFFLOAD_SETUP_WORKER;
		/* mostly short: the worker sleeps between batches, SQ_WAKEUP wakes it */
		r->p.worker_idle_ms = chance(10) ? 0 : chance(80) ? 1 + rn(5) : rn(100);
		if (chance(20)) {
			r->p.flags |= OFFLOAD_SETUP_WORKER_CPU;
			r->p.worker_cpu = rn(C.ncpus);
		}
	}
	r->fd = sys_offload_setup(entries, &r->p);
	if (r->fd < 0) {
		INC(lg_setup_fail);
		return false;
	}
	r->map = mmap(NULL, r->p.ring_size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd,
		      OFFLOAD_OFF_RING);
	if (r->map == MAP_FAILED || pipe2(r->pipe, O_CLOEXEC)) {
		if (r->map != MAP_FAILED)
			munmap(r->map, r->p.ring_size);
		close(r->fd);
		INC(lg_setup_fail);
		return false;
	}
	r->sq_head = (uint32_t *)(r->map + r->p.sq_head_off);
	r->sq_tail = (uint32_t *)(r->map + r->p.sq_tail_off);
	r->sq_flags = (uint32_t *)(r->map + r->p.sq_flags_off);
	r->cq_head = (uint32_t *)(r->map + r->p.cq_head_off);
	r->cq_tail = (uint32_t *)(r->map + r->p.cq_tail_off);
	r->sqes = (struct offload_sqe *)(r->map + r->p.sqes_off);
	r->cqes = (struct offload_cqe *)(r->map + r->p.cqes_off);
	r->gen = rnd();
	if (worker && !(r->p.features & OFFLOAD_FEAT_SQE_ASYNC))
		lg_bad(&st->lg_contract, "worker ring without OFFLOAD_FEAT_SQE_ASYNC (features %#x)",
		       r->p.features);
	if (chance(30)) {
		r->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (r->evfd >= 0 &&
		    sys_offload_register(r->fd, OFFLOAD_REGISTER_EVENTFD, &r->evfd, 1)) {
			close(r->evfd);
			r->evfd = -1;
		}
	}
	INC(lg_rings);
	if (worker)
		INC(lg_worker_rings);
	return true;
}

/* The kernel's view from fdinfo: SqHead, InFlight, WorkerTid; false if unreadable */
static bool lg_fdinfo(int fd, uint32_t *sq_head, uint32_t *in_flight, pid_t *tid)
{
	char buf[2048], *p;

	if (!fdinfo_text(fd, buf, sizeof(buf)))
		return false;
	if (tid)
		*tid = (p = strstr(buf, "WorkerTid:")) ? atoi(p + 10) : 0;
	p = strstr(buf, "SqHead:");
	if (!p || !sq_head)
		return p != NULL;
	*sq_head = strtoul(p + 7, NULL, 10);
	p = strstr(buf, "InFlight:");
	if (!p)
		return false;
	*in_flight = strtoul(p + 9, NULL, 10);
	return true;
}

/*
 * The fields of fdinfo that say where a stuck ring's threads are, as
 * "Name value" pairs into @out, for the report of the first failure.
 */
static void lg_fdinfo_summary(int fd, char *buf, size_t size, char *out, size_t len)
{
	static const char *const names[] = {
		"SqHead:", "InFlight:", "CqTail:", "WorkerState:", "AsyncHelpers:", "Wakeups:",
	};
	size_t used = 0;
	unsigned int i;

	snprintf(out, len, "unreadable");
	if (!fdinfo_text(fd, buf, size))
		return;
	out[0] = 0;
	for (i = 0; i < sizeof(names) / sizeof(names[0]) && used < len; i++) {
		char *p = strstr(buf, names[i]);
		int n;

		if (!p)
			continue;
		p += strlen(names[i]);
		n = snprintf(out + used, len - used, "%s%.*s %.*s", used ? ", " : "",
			     (int)strlen(names[i]) - 1, names[i], (int)strcspn(p + 1, "\n"), p + 1);
		if (n > 0)
			used += n;
	}
}

/* One completion: it must be expected, once, with its result, in order. */
static void lg_cqe(struct lring *r, const struct offload_cqe *c)
{
	uint32_t gen = c->user_data >> 32, seq = (uint32_t)c->user_data;
	struct lslot *s = &r->s[seq % LG_SLOTS];

	r->posted++;
	INC(lg_cqes);
	if (gen == r->gen && s->seq == seq && s->state == LS_NONE && s->alt_ok && c->res == s->alt) {
		s->state = LS_FREE;	/* a cancelled SKIP_SUCCESS entry posts its failure */
		return;
	}
	if (gen != r->gen || s->seq != seq || s->state != LS_EXPECT) {
		lg_bad(&st->lg_dup, "%s ring: completion user_data %#llx res %lld not expected (%s)",
		       lg_kind(r), (unsigned long long)c->user_data, (long long)c->res,
		       gen != r->gen ? "another ring's or garbage" :
		       s->seq != seq ? "unknown entry" :
		       s->state == LS_FREE ? "completed already" :
		       s->state == LS_NONE ? "a success of SKIP_SUCCESS" :
		       "queued after the worker stopped");
		return;
	}
	if (c->res == -EAGAIN && c->res != s->want && s->alt_ok && s->alt == -EAGAIN)
		INC(lg_async_eagain);
	if (c->res != s->want && !(s->alt_ok && c->res == s->alt) && !s->any)
		lg_bad(&st->lg_wrong, "%s ring: entry %u completed with %lld, want %lld",
		       lg_kind(r), seq, (long long)c->res, (long long)s->want);
	if (s->ordered) {
		if (r->have_ordered && (int32_t)(seq - r->last_ordered) <= 0)
			lg_bad(&st->lg_order, "%s ring: entry %u completed after entry %u",
			       lg_kind(r), seq, r->last_ordered);
		r->have_ordered = true;
		r->last_ordered = seq;
	}
	if (s->read)
		r->reads--;
	s->state = LS_FREE;
	r->expect--;
}

/* Take every CQE there is. */
static void lg_reap(struct lring *r)
{
	uint32_t mask = r->p.cq_entries - 1;
	uint32_t h = *r->cq_head, t = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);

	if (t - h > r->p.cq_entries) {
		lg_bad(&st->lg_contract, "%s ring: CQ tail %u, head %u: more than %u CQEs",
		       lg_kind(r), t, h, r->p.cq_entries);
		return;
	}
	if (t - h == r->p.cq_entries)
		INC(lg_cq_full);
	for (; h != t; h++)
		lg_cqe(r, &r->cqes[h & mask]);
	__atomic_store_n(r->cq_head, h, __ATOMIC_RELEASE);
}

/* The worker's flags after a full barrier: the NEED_WAKEUP protocol. */
static uint32_t lg_flags(struct lring *r)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return __atomic_load_n(r->sq_flags, __ATOMIC_RELAXED);
}

/* Wake the worker if it sleeps; the worker must be there while its creator is. */
static void lg_kick(struct lring *r)
{
	uint32_t f = lg_flags(r);

	if (r->orphan)
		return;
	if (f & OFFLOAD_SQ_WORKER_GONE) {
		lg_bad(&st->lg_contract, "worker ring: OFFLOAD_SQ_WORKER_GONE (flags %#x) while its creator lives",
		       f);
		r->orphan = true;	/* report it once */
		return;
	}
	if (!(f & OFFLOAD_SQ_NEED_WAKEUP))
		return;
	INC(lg_wakeups);
	if (sys_offload_enter(r->fd, 0, 0, OFFLOAD_ENTER_SQ_WAKEUP))
		lg_bad(&st->lg_contract, "worker ring: offload_enter(SQ_WAKEUP): %s",
		       strerror(errno));
}

/* Record entry @i of the batch at @seq. */
static struct lslot *lg_slot(struct lring *r, uint32_t seq)
{
	struct lslot *s = &r->s[seq % LG_SLOTS];

	memset(s, 0, sizeof(*s));
	s->seq = seq;
	return s;
}

enum { LK_PPID, LK_UID, LK_NULLW, LK_BADF, LK_DENY, LK_NKINDS };

/* A call with a known result into @e; returns its result. */
static int64_t lg_call(struct offload_sqe *e, int kind)
{
	memset(e->args, 0, sizeof(e->args));
	switch (kind) {
	case LK_PPID:
		e->nr = __NR_getppid;
		return C.ppid;
	case LK_UID:
		e->nr = __NR_getuid;
		return C.uid;
	case LK_NULLW:
		e->nr = __NR_write;
		e->args[0] = lg_null;
		e->args[1] = (uintptr_t)C.buf;
		e->args[2] = rn(4096);
		return e->args[2];
	case LK_BADF:
		e->nr = __NR_read;
		e->args[0] = NOFILE + 7;	/* above RLIMIT_NOFILE: never open */
		e->args[1] = (uintptr_t)C.buf;
		e->args[2] = 1;
		return -EBADF;
	default:	/* never offloadable: refused, never run (it would be harmless) */
		e->nr = __NR_kill;
		e->args[0] = getpid();
		return -EOPNOTSUPP;
	}
}

/*
 * Write one batch into the SQ and publish it: single entries and LINK
 * chains (never cut by the end of the batch), SKIP_SUCCESS, and on worker
 * rings ASYNC entries and chains, ASYNC reads of the ring's pipe that
 * block until a later plain write to it. @never: the worker stopped, so no
 * entry may run. Returns the number of entries.
 */
static unsigned int lg_fill(struct lring *r, unsigned int room, bool never)
{
	unsigned int n = 1 + rn(room < 32 ? room : 32), i = 0, k, len;
	uint32_t mask = r->p.sq_entries - 1;

	while (i < n) {
		struct offload_sqe *e = &r->sqes[(r->tail + i) & mask];
		uint32_t seq = r->seq;
		struct lslot *s;
		bool async = r->worker && chance(20);

		/* a plain write that lets an earlier ASYNC read finish */
		if (r->unpaired && chance(50)) {
			s = lg_slot(r, seq);
			memset(e, 0, sizeof(*e));
			e->nr = __NR_write;
			e->args[0] = r->pipe[1];
			e->args[1] = (uintptr_t)C.buf;
			e->args[2] = 8;
			e->user_data = (uint64_t)r->gen << 32 | seq;
			s->want = 8;
			s->ordered = 1;
			s->state = never ? LS_NEVER : LS_EXPECT;
			r->unpaired--;
			INC(lg_paired);
			r->seq++;
			i++;
			continue;
		}
		/* an ASYNC read that blocks on the empty pipe: at most two at a time */
		if (r->worker && !never && r->reads < 2 && chance(10)) {
			s = lg_slot(r, seq);
			memset(e, 0, sizeof(*e));
			e->nr = __NR_read;
			e->flags = OFFLOAD_SQE_ASYNC;
			e->args[0] = r->pipe[0];
			e->args[1] = (uintptr_t)&r->rbuf[8 * (seq % 16)];
			e->args[2] = 8;
			e->user_data = (uint64_t)r->gen << 32 | seq;
			s->want = 8;
			s->alt = -EAGAIN;	/* no helper could be started (RLIMIT_NPROC) */
			s->alt_ok = true;
			s->read = 1;
			s->state = LS_EXPECT;
			r->unpaired++;
			r->reads++;
			INC(lg_async);
			r->seq++;
			i++;
			continue;
		}
		/* a chain of 1 to 4 entries */
		len = chance(30) ? 2 + rn(3) : 1;
		if (len > n - i)
			len = n - i;
		{
			bool failed = false;

			for (k = 0; k < len; k++) {
				int64_t own;

				e = &r->sqes[(r->tail + i + k) & mask];
				seq = r->seq + k;
				s = lg_slot(r, seq);
				own = lg_call(e, rn(100) < 70 ? (int)rn(3) : (int)rn(LK_NKINDS));
				e->flags = (k + 1 < len ? OFFLOAD_SQE_LINK : 0) |
					   (chance(25) ? OFFLOAD_SQE_SKIP_SUCCESS : 0);
				e->user_data = (uint64_t)r->gen << 32 | seq;
				if (!r->worker && len == 1 && chance(5)) {
					/* an inline ring has no helpers */
					e->flags |= OFFLOAD_SQE_ASYNC;
					own = -EINVAL;
				} else if (async && k == 0) {
					e->flags |= OFFLOAD_SQE_ASYNC;
					INC(lg_async);
				}
				s->want = failed ? -ECANCELED : own;
				if (async) {
					/* no helper could be started: EAGAIN, the rest cancelled */
					s->alt = k ? -ECANCELED : -EAGAIN;
					s->alt_ok = true;
				}
				failed |= s->want < 0;
				s->ordered = !async;
				s->state = never ? LS_NEVER :
					   s->want < 0 || !(e->flags & OFFLOAD_SQE_SKIP_SUCCESS) ?
					   LS_EXPECT : LS_NONE;
			}
			r->seq += len;
			i += len;
		}
	}
	for (i = 0; i < n; i++)
		if (r->s[(r->seq - n + i) % LG_SLOTS].state == LS_EXPECT)
			r->expect++;
	ADD(lg_entries, n);
	r->tail += n;
	__atomic_store_n(r->sq_tail, r->tail, __ATOMIC_RELEASE);
	return n;
}

/* CQEs that will come without another write to the pipe */
static uint32_t lg_sure(const struct lring *r)
{
	return r->expect - r->unpaired;
}

/* Let an inline ring run what is queued, reaping as the CQ fills. */
static void lg_enter_inline(struct lring *r)
{
	uint64_t start = now_ns();
	uint32_t head;
	int ret;

	while ((head = __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE)) != r->tail) {
		unsigned int minc = 0, flags = 0, n = r->tail - head, sure = lg_sure(r);

		if (sure && chance(20)) {
			/*
			 * At most what is in the CQ now plus what this call
			 * posts, which is all that is still expected (or a full
			 * CQ): an SA_RESTART signal restarts the wait.
			 */
			minc = 1 + rn(sure < r->p.cq_entries ? sure : r->p.cq_entries);
			flags = OFFLOAD_ENTER_GETEVENTS;
			INC(lg_getevents);
		}
		ret = sys_offload_enter(r->fd, n, minc, flags);
		if (ret > (int)n)
			lg_bad(&st->lg_contract, "inline ring: offload_enter(%u) consumed %d", n, ret);
		if (ret < 0 && errno != EINTR && errno != EBUSY)
			lg_bad(&st->lg_contract, "inline ring: offload_enter(%u, %u, %#x): %s", n, minc,
			       flags, strerror(errno));
		if (ret < 0 && errno == EINTR)
			INC(lg_eintr);
		lg_reap(r);
		if (now_ns() - start > LG_WAIT_NS) {
			lg_bad(&st->lg_lost, "inline ring: SQ head %u, tail %u after %llu s of enters",
			       head, r->tail, LG_WAIT_NS / 1000000000ULL);
			return;
		}
	}
}

/* A worker ring: the hot path, or one of the ways of entering the kernel. */
static void lg_enter_worker(struct lring *r)
{
	unsigned int c = rn(100), minc;
	int ret;

	if (c < 70) {
		lg_kick(r);
		return;
	}
	if (c < 80) {
		/* to_submit is ignored, and nothing runs in the caller */
		ret = sys_offload_enter(r->fd, 1 + rn(8), 0, 0);
		if (ret)
			lg_bad(&st->lg_contract, "worker ring: offload_enter(n, 0, 0) = %d (%s), want 0",
			       ret, ret < 0 ? strerror(errno) : "entries run by the caller?");
		return;
	}
	lg_reap(r);
	if (!lg_sure(r)) {
		lg_kick(r);
		return;
	}
	minc = 1 + rn(lg_sure(r) < r->p.cq_entries ? lg_sure(r) : r->p.cq_entries);
	INC(lg_getevents);
	ret = sys_offload_enter(r->fd, 0, minc, OFFLOAD_ENTER_GETEVENTS |
				(chance(50) ? OFFLOAD_ENTER_SQ_WAKEUP : 0));
	if (ret < 0 && errno == EINTR) {
		INC(lg_eintr);
	} else if (ret) {
		lg_bad(&st->lg_contract, "worker ring: offload_enter(0, %u, GETEVENTS) = %d (%s), want 0",
		       minc, ret, ret < 0 ? strerror(errno) : "");
	} else if (__atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE) - *r->cq_head < minc) {
		lg_bad(&st->lg_contract, "worker ring: GETEVENTS for %u returned with %u CQEs", minc,
		       __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE) - *r->cq_head);
	}
}

static void lg_submit(struct lring *r)
{
	uint32_t head = __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
	unsigned int room = r->p.sq_entries - (r->tail - head);

	if (r->tail - head > r->p.sq_entries) {
		lg_bad(&st->lg_contract, "%s ring: SQ head %u beyond tail %u", lg_kind(r), head,
		       r->tail);
		return;
	}
	/* the tracked entries must not wrap onto ones still expected */
	if (!room || r->expect + 32 + r->p.sq_entries >= LG_SLOTS / 2)
		return;
	lg_fill(r, room, false);
	if (r->worker)
		lg_enter_worker(r);
	else
		lg_enter_inline(r);
}

/*
 * Wait until every expected CQE is in: queue the writes the pending reads
 * wait for, wake the worker as the protocol says, and once fdinfo says the
 * kernel has taken every entry and holds none (SqHead is the tail,
 * InFlight 0), whatever is still missing was lost.
 */
static void lg_drain(struct lring *r)
{
	uint64_t start = now_ns(), last_check = start;
	uint32_t head, in_flight;
	unsigned int spins = 0;

	while (r->unpaired) {
		uint32_t h = __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);

		if (r->tail - h >= r->p.sq_entries) {
			lg_reap(r);
			lg_kick(r);
			if (now_ns() - start > LG_WAIT_NS)
				break;
			sched_yield();
			continue;
		}
		lg_fill(r, 1, false);	/* one entry: the write, half the time */
		lg_kick(r);
	}
	for (;;) {
		uint64_t before = r->posted;

		lg_reap(r);
		if (!r->expect)
			break;
		if (r->worker) {
			/*
			 * Wake it only with entries untaken (the SQ head in
			 * the ring may lag by one in flight) or CQ room it
			 * may be waiting for.
			 */
			if (chance(5))
				lg_enter_worker(r);
			else if (r->posted != before ||
				 __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE) != r->tail)
				lg_kick(r);
		} else {
			lg_enter_inline(r);
		}
		if (r->evfd >= 0 && chance(20)) {
			struct pollfd pfd = { r->evfd, POLLIN, 0 };

			if (poll(&pfd, 1, 1) < 0 && errno == EINTR)
				INC(lg_eintr);
		}
		if (++spins % 8 == 0 || now_ns() - last_check > 2000000) {
			last_check = now_ns();
			if (lg_fdinfo(r->fd, &head, &in_flight, NULL) && head == r->tail && !in_flight) {
				INC(lg_quiescent);
				lg_reap(r);
				if (r->expect) {
					uint32_t q;

					for (q = r->seq - LG_SLOTS; q != r->seq; q++)
						if (r->s[q % LG_SLOTS].state == LS_EXPECT &&
						    r->s[q % LG_SLOTS].seq == q)
							break;
					lg_bad(&st->lg_lost, "%s ring: %u completions missing, entry %u the first; the kernel took every entry and holds none (SqHead %u, InFlight 0, CQ tail %u)",
					       lg_kind(r), r->expect, q, head,
					       __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE));
					return;
				}
			}
		}
		if (now_ns() - start > LG_WAIT_NS) {
			char info[2048] = "", state[160];

			lg_fdinfo_summary(r->fd, info, sizeof(info), state, sizeof(state));
			lg_bad(&st->lg_lost, "%s ring: %u completions missing after %llu s (SQ head %u, tail %u, flags %#x; fdinfo: %s)",
			       lg_kind(r), r->expect, LG_WAIT_NS / 1000000000ULL,
			       __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE), r->tail,
			       lg_flags(r), state);
			return;
		}
		if (chance(50))
			sched_yield();
		else
			sleep_us(rn(200));
	}
	/* the worker posted CQEs: a registered eventfd must have been signalled */
	if (r->evfd >= 0 && r->posted) {
		struct pollfd pfd = { r->evfd, POLLIN, 0 };
		uint64_t v;
		int ret;

		do
			ret = poll(&pfd, 1, 5000);
		while (ret < 0 && errno == EINTR);
		INC(lg_evfd);
		if (ret == 0)
			lg_bad(&st->lg_contract, "%s ring: %llu CQEs posted, the eventfd never signalled",
			       lg_kind(r), (unsigned long long)r->posted);
		if (read(r->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			note("eventfd read: %s", strerror(errno));
	}
}

/* The threads named offload-<fd> and offload-<fd>-a, into @tids */
static int lg_threads(int fd, pid_t *tids, int max)
{
	char path[300], name[32], w[32], a[32];
	struct dirent *e;
	int n = 0, f;
	ssize_t len;
	DIR *d;

	snprintf(w, sizeof(w), "offload-%d\n", fd);
	snprintf(a, sizeof(a), "offload-%d-a\n", fd);
	d = opendir("/proc/self/task");
	while (d && (e = readdir(d)) && n < max) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = open(path, O_RDONLY | O_CLOEXEC);
		if (f < 0)
			continue;
		len = read(f, name, sizeof(name) - 1);
		close(f);
		if (len <= 0)
			continue;
		name[len] = 0;
		if (!strcmp(name, w) || !strcmp(name, a))
			tids[n++] = atoi(e->d_name);
	}
	if (d)
		closedir(d);
	return n;
}

/* Whether thread @tid of this process still runs as @fd's worker or helper */
static bool lg_thread_alive(pid_t tid, int fd)
{
	char path[64], name[32];
	ssize_t len;
	int f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", tid);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return false;
	len = read(f, name, sizeof(name) - 1);
	close(f);
	if (len <= 0)
		return false;
	name[len] = 0;
	snprintf(path, sizeof(path), "offload-%d\n", fd);
	if (!strcmp(name, path))
		return true;
	snprintf(path, sizeof(path), "offload-%d-a\n", fd);
	return !strcmp(name, path);
}

/* The last close: unmap and close (or close, reap a while, unmap); threads must end. */
static void lg_close(struct lring *r)
{
	pid_t tids[8];
	int n = 0, i, fd = r->fd;
	uint64_t start;

	if (r->worker)
		n = lg_threads(r->fd, tids, 8);
	if (chance(30)) {
		uint32_t q;

		close(r->fd);
		if (chance(50))
			sleep_us(rn(3000));
		/*
		 * The mapping holds the ring, so nothing should change yet;
		 * cancelled entries would be no error either.
		 */
		for (q = r->seq - LG_SLOTS; q != r->seq; q++) {
			r->s[q % LG_SLOTS].alt = -ECANCELED;
			r->s[q % LG_SLOTS].alt_ok = true;
		}
		lg_reap(r);
		munmap(r->map, r->p.ring_size);
	} else {
		munmap(r->map, r->p.ring_size);
		close(r->fd);
	}
	close(r->pipe[0]);
	close(r->pipe[1]);
	if (r->stall[0] >= 0) {
		close(r->stall[0]);
		close(r->stall[1]);
	}
	if (r->evfd >= 0)
		close(r->evfd);
	start = now_ns();
	for (i = 0; i < n; i++) {
		while (lg_thread_alive(tids[i], fd) && now_ns() - start < LG_GONE_NS)
			sleep_us(1000);
		if (lg_thread_alive(tids[i], fd))
			lg_bad(&st->lg_contract, "worker ring: thread %d (offload-%d) still there %llu s after the last close",
			       tids[i], fd, LG_GONE_NS / 1000000000ULL);
		else
			INC(lg_threads_gone);
	}
}

/* ---- ledger rounds ---- */

/* Batches, reaping or not (the CQ fills), then every completion. */
static void lg_normal(struct lring *r)
{
	unsigned int b, nb = 1 + rn(12);

	for (b = 0; b < nb; b++) {
		lg_submit(r);
		if (chance(70))
			lg_reap(r);
		if (chance(20))
			sleep_us(rn(r->p.worker_idle_ms ? 2000 * r->p.worker_idle_ms : 3000));
	}
	lg_drain(r);
}

/*
 * Entries in flight when the ring goes: ASYNC reads blocked in helpers,
 * on a worker ring sometimes a plain read that stalls the worker itself,
 * entries queued behind it. The worker and helpers must end.
 */
static void lg_close_in_flight(struct lring *r)
{
	unsigned int b, nb = 1 + rn(4);
	uint32_t mask = r->p.sq_entries - 1;

	for (b = 0; b < nb; b++)
		lg_submit(r);
	if (r->worker && chance(50) &&
	    r->tail - __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE) < r->p.sq_entries &&
	    !pipe2(r->stall, O_CLOEXEC)) {
		struct offload_sqe *e = &r->sqes[r->tail & mask];
		struct lslot *s = lg_slot(r, r->seq);

		memset(e, 0, sizeof(*e));
		e->nr = __NR_read;	/* no ASYNC: the worker blocks in it */
		e->args[0] = r->stall[0];
		e->args[1] = (uintptr_t)r->rbuf;
		e->args[2] = 1;
		e->user_data = (uint64_t)r->gen << 32 | r->seq++;
		s->state = LS_EXPECT;
		s->any = true;		/* cancelled: -ECANCELED, or -EINTR */
		r->expect++;
		r->tail++;
		__atomic_store_n(r->sq_tail, r->tail, __ATOMIC_RELEASE);
		lg_kick(r);
		INC(lg_stalled_worker);
		sleep_us(rn(5000));
	}
	INC(lg_close_in_flight);
}

struct lg_orphan {
	struct lring *r;
	bool ok;
};

/* The creator of an orphan ring: sets it up, queues some, maybe waits, exits */
static void *lg_creator(void *arg)
{
	struct lg_orphan *o = arg;
	unsigned int b, nb = rn(4);

	seed_thread(rnd() ^ gettid());
	o->ok = lg_setup(o->r, true);
	if (!o->ok)
		return NULL;
	for (b = 0; b < nb; b++) {
		lg_submit(o->r);
		lg_reap(o->r);
	}
	if (chance(50))
		sleep_us(rn(2000));
	return NULL;
}

/*
 * The creator thread exits: OFFLOAD_SQ_WORKER_GONE and NEED_WAKEUP come,
 * offload_enter() fails with EOWNERDEAD, entries in flight complete at most
 * once (cancelled or not), and entries queued after that never run.
 */
static void lg_orphan_round(struct lring *r)
{
	struct lg_orphan o = { .r = r };
	uint64_t start;
	uint32_t f = 0, head, head1, head2, in_flight, q;
	unsigned int i;
	pthread_t t;
	int ret;

	if (pthread_create(&t, NULL, lg_creator, &o))
		return;
	pthread_join(t, NULL);
	if (!o.ok)
		return;
	INC(lg_orphans);
	r->orphan = true;
	/* whatever was in flight may be cancelled now */
	for (q = r->seq - LG_SLOTS; q != r->seq; q++) {
		struct lslot *s = &r->s[q % LG_SLOTS];

		if (s->seq == q && s->state == LS_EXPECT) {
			s->alt = -ECANCELED;
			s->alt_ok = true;
		}
	}
	start = now_ns();
	while (!((f = lg_flags(r)) & OFFLOAD_SQ_WORKER_GONE) && now_ns() - start < LG_GONE_NS) {
		lg_reap(r);
		sleep_us(1000);
	}
	if (!(f & OFFLOAD_SQ_WORKER_GONE) || !(f & OFFLOAD_SQ_NEED_WAKEUP)) {
		lg_bad(&st->lg_contract, "worker ring: sq_flags %#x %llu s after its creator exited, want WORKER_GONE | NEED_WAKEUP",
		       f, (now_ns() - start) / 1000000000ULL);
		lg_close(r);
		return;
	}
	for (i = 0; i < 2; i++) {
		ret = sys_offload_enter(r->fd, i, 0, i ? OFFLOAD_ENTER_SQ_WAKEUP : 0);
		if (ret != -1 || errno != EOWNERDEAD)
			lg_bad(&st->lg_contract, "worker ring: offload_enter() after its creator exited: %d (%s), want EOWNERDEAD",
			       ret, ret < 0 ? strerror(errno) : "success");
	}
	lg_reap(r);
	/* entries queued now must never run */
	head = __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
	if (r->tail - head < r->p.sq_entries && r->expect + 64 < LG_SLOTS / 2 &&
	    lg_fdinfo(r->fd, &head1, &in_flight, NULL)) {
		lg_fill(r, r->p.sq_entries - (r->tail - head), true);
		INC(lg_not_run_checked);
		sleep_us(1000 + rn(20000));
		lg_reap(r);
		/* the kernel's own head: the shared one may lag by an entry in flight */
		if (lg_fdinfo(r->fd, &head2, &in_flight, NULL) && head2 != head1)
			lg_bad(&st->lg_contract, "worker ring: entries taken after the worker stopped (SqHead %u, then %u)",
			       head1, head2);
	}
	lg_close(r);
}

static void lg_round(struct lring *r)
{
	unsigned int c = rn(100);
	bool worker = chance(70);

	if (worker && c < 15) {
		lg_orphan_round(r);
		return;
	}
	if (!lg_setup(r, worker))
		return;
	if (c < 30) {
		lg_close_in_flight(r);
	} else {
		lg_normal(r);
		/* inline rings refuse SQ_WAKEUP */
		if (!worker && chance(10) &&
		    (sys_offload_enter(r->fd, 0, 0, OFFLOAD_ENTER_SQ_WAKEUP) != -1 || errno != EINVAL))
			lg_bad(&st->lg_contract, "inline ring: offload_enter(SQ_WAKEUP) did not fail with EINVAL");
	}
	lg_close(r);
}

static void *lg_thread(void *arg)
{
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID };
	struct itimerspec its = {};
	struct lring *r;
	timer_t timer;

	seed_thread(rnd() ^ (uintptr_t)arg ^ gettid());
	r = (struct lring *)map_or_die(sizeof(*r), PROT_READ | PROT_WRITE);
	/* signals interrupt the waits: mostly without SA_RESTART */
	sev.sigev_signo = chance(80) ? SIGALRM : SIGUSR1;
	sev._sigev_un._tid = gettid();
	if (!timer_create(CLOCK_MONOTONIC, &sev, &timer)) {
		its.it_value.tv_nsec = 1000000 + rn(20000000);
		its.it_interval.tv_nsec = 1000000 + rn(30000000);
		timer_settime(timer, 0, &its, NULL);
	}
	while (!C.stop)
		lg_round(r);
	return NULL;
}

/* A ledger child: 1 to 4 threads of rounds; never returns. */
static void ledger_child(void)
{
	pthread_t t;
	int i, n = rn(4);

	INC(lg_children);
	lg_null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (is_offloadable(__NR_kill))
		note("kill() is offloadable: the ledger's refused entries would run");
	for (i = 0; i < n; i++)
		pthread_create(&t, NULL, lg_thread, (void *)(intptr_t)(i + 1));
	lg_thread(NULL);
	_exit(0);
}

/* A fuzzing child; @ledger: a ledger child (see above) rather than chaos. */
static void fuzz_child(const char *statspath, const char *dir, int slot, uint64_t seed,
		       bool ledger)
{
	pthread_t t;
	uint64_t words[16];
	int fd, i, n;
	unsigned int nr;

	setpgid(0, 0);
	drop_privileges();
	prctl(PR_SET_PDEATHSIG, SIGKILL);	/* cleared by the credential change */
	syscall(__NR_close_range, 3, ~0U, 0);
	fd = open("/dev/null", O_RDWR);
	for (i = 0; i < 3; i++)
		dup2(fd, i);
	if (fd > 2)
		close(fd);
	if (map_stats(statspath))
		_exit(5);
	chmod(dir, 0700);	/* its own entries may have chmod()ed it before it exec'd */
	if (chdir(dir)) {
		note("chdir %s: %s", dir, strerror(errno));
		_exit(6);
	}
	limits();
	reset_child_signals();
	seed_thread(seed);
	memset(&C, 0, sizeof(C));
	C.statspath = statspath;
	C.dir = dir;
	C.slot = slot;
	C.solo = !ledger && chance(30);
	/* solo children without workers keep the no-reference fdget() path */
	C.use_workers = chance(C.solo ? 50 : 85);
	C.ppid = getppid();
	C.uid = getuid();
	{
		cpu_set_t cpus;

		C.ncpus = sched_getaffinity(0, sizeof(cpus), &cpus) ? 1 : CPU_COUNT(&cpus);
	}
	INC(children);
	if (C.solo)
		INC(solo_children);

	C.buf = map_or_die(BUF_LEN + 4096, PROT_READ | PROT_WRITE);
	mprotect(C.buf + BUF_LEN, 4096, PROT_NONE);
	for (i = 0; i < BUF_LEN / 8; i++)
		((uint64_t *)C.buf)[i] = rnd();
	C.ro = map_or_die(4096, PROT_READ);
	C.hole = hole_find();
	scratch = scratch_map();
	if (!scratch)
		_exit(4);
	C.maxfrings = 4096;
	C.frings = (struct fring *)map_or_die(C.maxfrings * sizeof(struct fring),
					      PROT_READ | PROT_WRITE);
	names_init();
	for (spec_total = 0, i = 0; i < (int)(sizeof(specs) / sizeof(specs[0])); i++)
		spec_total += specs[i].weight;
	for (i = 0; i < NRING; i++) {
		C.rings[i].resv = map_or_die(2 * HALF, PROT_NONE);
	}
	pool_fill();
	for (i = 0; i < NRING; i++)
		ring_replace(i);
	for (i = 0; i < 20 && !ring_cur(0); i++)	/* random parameters may be refused */
		ring_replace(0);
	if (!ring_cur(0)) {
		note("offload_setup: %s", strerror(errno));
		_exit(7);
	}
	/* what this kernel offloads: random numbers avoid the ones it would run */
	n = sys_offload_register(ring_fd(0), OFFLOAD_REGISTER_PROBE, words, 16);
	if (n < 0) {
		note("OFFLOAD_REGISTER_PROBE: %s", strerror(errno));
		_exit(8);
	}
	C.nr_syscalls = n;
	for (nr = 0; nr < (unsigned int)n && nr < 1024; nr++)
		if (words[nr / 64] & (1ULL << (nr % 64)))
			C.offloadable[nr / 8] |= 1 << (nr % 8);

	if (C.solo) {
		solo_loop(-1);
		_exit(0);
	}
	if (ledger)
		ledger_child();
	C.nthreads = 1 + rn(MAX_THREADS);
	for (i = 0; i < C.nthreads; i++)
		pthread_create(&t, NULL, submitter, (void *)(intptr_t)i);
	pthread_create(&t, NULL, scribbler, NULL);
	pthread_create(&t, NULL, signaller, NULL);
	chaos(NULL);
	_exit(0);
}

/* Exec'd by a forked child: inherited ring fds must refuse this process. */
static int exec_check(const char *statspath)
{
	int fd;

	if (map_stats(statspath))
		return 5;
	for (fd = 0; fd < NOFILE; fd++) {
		if (!is_ring_fd(fd))
			continue;
		INC(exec_inherited_fds);
		try_foreign_ring_fd(fd, &st->exec_not_eperm);
	}
	return 0;
}

/* ---- the supervisor: measuring the kernel ---------------------------------------- */

#define MAX_SLABS 512

struct slab {
	char name[40];
	long active, objsize;
};

struct meas {
	long user_tasks, kernel_tasks, stress_procs, ring_fds, self_fds, file_nr;
	long slab_kb, sunreclaim_kb, vmalloc_kb, kstack_kb, pagetables_kb, committed_kb,
	     shmem_kb, memfree_kb;
	int nslab;
	struct slab slab[MAX_SLABS];
};

static long meminfo_kb(const char *buf, const char *key)
{
	const char *p = strstr(buf, key);

	return p ? atol(p + strlen(key)) : -1;
}

static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, total = 0;

	if (fd < 0)
		return -1;
	while ((size_t)total < len - 1 && (n = read(fd, buf + total, len - 1 - total)) > 0)
		total += n;
	close(fd);
	buf[total] = 0;
	return total;
}

static bool is_number(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

static long count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	long n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void measure(struct meas *m)
{
	static char buf[1 << 17];
	char path[600], link[64];
	DIR *proc, *fds;
	struct dirent *e, *f;
	char *line;

	memset(m, 0, sizeof(*m));
	proc = opendir("/proc");
	while (proc && (e = readdir(proc))) {
		unsigned long flags = 0;
		long tasks;
		char *p;

		if (!is_number(e->d_name))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/task", e->d_name);
		tasks = count_dir(path);
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if (read_file(path, buf, 4096) > 0 && (p = strrchr(buf, ')')))
			sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %lu", &flags);
		if (flags & 0x00200000)	/* PF_KTHREAD */
			m->kernel_tasks += tasks;
		else
			m->user_tasks += tasks;
		snprintf(path, sizeof(path), "/proc/%s/status", e->d_name);
		if (read_file(path, buf, 4096) > 0 && strstr(buf, "\nUid:\t65534\t"))
			m->stress_procs++;
		snprintf(path, sizeof(path), "/proc/%s/fd", e->d_name);
		fds = opendir(path);
		while (fds && (f = readdir(fds))) {
			ssize_t n;

			snprintf(path, sizeof(path), "/proc/%s/fd/%s", e->d_name, f->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n > 0) {
				link[n] = 0;
				if (strstr(link, "anon_inode:") && strstr(link, "offload"))
					m->ring_fds++;
			}
		}
		if (fds)
			closedir(fds);
	}
	if (proc)
		closedir(proc);
	m->self_fds = count_dir("/proc/self/fd");
	if (read_file("/proc/sys/fs/file-nr", buf, sizeof(buf)) > 0)
		m->file_nr = atol(buf);
	if (read_file("/proc/meminfo", buf, sizeof(buf)) > 0) {
		m->memfree_kb = meminfo_kb(buf, "MemFree:");
		m->slab_kb = meminfo_kb(buf, "\nSlab:");
		m->sunreclaim_kb = meminfo_kb(buf, "SUnreclaim:");
		m->vmalloc_kb = meminfo_kb(buf, "VmallocUsed:");
		m->kstack_kb = meminfo_kb(buf, "KernelStack:");
		m->pagetables_kb = meminfo_kb(buf, "PageTables:");
		m->committed_kb = meminfo_kb(buf, "Committed_AS:");
		m->shmem_kb = meminfo_kb(buf, "\nShmem:");
	}
	if (read_file("/proc/slabinfo", buf, sizeof(buf)) > 0) {
		for (line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
			struct slab *s = &m->slab[m->nslab];
			long num;

			if (line[0] == '#' || !strncmp(line, "slabinfo", 8) || m->nslab >= MAX_SLABS)
				continue;
			if (sscanf(line, "%39s %ld %ld %ld", s->name, &s->active, &num, &s->objsize) == 4)
				m->nslab++;
		}
	}
}

static long slab_active(const struct meas *m, const char *name)
{
	int i;

	for (i = 0; i < m->nslab; i++)
		if (!strcmp(m->slab[i].name, name))
			return m->slab[i].active;
	return 0;
}

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, s, strlen(s)) < 0) {
			/* best effort: some caches refuse */
		}
		close(fd);
	}
}

/*
 * Let the kernel free what it holds on to: page cache and dentries, the
 * per-CPU and empty slabs of every cache (which also empties KASAN's
 * quarantine of that cache), then objects freed after an RCU grace period
 * (kmemleak's metadata, tasks) and by workqueues (fput, vfree).
 */
static void settle(void)
{
	DIR *d;
	struct dirent *e;
	char path[300];
	int round;

	for (round = 0; round < 2; round++) {
		sync();
		write_file("/proc/sys/vm/drop_caches", "3");
		d = opendir("/sys/kernel/slab");
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.' || e->d_name[0] == ':')
				continue;
			snprintf(path, sizeof(path), "/sys/kernel/slab/%s/shrink", e->d_name);
			write_file(path, "1");
		}
		if (d)
			closedir(d);
		sleep_us(1500000);
	}
}

/* ---- the supervisor: running children -------------------------------------------- */

static struct {
	int seconds, procs;
	uint64_t seed;
	char top[64], fuzz[80], stats[80];
	bool mounted;
	pid_t pid[MAX_PROCS];
	char dir[MAX_PROCS][128];	/* a new directory for each child */
	unsigned long incarnations;
	uint64_t kill_at[MAX_PROCS], killed_at[MAX_PROCS];
	int stop_first[MAX_PROCS];
	bool ledger[MAX_PROCS];
	long kills, terms, stops, deaths[65], exits[256], unkillable;
	long orphans_reaped;
} S;

static void rm_tree(const char *path, bool self)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char sub[4096];

	while (d && (e = readdir(d))) {
		struct stat sb;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (!lstat(sub, &sb) && S_ISDIR(sb.st_mode))
			rm_tree(sub, true);
		else
			unlink(sub);
	}
	if (d)
		closedir(d);
	if (self)
		rmdir(path);
}

static void spawn(int i)
{
	char *dir = S.dir[i];
	uint64_t seed = S.seed * 1000003 + S.pid[i] + now_ns();
	pid_t pid;

	/*
	 * A fresh directory: what is left of the last child's may still be
	 * busy with its dying grandchildren, which may chmod() it.
	 */
	if (dir[0])
		rm_tree(dir, true);
	snprintf(dir, sizeof(S.dir[i]), "%s/c%lu", S.fuzz, ++S.incarnations);
	/* one child in six (the first among them) keeps the ledger */
	S.ledger[i] = S.incarnations % 6 == 1;
	mkdir(dir, 0700);
	if (getuid() == 0 && chown(dir, UNPRIV_ID, UNPRIV_ID))
		perror("stress: chown");
	pid = fork();
	if (pid == 0) {
		fuzz_child(S.stats, dir, i, seed, S.ledger[i]);
		_exit(0);
	}
	if (pid < 0) {
		perror("stress: fork");
		return;
	}
	setpgid(pid, pid);
	S.pid[i] = pid;
	S.killed_at[i] = 0;
	S.stop_first[i] = rn(100) < 10;
	/* mostly short lives: a kill lands in the middle of something */
	S.kill_at[i] = now_ns() + (rn(100) < 70 ? 50 + rn(2000) : 500 + rn(8000)) * 1000000ULL;
	/* half the ledgers live long enough for their timeouts (10 and 30 s) to matter */
	if (S.ledger[i] && rn(100) < 50)
		S.kill_at[i] = now_ns() + (5000 + rn(30000)) * 1000000ULL;
}

static void dump_task(pid_t pid)
{
	char path[600], buf[4096];
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", pid, e->d_name);
		if (read_file(path, buf, sizeof(buf)) > 0)
			printf("stress:   task %s: %s", e->d_name, buf);
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stack", pid, e->d_name);
		if (read_file(path, buf, sizeof(buf)) > 0)
			printf("%s", buf);
	}
	if (d)
		closedir(d);
}

static void reap(void)
{
	int status, i;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < S.procs; i++)
			if (S.pid[i] == pid)
				break;
		if (i == S.procs) {
			S.orphans_reaped++;	/* a grandchild, reparented to us */
			continue;
		}
		if (WIFSIGNALED(status))
			S.deaths[WTERMSIG(status) & 63]++;
		else
			S.exits[WEXITSTATUS(status) & 255]++;
		kill(-pid, SIGKILL);	/* anything it left in its group */
		rm_tree(S.dir[i], true);
		S.pid[i] = 0;
	}
}

static void kill_child(int i, bool final)
{
	pid_t pid = S.pid[i];
	unsigned int c = rn(100);

	if (!pid || S.killed_at[i])
		return;
	if (!final && S.stop_first[i] == 1) {
		kill(-pid, SIGSTOP);
		S.stops++;
		S.stop_first[i] = 2;
		S.kill_at[i] = now_ns() + rn(200) * 1000000ULL;
		return;
	}
	if (!final && c < 12) {
		kill(-pid, SIGTERM);
		S.terms++;
	}
	kill(-pid, SIGKILL);
	S.kills++;
	S.killed_at[i] = now_ns();
}

/* Children that do not die after SIGKILL: something in the kernel is stuck. */
static void check_unkillable(uint64_t grace_ns)
{
	int i;

	for (i = 0; i < S.procs; i++) {
		/* killed_at may lie in the future: reported already */
		if (!S.pid[i] || !S.killed_at[i] || now_ns() < S.killed_at[i] + grace_ns)
			continue;
		printf("stress: FAIL: child %d does not die %.0f s after SIGKILL:\n", S.pid[i],
		       (now_ns() - S.killed_at[i]) / 1e9);
		dump_task(S.pid[i]);
		fflush(stdout);
		S.unkillable++;
		S.killed_at[i] = now_ns() + 3600ULL * 1000000000ULL;	/* report once */
	}
}

static void stats_line(const char *what, double secs)
{
	printf("stress: %s %.0f s: %llu entries, %llu enters, %llu children, %ld kills, %llu forks, %llu signals\n",
	       what, secs, (unsigned long long)st->entries, (unsigned long long)st->enters,
	       (unsigned long long)st->children, S.kills, (unsigned long long)st->forks,
	       (unsigned long long)st->signals);
	fflush(stdout);
}

/* Create rings in a helper process and see which slab caches grow with them. */
#define CAL_RINGS 200

struct ringcache {
	char name[40];
	long per_ring;
	long noise;	/* between two settled measurements */
	bool used;	/* back to its level once the calibration rings closed */
};

static int calibrate(struct ringcache *rc, int max, struct meas *m0, struct meas *m1)
{
	int ready[2], go[2], i, j, n = 0;
	pid_t pid;
	char c;

	if (pipe(ready) || pipe(go))
		return -1;
	settle();
	measure(m0);
	pid = fork();
	if (pid == 0) {
		struct offload_params p;

		for (i = 0; i < CAL_RINGS; i++) {
			memset(&p, 0, sizeof(p));
			p.size = sizeof(p);
			if (sys_offload_setup(8, &p) < 0)
				_exit(1);
		}
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(1);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	if (read(ready[0], &c, 1) != 1) {
		waitpid(pid, NULL, 0);
		return -1;
	}
	settle();
	measure(m1);
	if (write(go[1], "g", 1) != 1)
		return -1;
	close(go[1]);
	close(ready[0]);
	waitpid(pid, NULL, 0);
	for (i = 0; i < m1->nslab && n < max; i++) {
		long d = m1->slab[i].active - slab_active(m0, m1->slab[i].name);

		/* not the ring's: kmemleak's metadata, and /proc inodes of our own scan */
		if (d < CAL_RINGS * 9 / 10 || !strncmp(m1->slab[i].name, "kmemleak", 8) ||
		    !strncmp(m1->slab[i].name, "proc_inode", 10))
			continue;
		for (j = 0; j < n; j++)
			if (!strcmp(rc[j].name, m1->slab[i].name))
				break;
		if (j < n)
			continue;
		snprintf(rc[n].name, sizeof(rc[n].name), "%s", m1->slab[i].name);
		rc[n].per_ring = (d + CAL_RINGS / 2) / CAL_RINGS;
		n++;
	}
	return n;
}

/* Kernel reports logged since @mark appeared in the kernel log */
static int kernel_reports(const char *mark)
{
	static const char *pats[] = {
		"BUG:", "WARNING:", "KASAN", "UBSAN", "Oops", "general protection fault",
		"Kernel panic", "suspicious RCU usage", "possible recursive locking",
		"possible circular locking", "inconsistent lock state",
		"lock held when returning", "INFO: task",
	};
	int len = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0), n = 0, i;
	char *buf, *start, *line, *save;

	if (len <= 0)
		return 0;
	buf = malloc(len + 1);
	len = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, len);
	if (len <= 0) {
		free(buf);
		return 0;
	}
	buf[len] = 0;
	start = strstr(buf, mark);
	for (line = strtok_r(start ? start : buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		for (i = 0; i < (int)(sizeof(pats) / sizeof(pats[0])); i++) {
			if (!strstr(line, pats[i]))
				continue;
			if (n++ < 20)
				printf("stress:   dmesg: %s\n", line);
			break;
		}
	}
	free(buf);
	return n;
}

static int supervise(void)
{
	struct ringcache rc[8];
	static struct meas cal0, cal1, mid, before, after;
	uint64_t start, end, next_line;
	long excess, leak = LONG_MAX;
	long kmax, vm_tol, sun_tol;
	int nrc, i, j, fails = 0, attempt, sfd;
	char mark[96];

	if (access("/proc/sys/kernel/offload_disabled", F_OK)) {
		printf("stress: FAIL: this kernel has no syscall offload (no /proc/sys/kernel/offload_disabled)\n");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	seed_thread(S.seed);

	/* a private directory: a tmpfs of its own when root */
	snprintf(S.top, sizeof(S.top), "/tmp/offload-stress.XXXXXX");
	if (!mkdtemp(S.top)) {
		perror("stress: mkdtemp");
		return 1;
	}
	chmod(S.top, 0755);
	snprintf(S.fuzz, sizeof(S.fuzz), "%s/fuzz", S.top);
	snprintf(S.stats, sizeof(S.stats), "%s/stats", S.top);
	mkdir(S.fuzz, 0755);
	if (getuid() == 0)
		S.mounted = !mount("offload-stress", S.fuzz, "tmpfs", MS_NOSUID | MS_NODEV,
				   "size=64m,nr_inodes=20000,mode=0755");
	sfd = open(S.stats, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (sfd < 0 || ftruncate(sfd, sizeof(*st))) {
		perror("stress: stats file");
		return 1;
	}
	if (getuid() == 0 && fchown(sfd, UNPRIV_ID, UNPRIV_ID))
		perror("stress: chown");
	st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
	close(sfd);
	if (st == MAP_FAILED) {
		perror("stress: mmap");
		return 1;
	}

	printf("stress: %d s, %d processes, seed %llu, private dir %s%s, kernel reports checked\n",
	       S.seconds, S.procs, (unsigned long long)S.seed, S.top,
	       S.mounted ? " (tmpfs)" : "");
	nrc = calibrate(rc, 8, &cal0, &cal1);
	if (nrc <= 0) {
		printf("stress: FAIL: could not find the slab caches of a ring (offload_setup: %s)\n",
		       strerror(errno));
		return 1;
	}
	printf("stress: a ring allocates from:");
	for (i = 0; i < nrc; i++)
		printf(" %s x%ld", rc[i].name, rc[i].per_ring);
	printf(" (+%ld kB vmalloc for %d rings)\n", cal1.vmalloc_kb - cal0.vmalloc_kb, CAL_RINGS);

	/*
	 * A cache counts a leak only if it came back to its level once the
	 * calibration rings were closed: vmap_area (lazily purged) or, under
	 * KASAN, filp (freed after an RCU grace period) may not, and would
	 * hide a leak in their noise. The noise: two settled measurements.
	 */
	settle();
	measure(&mid);
	settle();
	measure(&before);
	for (i = 0, j = 0; i < nrc; i++) {
		long back = labs(slab_active(&before, rc[i].name) - slab_active(&cal0, rc[i].name));

		rc[i].noise = labs(slab_active(&before, rc[i].name) - slab_active(&mid, rc[i].name));
		rc[i].used = back <= CAL_RINGS / 10 * rc[i].per_ring;
		j += rc[i].used;
		printf("stress: baseline %s %ld objects (%ld before calibration, %ld in the last settle)%s\n",
		       rc[i].name, slab_active(&before, rc[i].name), slab_active(&cal0, rc[i].name),
		       slab_active(&mid, rc[i].name), rc[i].used ? "" : ": not back, not used");
	}
	if (!j) {
		printf("stress: FAIL: no ring cache came back after calibration: cannot count leaked rings\n");
		return 1;
	}

	snprintf(mark, sizeof(mark), "offload-stress: start %d %llu", getpid(),
		 (unsigned long long)now_ns());
	write_file("/dev/kmsg", mark);

	start = now_ns();
	end = start + S.seconds * 1000000000ULL;
	next_line = start + 10000000000ULL;
	while (now_ns() < end) {
		reap();
		for (i = 0; i < S.procs; i++) {
			if (!S.pid[i])
				spawn(i);
			else if (now_ns() >= S.kill_at[i])
				kill_child(i, false);
		}
		check_unkillable(30000000000ULL);
		if (now_ns() >= next_line) {
			stats_line("after", (now_ns() - start) / 1e9);
			next_line += 10000000000ULL;
		}
		sleep_us(5000);
	}

	/* kill everything, reap everything */
	for (i = 0; i < S.procs; i++)
		kill_child(i, true);
	for (;;) {
		pid_t pid;
		int status;

		reap();
		for (i = 0; i < S.procs; i++)
			if (S.pid[i])
				break;
		if (i == S.procs) {
			pid = waitpid(-1, &status, WNOHANG);
			if (pid < 0 && errno == ECHILD)
				break;
			if (pid > 0)
				continue;
		}
		check_unkillable(30000000000ULL);
		if (now_ns() - end > 90000000000ULL) {
			printf("stress: FAIL: processes left after 90 s\n");
			fails++;
			break;
		}
		sleep_us(10000);
	}
	stats_line("ran", (now_ns() - start) / 1e9);

	if (S.mounted)
		umount2(S.fuzz, MNT_DETACH);
	else
		rm_tree(S.fuzz, false);

	/* back where it started? */
	for (attempt = 0; attempt < 6; attempt++) {
		bool ok = true;

		settle();
		measure(&after);
		/*
		 * A leaked ring holds one object of each of its caches: the
		 * estimate is the smallest growth beyond noise among them.
		 */
		leak = LONG_MAX;
		for (i = 0; i < nrc; i++) {
			if (!rc[i].used)
				continue;
			excess = slab_active(&after, rc[i].name) - slab_active(&before, rc[i].name) -
				 (2 * rc[i].noise > 4 ? 2 * rc[i].noise : 4);
			excess = excess > 0 ? excess / rc[i].per_ring : 0;
			if (excess < leak)
				leak = excess;
		}
		/*
		 * Exact: user tasks, processes of the children's uid, ring fds
		 * anywhere (0), our own fds. VmallocUsed: task stacks are
		 * vmalloc'ed (32 kB with KASAN) and a few stay cached per CPU,
		 * so allow 4 per CPU, one per kernel thread more or fewer, and
		 * 256 kB; an 8-entry ring alone is 4 kB of vmalloc, and a run
		 * creates thousands. SUnreclaim: after shrinking, unrelated
		 * caches (kmemleak's metadata, pids, kernfs) move by a few
		 * hundred kB in runs of this test; 1 MiB + 2% is well above
		 * that, and leaked rings are counted by their caches above,
		 * ring by ring.
		 */
		kmax = labs(after.kernel_tasks - before.kernel_tasks);
		vm_tol = (kmax + 4 * sysconf(_SC_NPROCESSORS_ONLN)) * 32 + 256;
		sun_tol = 1024 + before.sunreclaim_kb / 50;
		ok = leak == 0 && after.user_tasks == before.user_tasks && after.ring_fds == 0 &&
		     after.stress_procs == before.stress_procs && after.self_fds == before.self_fds &&
		     after.vmalloc_kb - before.vmalloc_kb <= vm_tol &&
		     after.sunreclaim_kb - before.sunreclaim_kb <= sun_tol;
		if (ok)
			break;
		sleep_us(5000000);
	}

	printf("stress: summary: %.0f s, %d processes\n", (now_ns() - start) / 1e9, S.procs);
	printf("stress:   entries submitted %llu, enters %llu (entries consumed %llu, enters on bad fds %llu), CQEs reaped %llu, indices resynced %llu, longest enter %.1f ms\n",
	       (unsigned long long)st->entries, (unsigned long long)st->enters,
	       (unsigned long long)st->consumed, (unsigned long long)st->enter_bad_fd,
	       (unsigned long long)st->cqes, (unsigned long long)st->resyncs,
	       st->max_enter_ns / 1e6);
	printf("stress:   enter errors:");
	for (i = 0; i < NERR; i++)
		if (st->enter_err[i])
			printf(" %s %llu", i ? strerrorname_np(i) : "other",
			       (unsigned long long)st->enter_err[i]);
	printf("\n");
	printf("stress:   children %llu (%llu single-threaded), kills %ld (%ld after SIGTERM, %ld while stopped), forks %llu, execs %llu (/bin/true %llu, checker %llu, self %llu), single-threaded sessions in forks %llu\n",
	       (unsigned long long)st->children, (unsigned long long)st->solo_children, S.kills,
	       S.terms, S.stops, (unsigned long long)st->forks,
	       (unsigned long long)(st->execs_true + st->execs_check + st->execs_self),
	       (unsigned long long)st->execs_true, (unsigned long long)st->execs_check,
	       (unsigned long long)st->execs_self, (unsigned long long)st->solo_sessions);
	printf("stress:   signals handled %llu (SIGSYS %llu, SIGIO %llu), faults on the ring recovered %llu, seccomp filters %llu\n",
	       (unsigned long long)st->signals, (unsigned long long)st->sigsys,
	       (unsigned long long)st->sigio, (unsigned long long)st->segv_recovered,
	       (unsigned long long)st->seccomp_filters);
	printf("stress:   batches closing their own unmapped ring %llu\n",
	       (unsigned long long)st->self_closes);
	printf("stress:   worker rings set up %llu, ASYNC entries %llu, submissions without a syscall %llu, SQ_WAKEUP enters %llu, GETEVENTS enters %llu, creator threads exited %llu, rings kept after EOWNERDEAD %llu\n",
	       (unsigned long long)st->worker_setups, (unsigned long long)st->async_entries,
	       (unsigned long long)st->hot_submits, (unsigned long long)st->wakeup_enters,
	       (unsigned long long)st->getevents_enters, (unsigned long long)st->creator_exits,
	       (unsigned long long)st->owner_dead);
	printf("stress:   ledger: children %llu, rings %llu (%llu worker, %llu setups refused), entries %llu, CQEs %llu checked, ASYNC %llu (blocked reads released by a later write %llu, failed with EAGAIN for want of a helper %llu), SQ_WAKEUPs %llu, GETEVENTS waits %llu, EINTR %llu, full CQs %llu, quiescent rings checked %llu, eventfds checked %llu\n",
	       (unsigned long long)st->lg_children, (unsigned long long)st->lg_rings,
	       (unsigned long long)st->lg_worker_rings, (unsigned long long)st->lg_setup_fail,
	       (unsigned long long)st->lg_entries, (unsigned long long)st->lg_cqes,
	       (unsigned long long)st->lg_async, (unsigned long long)st->lg_paired,
	       (unsigned long long)st->lg_async_eagain,
	       (unsigned long long)st->lg_wakeups, (unsigned long long)st->lg_getevents,
	       (unsigned long long)st->lg_eintr, (unsigned long long)st->lg_cq_full,
	       (unsigned long long)st->lg_quiescent, (unsigned long long)st->lg_evfd);
	printf("stress:   ledger: creator threads exited %llu (rings checked for entries run after %llu), closed with entries in flight %llu (worker stalled in a blocking entry %llu), worker and helper threads seen to end after the last close %llu\n",
	       (unsigned long long)st->lg_orphans, (unsigned long long)st->lg_not_run_checked,
	       (unsigned long long)st->lg_close_in_flight,
	       (unsigned long long)st->lg_stalled_worker, (unsigned long long)st->lg_threads_gone);
	printf("stress:   rings set up %llu (failed %llu, broken params %llu), fds closed %llu, dup2 over %llu, lost to entries %llu, munmaps %llu, remaps %llu, overlays %llu, mremaps %llu, mprotects %llu, scribbles %llu, registers %llu, fdinfo reads %llu\n",
	       (unsigned long long)st->setups, (unsigned long long)st->setup_fail,
	       (unsigned long long)st->setup_fuzz, (unsigned long long)st->ring_close,
	       (unsigned long long)st->ring_dup2, (unsigned long long)st->ring_lost,
	       (unsigned long long)st->munmaps, (unsigned long long)st->remaps,
	       (unsigned long long)st->overlays, (unsigned long long)st->mremaps,
	       (unsigned long long)st->mprotects, (unsigned long long)st->scribbles,
	       (unsigned long long)st->registers, (unsigned long long)st->fdinfo_reads);
	printf("stress:   child deaths:");
	for (i = 1; i < 65; i++)
		if (S.deaths[i])
			printf(" %s %ld", sigabbrev_np(i) ? sigabbrev_np(i) : "?", S.deaths[i]);
	for (i = 0; i < 256; i++)
		if (S.exits[i])
			printf(" exit(%d) %ld", i, S.exits[i]);
	printf(", orphans reaped %ld\n", S.orphans_reaped);
	if (st->child_errors)
		printf("stress:   child errors %llu, last: %s\n",
		       (unsigned long long)st->child_errors, st->note);

	printf("stress: before/after (settled: caches dropped, slabs shrunk, KASAN quarantine emptied):\n");
	printf("stress:   user tasks %ld/%ld, kernel threads %ld/%ld, processes of uid %d %ld/%ld\n",
	       before.user_tasks, after.user_tasks, before.kernel_tasks, after.kernel_tasks,
	       UNPRIV_ID, before.stress_procs, after.stress_procs);
	printf("stress:   ring fds open anywhere %ld/%ld, own fds %ld/%ld, file handles %ld/%ld\n",
	       before.ring_fds, after.ring_fds, before.self_fds, after.self_fds, before.file_nr,
	       after.file_nr);
	for (i = 0; i < nrc; i++)
		printf("stress:   slab %s %ld/%ld (noise %ld, x%ld per ring%s)\n", rc[i].name,
		       slab_active(&before, rc[i].name), slab_active(&after, rc[i].name),
		       rc[i].noise, rc[i].per_ring, rc[i].used ? "" : ", not used");
	printf("stress:   kB: Slab %ld/%ld, SUnreclaim %ld/%ld (tolerance +%ld), VmallocUsed %ld/%ld (tolerance +%ld), KernelStack %ld/%ld, PageTables %ld/%ld, Shmem %ld/%ld, Committed_AS %ld/%ld, MemFree %ld/%ld\n",
	       before.slab_kb, after.slab_kb, before.sunreclaim_kb, after.sunreclaim_kb, sun_tol,
	       before.vmalloc_kb, after.vmalloc_kb, vm_tol, before.kstack_kb, after.kstack_kb,
	       before.pagetables_kb, after.pagetables_kb, before.shmem_kb, after.shmem_kb,
	       before.committed_kb, after.committed_kb, before.memfree_kb, after.memfree_kb);

	if (S.unkillable) {
		printf("stress: FAIL: %ld children could not be killed\n", S.unkillable);
		fails++;
	}
	if (leak) {
		printf("stress: FAIL: about %ld rings leaked (every ring cache used grew beyond twice its noise)\n", leak);
		fails++;
	}
	if (after.user_tasks != before.user_tasks || after.stress_procs != before.stress_procs) {
		printf("stress: FAIL: user tasks not back (%ld/%ld, processes of uid %d %ld/%ld)\n",
		       before.user_tasks, after.user_tasks, UNPRIV_ID, before.stress_procs,
		       after.stress_procs);
		fails++;
	}
	if (after.ring_fds) {
		printf("stress: FAIL: %ld ring fds still open\n", after.ring_fds);
		fails++;
	}
	if (after.self_fds != before.self_fds) {
		printf("stress: FAIL: own fds not back\n");
		fails++;
	}
	if (after.vmalloc_kb - before.vmalloc_kb > vm_tol) {
		printf("stress: FAIL: vmalloc grew by %ld kB\n", after.vmalloc_kb - before.vmalloc_kb);
		fails++;
	}
	if (after.sunreclaim_kb - before.sunreclaim_kb > sun_tol) {
		printf("stress: FAIL: unreclaimable slab grew by %ld kB\n",
		       after.sunreclaim_kb - before.sunreclaim_kb);
		fails++;
	}
	if (st->inherited_ring_touch) {
		printf("stress: FAIL: %llu times a forked child could touch its parent's ring mapping (want VM_DONTCOPY)\n",
		       (unsigned long long)st->inherited_ring_touch);
		fails++;
	}
	if (st->inherited_not_eperm || st->exec_not_eperm) {
		printf("stress: FAIL: an inherited ring fd worked in another process (%llu after fork, %llu after exec; want EPERM); last: %s\n",
		       (unsigned long long)st->inherited_not_eperm,
		       (unsigned long long)st->exec_not_eperm, st->contract_note);
		fails++;
	}
	if (st->setup_bad_worker) {
		printf("stress: FAIL: offload_setup() accepted invalid worker parameters %llu times; last: %s\n",
		       (unsigned long long)st->setup_bad_worker, st->contract_note);
		fails++;
	}
	if (st->lg_lost || st->lg_dup || st->lg_wrong || st->lg_order || st->lg_contract) {
		printf("stress: FAIL: ledger: %llu lost completions, %llu unexpected or duplicated, %llu wrong results, %llu out of order, %llu worker-mode contract violations; first: %s\n",
		       (unsigned long long)st->lg_lost, (unsigned long long)st->lg_dup,
		       (unsigned long long)st->lg_wrong, (unsigned long long)st->lg_order,
		       (unsigned long long)st->lg_contract, st->lg_note);
		fails++;
	}
	if (!st->lg_cqes) {
		/* a short run may kill its only ledger child before its first CQE */
		printf("stress: %s: the ledger checked no completion (%llu ledger children)\n",
		       S.seconds >= 60 ? "FAIL" : "warning", (unsigned long long)st->lg_children);
		fails += S.seconds >= 60;
	}
	if (st->setup_no_cloexec) {
		printf("stress: FAIL: %llu ring fds without FD_CLOEXEC (want it always set)\n",
		       (unsigned long long)st->setup_no_cloexec);
		fails++;
	}
	printf("stress: contract checks: %llu inherited ring fds tried after fork, %llu after exec\n",
	       (unsigned long long)st->inherited_checked,
	       (unsigned long long)st->exec_inherited_fds);
	i = kernel_reports(mark);
	if (i) {
		printf("stress: FAIL: the kernel logged %d reports during the run\n", i);
		fails++;
	}

	unlink(S.stats);
	rmdir(S.fuzz);
	rmdir(S.top);
	printf("stress: %s\n", fails ? "FAIL" : "PASS");
	return fails ? 1 : 0;
}

static long env_long(const char *name, long def)
{
	const char *v = getenv(name);

	return v && *v ? atol(v) : def;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "procs", required_argument, NULL, 'p' },
		{ "seed", required_argument, NULL, 'r' },
		{ "fuzz-child", no_argument, NULL, 'F' },
		{ "exec-check", no_argument, NULL, 'X' },
		{}
	};
	int opt;

	S.seconds = env_long("STRESS_SECONDS", 120);
	S.procs = env_long("STRESS_PROCS", 3);
	S.seed = env_long("STRESS_SEED", 0);
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			S.seconds = atoi(optarg);
			break;
		case 'p':
			S.procs = atoi(optarg);
			break;
		case 'r':
			S.seed = strtoull(optarg, NULL, 0);
			break;
		case 'F':	/* stress --fuzz-child STATS DIR SLOT SEED (exec'd by itself) */
			if (argc - optind < 4)
				return 2;
			fuzz_child(argv[optind], argv[optind + 1], atoi(argv[optind + 2]),
				   strtoull(argv[optind + 3], NULL, 0), false);
			return 0;
		case 'X':	/* stress --exec-check STATS */
			return optind < argc ? exec_check(argv[optind]) : 2;
		default:
			fprintf(stderr, "usage: stress [--seconds N] [--procs N] [--seed N]\n");
			return 2;
		}
	}
	if (S.procs < 1 || S.procs > MAX_PROCS || S.seconds < 1) {
		fprintf(stderr, "stress: --procs 1..%d, --seconds >= 1\n", MAX_PROCS);
		return 2;
	}
	if (!S.seed)
		S.seed = now_ns() ^ getpid();
	return supervise();
}
