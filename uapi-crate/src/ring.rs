//! The ring: builder, submission and completion queues, registration.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::emulated::{self, Emulator, Exec};
use crate::entry::{Completion, Entry};
use crate::error::{Error, ErrorKind, Result};
use crate::owned::OwnedOps;
use crate::queue::{self, Queues};
use crate::raw::{self, Mmap};
use crate::sys::*;
use crate::table;

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
    /// kernel's results, order, link and back-pressure rules. No batching
    /// gain, but it runs everywhere (unpatched kernels, CI, other arches).
    Emulated,
    /// [`Kernel`](Backend::Kernel) when the running kernel has offload and
    /// lets this process use it, else [`Emulated`](Backend::Emulated): when
    /// the kernel lacks offload, or `offload_setup` is refused with `EPERM`,
    /// `EACCES` or `ENOSYS` (`kernel.offload_disabled`, a security module,
    /// or a container's seccomp profile). [`Ring::backend`] tells which one
    /// was picked and [`Ring::fallback`] why.
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

/// Builds a [`Ring`]: `offload_setup(entries, &params)` plus the mapping.
///
/// ```
/// use syscall_offload::{Backend, Ring};
/// let ring = Ring::builder(64).cq_entries(256).backend(Backend::Emulated).build()?;
/// assert_eq!((ring.sq_entries(), ring.cq_entries()), (64, 256));
/// # Ok::<(), syscall_offload::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    entries: u32,
    cq_entries: Option<u32>,
    worker_idle: Option<Duration>,
    worker_cpu: Option<u32>,
    cloexec: bool,
    backend: Backend,
}

impl Builder {
    /// A ring of `entries` SQ slots (rounded up to a power of two, 1 to
    /// `OFFLOAD_MAX_ENTRIES`), CQ twice as large, inline, `O_CLOEXEC`,
    /// [`Backend::Auto`].
    pub fn new(entries: u32) -> Builder {
        Builder { entries, cq_entries: None, worker_idle: None, worker_cpu: None, cloexec: true, backend: Backend::Auto }
    }

    /// `OFFLOAD_SETUP_CQSIZE`: a CQ of `n` entries (rounded up; at least the
    /// SQ size, at most `OFFLOAD_MAX_CQ_ENTRIES`).
    pub fn cq_entries(mut self, n: u32) -> Builder {
        self.cq_entries = Some(n);
        self
    }

    /// `OFFLOAD_SETUP_WORKER`: a kernel worker polls the SQ and sleeps after
    /// `idle` without work (`worker_idle_ms`).
    ///
    /// Requires `OFFLOAD_FEAT_WORKER`; kernels of the first series and the
    /// emulated backend lack it and fail with
    /// [`ErrorKind::WorkerUnsupported`].
    pub fn worker(mut self, idle: Duration) -> Builder {
        self.worker_idle = Some(idle);
        self
    }

    /// `OFFLOAD_SETUP_WORKER_CPU`: pin the worker to `cpu` (implies
    /// [`worker`](Builder::worker), with a 1 s idle time unless set).
    pub fn worker_cpu(mut self, cpu: u32) -> Builder {
        self.worker_cpu = Some(cpu);
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
        if self.worker_idle.is_some() || self.worker_cpu.is_some() {
            let idle = self.worker_idle.unwrap_or(Duration::from_secs(1));
            p.flags |= OFFLOAD_SETUP_WORKER;
            p.worker_idle_ms = u32::try_from(idle.as_millis())
                .map_err(|_| Error::invalid(WHAT, format!("worker idle time {idle:?} is too long")))?;
        }
        if let Some(cpu) = self.worker_cpu {
            // SAFETY: sysconf has no memory effects.
            let ncpu = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
            if ncpu > 0 && i64::from(cpu) >= ncpu as i64 {
                return Err(Error::invalid(WHAT, format!("worker CPU {cpu} does not exist ({ncpu} CPUs)")));
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
    /// Errors: [`ErrorKind::InvalidInput`] for sizes or a worker CPU the
    /// kernel would reject, [`ErrorKind::Unsupported`] when
    /// [`Backend::Kernel`] is asked for on a kernel without offload,
    /// [`ErrorKind::WorkerUnsupported`] for a worker where there is none,
    /// [`ErrorKind::Os`] for what the kernel refused (e.g. `EPERM` from
    /// `kernel.offload_disabled`).
    pub fn build(self) -> Result<Ring> {
        let (entries, p) = self.params()?;
        match self.backend {
            Backend::Kernel => Ring::kernel(entries, p),
            Backend::Emulated => Ring::emulated(entries, p),
            Backend::Auto => match Ring::kernel(entries, p) {
                Err(e) if auto_falls_back(&e) => {
                    let mut ring = Ring::emulated(entries, p)?;
                    ring.setup_fallback = Some(e);
                    Ok(ring)
                }
                r => r,
            },
        }
    }
}

#[derive(Debug)]
enum Engine {
    Kernel(OwnedFd),
    Emulated(Box<Emulator>),
}

/// The crate's own `offload_enter`, for the queue of a ring: entries are
/// copied out of the SQ, and completions go to the ring's spill queue.
struct DirectQueue<'a> {
    sqes: &'a [offload_sqe],
    next: usize,
    spill: &'a mut VecDeque<Completion>,
}

impl emulated::Queue for DirectQueue<'_> {
    fn ready(&self) -> std::result::Result<(), i32> {
        // No CQ back-pressure: the spill queue grows as needed.
        if self.next < self.sqes.len() {
            Ok(())
        } else {
            Err(libc::ENOENT)
        }
    }

    fn take(&mut self) -> offload_sqe {
        self.next += 1;
        self.sqes[self.next - 1]
    }

    fn untake(&mut self) {
        self.next -= 1;
    }

    fn post(&mut self, cqe: offload_cqe) {
        self.spill.push_back(cqe.into());
    }
}

/// An offload ring: a submission queue of syscalls and a completion queue
/// of their results, shared with the kernel (or the emulated backend).
///
/// The safe way to use it is [`Ring::batch`]; [`Ring::push`] and
/// [`Ring::completions`] are the low-level queue interface.
///
/// A ring belongs to the process that created it: after `fork()` the child
/// gets [`ErrorKind::Forked`] from every call.
#[derive(Debug)]
pub struct Ring {
    // Field order is drop order: unmap before the fd closes.
    pub(crate) q: Queues,
    engine: Engine,
    params: offload_params,
    /// Our SQ tail: entries pushed, published by `submit`.
    pub(crate) sq_tail: u32,
    /// Our CQ head.
    cq_head: u32,
    /// The last pushed entry carried LINK: a chain is open.
    pub(crate) open_chain: bool,
    /// Who created the ring; compared only when `pthread_atfork` failed.
    pid: u32,
    fork_gen: u64,
    /// Completions of user entries set aside while the crate looked for its own.
    pub(crate) backlog: VecDeque<Completion>,
    /// Completions not yet routed that are not in the CQ (any more): those
    /// of calls the crate made itself, and the CQEs the kernel had posted
    /// before them, moved here to keep the order.
    spill: VecDeque<Completion>,
    pub(crate) owned: OwnedOps,
    /// The allowlist as far as the crate knows it (the table narrowed by
    /// `restrict`), for direct calls when the kernel cannot be asked.
    allow: [u64; table::BITMAP_WORDS],
    /// Runs the entries when `offload_enter` is refused (built on first use).
    direct: Option<Box<Exec>>,
    /// A copy of the eventfd registered with a kernel ring, signalled when
    /// the crate posts completions itself.
    eventfd: Option<OwnedFd>,
    /// Why `Backend::Auto` took the emulated backend.
    setup_fallback: Option<Error>,
    /// Set when the latest `offload_enter` was refused and the entries ran
    /// as direct calls; cleared when the kernel runs a submission again.
    enter_fallback: Option<Error>,
    direct_submissions: u64,
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
            q,
            engine,
            params,
            sq_tail: 0,
            cq_head: 0,
            open_chain: false,
            pid: std::process::id(),
            fork_gen: fork_generation(),
            backlog: VecDeque::new(),
            spill: VecDeque::new(),
            owned: OwnedOps::default(),
            allow: table::bitmap(),
            direct: None,
            eventfd: None,
            setup_fallback: None,
            enter_fallback: None,
            direct_submissions: 0,
        }
    }

    fn kernel(entries: u32, mut p: offload_params) -> Result<Ring> {
        if !raw::kernel_has_offload() {
            return Err(raw::unsupported_error("offload_setup"));
        }
        let worker = p.flags & OFFLOAD_SETUP_WORKER != 0;
        let fd = raw::setup(entries, &mut p).map_err(|e| match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) if worker => Error::new(
                ErrorKind::WorkerUnsupported,
                libc::EOPNOTSUPP,
                "offload_setup",
                "this kernel has no worker mode (OFFLOAD_FEAT_WORKER)",
            ),
            Some(e @ (libc::EPERM | libc::EACCES)) => Error::new(
                ErrorKind::Os,
                e,
                "offload_setup",
                "refused for this process (kernel.offload_disabled, a security module or a seccomp filter)",
            ),
            Some(libc::ENOSYS) => Error::new(
                ErrorKind::Os,
                libc::ENOSYS,
                "offload_setup",
                "refused with ENOSYS although the kernel has offload: a seccomp filter (container profile) blocks it",
            ),
            _ => Error::from_io("offload_setup", &e),
        })?;
        let map = Mmap::ring(fd.as_fd(), p.ring_size).map_err(|e| Error::from_io("mmap ring", &e))?;
        let q = Queues::new(map, &p)?;
        Ok(Ring::finish(q, Engine::Kernel(fd), p))
    }

    fn emulated(entries: u32, p: offload_params) -> Result<Ring> {
        if p.flags & (OFFLOAD_SETUP_WORKER | OFFLOAD_SETUP_WORKER_CPU) != 0 {
            return Err(Error::new(
                ErrorKind::WorkerUnsupported,
                libc::EOPNOTSUPP,
                "offload_setup",
                "the emulated backend runs entries inline only",
            ));
        }
        // The kernel's rounding (`Builder::params` checked the bounds).
        let sq_entries = entries.next_power_of_two();
        let cq_entries =
            if p.flags & OFFLOAD_SETUP_CQSIZE != 0 { p.cq_entries.next_power_of_two() } else { 2 * sq_entries };
        let p = queue::emulated_params(sq_entries, cq_entries, p.flags);
        let len = usize::try_from(p.ring_size).map_err(|_| Error::invalid("offload_setup", "ring too large"))?;
        let map = Mmap::anonymous(len).map_err(|e| Error::from_io("mmap ring", &e))?;
        queue::init_emulated(&map, &p);
        let q = Queues::new(map, &p)?;
        Ok(Ring::finish(q, Engine::Emulated(Box::new(Emulator::new())), p))
    }

    /// Unit tests: the next `offload_enter` calls of an emulated ring fail
    /// with these errnos (None: runs).
    #[cfg(test)]
    pub(crate) fn script_enter(&mut self, errnos: &[Option<i32>]) {
        let Engine::Emulated(emu) = &mut self.engine else { unreachable!("an emulated ring") };
        emu.script.extend(errnos);
    }

    /// The backend this ring runs on: [`Backend::Kernel`] or
    /// [`Backend::Emulated`], never `Auto`.
    pub fn backend(&self) -> Backend {
        match self.engine {
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
        self.setup_fallback.as_ref().or(self.enter_fallback.as_ref())
    }

    /// How many submissions of this ring the crate ran as direct system
    /// calls because `offload_enter` refused them with `EPERM` (see
    /// [`fallback`](Ring::fallback)).
    pub fn direct_submissions(&self) -> u64 {
        self.direct_submissions
    }

    /// The ring fd (`None` on the emulated backend, which has none).
    pub fn as_fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.engine {
            Engine::Kernel(fd) => Some(fd.as_fd()),
            Engine::Emulated(_) => None,
        }
    }

    /// The `struct offload_params` that `offload_setup()` returned.
    pub fn params(&self) -> &offload_params {
        &self.params
    }

    /// `offload_params.features`.
    pub fn features(&self) -> Features {
        Features::from_bits_retain(self.params.features)
    }

    /// Whether a kernel worker polls this ring (`OFFLOAD_SETUP_WORKER`).
    pub fn is_worker(&self) -> bool {
        self.params.flags & OFFLOAD_SETUP_WORKER != 0
    }

    /// SQ size (a power of two).
    pub fn sq_entries(&self) -> u32 {
        self.q.sq_entries
    }

    /// CQ size (a power of two).
    pub fn cq_entries(&self) -> u32 {
        self.q.cq_entries
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
    fn check_owner(&self, what: &'static str) -> Result<()> {
        self.check_fork(what)?;
        if !atfork_registered() && current_pid() != self.pid {
            return Err(Error::forked(what));
        }
        Ok(())
    }

    /// Entries pushed and not yet consumed by the kernel.
    pub fn sq_len(&self) -> u32 {
        self.sq_tail.wrapping_sub(self.q.sq_head().load(Ordering::Acquire))
    }

    /// Free SQ slots.
    pub fn sq_space(&self) -> u32 {
        self.q.sq_entries.saturating_sub(self.sq_len())
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
    /// ring is next submitted, which may be after this call returns: every
    /// pointer in `entry` must stay valid for the access the syscall makes
    /// (a read buffer writable, a write buffer readable, for its length)
    /// until the entry's completion has been posted, or until the ring is
    /// dropped without submitting it. File descriptors must stay open for
    /// the same time, or the call lands on whatever file takes their number.
    ///
    /// ```
    /// use syscall_offload::{Backend, Entry, Ring};
    /// let mut ring = Ring::builder(8).backend(Backend::Emulated).build()?;
    /// // SAFETY: getpid takes no pointers.
    /// unsafe { ring.push(&Entry::getpid().user_data(1))? };
    /// ring.submit()?;
    /// let c = ring.completions().next().unwrap();
    /// assert_eq!(c.res, std::process::id() as i64);
    /// # Ok::<(), syscall_offload::Error>(())
    /// ```
    pub unsafe fn push(&mut self, entry: &Entry) -> Result<()> {
        if entry.0.user_data & RESERVED != 0 {
            return Err(Error::invalid("push", "user_data values with bit 63 set are reserved"));
        }
        self.push_sqe(&entry.0)
    }

    pub(crate) fn push_sqe(&mut self, sqe: &offload_sqe) -> Result<()> {
        self.check_fork("push")?;
        if self.sq_space() == 0 {
            return Err(Error::new(
                ErrorKind::SubmissionQueueFull,
                libc::EBUSY,
                "push",
                "the submission queue is full; submit first",
            ));
        }
        self.q.write_sqe(self.sq_tail, sqe);
        self.sq_tail = self.sq_tail.wrapping_add(1);
        self.open_chain = sqe.flags & OFFLOAD_SQE_LINK != 0;
        Ok(())
    }

    /// Publishes the pushed entries (store-release of the SQ tail).
    pub(crate) fn publish(&self) {
        self.q.sq_tail().store(self.sq_tail, Ordering::Release);
    }

    /// `offload_enter(fd, to_submit, min_complete, flags)` on either backend;
    /// the errno is returned bare so callers can retry. An inline ring whose
    /// `offload_enter` is refused with `EPERM` (the task is traced or has
    /// syscall user dispatch on) has its entries run as direct calls.
    pub(crate) fn enter_raw(&mut self, to_submit: u32, min_complete: u32, flags: u32) -> std::result::Result<u32, i32> {
        let r = match &mut self.engine {
            // SAFETY: every entry in the SQ was pushed under the contract of
            // `push` (or by `batch`/`push_owned`, which keep their buffers
            // alive until the completion is reaped).
            Engine::Kernel(fd) => unsafe {
                raw::enter(fd.as_fd(), to_submit, min_complete, EnterFlags::from_bits_retain(flags))
            }
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO)),
            Engine::Emulated(emu) => emu.enter(&self.q, to_submit, min_complete, flags),
        };
        match r {
            Err(libc::EPERM) if !self.is_worker() => {
                self.enter_fallback = Some(Error::new(
                    ErrorKind::Os,
                    libc::EPERM,
                    "offload_enter",
                    "refused for a task traced with PTRACE_SYSCALL/PTRACE_SYSEMU or with syscall user dispatch on; \
                     the entries ran as direct system calls",
                ));
                self.enter_directly(to_submit)
            }
            r => {
                if r.is_ok() {
                    self.enter_fallback = None;
                }
                r
            }
        }
    }

    /// The executor for direct calls. It runs what both the crate's table
    /// (with the restrictions it was given) and the kernel's answer to
    /// `PROBE` allow: the crate vets its table as the kernel vets its own.
    fn direct_exec(&mut self) -> Box<Exec> {
        if let Some(exec) = self.direct.take() {
            return exec;
        }
        let mut allow = self.allow;
        if let Ok(p) = self.probe() {
            for (w, k) in allow.iter_mut().zip(p.bitmap()) {
                *w &= k;
            }
        }
        Box::new(Exec::new(allow))
    }

    /// `offload_enter` for the queue of this ring, with direct system calls
    /// (what the emulated backend does). The kernel keeps its own SQ head,
    /// which must not move: the entries are copied out, the SQ tail goes
    /// back to the head, and what was not consumed (an entry interrupted by
    /// a signal and those after it) is queued again from the head.
    fn enter_directly(&mut self, to_submit: u32) -> std::result::Result<u32, i32> {
        let head = self.q.sq_head().load(Ordering::Acquire);
        let queued = self.sq_tail.wrapping_sub(head);
        if queued > self.q.sq_entries {
            return Err(libc::EINVAL);
        }
        let n = to_submit.min(queued);
        if n == 0 {
            return Ok(0);
        }
        self.direct_submissions += 1;
        // Completions come out in order: the CQEs the kernel posted before
        // go first.
        while let Some(c) = self.pop_cq() {
            self.spill.push_back(c);
        }
        let sqes: Vec<offload_sqe> = (0..queued).map(|i| self.q.read_sqe(head.wrapping_add(i))).collect();
        self.q.sq_tail().store(head, Ordering::Release);
        let mut exec = self.direct_exec();
        let mut queue = DirectQueue { sqes: &sqes[..n as usize], next: 0, spill: &mut self.spill };
        let done = exec.submit(n, &mut queue);
        let consumed = queue.next;
        self.direct = Some(exec);
        for (i, sqe) in sqes[consumed..].iter().enumerate() {
            self.q.write_sqe(head.wrapping_add(i as u32), sqe);
        }
        self.sq_tail = head.wrapping_add(queued - consumed as u32);
        self.publish();
        if done.posted {
            if let Some(efd) = &self.eventfd {
                emulated::signal_eventfd(efd.as_fd());
            }
        }
        done.ret
    }

    fn submit_inner(&mut self, want: u32, what: &'static str) -> Result<u32> {
        self.check_owner(what)?;
        self.publish();
        let pending = self.sq_len();
        if !self.is_worker() {
            // Every completion is posted before offload_enter returns: there
            // is nothing to wait for (and the kernel refuses
            // OFFLOAD_ENTER_GETEVENTS and min_complete on inline rings).
            let n = self.enter_raw(pending, 0, 0).map_err(|e| Error::os(what, e))?;
            if self.sq_len() == 0 {
                // A chain ends with its submission.
                self.open_chain = false;
            }
            return Ok(n);
        }
        let mut flags = 0;
        if want > 0 {
            flags |= OFFLOAD_ENTER_GETEVENTS;
        }
        let sleeping = SqFlags::from_bits_retain(self.q.sq_flags().load(Ordering::Acquire)).contains(SqFlags::NEED_WAKEUP);
        if sleeping {
            flags |= OFFLOAD_ENTER_SQ_WAKEUP;
        } else if want == 0 {
            return Ok(pending);
        }
        self.enter_raw(pending, want, flags).map_err(|e| Error::os(what, e))
    }

    /// `offload_enter(fd, queued, 0, 0)`: runs the queued entries (inline
    /// rings: now, in order, in this thread) and returns how many were
    /// consumed. Fewer than queued when the CQ filled up or a signal came
    /// (the rest stay queued: submit again); `EBUSY` when the CQ is full
    /// and nothing could be consumed, `EINTR` when a signal came first.
    /// A link chain ends with the submission.
    ///
    /// When the kernel refuses the call with `EPERM` because the task is
    /// traced or has syscall user dispatch on, the entries run as direct
    /// system calls instead, and [`fallback`](Ring::fallback) says so.
    ///
    /// On a worker ring it publishes the entries and wakes the worker if it
    /// sleeps (`OFFLOAD_ENTER_SQ_WAKEUP`), returning the number queued.
    pub fn submit(&mut self) -> Result<u32> {
        self.submit_inner(0, "offload_enter")
    }

    /// `offload_enter(fd, queued, want, OFFLOAD_ENTER_GETEVENTS)` on worker
    /// rings: submits, then waits until `want` completions are posted.
    /// Inline rings post every completion before `offload_enter` returns,
    /// so there it is [`submit`](Ring::submit) (`offload_enter(fd, queued,
    /// 0, 0)`: the kernel refuses `GETEVENTS` and `min_complete` on them).
    pub fn submit_and_wait(&mut self, want: u32) -> Result<u32> {
        self.submit_inner(want, "offload_enter")
    }

    /// Takes the next completion: from the spill queue, else off the CQ.
    pub(crate) fn pop_cqe(&mut self) -> Option<Completion> {
        if self.check_fork("completions").is_err() {
            return None;
        }
        self.spill.pop_front().or_else(|| self.pop_cq())
    }

    /// Takes one CQE off the CQ (load-acquire of the tail, store-release of
    /// the head).
    fn pop_cq(&mut self) -> Option<Completion> {
        let tail = self.q.cq_tail().load(Ordering::Acquire);
        if tail == self.cq_head {
            return None;
        }
        let c = self.q.read_cqe(self.cq_head);
        self.cq_head = self.cq_head.wrapping_add(1);
        self.q.cq_head().store(self.cq_head, Ordering::Release);
        Some(c.into())
    }

    /// Completions posted so far: an iterator that reaps each CQE as it is
    /// yielded, freeing its slot.
    ///
    /// Completions of the crate's own entries (owned operations) are routed
    /// to [`Ring::owned_completions`] instead. After `fork()` it yields
    /// nothing.
    pub fn completions(&mut self) -> Completions<'_> {
        Completions { ring: self }
    }

    /// Completions posted and not yet reaped.
    pub fn cq_len(&self) -> u32 {
        let queued = self.backlog.len() + self.spill.len();
        self.q.cq_tail().load(Ordering::Acquire).wrapping_sub(self.cq_head).wrapping_add(queued as u32)
    }

    /// Reaps CQEs until `stop` says so or the CQ is empty, routing crate
    /// entries; user completions go to the backlog. Returns batch CQEs to `f`.
    pub(crate) fn drain(&mut self, mut batch: impl FnMut(u64, i64)) {
        while let Some(c) = self.pop_cqe() {
            if c.user_data & RESERVED == 0 {
                self.backlog.push_back(c);
            } else if c.user_data & BATCH != 0 {
                batch(c.user_data & !(RESERVED | BATCH), c.res);
            } else {
                self.owned.complete(c);
            }
        }
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
        self.check_owner("offload_register PROBE")?;
        let mut bitmap = vec![0u64; OFFLOAD_BITMAP_MAX_WORDS as usize];
        let nr = match &self.engine {
            Engine::Kernel(fd) => raw::register_probe(fd.as_fd(), &mut bitmap)
                .map_err(|e| Error::from_io("offload_register PROBE", &e))?,
            Engine::Emulated(emu) => emu.probe(&mut bitmap).map_err(|e| Error::os("offload_register PROBE", e))?,
        };
        Ok(Probe { bitmap, nr_syscalls: nr })
    }

    /// `offload_register(fd, OFFLOAD_REGISTER_ALLOWLIST, bitmap, n)` with the
    /// bitmap of `allowed`: narrows the ring to those syscall numbers. The
    /// allowlist can only shrink; entries outside it complete with
    /// `-EOPNOTSUPP`.
    ///
    /// ```
    /// use syscall_offload::{Backend, Entry, Ring};
    /// let mut ring = Ring::builder(8).backend(Backend::Emulated).build()?;
    /// ring.restrict(&[libc::SYS_read as u32, libc::SYS_write as u32])?;
    /// // SAFETY: getpid takes no pointers.
    /// unsafe { ring.push(&Entry::getpid())? };
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
        self.check_owner(WHAT)?;
        match &mut self.engine {
            Engine::Kernel(fd) => raw::register_allowlist(fd.as_fd(), bitmap).map_err(|e| Error::from_io(WHAT, &e))?,
            Engine::Emulated(emu) => emu.restrict(bitmap).map_err(|e| Error::os(WHAT, e))?,
        }
        // The direct calls follow the same list.
        for (i, w) in self.allow.iter_mut().enumerate() {
            *w &= bitmap.get(i).copied().unwrap_or(0);
        }
        if let Some(direct) = &mut self.direct {
            direct.restrict(bitmap);
        }
        Ok(())
    }

    /// `offload_register(fd, OFFLOAD_REGISTER_EVENTFD, &eventfd, 1)`: the
    /// eventfd is signalled whenever completions are posted, so an epoll
    /// loop can wait for them. `EBUSY` if one is registered already.
    pub fn register_eventfd(&mut self, eventfd: BorrowedFd<'_>) -> Result<()> {
        const WHAT: &str = "offload_register EVENTFD";
        self.check_owner(WHAT)?;
        match &mut self.engine {
            Engine::Kernel(fd) => {
                // Kept for the completions the crate posts itself (direct calls).
                let copy = eventfd.try_clone_to_owned().map_err(|e| Error::from_io(WHAT, &e))?;
                raw::register_eventfd(fd.as_fd(), eventfd).map_err(|e| Error::from_io(WHAT, &e))?;
                self.eventfd = Some(copy);
                Ok(())
            }
            Engine::Emulated(emu) => emu.register_eventfd(eventfd).map_err(|e| Error::os(WHAT, e)),
        }
    }

    /// `offload_register(fd, OFFLOAD_UNREGISTER_EVENTFD, NULL, 0)`; `ENXIO`
    /// if none is registered.
    pub fn unregister_eventfd(&mut self) -> Result<()> {
        const WHAT: &str = "offload_register UNREGISTER_EVENTFD";
        self.check_owner(WHAT)?;
        match &mut self.engine {
            Engine::Kernel(fd) => {
                raw::unregister_eventfd(fd.as_fd()).map_err(|e| Error::from_io(WHAT, &e))?;
                self.eventfd = None;
                Ok(())
            }
            Engine::Emulated(emu) => emu.unregister_eventfd().map_err(|e| Error::os(WHAT, e)),
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // A worker may still be running owned operations: wait for them,
        // or leak their buffers if waiting is impossible. Inline rings have
        // nothing in flight once `offload_enter` has returned.
        if self.is_worker() && self.owned.in_flight() > 0 {
            let mut ok = self.check_owner("drop").is_ok();
            while ok && self.owned.in_flight() > 0 {
                match self.enter_raw(0, 1, OFFLOAD_ENTER_GETEVENTS | OFFLOAD_ENTER_SQ_WAKEUP) {
                    Ok(_) | Err(libc::EINTR) => self.drain(|_, _| {}),
                    Err(_) => ok = false,
                }
            }
            if !ok {
                self.owned.leak();
            }
        }
    }
}

/// Iterator of [`Ring::completions`].
#[derive(Debug)]
pub struct Completions<'a> {
    ring: &'a mut Ring,
}

impl Iterator for Completions<'_> {
    type Item = Completion;

    fn next(&mut self) -> Option<Completion> {
        if let Some(c) = self.ring.backlog.pop_front() {
            return Some(c);
        }
        loop {
            let c = self.ring.pop_cqe()?;
            if c.user_data & RESERVED == 0 {
                return Some(c);
            }
            self.ring.owned.complete(c);
        }
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

    fn emulated(entries: u32) -> Ring {
        Builder::new(entries).backend(Backend::Emulated).build().unwrap()
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
            push(&mut ring, &[Entry::getpid()]);
            ring.submit().unwrap();
        }
        ring.batch(|b| b.getpid().id()).unwrap();
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
    fn inline_submit_passes_no_enter_flags() {
        let mut ring = emulated(4);
        push(&mut ring, &[Entry::getpid().user_data(1)]);
        // The emulated enter refuses flags and min_complete as the kernel does.
        assert_eq!(ring.submit_and_wait(1).unwrap(), 1);
        assert_eq!(reaped(&mut ring), [(1, std::process::id() as i64)]);
        assert_eq!(ring.enter_raw(0, 1, 0), Err(libc::EINVAL));
        assert_eq!(ring.enter_raw(0, 0, OFFLOAD_ENTER_GETEVENTS), Err(libc::EINVAL));
        assert_eq!(ring.enter_raw(0, 0, OFFLOAD_ENTER_SQ_WAKEUP), Err(libc::EINVAL));
    }

    #[test]
    fn a_refused_enter_runs_the_entries_directly_once_and_says_so() {
        let mut ring = emulated(4);
        let pid = std::process::id() as i64;
        script(&mut ring, &[Some(libc::EPERM)]);
        push(
            &mut ring,
            &[
                Entry::getpid().user_data(1),
                Entry::close(-1).flags(SqeFlags::LINK).user_data(2),
                Entry::getpid().user_data(3),
                Entry::getpid().flags(SqeFlags::SKIP_SUCCESS).user_data(4),
            ],
        );
        assert_eq!(ring.submit().unwrap(), 4);
        assert_eq!(reaped(&mut ring), [(1, pid), (2, -libc::EBADF as i64), (3, -libc::ECANCELED as i64)]);
        assert_eq!(ring.fallback().map(|e| (e.what(), e.errno())), Some(("offload_enter", libc::EPERM)));
        assert_eq!((ring.direct_submissions(), ring.sq_len()), (1, 0));
        // The (emulated) kernel runs the next ones: nothing ran twice.
        push(&mut ring, &[Entry::getpid().user_data(5)]);
        assert_eq!(ring.submit().unwrap(), 1);
        assert_eq!(reaped(&mut ring), [(5, pid)]);
        assert_eq!((ring.fallback(), ring.direct_submissions()), (None, 1));
    }

    #[test]
    fn direct_completions_come_after_the_cqes_posted_before() {
        let mut ring = emulated(4);
        push(&mut ring, &[Entry::getpid().user_data(1)]);
        ring.submit().unwrap();
        script(&mut ring, &[Some(libc::EPERM)]);
        push(&mut ring, &[Entry::getpid().user_data(2)]);
        ring.submit().unwrap();
        push(&mut ring, &[Entry::getpid().user_data(3)]);
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
        push(&mut ring, &[Entry::close(-1).user_data(1), Entry::getpid().user_data(2)]);
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
                    b.getpid();
                }
            })
            .unwrap();
        assert_eq!(res.ran_count(), 6);
        assert!(res.iter().all(|r| r.unwrap() == u64::from(std::process::id())));
        assert_eq!((ring.direct_submissions(), ring.sq_len(), ring.cq_len()), (1, 0, 0));
    }
}
