//! The ring: builder, shared state, registration; the queues themselves are
//! in `split.rs`.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::emulated::{Emulator, WorkerConfig};
use crate::entry::Entry;
use crate::error::{Error, ErrorKind, Result};
use crate::op::Op;
use crate::owned::{OwnedCompletion, Ticket};
use crate::queue::{self, Queues};
use crate::raw::{self, Mmap};
use crate::split::{lock, CompletionQueue, Completions, CqState, Pending, Spill, SqState, SubmissionQueue};
use crate::sys::*;

/// `user_data` bit 63 marks the crate's own entries (batches, owned ops).
pub(crate) const RESERVED: u64 = 1 << 63;
/// Bit 62 (with bit 63) marks a batch entry; the low bits are its index.
pub(crate) const BATCH: u64 = 1 << 62;

/// Where the entries of a ring run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Backend {
    /// The kernel's syscall offload (`offload_setup(2)` and friends).
    /// Requires a kernel built with `CONFIG_SYSCALL_OFFLOAD`.
    Kernel,
    /// This crate executes each entry with a direct system call, with the
    /// kernel's results, order, link and back-pressure rules: inline rings
    /// in the thread that submits, worker rings on a thread of their own
    /// (a `std::thread` with the kernel worker's idle and wakeup protocol).
    /// No batching gain, but it runs everywhere (unpatched kernels, CI,
    /// other arches).
    Emulated,
    /// [`Kernel`](Backend::Kernel) when the running kernel has offload and
    /// lets this process use it, else [`Emulated`](Backend::Emulated): when
    /// the kernel lacks offload, or `offload_setup` is refused with `EPERM`,
    /// `EACCES` or `ENOSYS` (`kernel.offload_disabled`, a security module,
    /// or a container's seccomp profile). [`Ring::backend`] tells which one
    /// was picked and [`Ring::fallback`] why. A kernel that has offload but
    /// no worker mode is no reason to fall back: a worker ring fails there
    /// with [`ErrorKind::WorkerUnsupported`].
    #[default]
    Auto,
}

static FORK_GEN: AtomicU64 = AtomicU64::new(0);

extern "C" fn forked_child() {
    FORK_GEN.fetch_add(1, Ordering::Relaxed);
}

/// Whether the `pthread_atfork` child handler that bumps the fork
/// generation is in place (registered on first use).
fn atfork_registered() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        // SAFETY: registers a handler that only touches an atomic.
        unsafe { libc::pthread_atfork(None, None, Some(forked_child)) == 0 }
    })
}

/// How many times this process's ancestors and itself were forked from a
/// process that had used a ring: the child handler of `pthread_atfork`
/// bumps it, so reading it costs no system call.
fn fork_generation() -> u64 {
    atfork_registered();
    FORK_GEN.load(Ordering::Relaxed)
}

#[cfg(test)]
thread_local! {
    /// Unit tests: how often this thread asked the kernel for its pid.
    pub(crate) static PID_READS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// `getpid()`, a system call (glibc does not cache it).
fn current_pid() -> u32 {
    #[cfg(test)]
    PID_READS.with(|n| n.set(n.get() + 1));
    std::process::id()
}

/// Whether [`Backend::Auto`] takes the emulated backend after this error
/// of the kernel backend: no offload in the kernel, or `offload_setup`
/// refused by policy (`kernel.offload_disabled` and LSMs say `EPERM` or
/// `EACCES`; container seccomp profiles `EPERM` or `ENOSYS`).
fn auto_falls_back(e: &Error) -> bool {
    e.kind() == ErrorKind::Unsupported
        || (e.what() == "offload_setup" && matches!(e.errno(), libc::EPERM | libc::EACCES | libc::ENOSYS))
}

/// Whether `cpu` is in a kernel CPU list such as `0-3,8,10-11` (the
/// format of `/sys/devices/system/cpu/online` and of cpusets); `None` if
/// the list does not parse.
pub(crate) fn cpu_list_contains(list: &str, cpu: u32) -> Option<bool> {
    let list = list.trim();
    if list.is_empty() {
        return Some(false);
    }
    let mut found = false;
    for part in list.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.trim().parse::<u32>().ok()?, hi.trim().parse::<u32>().ok()?),
            None => {
                let c = part.trim().parse::<u32>().ok()?;
                (c, c)
            }
        };
        found |= (lo..=hi).contains(&cpu);
    }
    Some(found)
}

/// Whether `cpu` exists and is online (`/sys/devices/system/cpu/online`);
/// `None` when that cannot be read, and the kernel judges alone.
///
/// Deliberately not the caller's affinity mask: like io_uring's SQPOLL
/// thread, the worker may run where its creator may not (an event loop
/// pinned to CPU 0 puts its worker on CPU 1). The kernel refuses only
/// CPUs that are out of range, offline, or outside the caller's cpuset.
fn cpu_online(cpu: u32) -> Option<bool> {
    let list = std::fs::read_to_string("/sys/devices/system/cpu/online").ok()?;
    cpu_list_contains(&list, cpu)
}

/// The CPUs of this process's cpuset (cgroup v1 `cpuset.effective_cpus`
/// or v2 `cpuset.cpus.effective`), for error messages.
fn cpuset_cpus() -> Option<String> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut v2 = None;
    for line in cgroups.lines() {
        let mut f = line.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        if controllers.split(',').any(|c| c == "cpuset") {
            if let Ok(s) = std::fs::read_to_string(format!("/sys/fs/cgroup/cpuset{path}/cpuset.effective_cpus")) {
                return Some(s.trim().to_string());
            }
        } else if controllers.is_empty() {
            v2 = Some(path.to_string());
        }
    }
    let path = v2?;
    std::fs::read_to_string(format!("/sys/fs/cgroup{path}/cpuset.cpus.effective")).ok().map(|s| s.trim().to_string())
}

/// [`ErrorKind::WorkerCpuUnavailable`] for a CPU that is online (as far
/// as the crate could tell) but that `offload_setup` refused with
/// `EINVAL`: outside this process's cpuset, or gone offline meanwhile.
pub(crate) fn worker_cpu_refused(cpu: u32) -> Error {
    let cpuset = match cpuset_cpus() {
        Some(set) if cpu_list_contains(&set, cpu) == Some(false) => format!(" (this cpuset has CPUs {set})"),
        _ => String::new(),
    };
    Error::new(
        ErrorKind::WorkerCpuUnavailable,
        libc::EINVAL,
        "offload_setup",
        format!(
            "the worker cannot be pinned to CPU {cpu}: it is outside this process's cpuset{cpuset} or went offline"
        ),
    )
}

/// What `offload_setup` failing with `e` means for a ring set up with `p`.
/// `kernel_has_worker` asks the kernel (with an inline ring) whether it
/// has worker mode at all.
fn setup_error(e: &std::io::Error, p: &offload_params, kernel_has_worker: impl FnOnce() -> bool) -> Error {
    const WHAT: &str = "offload_setup";
    let worker = p.flags & OFFLOAD_SETUP_WORKER != 0;
    let no_worker = |errno| {
        Error::new(
            ErrorKind::WorkerUnsupported,
            errno,
            WHAT,
            "this kernel has syscall offload but no worker mode (OFFLOAD_FEAT_WORKER); use an inline ring",
        )
    };
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) if worker => no_worker(libc::EOPNOTSUPP),
        // A kernel that predates worker mode refuses the flag as an
        // unknown bit: ask an inline ring what the kernel has.
        Some(libc::EINVAL) if worker && !kernel_has_worker() => no_worker(libc::EINVAL),
        // The builder checked the idle time and that the CPU is online:
        // what is left is the cpuset (or a CPU that went offline since).
        Some(libc::EINVAL) if p.flags & OFFLOAD_SETUP_WORKER_CPU != 0 => worker_cpu_refused(p.worker_cpu),
        Some(libc::EINVAL) if worker => {
            Error::new(ErrorKind::InvalidInput, libc::EINVAL, WHAT, "the kernel refused the worker settings")
        }
        Some(e @ (libc::EPERM | libc::EACCES)) => Error::new(
            ErrorKind::Os,
            e,
            WHAT,
            "refused for this process (kernel.offload_disabled, a security module or a seccomp filter)",
        ),
        Some(libc::ENOSYS) => Error::new(
            ErrorKind::Os,
            libc::ENOSYS,
            WHAT,
            "refused with ENOSYS although the kernel has offload: a seccomp filter (container profile) blocks it",
        ),
        _ => Error::from_io(WHAT, e),
    }
}

/// Builds a [`Ring`]: `offload_setup(entries, &params)` plus the mapping.
///
/// ```
/// use std::time::Duration;
/// use syscall_offload::{Backend, Ring};
/// let ring = Ring::builder(64).cq_entries(256).backend(Backend::Emulated).build()?;
/// assert_eq!((ring.sq_entries(), ring.cq_entries()), (64, 256));
/// let worker = Ring::builder(64).worker(Duration::from_millis(50)).cpu(0).backend(Backend::Emulated).build()?;
/// assert!(worker.is_worker());
/// # Ok::<(), syscall_offload::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    entries: u32,
    cq_entries: Option<u32>,
    worker_idle: Option<Duration>,
    cpu: Option<u32>,
    /// `worker_cpu()` (not `cpu()`): the CPU implies a worker.
    cpu_implies_worker: bool,
    cloexec: bool,
    backend: Backend,
}

impl Builder {
    /// A ring of `entries` SQ slots (rounded up to a power of two, 1 to
    /// `OFFLOAD_MAX_ENTRIES`), CQ twice as large, inline, `O_CLOEXEC`,
    /// [`Backend::Auto`].
    pub fn new(entries: u32) -> Builder {
        Builder {
            entries,
            cq_entries: None,
            worker_idle: None,
            cpu: None,
            cpu_implies_worker: false,
            cloexec: true,
            backend: Backend::Auto,
        }
    }

    /// `OFFLOAD_SETUP_CQSIZE`: a CQ of `n` entries (rounded up; at least the
    /// SQ size, at most `OFFLOAD_MAX_CQ_ENTRIES`).
    pub fn cq_entries(mut self, n: u32) -> Builder {
        self.cq_entries = Some(n);
        self
    }

    /// `OFFLOAD_SETUP_WORKER` with `worker_idle_ms`: a worker thread of
    /// the process polls the SQ and runs the entries while the application
    /// goes on; after `idle` without work it sets `OFFLOAD_SQ_NEED_WAKEUP`
    /// and sleeps until [`Ring::submit`] wakes it.
    ///
    /// `idle` is rounded up to whole milliseconds and must be 1 ms to
    /// `OFFLOAD_MAX_WORKER_IDLE_MS` (10 minutes); anything else makes
    /// [`build`](Builder::build) fail with [`ErrorKind::InvalidInput`].
    ///
    /// Requires `OFFLOAD_FEAT_WORKER`: kernels without worker mode fail
    /// with [`ErrorKind::WorkerUnsupported`]. The emulated backend has it.
    pub fn worker(mut self, idle: Duration) -> Builder {
        self.worker_idle = Some(idle);
        self
    }

    /// `OFFLOAD_SETUP_WORKER_CPU`: pin the worker to `cpu`. Needs
    /// [`worker`](Builder::worker) (else [`ErrorKind::InvalidInput`]).
    ///
    /// The CPU need not be in this thread's affinity mask: as with
    /// io_uring's SQPOLL thread, an event loop pinned to CPU 0 may put its
    /// worker on CPU 1. It must exist, be online and be in this process's
    /// cpuset; otherwise [`build`](Builder::build) fails with
    /// [`ErrorKind::WorkerCpuUnavailable`] (errno `EINVAL`). The crate
    /// checks that the CPU is online (`/sys/devices/system/cpu/online`);
    /// the cpuset is the kernel's to judge, and its `EINVAL` gets the same
    /// kind.
    ///
    /// ```
    /// use std::time::Duration;
    /// use syscall_offload::{Backend, ErrorKind, Ring};
    /// let e = Ring::builder(8).worker(Duration::from_millis(10)).cpu(1 << 20).backend(Backend::Emulated).build();
    /// assert_eq!(e.unwrap_err().kind(), ErrorKind::WorkerCpuUnavailable);
    /// ```
    pub fn cpu(mut self, cpu: u32) -> Builder {
        self.cpu = Some(cpu);
        self
    }

    /// [`cpu`](Builder::cpu) that implies [`worker`](Builder::worker) with
    /// `OFFLOAD_DEFAULT_WORKER_IDLE_MS` (1 s) unless one is set.
    pub fn worker_cpu(mut self, cpu: u32) -> Builder {
        self.cpu = Some(cpu);
        self.cpu_implies_worker = true;
        self
    }

    /// `OFFLOAD_SETUP_CLOEXEC` (on by default). The kernel makes every ring
    /// fd close-on-exec whatever this says; the flag is still accepted.
    pub fn cloexec(mut self, on: bool) -> Builder {
        self.cloexec = on;
        self
    }

    /// Which backend to use (default [`Backend::Auto`]).
    pub fn backend(mut self, backend: Backend) -> Builder {
        self.backend = backend;
        self
    }

    fn params(&self) -> Result<(u32, offload_params)> {
        const WHAT: &str = "offload_setup";
        if self.entries == 0 || self.entries > OFFLOAD_MAX_ENTRIES {
            return Err(Error::invalid(WHAT, format!("entries must be 1..={OFFLOAD_MAX_ENTRIES}, not {}", self.entries)));
        }
        let sq = self.entries.next_power_of_two();
        let mut p = offload_params { size: std::mem::size_of::<offload_params>() as u32, ..Default::default() };
        if let Some(cq) = self.cq_entries {
            if cq < sq || cq > OFFLOAD_MAX_CQ_ENTRIES {
                return Err(Error::invalid(
                    WHAT,
                    format!("cq_entries must be {sq}..={OFFLOAD_MAX_CQ_ENTRIES}, not {cq}"),
                ));
            }
            p.flags |= OFFLOAD_SETUP_CQSIZE;
            p.cq_entries = cq;
        }
        let idle = match (self.worker_idle, self.cpu_implies_worker) {
            (Some(idle), _) => Some(idle),
            (None, true) => Some(Duration::from_millis(OFFLOAD_DEFAULT_WORKER_IDLE_MS.into())),
            (None, false) => None,
        };
        if let Some(idle) = idle {
            // Whole milliseconds, rounded up: 0 would ask for the default.
            let ms = idle.as_nanos().div_ceil(1_000_000);
            if ms == 0 || ms > u128::from(OFFLOAD_MAX_WORKER_IDLE_MS) {
                return Err(Error::invalid(
                    WHAT,
                    format!("the worker idle time must be 1 ms to {OFFLOAD_MAX_WORKER_IDLE_MS} ms, not {idle:?}"),
                ));
            }
            p.flags |= OFFLOAD_SETUP_WORKER;
            p.worker_idle_ms = ms as u32;
        }
        if let Some(cpu) = self.cpu {
            if idle.is_none() {
                return Err(Error::invalid(WHAT, "cpu() pins the worker: it needs worker()"));
            }
            if cpu_online(cpu) == Some(false) {
                return Err(Error::new(
                    ErrorKind::WorkerCpuUnavailable,
                    libc::EINVAL,
                    WHAT,
                    format!("worker CPU {cpu} does not exist or is offline"),
                ));
            }
            p.flags |= OFFLOAD_SETUP_WORKER_CPU;
            p.worker_cpu = cpu;
        }
        if self.cloexec {
            p.flags |= OFFLOAD_SETUP_CLOEXEC;
        }
        Ok((self.entries, p))
    }

    /// Creates the ring.
    ///
    /// Errors: [`ErrorKind::InvalidInput`] for sizes or an idle time the
    /// kernel would reject, [`ErrorKind::WorkerCpuUnavailable`] for a
    /// worker CPU it cannot pin to, [`ErrorKind::Unsupported`] when
    /// [`Backend::Kernel`] is asked for on a kernel without offload,
    /// [`ErrorKind::WorkerUnsupported`] for a worker on a kernel without
    /// worker mode, [`ErrorKind::Os`] for what the kernel refused (e.g.
    /// `EPERM` from `kernel.offload_disabled`).
    pub fn build(self) -> Result<Ring> {
        let (entries, p) = self.params()?;
        match self.backend {
            Backend::Kernel => Ring::kernel(entries, p),
            Backend::Emulated => Ring::emulated(entries, p),
            Backend::Auto => match Ring::kernel(entries, p) {
                Err(e) if auto_falls_back(&e) => {
                    let mut ring = Ring::emulated(entries, p)?;
                    ring.sh.setup_fallback = Some(e);
                    Ok(ring)
                }
                r => r,
            },
        }
    }
}

#[derive(Debug)]
pub(crate) enum Engine {
    Kernel(OwnedFd),
    Emulated(Emulator),
}

/// What both sides of a ring use. Everything in it is read-only, atomic
/// (the mapping's words) or behind a lock.
#[derive(Debug)]
pub(crate) struct Shared {
    // Field order is drop order: unmap before the fd closes.
    pub(crate) q: Queues,
    pub(crate) engine: Engine,
    params: offload_params,
    /// Who created the ring; compared only when `pthread_atfork` failed.
    pid: u32,
    fork_gen: u64,
    /// Completions of direct calls, see [`Spill`].
    pub(crate) spill: Mutex<Spill>,
    /// Owned operations pushed and not yet completed.
    pub(crate) pending: Mutex<Pending>,
    /// A copy of the eventfd registered with a kernel ring, signalled when
    /// the crate posts completions itself.
    pub(crate) eventfd: Option<OwnedFd>,
    /// Why `Backend::Auto` took the emulated backend.
    setup_fallback: Option<Error>,
    /// `offload_enter` calls made (or emulated) for this ring.
    enters: AtomicU64,
}

impl Shared {
    pub(crate) fn is_worker(&self) -> bool {
        self.params.flags & OFFLOAD_SETUP_WORKER != 0
    }

    pub(crate) fn features(&self) -> Features {
        Features::from_bits_retain(self.params.features)
    }

    pub(crate) fn sq_flags(&self) -> SqFlags {
        SqFlags::from_bits_retain(self.q.sq_flags().load(Ordering::Acquire))
    }

    pub(crate) fn check_fork(&self, what: &'static str) -> Result<()> {
        if fork_generation() != self.fork_gen {
            return Err(Error::forked(what));
        }
        Ok(())
    }

    /// The fork generation alone, no system call: `fork()` runs the
    /// `pthread_atfork` child handler. A child made without it (a raw
    /// `clone` without `CLONE_VM`) has no kernel ring mapping
    /// (`VM_DONTCOPY`: touching it faults) and gets `EPERM` from the
    /// kernel for the ring fd. Only if the handler could not be registered
    /// is the pid compared.
    pub(crate) fn check_owner(&self, what: &'static str) -> Result<()> {
        self.check_fork(what)?;
        if !atfork_registered() && current_pid() != self.pid {
            return Err(Error::forked(what));
        }
        Ok(())
    }

    /// `offload_enter(fd, to_submit, min_complete, flags)` on either
    /// backend, the errno bare.
    pub(crate) fn enter(&self, to_submit: u32, min_complete: u32, flags: u32) -> std::result::Result<u32, i32> {
        self.enters.fetch_add(1, Ordering::Relaxed);
        match &self.engine {
            // SAFETY: every entry in the SQ was pushed under the contract of
            // `push` (or by `batch`/`push_owned`, which keep their buffers
            // alive until the completion is reaped).
            Engine::Kernel(fd) => unsafe {
                raw::enter(fd.as_fd(), to_submit, min_complete, EnterFlags::from_bits_retain(flags))
            }
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO)),
            Engine::Emulated(emu) => emu.enter(to_submit, min_complete, flags),
        }
    }

    /// How many CQEs the CQ must hold for `want` completions to be ready,
    /// given `set_aside` of them (and the direct calls' ones) are already
    /// out of it. More than the CQ holds can never come.
    pub(crate) fn need_in_cq(&self, want: u32, set_aside: usize, what: &'static str) -> Result<u32> {
        let out = set_aside + lock(&self.spill).len();
        let need = (want as usize).saturating_sub(out) as u32;
        if need > self.q.cq_entries {
            return Err(Error::invalid(
                what,
                format!("cannot wait for {want} completions: the CQ holds {}", self.q.cq_entries),
            ));
        }
        Ok(need)
    }

    /// Waits without the kernel until `min` completions are in the CQ or
    /// set aside as direct calls' (a traced task, whose `offload_enter` is
    /// refused: another thread's submission may still bring them).
    pub(crate) fn poll_for(&self, min: u32) {
        loop {
            let in_cq = self.q.cq_tail().load(Ordering::Acquire).wrapping_sub(self.q.cq_head().load(Ordering::Acquire));
            if in_cq as usize + lock(&self.spill).len() >= min as usize {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub(crate) fn probe(&self) -> Result<Probe> {
        self.check_owner("offload_register PROBE")?;
        let mut bitmap = vec![0u64; OFFLOAD_BITMAP_MAX_WORDS as usize];
        let nr = match &self.engine {
            Engine::Kernel(fd) => raw::register_probe(fd.as_fd(), &mut bitmap)
                .map_err(|e| Error::from_io("offload_register PROBE", &e))?,
            Engine::Emulated(emu) => emu.probe(&mut bitmap).map_err(|e| Error::os("offload_register PROBE", e))?,
        };
        Ok(Probe { bitmap, nr_syscalls: nr })
    }
}

/// An offload ring: a submission queue of syscalls and a completion queue
/// of their results, shared with the kernel (or the emulated backend).
///
/// The safe ways to use it are [`Ring::batch`] (borrowed buffers; it waits
/// for its entries) and [`Ring::push_owned`] (owned buffers; for worker
/// rings). [`Ring::push`] and [`Ring::completions`] are the low-level
/// queue interface, and [`Ring::split`] gives a submission and a
/// completion side that can be used from two threads at once.
///
/// A ring belongs to the process that created it: after `fork()` the child
/// gets [`ErrorKind::Forked`] from every call.
///
/// # Dropping
///
/// `munmap()` of the ring, then `close()` of its fd. Owned operations
/// ([`push_owned`](Ring::push_owned)) that an inline ring has not run are
/// dropped with it (they never will run). On a worker ring the drop
/// publishes what is queued and waits while completions of owned
/// operations keep coming; after one second without one (an entry blocked
/// in its system call, or a gone worker) it leaks the buffers and fds of
/// the rest instead of freeing memory the worker may still write into.
/// Call [`wait_owned`](Ring::wait_owned) first to wait without a limit.
#[derive(Debug)]
pub struct Ring {
    pub(crate) sh: Shared,
    pub(crate) sq: SqState,
    pub(crate) cq: CqState,
}

impl Ring {
    /// A ring of `entries` SQ slots on [`Backend::Auto`]; see [`Builder`].
    ///
    /// ```
    /// let ring = syscall_offload::Ring::new(32)?;
    /// println!("entries run on the {:?} backend", ring.backend());
    /// # Ok::<(), syscall_offload::Error>(())
    /// ```
    pub fn new(entries: u32) -> Result<Ring> {
        Builder::new(entries).build()
    }

    /// A [`Builder`] for a ring of `entries` SQ slots.
    pub fn builder(entries: u32) -> Builder {
        Builder::new(entries)
    }

    fn finish(q: Queues, engine: Engine, params: offload_params) -> Ring {
        Ring {
            sh: Shared {
                q,
                engine,
                params,
                pid: std::process::id(),
                fork_gen: fork_generation(),
                spill: Mutex::new(VecDeque::new()),
                pending: Mutex::new(Default::default()),
                eventfd: None,
                setup_fallback: None,
                enters: AtomicU64::new(0),
            },
            sq: SqState::new(),
            cq: CqState::default(),
        }
    }

    fn kernel(entries: u32, mut p: offload_params) -> Result<Ring> {
        if !raw::kernel_has_offload() {
            return Err(raw::unsupported_error("offload_setup"));
        }
        let worker = p.flags & OFFLOAD_SETUP_WORKER != 0;
        let fd = raw::setup(entries, &mut p).map_err(|e| setup_error(&e, &p, Ring::kernel_has_worker))?;
        if worker && p.features & OFFLOAD_FEAT_WORKER == 0 {
            return Err(setup_error(&std::io::Error::from_raw_os_error(libc::EOPNOTSUPP), &p, || false));
        }
        let map = Mmap::ring(fd.as_fd(), p.ring_size).map_err(|e| Error::from_io("mmap ring", &e))?;
        let q = Queues::new(map, &p)?;
        Ok(Ring::finish(q, Engine::Kernel(fd), p))
    }

    /// Whether an inline ring of the running kernel says `OFFLOAD_FEAT_WORKER`.
    fn kernel_has_worker() -> bool {
        let mut p = offload_params { size: std::mem::size_of::<offload_params>() as u32, ..Default::default() };
        raw::setup(1, &mut p).is_ok_and(|_fd| p.features & OFFLOAD_FEAT_WORKER != 0)
    }

    fn emulated(entries: u32, p: offload_params) -> Result<Ring> {
        // The kernel's rounding (`Builder::params` checked the bounds).
        let sq_entries = entries.next_power_of_two();
        let cq_entries =
            if p.flags & OFFLOAD_SETUP_CQSIZE != 0 { p.cq_entries.next_power_of_two() } else { 2 * sq_entries };
        let worker = (p.flags & OFFLOAD_SETUP_WORKER != 0).then(|| WorkerConfig {
            idle: Duration::from_millis(p.worker_idle_ms.into()),
            cpu: (p.flags & OFFLOAD_SETUP_WORKER_CPU != 0).then_some(p.worker_cpu),
        });
        let mut p2 = queue::emulated_params(sq_entries, cq_entries, p.flags);
        p2.worker_cpu = p.worker_cpu;
        p2.worker_idle_ms = p.worker_idle_ms;
        let len = usize::try_from(p2.ring_size).map_err(|_| Error::invalid("offload_setup", "ring too large"))?;
        let map = Mmap::anonymous(len).map_err(|e| Error::from_io("mmap ring", &e))?;
        queue::init_emulated(&map, &p2);
        let q = Queues::new(map, &p2)?;
        let emu = Emulator::new(q.clone(), worker).map_err(|e| match (e.raw_os_error(), worker.and_then(|w| w.cpu)) {
            // The worker thread could not pin itself: the cpuset, as in the kernel.
            (Some(libc::EINVAL), Some(cpu)) => worker_cpu_refused(cpu),
            _ => Error::from_io("offload_setup (worker thread)", &e),
        })?;
        Ok(Ring::finish(q, Engine::Emulated(emu), p2))
    }

    /// Unit tests: the next `offload_enter` calls of an emulated ring fail
    /// with these errnos (None: runs).
    #[cfg(test)]
    pub(crate) fn script_enter(&mut self, errnos: &[Option<i32>]) {
        let Engine::Emulated(emu) = &self.sh.engine else { unreachable!("an emulated ring") };
        lock(&emu.script).extend(errnos);
    }

    /// The submission side and the completion side of this ring, to use
    /// from two threads at once: one pushes and submits while the other
    /// reaps (on a worker ring the worker runs the entries meanwhile).
    ///
    /// Both borrow the ring, so there is only ever one of each: each ring
    /// index has one writer on the user side.
    ///
    /// ```
    /// use std::time::Duration;
    /// use syscall_offload::{Backend, Entry, Ring};
    /// use syscall_offload::op::{self, Op};
    ///
    /// let mut ring = Ring::builder(8).worker(Duration::from_millis(20)).backend(Backend::Emulated).build()?;
    /// let (mut sq, mut cq) = ring.split();
    /// std::thread::scope(|s| {
    ///     s.spawn(move || {
    ///         for i in 0..100 {
    ///             // SAFETY: getpid takes no pointers.
    ///             while unsafe { sq.push(&op::Getpid::new().entry().user_data(i)) }.is_err() {
    ///                 sq.submit().unwrap();
    ///             }
    ///             sq.submit().unwrap();
    ///         }
    ///     });
    ///     let mut seen = 0;
    ///     while seen < 100 {
    ///         cq.wait(1).unwrap();
    ///         seen += cq.completions().count();
    ///     }
    /// });
    /// # Ok::<(), syscall_offload::Error>(())
    /// ```
    pub fn split(&mut self) -> (SubmissionQueue<'_>, CompletionQueue<'_>) {
        let Ring { sh, sq, cq } = self;
        (SubmissionQueue { sh, st: sq }, CompletionQueue { sh, st: cq })
    }

    pub(crate) fn sq_side(&mut self) -> SubmissionQueue<'_> {
        SubmissionQueue { sh: &self.sh, st: &mut self.sq }
    }

    pub(crate) fn cq_side(&mut self) -> CompletionQueue<'_> {
        CompletionQueue { sh: &self.sh, st: &mut self.cq }
    }

    /// The backend this ring runs on: [`Backend::Kernel`] or
    /// [`Backend::Emulated`], never `Auto`.
    pub fn backend(&self) -> Backend {
        match self.sh.engine {
            Engine::Kernel(_) => Backend::Kernel,
            Engine::Emulated(_) => Backend::Emulated,
        }
    }

    /// Why this ring's entries run as direct system calls, if they do:
    ///
    /// * the error that made [`Backend::Auto`] take the emulated backend
    ///   (no offload in the kernel, or `offload_setup` refused);
    /// * on the kernel backend, `EPERM` from the latest `offload_enter`:
    ///   the kernel runs no entries for a task traced with
    ///   `PTRACE_SYSCALL`/`PTRACE_SYSEMU` (strace) or with syscall user
    ///   dispatch on, so the crate made the queued calls itself, with the
    ///   ring's rules (order, links, allowlist). Cleared once the kernel
    ///   runs a submission again; [`direct_submissions`](Ring::direct_submissions)
    ///   counts them.
    ///
    /// ```
    /// let ring = syscall_offload::Ring::new(8)?;
    /// if let Some(why) = ring.fallback() {
    ///     eprintln!("no batching: {why}");
    /// }
    /// # Ok::<(), syscall_offload::Error>(())
    /// ```
    pub fn fallback(&self) -> Option<&Error> {
        self.sh.setup_fallback.as_ref().or(self.sq.enter_fallback.as_ref())
    }

    /// How many submissions of this ring the crate ran as direct system
    /// calls because `offload_enter` refused them with `EPERM` (see
    /// [`fallback`](Ring::fallback)).
    pub fn direct_submissions(&self) -> u64 {
        self.sq.direct_submissions
    }

    /// How many `offload_enter` calls the crate made for this ring (the
    /// emulated backend counts the ones it stands in for). On a worker
    /// ring whose worker is awake, submitting makes none.
    pub fn enter_calls(&self) -> u64 {
        self.sh.enters.load(Ordering::Relaxed)
    }

    /// The ring fd (`None` on the emulated backend, which has none).
    pub fn as_fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.sh.engine {
            Engine::Kernel(fd) => Some(fd.as_fd()),
            Engine::Emulated(_) => None,
        }
    }

    /// The `struct offload_params` that `offload_setup()` returned.
    pub fn params(&self) -> &offload_params {
        &self.sh.params
    }

    /// `offload_params.features`.
    pub fn features(&self) -> Features {
        self.sh.features()
    }

    /// Whether a worker polls this ring (`OFFLOAD_SETUP_WORKER`).
    pub fn is_worker(&self) -> bool {
        self.sh.is_worker()
    }

    /// The shared SQ flags word (`OFFLOAD_SQ_*`): whether the worker sleeps
    /// (`NEED_WAKEUP`) or is gone (`WORKER_GONE`).
    pub fn sq_flags(&self) -> SqFlags {
        self.sh.sq_flags()
    }

    /// SQ size (a power of two).
    pub fn sq_entries(&self) -> u32 {
        self.sh.q.sq_entries
    }

    /// CQ size (a power of two).
    pub fn cq_entries(&self) -> u32 {
        self.sh.q.cq_entries
    }

    pub(crate) fn check_fork(&self, what: &'static str) -> Result<()> {
        self.sh.check_fork(what)
    }

    /// Entries pushed and not yet consumed by the kernel.
    pub fn sq_len(&self) -> u32 {
        self.sq.tail.wrapping_sub(self.sh.q.sq_head().load(Ordering::Acquire))
    }

    /// Free SQ slots.
    pub fn sq_space(&self) -> u32 {
        self.sh.q.sq_entries.saturating_sub(self.sq_len())
    }

    /// Writes `entry` into the next SQ slot; [`submit`](Ring::submit) makes
    /// it visible to the kernel.
    ///
    /// Errors: [`ErrorKind::SubmissionQueueFull`] when no slot is free,
    /// [`ErrorKind::InvalidInput`] for a `user_data` with bit 63 set
    /// (reserved), [`ErrorKind::Forked`] after `fork()`.
    ///
    /// # Safety
    ///
    /// The kernel runs the entry's syscall with its raw arguments when this
    /// ring is next submitted (on a worker ring: at any time after that),
    /// which may be long after this call returns: every pointer in `entry`
    /// must stay valid for the access the syscall makes (a read buffer
    /// writable, a write buffer readable, for its length) until the entry's
    /// completion has been posted. On an inline ring, dropping the ring
    /// without submitting the entry also ends that duty; on a worker ring
    /// it does not (the worker stops asynchronously). File descriptors must
    /// stay open for the same time, or the call lands on whatever file
    /// takes their number. An entry made by an operation builder
    /// ([`Op::entry`](crate::op::Op::entry)) may point into the builder
    /// itself: keep it alive and in place as well. The entry of an
    /// [`op::Close`](crate::op::Close) or [`op::Dup3`](crate::op::Dup3)
    /// owns its fd from then on: push it once, and do not also hand the
    /// builder to a batch or [`push_owned`](Ring::push_owned).
    ///
    /// ```
    /// use syscall_offload::{Backend, Entry, Ring};
    /// use syscall_offload::op::{self, Op};
    /// let mut ring = Ring::builder(8).backend(Backend::Emulated).build()?;
    /// // SAFETY: getpid takes no pointers.
    /// unsafe { ring.push(&op::Getpid::new().entry().user_data(1))? };
    /// ring.submit()?;
    /// let c = ring.completions().next().unwrap();
    /// assert_eq!(c.res, std::process::id() as i64);
    /// # Ok::<(), syscall_offload::Error>(())
    /// ```
    pub unsafe fn push(&mut self, entry: &Entry) -> Result<()> {
        // SAFETY: the caller's promise is passed on unchanged.
        unsafe { self.sq_side().push(entry) }
    }

    pub(crate) fn push_sqe(&mut self, sqe: &offload_sqe) -> Result<()> {
        self.sq_side().push_sqe(sqe)
    }

    /// Publishes the pushed entries (store-release of the SQ tail).
    pub(crate) fn publish(&mut self) {
        self.sq_side().publish()
    }

    /// `offload_enter(fd, to_submit, min_complete, flags)`, the errno bare;
    /// see [`SubmissionQueue`].
    pub(crate) fn enter_raw(&mut self, to_submit: u32, min_complete: u32, flags: u32) -> std::result::Result<u32, i32> {
        self.sq_side().enter_raw(to_submit, min_complete, flags)
    }

    /// `offload_enter(fd, queued, 0, 0)` on an inline ring: runs the queued
    /// entries now, in order, in this thread, and returns how many were
    /// consumed. Fewer than queued when the CQ filled up or a signal came
    /// (the rest stay queued: submit again); `EBUSY` when the CQ is full
    /// and nothing could be consumed, `EINTR` when a signal came first.
    /// A link chain ends with the submission.
    ///
    /// When the kernel refuses the call with `EPERM` because the task is
    /// traced or has syscall user dispatch on, the entries run as direct
    /// system calls instead, and [`fallback`](Ring::fallback) says so.
    ///
    /// On a worker ring it does not wait and usually makes no system call:
    /// it publishes the entries (store-release of the SQ tail), and only
    /// if the worker sleeps (`OFFLOAD_SQ_NEED_WAKEUP`, read after a full
    /// barrier) calls `offload_enter(fd, 0, 0, OFFLOAD_ENTER_SQ_WAKEUP)`.
    /// It returns the number of entries it published. A worker that is
    /// gone (`OFFLOAD_SQ_WORKER_GONE`, `EOWNERDEAD`) is
    /// [`ErrorKind::WorkerGone`].
    pub fn submit(&mut self) -> Result<u32> {
        self.sq_side().submit_inner(0, 0, "offload_enter")
    }

    /// `offload_enter(fd, queued, n, OFFLOAD_ENTER_GETEVENTS)`: submits (as
    /// [`submit`](Ring::submit)), then waits until `want` completions are
    /// ready to reap ([`cq_len`](Ring::cq_len) is at least `want`). On an
    /// inline ring it returns the number consumed, on a worker ring the
    /// number published.
    ///
    /// On kernels without [`Features::GETEVENTS`] an inline ring only
    /// submits (every completion of the submission is posted before
    /// `offload_enter` returns anyway). `want` larger than the CQ is
    /// [`ErrorKind::InvalidInput`]; a signal while waiting, `EINTR`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use syscall_offload::{Backend, Entry, Ring};
    /// use syscall_offload::op::{self, Op};
    /// let mut ring = Ring::builder(8).worker(Duration::from_millis(10)).backend(Backend::Emulated).build()?;
    /// for i in 0..4 {
    ///     // SAFETY: getpid takes no pointers.
    ///     unsafe { ring.push(&op::Getpid::new().entry().user_data(i))? };
    /// }
    /// ring.submit_and_wait(4)?;
    /// assert_eq!(ring.completions().count(), 4);
    /// # Ok::<(), syscall_offload::Error>(())
    /// ```
    pub fn submit_and_wait(&mut self, want: u32) -> Result<u32> {
        let set_aside = self.cq.backlog.len();
        self.sq_side().submit_inner(want, set_aside, "offload_enter")
    }

    /// `offload_enter(fd, 0, n, OFFLOAD_ENTER_GETEVENTS)`: waits until `n`
    /// completions are ready to reap, submitting nothing; see
    /// [`CompletionQueue::wait`].
    pub fn wait(&mut self, n: u32) -> Result<()> {
        self.cq_side().wait(n)
    }

    /// Completions posted so far: an iterator that reaps each CQE as it is
    /// yielded, freeing its slot.
    ///
    /// Completions of the crate's own entries (owned operations) are routed
    /// to [`Ring::owned_completions`] instead. After `fork()` it yields
    /// nothing.
    pub fn completions(&mut self) -> Completions<'_> {
        let Ring { sh, cq, .. } = self;
        CompletionQueue { sh, st: cq }.into_completions()
    }

    /// Completions posted and not yet reaped.
    pub fn cq_len(&self) -> u32 {
        let set_aside = self.cq.backlog.len() + lock(&self.sh.spill).len();
        self.sh.q.cq_tail().load(Ordering::Acquire).wrapping_sub(self.cq.head).wrapping_add(set_aside as u32)
    }

    /// Reaps the CQ, routing crate entries; user completions go to the
    /// backlog. Returns batch CQEs to `f`.
    pub(crate) fn drain(&mut self, batch: impl FnMut(u64, i64)) {
        self.cq_side().drain(batch)
    }

    /// `offload_register(fd, OFFLOAD_REGISTER_PROBE, bitmap, 64)`: which
    /// syscall numbers may be offloaded on this ring (the kernel's table
    /// narrowed by the allowlist).
    ///
    /// ```
    /// use syscall_offload::{Backend, Ring};
    /// let ring = Ring::builder(8).backend(Backend::Emulated).build()?;
    /// let probe = ring.probe()?;
    /// assert!(probe.is_offloadable(libc::SYS_write as u32));
    /// assert!(!probe.is_offloadable(libc::SYS_execve as u32));
    /// # Ok::<(), syscall_offload::Error>(())
    /// ```
    pub fn probe(&self) -> Result<Probe> {
        self.sh.probe()
    }

    /// `offload_register(fd, OFFLOAD_REGISTER_ALLOWLIST, bitmap, n)` with the
    /// bitmap of `allowed`: narrows the ring to those syscall numbers. The
    /// allowlist can only shrink; entries outside it complete with
    /// `-EOPNOTSUPP`.
    ///
    /// ```
    /// use syscall_offload::{Backend, Entry, Ring};
    /// use syscall_offload::op::{self, Op};
    /// let mut ring = Ring::builder(8).backend(Backend::Emulated).build()?;
    /// ring.restrict(&[libc::SYS_read as u32, libc::SYS_write as u32])?;
    /// // SAFETY: getpid takes no pointers.
    /// unsafe { ring.push(&op::Getpid::new().entry())? };
    /// ring.submit()?;
    /// assert_eq!(ring.completions().next().unwrap().res, -libc::EOPNOTSUPP as i64);
    /// # Ok::<(), syscall_offload::Error>(())
    /// ```
    pub fn restrict(&mut self, allowed: &[u32]) -> Result<()> {
        let mut bitmap = vec![0u64; OFFLOAD_BITMAP_MAX_WORDS as usize];
        for &nr in allowed {
            if let Some(w) = bitmap.get_mut(nr as usize / 64) {
                *w |= 1 << (nr % 64);
            }
        }
        self.restrict_bitmap(&bitmap)
    }

    /// [`restrict`](Ring::restrict) with a raw bitmap of 1 to 64 words.
    pub fn restrict_bitmap(&mut self, bitmap: &[u64]) -> Result<()> {
        const WHAT: &str = "offload_register ALLOWLIST";
        self.sh.check_owner(WHAT)?;
        match &self.sh.engine {
            Engine::Kernel(fd) => raw::register_allowlist(fd.as_fd(), bitmap).map_err(|e| Error::from_io(WHAT, &e))?,
            Engine::Emulated(emu) => emu.restrict(bitmap).map_err(|e| Error::os(WHAT, e))?,
        }
        // The direct calls follow the same list.
        for (i, w) in self.sq.allow.iter_mut().enumerate() {
            *w &= bitmap.get(i).copied().unwrap_or(0);
        }
        if let Some(direct) = &mut self.sq.direct {
            direct.restrict(bitmap);
        }
        Ok(())
    }

    /// `offload_register(fd, OFFLOAD_REGISTER_EVENTFD, &eventfd, 1)`: the
    /// eventfd is signalled whenever completions are posted (by
    /// `offload_enter` or by the worker), so an epoll loop can wait for
    /// them. `EBUSY` if one is registered already. [`Ring::eventfd`]
    /// makes one for you.
    pub fn register_eventfd(&mut self, eventfd: BorrowedFd<'_>) -> Result<()> {
        const WHAT: &str = "offload_register EVENTFD";
        self.sh.check_owner(WHAT)?;
        match &self.sh.engine {
            Engine::Kernel(fd) => {
                // Kept for the completions the crate posts itself (direct calls).
                let copy = eventfd.try_clone_to_owned().map_err(|e| Error::from_io(WHAT, &e))?;
                raw::register_eventfd(fd.as_fd(), eventfd).map_err(|e| Error::from_io(WHAT, &e))?;
                self.sh.eventfd = Some(copy);
                Ok(())
            }
            Engine::Emulated(emu) => emu.register_eventfd(eventfd).map_err(|e| Error::os(WHAT, e)),
        }
    }

    /// `eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)`, then
    /// `offload_register(fd, OFFLOAD_REGISTER_EVENTFD, &efd, 1)`: an
    /// [`EventFd`] that becomes readable whenever completions are posted.
    /// Register it with epoll (or mio, through its raw fd) and reap the
    /// ring when it fires.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use std::time::Duration;
    /// use syscall_offload::{Backend, Entry, Ring};
    /// use syscall_offload::op::{self, Op};
    ///
    /// let mut ring = Ring::builder(8).worker(Duration::from_millis(10)).backend(Backend::Emulated).build()?;
    /// let efd = ring.eventfd()?;
    /// // SAFETY: getpid takes no pointers.
    /// unsafe { ring.push(&op::Getpid::new().entry())? };
    /// ring.submit()?;
    /// let mut pfd = libc::pollfd { fd: efd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    /// // SAFETY: one valid pollfd.
    /// assert_eq!(unsafe { libc::poll(&mut pfd, 1, 5000) }, 1);
    /// assert!(efd.read()? >= 1);
    /// assert_eq!(ring.completions().count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn eventfd(&mut self) -> Result<EventFd> {
        const WHAT: &str = "eventfd";
        // SAFETY: no pointers.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(Error::from_io(WHAT, &std::io::Error::last_os_error()));
        }
        // SAFETY: a new fd owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        self.register_eventfd(fd.as_fd())?;
        Ok(EventFd(fd))
    }

    /// `offload_register(fd, OFFLOAD_UNREGISTER_EVENTFD, NULL, 0)`; `ENXIO`
    /// if none is registered.
    pub fn unregister_eventfd(&mut self) -> Result<()> {
        const WHAT: &str = "offload_register UNREGISTER_EVENTFD";
        self.sh.check_owner(WHAT)?;
        match &self.sh.engine {
            Engine::Kernel(fd) => {
                raw::unregister_eventfd(fd.as_fd()).map_err(|e| Error::from_io(WHAT, &e))?;
                self.sh.eventfd = None;
                Ok(())
            }
            Engine::Emulated(emu) => emu.unregister_eventfd().map_err(|e| Error::os(WHAT, e)),
        }
    }

    /// Queues an owned operation: any builder of [`crate::op`] whose
    /// borrows are `'static` (an owned `Vec`, an `Arc<OwnedFd>`, static
    /// data). [`submit`](Ring::submit) runs it and
    /// [`owned_completions`](Ring::owned_completions) gives it back, with
    /// its buffer and fds ([`OwnedCompletion`]).
    ///
    /// Safe, because the ring keeps the builder (and so the buffer and the
    /// fd) until the kernel has posted the completion (see [`Ring`]'s
    /// `Drop` for what happens to operations still in flight). On error the
    /// operation is handed back.
    pub fn push_owned<O: Op<'static> + Send>(&mut self, op: O) -> std::result::Result<Ticket, (Error, O)> {
        self.sq_side().push_owned(op)
    }

    /// Reaps the CQ and yields the owned operations that have finished
    /// (user completions met on the way wait in [`completions`](Ring::completions)).
    pub fn owned_completions(&mut self) -> std::collections::vec_deque::Drain<'_, OwnedCompletion> {
        let Ring { sh, cq, .. } = self;
        CompletionQueue { sh, st: cq }.into_owned_completions()
    }

    /// Owned operations queued or running.
    pub fn owned_in_flight(&self) -> usize {
        lock(&self.sh.pending).len()
    }

    /// Submits and waits until every owned operation has completed (their
    /// results are then in [`owned_completions`](Ring::owned_completions)).
    pub fn wait_owned(&mut self) -> Result<()> {
        while self.owned_in_flight() > 0 {
            // One more CQE in the CQ: completions set aside do not count
            // (the drain below has taken everything that was there).
            match self.sq_side().submit_inner(1, 0, "wait_owned") {
                Ok(_) => {}
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EBUSY => {}
                Err(e) => return Err(e),
            }
            self.drain(|_, _| {});
            if !self.is_worker() && self.owned_in_flight() > 0 && self.sq_len() == 0 {
                // Inline rings post every completion inside offload_enter:
                // an operation neither queued nor completed cannot exist.
                return Err(Error::os("wait_owned", libc::EIO));
            }
        }
        Ok(())
    }
}

/// How long a dropped worker ring waits, without any completion coming,
/// for the owned operations still in flight before it leaks them.
const DROP_PATIENCE: Duration = Duration::from_secs(1);

impl Drop for Ring {
    /// A worker may still be running owned operations: the ring publishes
    /// what is queued and waits while their completions keep coming; after
    /// one second without one (an entry blocked, or the worker
    /// gone) it leaks the rest, buffers and fds, rather than free memory
    /// the worker may still write. Inline rings have nothing in flight
    /// once `offload_enter` has returned: their queued entries never run.
    fn drop(&mut self) {
        if !self.is_worker() || self.owned_in_flight() == 0 || self.sh.check_owner("drop").is_err() {
            return;
        }
        self.publish();
        let mut last = Instant::now();
        while self.owned_in_flight() > 0 && last.elapsed() < DROP_PATIENCE {
            if self.sq_flags().contains(SqFlags::WORKER_GONE) {
                break;
            }
            let before = self.owned_in_flight();
            if self.sq_flags().contains(SqFlags::NEED_WAKEUP) {
                let _ = self.sh.enter(0, 0, OFFLOAD_ENTER_SQ_WAKEUP);
            }
            self.drain(|_, _| {});
            if self.owned_in_flight() < before {
                last = Instant::now();
            } else {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        let left = std::mem::take(&mut *lock(&self.sh.pending));
        std::mem::forget(left);
    }
}

/// An eventfd registered with a ring ([`Ring::eventfd`]): readable when
/// completions have been posted. Nonblocking and close-on-exec; use it
/// with epoll, poll or mio through [`AsFd`]/[`AsRawFd`].
///
/// Dropping it closes this fd; the ring keeps its own reference until
/// [`Ring::unregister_eventfd`] or the ring's end.
#[derive(Debug)]
pub struct EventFd(OwnedFd);

impl EventFd {
    /// `read(efd, &counter, 8)`: how many times completions were posted
    /// since the last read, resetting the count. `WouldBlock` when none
    /// were.
    pub fn read(&self) -> std::io::Result<u64> {
        let mut n: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64.
        let r = unsafe { libc::read(self.0.as_raw_fd(), (&mut n as *mut u64).cast(), 8) };
        if r == 8 {
            Ok(n)
        } else if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Err(std::io::Error::from_raw_os_error(libc::EIO))
        }
    }

    /// The fd, to keep past the `EventFd`.
    pub fn into_owned_fd(self) -> OwnedFd {
        self.0
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// The answer of [`Ring::probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    bitmap: Vec<u64>,
    nr_syscalls: u32,
}

impl Probe {
    /// Whether entries with syscall number `nr` run on this ring.
    pub fn is_offloadable(&self, nr: u32) -> bool {
        self.bitmap.get(nr as usize / 64).is_some_and(|w| w & (1 << (nr % 64)) != 0)
    }

    /// The kernel's `NR_syscalls`: bits at and above it are meaningless.
    pub fn nr_syscalls(&self) -> u32 {
        self.nr_syscalls
    }

    /// The raw bitmap (64 words).
    pub fn bitmap(&self) -> &[u64] {
        &self.bitmap
    }

    /// The offloadable numbers, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.nr_syscalls.min(OFFLOAD_BITMAP_MAX_WORDS * 64)).filter(|&n| self.is_offloadable(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{self, Op};

    fn emulated(entries: u32) -> Ring {
        Builder::new(entries).backend(Backend::Emulated).build().unwrap()
    }

    fn worker(entries: u32, idle_ms: u64) -> Ring {
        Builder::new(entries).worker(Duration::from_millis(idle_ms)).backend(Backend::Emulated).build().unwrap()
    }

    fn script(ring: &mut Ring, errnos: &[Option<i32>]) {
        ring.script_enter(errnos);
    }

    fn push(ring: &mut Ring, entries: &[Entry]) {
        for e in entries {
            // SAFETY: the tests' entries take no pointers.
            unsafe { ring.push(e).unwrap() };
        }
    }

    fn reaped(ring: &mut Ring) -> Vec<(u64, i64)> {
        ring.completions().map(|c| (c.user_data, c.res)).collect()
    }

    #[test]
    fn submit_and_batch_do_not_ask_the_kernel_for_the_pid() {
        let mut ring = emulated(8);
        let before = PID_READS.with(|n| n.get());
        for _ in 0..3 {
            push(&mut ring, &[op::Getpid::new().entry()]);
            ring.submit().unwrap();
        }
        ring.batch(|b| b.push(op::Getpid::new()).id()).unwrap();
        ring.probe().unwrap();
        assert_eq!(PID_READS.with(|n| n.get()), before);
        assert!(atfork_registered());
    }

    #[test]
    fn auto_falls_back_on_no_offload_and_on_refused_setup_only() {
        let setup = |e| Error::os("offload_setup", e);
        for e in [libc::EPERM, libc::EACCES, libc::ENOSYS] {
            assert!(auto_falls_back(&setup(e)), "{e}");
        }
        assert!(auto_falls_back(&raw::unsupported_error("offload_setup")));
        for e in [setup(libc::EINVAL), setup(libc::ENOMEM), Error::os("mmap ring", libc::EPERM)] {
            assert!(!auto_falls_back(&e), "{e}");
        }
        let worker = Error::new(ErrorKind::WorkerUnsupported, libc::EOPNOTSUPP, "offload_setup", "");
        assert!(!auto_falls_back(&worker));
    }

    #[test]
    fn cpu_lists_parse_as_the_kernel_prints_them() {
        for (list, cpu, want) in [
            ("0-3,8,10-11\n", 3, Some(true)),
            ("0-3,8,10-11", 8, Some(true)),
            ("0-3,8,10-11", 9, Some(false)),
            ("0-3,8,10-11", 12, Some(false)),
            ("", 0, Some(false)),
            ("1", 1, Some(true)),
            ("0-x", 0, None),
        ] {
            assert_eq!(cpu_list_contains(list, cpu), want, "{list:?} {cpu}");
        }
    }

    #[test]
    fn the_kernels_einval_for_a_pinned_worker_is_worker_cpu_unavailable() {
        let einval = std::io::Error::from_raw_os_error(libc::EINVAL);
        let mut p = Builder::new(8).worker(Duration::from_millis(10)).params().unwrap().1;
        let e = setup_error(&einval, &p, || true);
        assert_eq!((e.kind(), e.errno()), (ErrorKind::InvalidInput, libc::EINVAL));
        p.flags |= OFFLOAD_SETUP_WORKER_CPU;
        p.worker_cpu = 1;
        let e = setup_error(&einval, &p, || true);
        assert_eq!((e.kind(), e.errno()), (ErrorKind::WorkerCpuUnavailable, libc::EINVAL));
        assert!(e.to_string().contains("cpuset"), "{e}");
        // A kernel without worker mode says EINVAL for the unknown flag.
        assert_eq!(setup_error(&einval, &p, || false).kind(), ErrorKind::WorkerUnsupported);
    }

    #[test]
    fn the_emulated_worker_refuses_a_cpu_it_cannot_run_on() {
        // Past the builder's check, as when a CPU goes offline meanwhile.
        let mut p = Builder::new(8).worker(Duration::from_millis(10)).params().unwrap().1;
        p.flags |= OFFLOAD_SETUP_WORKER_CPU;
        p.worker_cpu = 1 << 20;
        let e = Ring::emulated(8, p).unwrap_err();
        assert_eq!((e.kind(), e.errno()), (ErrorKind::WorkerCpuUnavailable, libc::EINVAL), "{e}");
    }

    #[test]
    fn emulated_enter_checks_its_arguments_as_the_kernel_does() {
        let mut ring = emulated(4);
        push(&mut ring, &[op::Getpid::new().entry().user_data(1)]);
        assert_eq!(ring.submit_and_wait(1).unwrap(), 1);
        assert_eq!(reaped(&mut ring), [(1, std::process::id() as i64)]);
        assert_eq!(ring.enter_raw(0, 1, 0), Err(libc::EINVAL), "min_complete without GETEVENTS");
        assert_eq!(ring.enter_raw(0, 0, OFFLOAD_ENTER_GETEVENTS), Ok(0));
        assert_eq!(ring.enter_raw(0, 0, OFFLOAD_ENTER_SQ_WAKEUP), Err(libc::EINVAL), "no worker to wake");
        assert_eq!(ring.enter_raw(0, 9, OFFLOAD_ENTER_GETEVENTS), Err(libc::EINVAL), "more than the CQ holds");
        assert_eq!(ring.enter_raw(0, 0, 1 << 5), Err(libc::EINVAL), "unknown flag");
        let mut w = worker(4, 5);
        assert_eq!(w.enter_raw(0, 0, OFFLOAD_ENTER_SQ_WAKEUP), Ok(0));
        assert_eq!(w.enter_raw(0, 9, OFFLOAD_ENTER_GETEVENTS), Err(libc::EINVAL));
    }

    fn emulator(ring: &Ring) -> &Emulator {
        let Engine::Emulated(emu) = &ring.sh.engine else { unreachable!("an emulated ring") };
        emu
    }

    #[test]
    fn the_emulated_worker_counts_one_wakeup_per_sleep() {
        // An idle time no run reaches: the worker goes to sleep when the
        // test says so (`go_idle`), not when a timer that a slow CPU
        // stretches says so.
        let mut ring = worker(4, OFFLOAD_MAX_WORKER_IDLE_MS.into());
        for round in 1..=3 {
            emulator(&ring).go_idle();
            let deadline = Instant::now() + Duration::from_secs(10);
            while !emulator(&ring).idle() {
                assert!(Instant::now() < deadline, "round {round}: the worker never went to sleep");
                std::thread::sleep(Duration::from_millis(1));
            }
            assert!(ring.sq_flags().contains(SqFlags::NEED_WAKEUP));
            assert_eq!(emulator(&ring).wakeups(), round - 1, "round {round}: asleep");
            // Asleep for sure: the submission's SQ_WAKEUP wakes it, and
            // its GETEVENTS wait must not count again.
            push(&mut ring, &[op::Getpid::new().entry().user_data(round)]);
            ring.submit_and_wait(1).unwrap();
            assert_eq!(reaped(&mut ring), [(round, std::process::id() as i64)]);
            assert_eq!(emulator(&ring).wakeups(), round, "round {round}: woken");
            // Awake (for ten minutes): enter calls now wake nothing, and
            // must not cut the next sleep short (counted as a wakeup).
            assert_eq!(ring.enter_raw(0, 0, OFFLOAD_ENTER_SQ_WAKEUP), Ok(0));
            assert_eq!(ring.enter_raw(0, 0, OFFLOAD_ENTER_GETEVENTS), Ok(0));
            assert!(!emulator(&ring).idle());
            assert_eq!(emulator(&ring).wakeups(), round, "round {round}: awake");
        }
    }

    #[test]
    fn ring_and_its_halves_are_send() {
        fn send<T: Send>() {}
        send::<Ring>();
        send::<SubmissionQueue<'static>>();
        send::<CompletionQueue<'static>>();
        send::<EventFd>();
    }

    #[test]
    fn a_refused_enter_runs_the_entries_directly_once_and_says_so() {
        let mut ring = emulated(4);
        let pid = std::process::id() as i64;
        script(&mut ring, &[Some(libc::EPERM)]);
        push(
            &mut ring,
            &[
                op::Getpid::new().entry().user_data(1),
                op::Close::new(None).entry().flags(SqeFlags::LINK).user_data(2),
                op::Getpid::new().entry().user_data(3),
                op::Getpid::new().entry().flags(SqeFlags::SKIP_SUCCESS).user_data(4),
            ],
        );
        assert_eq!(ring.submit().unwrap(), 4);
        assert_eq!(reaped(&mut ring), [(1, pid), (2, -libc::EBADF as i64), (3, -libc::ECANCELED as i64)]);
        assert_eq!(ring.fallback().map(|e| (e.what(), e.errno())), Some(("offload_enter", libc::EPERM)));
        assert_eq!((ring.direct_submissions(), ring.sq_len()), (1, 0));
        // The (emulated) kernel runs the next ones: nothing ran twice.
        push(&mut ring, &[op::Getpid::new().entry().user_data(5)]);
        assert_eq!(ring.submit().unwrap(), 1);
        assert_eq!(reaped(&mut ring), [(5, pid)]);
        assert_eq!((ring.fallback(), ring.direct_submissions()), (None, 1));
    }

    #[test]
    fn direct_completions_come_after_the_cqes_posted_before() {
        let mut ring = emulated(4);
        push(&mut ring, &[op::Getpid::new().entry().user_data(1)]);
        ring.submit().unwrap();
        script(&mut ring, &[Some(libc::EPERM)]);
        push(&mut ring, &[op::Getpid::new().entry().user_data(2)]);
        ring.submit().unwrap();
        push(&mut ring, &[op::Getpid::new().entry().user_data(3)]);
        ring.submit().unwrap();
        assert_eq!(ring.cq_len(), 3);
        let order: Vec<u64> = reaped(&mut ring).iter().map(|c| c.0).collect();
        assert_eq!(order, [1, 2, 3]);
    }

    #[test]
    fn direct_calls_follow_the_allowlist_and_the_submission_size() {
        let mut ring = emulated(4);
        ring.restrict(&[libc::SYS_getpid as u32]).unwrap();
        script(&mut ring, &[Some(libc::EPERM)]);
        push(&mut ring, &[op::Close::new(None).entry().user_data(1), op::Getpid::new().entry().user_data(2)]);
        // Only the first: what offload_enter(fd, 1, ...) would take.
        assert_eq!(ring.enter_raw(1, 0, 0), Ok(1));
        assert_eq!(ring.sq_len(), 1);
        assert_eq!(reaped(&mut ring), [(1, -libc::EOPNOTSUPP as i64)]);
        assert_eq!(ring.submit().unwrap(), 1);
        assert_eq!(reaped(&mut ring), [(2, std::process::id() as i64)]);
    }

    #[test]
    fn a_refused_enter_in_a_batch_runs_each_entry_once() {
        let mut ring = emulated(2);
        script(&mut ring, &[None, Some(libc::EPERM), None]);
        let (_, res) = ring
            .batch(|b| {
                for _ in 0..6 {
                    b.push(op::Getpid::new());
                }
            })
            .unwrap();
        assert_eq!(res.ran_count(), 6);
        assert!(res.iter().all(|r| r.unwrap() == u64::from(std::process::id())));
        assert_eq!((ring.direct_submissions(), ring.sq_len(), ring.cq_len()), (1, 0, 0));
    }
}
