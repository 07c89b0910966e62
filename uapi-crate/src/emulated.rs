//! The emulated backend: the kernel side of a ring, run in user space with
//! direct system calls: in the caller for inline rings, on a `std::thread`
//! for worker rings.
//!
//! [`Exec`] follows the kernel series' `offload_submit()` step by step: the
//! same order, the same CQ back-pressure (an entry is taken only when a CQ
//! slot is free), the same link chains (a chain ends with its submission,
//! unless it failed and the call stopped early: then the next call cancels
//! the rest of it), the same errors. It runs the entries of an emulated
//! ring ([`Emulator`]), and those of a kernel ring whose `offload_enter`
//! was refused because the task is traced or has syscall user dispatch on
//! (`Ring` feeds it the queued entries itself).
//!
//! Worker rings run `OFFLOAD_SQE_ASYNC` chains as the kernel's worker does:
//! the worker takes the entry and the rest of its link chain (a CQ slot
//! reserved for each), hands them to a helper thread (at most
//! [`ASYNC_MAX`] per ring; further chains wait for one) and goes on
//! draining the SQ; the helper runs the chain in order and posts its CQEs.
//! If no helper runs and none can be spawned, the entry completes with
//! `-EAGAIN` and the rest of its chain with `-ECANCELED`.
//!
//! What it cannot reproduce: seccomp actions other than ALLOW/LOG/ERRNO act
//! as they would on a direct call (a KILL or TRAP filter kills or signals
//! the process instead of completing the entry with `-EPERM`); and a
//! signal is seen only through an entry that returned `-EINTR`, which is
//! taken for an interrupted call the kernel would put back in the queue
//! (`-ERESTARTSYS`), except for the calls that report `-EINTR` themselves
//! (`close`, `poll`, `epoll_wait`). A dropped worker ring cannot interrupt
//! a helper blocked in a call, as the kernel's release does: the helper
//! finishes it (the mapping stays while it may post); chains no helper
//! started complete with `-ECANCELED`.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::queue::Queues;
use crate::sys::*;
use crate::table;

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// Whether a direct call that failed with `EINTR` was interrupted before it
/// did anything, i.e. returned a restart code in the kernel, where the ring
/// puts the entry back. `close` has closed the fd when it says `EINTR`;
/// `poll` (`-ERESTART_RESTARTBLOCK`) and `epoll_wait` (plain `-EINTR`)
/// complete with `-EINTR` in a ring too.
fn interrupted_before_running(nr: u32) -> bool {
    let nr = nr as libc::c_long;
    #[cfg(target_arch = "x86_64")]
    let plain_eintr = nr == libc::SYS_close || nr == libc::SYS_poll || nr == libc::SYS_epoll_wait;
    #[cfg(not(target_arch = "x86_64"))]
    let plain_eintr = nr == libc::SYS_close;
    !plain_eintr
}

/// Where [`Exec::submit`] takes entries from and posts completions to.
pub(crate) trait Queue {
    /// `Ok` if an entry can be taken now, else why not: `ENOENT` (nothing
    /// queued), `EBUSY` (no CQ slot), `EINVAL` (the SQ tail is bogus).
    fn ready(&self) -> Result<(), i32>;
    /// Takes the entry at the head.
    fn take(&mut self) -> offload_sqe;
    /// Puts the entry taken last back at the head.
    fn untake(&mut self);
    /// Posts a completion.
    fn post(&mut self, cqe: offload_cqe);
    /// Worker rings: hands a chain taken for `OFFLOAD_SQE_ASYNC` (a CQ
    /// slot reserved for each entry) to a helper thread. `None`: this
    /// queue has no helpers (inline rings, direct calls), and `ASYNC`
    /// entries complete with `-EINVAL`.
    fn helpers(&mut self) -> Option<&mut dyn Helpers> {
        None
    }
}

/// The helper side of a worker ring's queue.
pub(crate) trait Helpers {
    /// Reserves a CQ slot for an entry just taken for a helper.
    fn reserve(&mut self);
    /// Waits for a free CQ slot; false if the ring is going away.
    fn wait_cq(&mut self) -> bool;
    /// Hands the chain over (its CQ slots reserved); `allowlist` is the
    /// ring's at the time.
    fn run_async(&mut self, chain: Vec<offload_sqe>, allowlist: [u64; table::BITMAP_WORDS]);
}

/// Whether `nr` is in `allowlist`.
fn allowed(allowlist: &[u64; table::BITMAP_WORDS], nr: u32) -> bool {
    let nr = nr as usize;
    nr < table::NR_SYSCALLS as usize && allowlist[nr / 64] & (1 << (nr % 64)) != 0
}

/// Runs one entry with a direct system call, as the kernel runs it.
/// `flags` are the SQE flags the ring knows (`OFFLOAD_SQE_ASYNC` only on
/// worker rings); others make the entry complete with `-EINVAL`.
fn run(allowlist: &[u64; table::BITMAP_WORDS], sqe: &offload_sqe, flags: u32) -> i64 {
    if sqe.flags & !flags != 0 {
        return -(libc::EINVAL as i64);
    }
    if !allowed(allowlist, sqe.nr) {
        return -(libc::EOPNOTSUPP as i64);
    }
    let a = sqe.args;
    // SAFETY: this is the contract of the ring: whoever queued the entry
    // promised (with an `unsafe` push) that its pointers are valid for
    // the call. The number is in the offloadable table, which holds no
    // call that changes the process's memory map, credentials or
    // control flow.
    let ret = unsafe {
        libc::syscall(
            sqe.nr as libc::c_long,
            a[0] as libc::c_long,
            a[1] as libc::c_long,
            a[2] as libc::c_long,
            a[3] as libc::c_long,
            a[4] as libc::c_long,
            a[5] as libc::c_long,
        )
    };
    // libc turns the kernel's -4095..-1 into -1 and errno; -1 is never a
    // successful return of an offloadable call.
    if ret == -1 {
        -(errno() as i64)
    } else {
        ret as i64
    }
}

/// The kernel's `offload_submit()`: runs entries with direct system calls.
#[derive(Debug)]
pub(crate) struct Exec {
    /// The ring's allowlist (the offloadable table, narrowed by `restrict`).
    pub(crate) allowlist: [u64; table::BITMAP_WORDS],
    /// A chain failed and the call stopped before its end: cancel the first
    /// entry of the next call (and the rest of the chain with it).
    carry_cancel: bool,
}

/// What one [`Exec::submit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Submitted {
    /// `offload_enter`'s result: the number consumed, or an errno.
    pub(crate) ret: Result<u32, i32>,
    /// Whether a CQE was posted (the eventfd is signalled then).
    pub(crate) posted: bool,
}

impl Exec {
    pub(crate) fn new(allowlist: [u64; table::BITMAP_WORDS]) -> Exec {
        Exec { allowlist, carry_cancel: false }
    }


    /// Narrows the allowlist to `bitmap` (missing words count as 0).
    pub(crate) fn restrict(&mut self, bitmap: &[u64]) {
        for (i, w) in self.allowlist.iter_mut().enumerate() {
            *w &= bitmap.get(i).copied().unwrap_or(0);
        }
    }

    /// One `offload_enter(fd, to_submit, 0, 0)` call's worth of entries.
    pub(crate) fn submit(&mut self, to_submit: u32, q: &mut dyn Queue) -> Submitted {
        let mut done = 0u32;
        let mut posted = false;
        // This call's chain: open (the last entry taken carried LINK) and
        // failed (an entry of it failed).
        let (mut open, mut failed) = (false, false);
        // The call ran to the end of its submission (or of the queue).
        let mut cut = true;
        let mut stop = 0;
        while done < to_submit {
            if let Err(e) = q.ready() {
                stop = e;
                cut = e != libc::EBUSY;
                break;
            }
            let sqe = q.take();
            let cont = open;
            let cancel = if cont { failed } else { std::mem::take(&mut self.carry_cancel) };
            open = sqe.flags & OFFLOAD_SQE_LINK != 0;
            if sqe.flags & OFFLOAD_SQE_ASYNC != 0 && !cancel {
                if let Some(h) = q.helpers() {
                    // The rest of the chain goes with it, in order, to a
                    // helper; this call's own chain starts afresh.
                    let mut chain = vec![sqe];
                    h.reserve();
                    while chain.last().is_some_and(|s| s.flags & OFFLOAD_SQE_LINK != 0) {
                        match q.ready() {
                            Ok(()) => {
                                chain.push(q.take());
                                if let Some(h) = q.helpers() {
                                    h.reserve();
                                }
                            }
                            Err(libc::EBUSY) if q.helpers().is_some_and(|h| h.wait_cq()) => {}
                            // Cut by the end of the submission.
                            Err(_) => break,
                        }
                    }
                    done += chain.len() as u32;
                    (open, failed) = (false, false);
                    if let Some(h) = q.helpers() {
                        h.run_async(chain, self.allowlist);
                    }
                    continue;
                }
            }
            let flags = if q.helpers().is_some() { OFFLOAD_SQE_FLAGS_ALL } else { OFFLOAD_SQE_LINK | OFFLOAD_SQE_SKIP_SUCCESS };
            let res = if cancel { -(libc::ECANCELED as i64) } else { run(&self.allowlist, &sqe, flags) };
            // Interrupted before it did anything: back into the queue, so
            // that entering again runs it, unless it continues a chain
            // whose earlier entries have completed.
            if res == -(libc::EINTR as i64) && !cont && interrupted_before_running(sqe.nr) {
                q.untake();
                open = false;
                stop = libc::EINTR;
                cut = false;
                break;
            }
            if sqe.flags & OFFLOAD_SQE_LINK != 0 {
                failed = res < 0;
            }
            if res < 0 || sqe.flags & OFFLOAD_SQE_SKIP_SUCCESS == 0 {
                q.post(offload_cqe { user_data: sqe.user_data, res });
                posted = true;
            }
            done += 1;
        }
        if open {
            self.carry_cancel = failed && !cut;
        }
        let ret = match (done, stop) {
            (0, libc::ENOENT) | (0, 0) => Ok(0),
            (0, e) => Err(e),
            (n, _) => Ok(n),
        };
        Submitted { ret, posted }
    }
}

/// The kernel side's private state of an emulated ring: its copy of the
/// SQ head it publishes, and the executor (allowlist, chain state). The
/// thread that takes entries holds it, also while they run.
#[derive(Debug)]
struct EmuState {
    /// The kernel's private copy of the SQ head (what it publishes).
    sq_head: u32,
    exec: Exec,
}

/// The CQ's kernel side, apart from [`EmuState`]: helper threads post
/// while the worker holds that one (maybe blocked in an entry).
#[derive(Debug, Default)]
struct CqState {
    /// The kernel's private copy of the CQ tail.
    tail: u32,
    /// Slots reserved for the entries of chains handed to helpers, not
    /// yet posted: nothing is taken without a slot, nothing is dropped.
    reserved: u32,
}

/// Most helper threads per worker ring (the kernel's `OFFLOAD_ASYNC_MAX`).
pub(crate) const ASYNC_MAX: u32 = 4;

/// A chain taken for `OFFLOAD_SQE_ASYNC`, and the allowlist at the time.
#[derive(Debug)]
struct Chain {
    sqes: Vec<offload_sqe>,
    allowlist: [u64; table::BITMAP_WORDS],
}

/// The helper threads of a worker ring and their queue of chains.
#[derive(Debug, Default)]
struct Pool {
    queue: std::collections::VecDeque<Chain>,
    /// Helper threads alive (fdinfo's `AsyncHelpers`).
    helpers: u32,
    /// Helpers running a chain.
    busy: u32,
    /// The ring is being dropped: helpers run nothing more.
    stop: bool,
}

/// What the user side and the worker thread tell each other, under one lock.
#[derive(Debug, Default)]
struct Events {
    /// Bumped after CQEs are posted (a waiter re-checks the CQ).
    posted: u64,
    /// `offload_enter()` asked a sleeping worker to wake up.
    wake: bool,
    /// The ring is being dropped: the worker exits.
    stop: bool,
    /// The worker is inside an entry's system call (it cannot be joined
    /// before that returns).
    in_call: bool,
    /// The worker has stopped for good.
    gone: bool,
    /// Times the worker woke from idle (fdinfo's `Wakeups`).
    wakeups: u64,
    /// Threads waiting on `posted_cv` for CQEs: only then does posting
    /// notify it (std's `Condvar::notify_all` is a `futex` call even with
    /// nobody waiting, and an inline submission makes no call of its own).
    cq_waiters: u32,
    /// Unit tests: the worker sleeps, waiting for a wakeup (fdinfo's
    /// `WorkerState: idle`).
    #[cfg(test)]
    idle: bool,
    /// Unit tests: the worker goes idle now, as if its idle time were over.
    #[cfg(test)]
    idle_now: bool,
}

/// What an emulated ring shares with its worker thread.
#[derive(Debug)]
struct EmuShared {
    q: Queues,
    /// The kernel side's state; the worker holds it while it runs a pass.
    state: Mutex<EmuState>,
    cq: Mutex<CqState>,
    pool: Mutex<Pool>,
    /// Signalled when a chain is queued for the helpers, or they stop.
    pool_cv: Condvar,
    events: Mutex<Events>,
    /// Signalled when CQEs are posted or the worker stops.
    posted_cv: Condvar,
    /// Signalled to wake the worker (or stop it).
    wake_cv: Condvar,
    eventfd: Mutex<Option<OwnedFd>>,
    /// Set when the ring is dropped: a worker that was blocked in an
    /// entry's system call takes no further entry.
    stopping: AtomicBool,
}

/// How an emulated worker runs: `OFFLOAD_SETUP_WORKER`'s parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WorkerConfig {
    /// `worker_idle_ms`, after the kernel's default for 0.
    pub(crate) idle: Duration,
    /// `worker_cpu` with `OFFLOAD_SETUP_WORKER_CPU`.
    pub(crate) cpu: Option<u32>,
}

/// An emulated ring: the kernel's side of it, inline or with a worker
/// thread (a `std::thread` standing in for the kernel's io thread).
#[derive(Debug)]
pub(crate) struct Emulator {
    sh: Arc<EmuShared>,
    worker: Option<std::thread::JoinHandle<()>>,
    /// Unit tests: errnos the next `enter` calls fail with (None: run).
    #[cfg(test)]
    pub(crate) script: Mutex<std::collections::VecDeque<Option<i32>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves consistent data
    // (plain counters and indices): go on.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The emulated ring's queues, seen from the kernel side.
struct EmulatedQueue<'a> {
    sh: &'a Arc<EmuShared>,
    sq_head: &'a mut u32,
    /// A worker ring: `OFFLOAD_SQE_ASYNC` chains go to helpers.
    worker: bool,
}

impl Queue for EmulatedQueue<'_> {
    fn ready(&self) -> Result<(), i32> {
        let q = &self.sh.q;
        if self.sh.stopping.load(Ordering::Relaxed) {
            return Err(libc::ENOENT);
        }
        // Pairs with the user's store-release of the tail after the SQEs.
        let queued = q.sq_tail().load(Ordering::Acquire).wrapping_sub(*self.sq_head);
        if queued > q.sq_entries {
            return Err(libc::EINVAL);
        }
        if queued == 0 {
            return Err(libc::ENOENT);
        }
        if !self.sh.cq_has_space() {
            return Err(libc::EBUSY);
        }
        Ok(())
    }

    fn take(&mut self) -> offload_sqe {
        let q = &self.sh.q;
        let sqe = q.read_sqe(*self.sq_head);
        *self.sq_head = self.sq_head.wrapping_add(1);
        q.sq_head().store(*self.sq_head, Ordering::Release);
        sqe
    }

    fn untake(&mut self) {
        *self.sq_head = self.sq_head.wrapping_sub(1);
        self.sh.q.sq_head().store(*self.sq_head, Ordering::Release);
    }

    fn post(&mut self, cqe: offload_cqe) {
        self.sh.post(cqe, false);
    }

    fn helpers(&mut self) -> Option<&mut dyn Helpers> {
        if self.worker {
            Some(self)
        } else {
            None
        }
    }
}

impl Helpers for EmulatedQueue<'_> {
    fn reserve(&mut self) {
        lock(&self.sh.cq).reserved += 1;
    }

    fn wait_cq(&mut self) -> bool {
        // The user reaps, helpers post, without the state lock held here.
        while !self.sh.cq_has_space() {
            if self.sh.stopping.load(Ordering::Relaxed) {
                return false;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        true
    }

    fn run_async(&mut self, chain: Vec<offload_sqe>, allowlist: [u64; table::BITMAP_WORDS]) {
        let chain = Chain { sqes: chain, allowlist };
        let start = {
            let mut pool = lock(&self.sh.pool);
            pool.queue.push_back(chain);
            let start = pool.helpers - pool.busy < pool.queue.len() as u32 && pool.helpers < ASYNC_MAX;
            if start {
                pool.helpers += 1;
            }
            start
        };
        self.sh.pool_cv.notify_one();
        if start {
            let sh = Arc::clone(self.sh);
            let spawned = std::thread::Builder::new().name("offload-emu-a".into()).spawn(move || helper_main(sh));
            if spawned.is_err() {
                // As the kernel does without a helper: the chain fails with
                // EAGAIN. Run on the worker, a call waiting for a later entry
                // would stall the ring.
                let mut pool = lock(&self.sh.pool);
                pool.helpers -= 1;
                let chain = if pool.helpers == 0 { pool.queue.pop_back() } else { None };
                drop(pool);
                if let Some(chain) = chain {
                    self.sh.fail_chain(chain, -(libc::EAGAIN as i64));
                    self.sh.posted();
                }
            }
        }
    }
}

/// A helper thread: runs the chains handed to it, one at a time, each in
/// order, until the ring is dropped.
fn helper_main(sh: Arc<EmuShared>) {
    block_signals();
    let mut pool = lock(&sh.pool);
    loop {
        if pool.stop {
            // Chains no helper started: cancelled, as the kernel's release does.
            let left: Vec<Chain> = pool.queue.drain(..).collect();
            pool.helpers -= 1;
            drop(pool);
            for chain in left {
                sh.fail_chain(chain, -(libc::ECANCELED as i64));
            }
            sh.posted();
            return;
        }
        let Some(chain) = pool.queue.pop_front() else {
            pool = sh.pool_cv.wait(pool).unwrap_or_else(|e| e.into_inner());
            continue;
        };
        pool.busy += 1;
        drop(pool);
        sh.run_chain(chain);
        pool = lock(&sh.pool);
        pool.busy -= 1;
    }
}

impl EmuShared {
    /// Runs up to `to_submit` entries (the kernel's `offload_submit()`),
    /// then tells waiters and the eventfd about what it posted.
    fn submit(self: &Arc<Self>, to_submit: u32, worker: bool) -> Submitted {
        let done = {
            let mut st = lock(&self.state);
            let EmuState { sq_head, exec } = &mut *st;
            let mut queue = EmulatedQueue { sh: self, sq_head, worker };
            if worker {
                // Under the lock `Drop` reads `in_call` with: either it sees
                // this call coming, or this sees `stop`.
                let mut ev = lock(&self.events);
                if ev.stop {
                    return Submitted { ret: Ok(0), posted: false };
                }
                ev.in_call = true;
            }
            let done = exec.submit(to_submit, &mut queue);
            if worker {
                lock(&self.events).in_call = false;
            }
            done
        };
        if done.posted {
            self.posted();
        }
        done
    }

    /// Whether a CQ slot is free: the CQ holds fewer than its size, with
    /// the slots reserved for helpers' entries. Pairs with the user's
    /// store-release of the CQ head.
    fn cq_has_space(&self) -> bool {
        let cq = lock(&self.cq);
        let used = cq.tail.wrapping_sub(self.q.cq_head().load(Ordering::Acquire)).wrapping_add(cq.reserved);
        used < self.q.cq_entries
    }

    /// Posts a CQE; `reserved`: into a slot reserved for a helper's entry.
    fn post(&self, cqe: offload_cqe, reserved: bool) {
        let mut cq = lock(&self.cq);
        if reserved {
            cq.reserved -= 1;
        }
        self.q.write_cqe(cq.tail, &cqe);
        cq.tail = cq.tail.wrapping_add(1);
        self.q.cq_tail().store(cq.tail, Ordering::Release);
    }

    /// Completes a chain no helper will run: its first entry with `first`,
    /// the rest with `-ECANCELED`, as `offload_async_fail()` does.
    fn fail_chain(&self, chain: Chain, first: i64) {
        for (i, sqe) in chain.sqes.iter().enumerate() {
            let res = if i == 0 { first } else { -(libc::ECANCELED as i64) };
            self.post(offload_cqe { user_data: sqe.user_data, res }, true);
        }
    }

    /// A helper runs a chain taken for `OFFLOAD_SQE_ASYNC`: in order, the
    /// rest cancelled after a failed link, as `offload_async_run()` does.
    fn run_chain(&self, chain: Chain) {
        let mut failed = false;
        for sqe in chain.sqes {
            let res = if failed || self.stopping.load(Ordering::Relaxed) {
                -(libc::ECANCELED as i64)
            } else {
                run(&chain.allowlist, &sqe, OFFLOAD_SQE_FLAGS_ALL)
            };
            failed = res < 0 && sqe.flags & OFFLOAD_SQE_LINK != 0;
            if res < 0 || sqe.flags & OFFLOAD_SQE_SKIP_SUCCESS == 0 {
                self.post(offload_cqe { user_data: sqe.user_data, res }, true);
                self.posted();
            } else {
                lock(&self.cq).reserved -= 1;
            }
        }
    }

    fn posted(&self) {
        if let Some(efd) = &*lock(&self.eventfd) {
            signal_eventfd(efd.as_fd());
        }
        let waiters = {
            let mut ev = lock(&self.events);
            ev.posted += 1;
            ev.cq_waiters
        };
        // A waiter counts itself and checks the CQ under the events lock,
        // and this looked after writing the CQ tail: either it saw the new
        // tail or it is counted here.
        if waiters > 0 {
            self.posted_cv.notify_all();
        }
    }

    fn cq_ready(&self) -> u32 {
        self.q.cq_tail().load(Ordering::Acquire).wrapping_sub(self.q.cq_head().load(Ordering::Acquire))
    }

    /// Whether the worker could take an entry now: one is queued and a CQ
    /// slot is free.
    fn has_work(&self) -> bool {
        let st = lock(&self.state);
        let queued = self.q.sq_tail().load(Ordering::Acquire).wrapping_sub(st.sq_head);
        queued > 0 && self.cq_has_space()
    }

    /// `OFFLOAD_ENTER_GETEVENTS`: waits until the CQ holds `min` CQEs (or
    /// the worker is gone for good: nothing more will be posted).
    fn wait_cqes(&self, min: u32, worker: bool) -> Result<(), i32> {
        let mut ev = lock(&self.events);
        loop {
            if self.cq_ready() >= min {
                return Ok(());
            }
            if worker && ev.gone {
                return Err(libc::EOWNERDEAD);
            }
            ev.cq_waiters += 1;
            ev = self.posted_cv.wait(ev).unwrap_or_else(|e| e.into_inner());
            ev.cq_waiters -= 1;
        }
    }
}

/// The kernel's io threads take no signals: neither do the emulated ones.
fn block_signals() {
    // SAFETY: a full, initialized signal set; this thread's own mask.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
    }
}

/// Whether thread `tid` of this process still exists (`tgkill(pid, tid, 0)`).
fn thread_alive(pid: i32, tid: i32) -> bool {
    // SAFETY: signal 0 only checks that the thread exists.
    let r = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, 0) };
    r == 0 || errno() != libc::ESRCH
}

fn gettid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// The worker thread: polls the SQ, runs what it finds, and after `idle`
/// without work sets `OFFLOAD_SQ_NEED_WAKEUP` and sleeps until an
/// `offload_enter()` wakes it, as the kernel's worker does. It stops for
/// good (`OFFLOAD_SQ_WORKER_GONE`) when the thread that created the ring
/// exits.
fn worker_main(sh: Arc<EmuShared>, cfg: WorkerConfig, creator: (i32, i32), started: mpsc::Sender<Result<(), i32>>) {
    block_signals();
    let pinned = cfg.cpu.map_or(Ok(()), pin_to);
    let refused = pinned.is_err();
    // The creator waits for this answer before the ring exists.
    let _ = started.send(pinned);
    if refused {
        return;
    }
    const NAP_MIN: Duration = Duration::from_micros(20);
    const NAP_MAX: Duration = Duration::from_millis(1);
    let mut last_work = Instant::now();
    let mut nap = NAP_MIN;
    let flags = sh.q.sq_flags();
    loop {
        if lock(&sh.events).stop {
            return;
        }
        if !thread_alive(creator.0, creator.1) {
            // Entries still queued, or queued later, never run.
            flags.fetch_or(OFFLOAD_SQ_WORKER_GONE | OFFLOAD_SQ_NEED_WAKEUP, Ordering::SeqCst);
            lock(&sh.events).gone = true;
            sh.posted_cv.notify_all();
            return;
        }
        let done = sh.submit(u32::MAX, true);
        if matches!(done.ret, Ok(n) if n > 0) {
            last_work = Instant::now();
            nap = NAP_MIN;
            continue;
        }
        #[cfg(test)]
        let idle_now = std::mem::take(&mut lock(&sh.events).idle_now);
        #[cfg(not(test))]
        let idle_now = false;
        if last_work.elapsed() < cfg.idle && !idle_now {
            std::thread::sleep(nap);
            nap = (nap * 2).min(NAP_MAX);
            continue;
        }
        // Going to sleep. As the kernel's prepare_to_wait(): from here on a
        // wakeup counts; one asked for while the worker was awake is moot
        // (the check below sees what it was about), else it would cut the
        // next sleep short and count as a wakeup.
        lock(&sh.events).wake = false;
        // Set the flag, full barrier, look at the tail once more. Pairs
        // with the user's tail store, fence(SeqCst), flag load: either the
        // user sees the flag and wakes us, or we see the tail.
        flags.fetch_or(OFFLOAD_SQ_NEED_WAKEUP, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if sh.has_work() {
            flags.fetch_and(!OFFLOAD_SQ_NEED_WAKEUP, Ordering::SeqCst);
            continue;
        }
        {
            let mut ev = lock(&sh.events);
            #[cfg(test)]
            {
                ev.idle = true;
            }
            // Asleep, it still notices its creator's exit (the kernel's
            // worker is told; this one looks every 10 ms).
            while !ev.wake && !ev.stop && thread_alive(creator.0, creator.1) {
                ev = sh.wake_cv.wait_timeout(ev, Duration::from_millis(10)).unwrap_or_else(|e| e.into_inner()).0;
            }
            #[cfg(test)]
            {
                ev.idle = false;
            }
            if !ev.wake && !ev.stop {
                continue; // the creator is gone: the top of the loop says so
            }
            ev.wake = false;
            ev.wakeups += 1;
        }
        flags.fetch_and(!OFFLOAD_SQ_NEED_WAKEUP, Ordering::SeqCst);
        last_work = Instant::now();
        nap = NAP_MIN;
    }
}

/// Pins the calling thread to `cpu`, as the kernel pins its worker: any
/// online CPU of the process's cpuset, whatever the creator's own
/// affinity mask. `sched_setaffinity` applies the same rule (`EINVAL` for
/// a CPU outside the cpuset or offline).
fn pin_to(cpu: u32) -> Result<(), i32> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu as usize >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
        return Err(libc::EINVAL);
    }
    // SAFETY: `cpu` is within the set (checked above).
    unsafe { libc::CPU_SET(cpu as usize, &mut set) };
    // SAFETY: a valid cpu_set_t of the size given; 0 is this thread.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(errno());
    }
    Ok(())
}

impl Emulator {
    /// The kernel side of a fresh emulated ring: inline, or with a worker
    /// thread started now (`worker`).
    pub(crate) fn new(q: Queues, worker: Option<WorkerConfig>) -> std::io::Result<Emulator> {
        let sh = Arc::new(EmuShared {
            q,
            state: Mutex::new(EmuState { sq_head: 0, exec: Exec::new(table::bitmap()) }),
            cq: Mutex::new(CqState::default()),
            pool: Mutex::new(Pool::default()),
            pool_cv: Condvar::new(),
            events: Mutex::new(Events::default()),
            posted_cv: Condvar::new(),
            wake_cv: Condvar::new(),
            eventfd: Mutex::new(None),
            stopping: AtomicBool::new(false),
        });
        let worker = match worker {
            None => None,
            Some(cfg) => {
                let creator = (std::process::id() as i32, gettid());
                let sh2 = Arc::clone(&sh);
                let (tx, rx) = mpsc::channel();
                let handle = std::thread::Builder::new()
                    .name("offload-emu".into())
                    .spawn(move || worker_main(sh2, cfg, creator, tx))?;
                // As offload_setup() does, fail here when the worker cannot
                // be pinned to its CPU.
                let started = rx.recv().unwrap_or(Err(libc::EIO));
                if let Err(e) = started {
                    let _ = handle.join();
                    return Err(std::io::Error::from_raw_os_error(e));
                }
                Some(handle)
            }
        };
        Ok(Emulator {
            sh,
            worker,
            #[cfg(test)]
            script: Default::default(),
        })
    }

    fn is_worker(&self) -> bool {
        self.worker.is_some()
    }

    /// `offload_enter()`; returns the count or an errno, as the kernel does.
    pub(crate) fn enter(&self, to_submit: u32, min_complete: u32, flags: u32) -> Result<u32, i32> {
        let getevents = flags & OFFLOAD_ENTER_GETEVENTS != 0;
        if flags & !(OFFLOAD_ENTER_GETEVENTS | OFFLOAD_ENTER_SQ_WAKEUP) != 0
            || (min_complete != 0 && !getevents)
            || min_complete > self.sh.q.cq_entries
            || (flags & OFFLOAD_ENTER_SQ_WAKEUP != 0 && !self.is_worker())
        {
            return Err(libc::EINVAL);
        }
        #[cfg(test)]
        if let Some(Some(e)) = lock(&self.script).pop_front() {
            return Err(e);
        }
        if self.is_worker() {
            {
                let mut ev = lock(&self.sh.events);
                if ev.gone {
                    return Err(libc::EOWNERDEAD);
                }
                // Any offload_enter() wakes a sleeping worker.
                ev.wake = true;
            }
            self.sh.wake_cv.notify_all();
            if getevents {
                self.sh.wait_cqes(min_complete, true)?;
            }
            return Ok(0);
        }
        let done = if to_submit == 0 { Submitted { ret: Ok(0), posted: false } } else { self.sh.submit(to_submit, false) };
        match done.ret {
            Ok(n) if getevents => {
                // Nothing else posts on an inline ring unless another
                // thread enters it: the kernel would wait (interruptibly)
                // all the same.
                self.sh.wait_cqes(min_complete, false)?;
                Ok(n)
            }
            r => r,
        }
    }

    pub(crate) fn probe(&self, bitmap: &mut [u64]) -> Result<u32, i32> {
        if bitmap.is_empty() || bitmap.len() > OFFLOAD_BITMAP_MAX_WORDS as usize {
            return Err(libc::EINVAL);
        }
        let st = lock(&self.sh.state);
        for (i, w) in bitmap.iter_mut().enumerate() {
            *w = st.exec.allowlist.get(i).copied().unwrap_or(0);
        }
        Ok(table::NR_SYSCALLS)
    }

    pub(crate) fn restrict(&self, bitmap: &[u64]) -> Result<(), i32> {
        if bitmap.is_empty() || bitmap.len() > OFFLOAD_BITMAP_MAX_WORDS as usize {
            return Err(libc::EINVAL);
        }
        lock(&self.sh.state).exec.restrict(bitmap);
        Ok(())
    }

    pub(crate) fn register_eventfd(&self, fd: BorrowedFd<'_>) -> Result<(), i32> {
        let mut slot = lock(&self.sh.eventfd);
        if slot.is_some() {
            return Err(libc::EBUSY);
        }
        *slot = Some(check_eventfd(fd)?);
        Ok(())
    }

    pub(crate) fn unregister_eventfd(&self) -> Result<(), i32> {
        lock(&self.sh.eventfd).take().map(drop).ok_or(libc::ENXIO)
    }

    /// Times the worker woke from idle.
    #[cfg(test)]
    pub(crate) fn wakeups(&self) -> u64 {
        lock(&self.sh.events).wakeups
    }

    /// Whether the worker sleeps, waiting for a wakeup.
    #[cfg(test)]
    pub(crate) fn idle(&self) -> bool {
        lock(&self.sh.events).idle
    }

    /// Makes the worker go idle as soon as it has nothing to take, as if
    /// its idle time were over.
    #[cfg(test)]
    pub(crate) fn go_idle(&self) {
        lock(&self.sh.events).idle_now = true;
    }
}

impl Drop for Emulator {
    /// Stops the worker. One blocked inside an entry's system call cannot
    /// be interrupted from here: it is left to finish that call and exit
    /// (it holds its own reference to the mapping, so the memory it posts
    /// into stays mapped).
    fn drop(&mut self) {
        let Some(handle) = self.worker.take() else { return };
        self.sh.stopping.store(true, Ordering::Relaxed);
        lock(&self.sh.pool).stop = true;
        self.sh.pool_cv.notify_all();
        let busy = {
            let mut ev = lock(&self.sh.events);
            ev.stop = true;
            ev.in_call
        };
        self.sh.wake_cv.notify_all();
        if !busy {
            let _ = handle.join();
        }
    }
}

/// What the kernel does to accept an eventfd: a reference to its file, and
/// `EINVAL` for any other kind of file.
pub(crate) fn check_eventfd(fd: BorrowedFd<'_>) -> Result<OwnedFd, i32> {
    let raw = fd.as_raw_fd();
    match std::fs::read_link(format!("/proc/self/fd/{raw}")) {
        Ok(p) if p.as_os_str() == "anon_inode:[eventfd]" => {}
        Ok(_) => return Err(libc::EINVAL),
        Err(_) => return Err(libc::EBADF),
    }
    fd.try_clone_to_owned().map_err(|e| e.raw_os_error().unwrap_or(libc::EBADF))
}

/// `eventfd_signal()`: adds 1 to the counter.
pub(crate) fn signal_eventfd(efd: BorrowedFd<'_>) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64. A failure (counter at its
    // maximum) is ignored, as eventfd_signal() does.
    let _ = unsafe { libc::write(efd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}
