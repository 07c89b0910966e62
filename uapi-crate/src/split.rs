//! The two sides of a ring: [`SubmissionQueue`] pushes and submits,
//! [`CompletionQueue`] reaps. [`Ring::split`](crate::Ring::split) hands out
//! one of each, so one thread can push new entries while another reaps
//! completions (a worker ring runs them meanwhile).
//!
//! Soundness: each index the user side writes has exactly one writer. The
//! SQ tail and the SQE slots between the SQ head and tail belong to the
//! `SubmissionQueue` (its `&mut SqState`), the CQ head to the
//! `CompletionQueue` (its `&mut CqState`); both borrow the ring mutably,
//! so there is one of each at a time. What both touch is behind a lock
//! (the owned operations in flight, the completions of direct calls) or
//! read-only (the mapping's other words are atomics written by the kernel).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{fence, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::emulated::{self, Exec};
use crate::entry::{Completion, Entry};
use crate::error::{Error, ErrorKind, Result};
use crate::op::Op;
use crate::owned::{InFlight, OwnedCompletion, Ticket};
use crate::ring::{Shared, BATCH, RESERVED};
use crate::sys::*;
use crate::table;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data behind these locks stays consistent across a panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Completions not in the CQ: those of calls the crate made itself when
/// `offload_enter` was refused. Each carries the CQ tail at the time (the
/// "mark"): CQEs before the mark are reaped before it, so completions come
/// out in the order they were posted.
pub(crate) type Spill = VecDeque<(u32, Completion)>;

/// The owned operations that the kernel may still be using, by id.
pub(crate) type Pending = HashMap<u64, InFlight>;

/// What only the submission side touches.
#[derive(Debug)]
pub(crate) struct SqState {
    /// Our SQ tail: entries pushed (published by `publish`).
    pub(crate) tail: u32,
    /// The tail as last published.
    pub(crate) published: u32,
    /// The last pushed entry carried LINK: a chain is open.
    pub(crate) open_chain: bool,
    /// The allowlist as far as the crate knows it (the table narrowed by
    /// `restrict`), for direct calls when the kernel cannot be asked.
    pub(crate) allow: [u64; table::BITMAP_WORDS],
    /// Runs the entries when `offload_enter` is refused (built on first use).
    pub(crate) direct: Option<Box<Exec>>,
    /// Set when the latest `offload_enter` was refused and the entries ran
    /// as direct calls; cleared when the kernel runs a submission again.
    pub(crate) enter_fallback: Option<Error>,
    pub(crate) direct_submissions: u64,
    /// The next owned operation's id.
    pub(crate) next_owned: u64,
}

impl SqState {
    pub(crate) fn new() -> SqState {
        SqState {
            tail: 0,
            published: 0,
            open_chain: false,
            allow: table::bitmap(),
            direct: None,
            enter_fallback: None,
            direct_submissions: 0,
            next_owned: 0,
        }
    }
}

/// What only the completion side touches.
#[derive(Debug, Default)]
pub(crate) struct CqState {
    /// Our CQ head.
    pub(crate) head: u32,
    /// Completions of user entries set aside while the crate looked for its own.
    pub(crate) backlog: VecDeque<Completion>,
    /// Finished owned operations, not yet handed out.
    pub(crate) owned_done: VecDeque<OwnedCompletion>,
}

/// The submission side of a ring: push entries, submit them.
///
/// From [`Ring::split`](crate::Ring::split); the [`Ring`](crate::Ring)
/// methods of the same names do the same. It is `Send`: move it to the
/// thread that produces work.
#[derive(Debug)]
pub struct SubmissionQueue<'r> {
    pub(crate) sh: &'r Shared,
    pub(crate) st: &'r mut SqState,
}

/// The completion side of a ring: reap completions, wait for them.
///
/// From [`Ring::split`](crate::Ring::split); the [`Ring`](crate::Ring)
/// methods of the same names do the same. It is `Send`: move it to the
/// thread that consumes results.
#[derive(Debug)]
pub struct CompletionQueue<'r> {
    pub(crate) sh: &'r Shared,
    pub(crate) st: &'r mut CqState,
}

/// The crate's own `offload_enter`, for the queue of a ring: entries are
/// copied out of the SQ, and completions go to the ring's spill queue.
struct DirectQueue<'a> {
    sqes: &'a [offload_sqe],
    next: usize,
    mark: u32,
    spill: &'a mut Spill,
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
        self.spill.push_back((self.mark, cqe.into()));
    }
}

/// The error of a failed `offload_enter`.
pub(crate) fn enter_error(what: &'static str, errno: i32) -> Error {
    match errno {
        libc::EOWNERDEAD => Error::new(
            ErrorKind::WorkerGone,
            errno,
            what,
            "the ring's worker stopped because the thread that created the ring exited \
             (OFFLOAD_SQ_WORKER_GONE); queued entries will not run: create a new ring",
        ),
        e => Error::os(what, e),
    }
}

impl SubmissionQueue<'_> {
    /// Whether a worker polls this ring (`OFFLOAD_SETUP_WORKER`).
    pub fn is_worker(&self) -> bool {
        self.sh.is_worker()
    }

    /// Entries pushed and not yet consumed by the kernel.
    pub fn sq_len(&self) -> u32 {
        self.st.tail.wrapping_sub(self.sh.q.sq_head().load(Ordering::Acquire))
    }

    /// Free SQ slots.
    pub fn sq_space(&self) -> u32 {
        self.sh.q.sq_entries.saturating_sub(self.sq_len())
    }

    /// The SQ flags word (`OFFLOAD_SQ_*`) as the kernel last wrote it.
    pub fn sq_flags(&self) -> SqFlags {
        self.sh.sq_flags()
    }

    /// [`Ring::push`](crate::Ring::push).
    ///
    /// # Safety
    ///
    /// As for [`Ring::push`](crate::Ring::push): every pointer and fd of
    /// `entry` must stay valid until its completion has been posted (on a
    /// worker ring the worker may run it any time after
    /// [`submit`](SubmissionQueue::submit)).
    pub unsafe fn push(&mut self, entry: &Entry) -> Result<()> {
        if entry.0.user_data & RESERVED != 0 {
            return Err(Error::invalid("push", "user_data values with bit 63 set are reserved"));
        }
        self.push_sqe(&entry.0)
    }

    pub(crate) fn push_sqe(&mut self, sqe: &offload_sqe) -> Result<()> {
        self.sh.check_fork("push")?;
        if self.sq_space() == 0 {
            return Err(Error::new(
                ErrorKind::SubmissionQueueFull,
                libc::EBUSY,
                "push",
                "the submission queue is full; submit first",
            ));
        }
        self.sh.q.write_sqe(self.st.tail, sqe);
        self.st.tail = self.st.tail.wrapping_add(1);
        self.st.open_chain = sqe.flags & OFFLOAD_SQE_LINK != 0;
        Ok(())
    }

    /// [`Ring::push_owned`](crate::Ring::push_owned).
    pub fn push_owned<O: Op<'static> + Send>(&mut self, op: O) -> std::result::Result<Ticket, (Error, O)> {
        let id = self.st.next_owned & !(RESERVED | BATCH);
        // Boxed first: the entry may point into the builder, which must
        // not move until the completion.
        let mut op = Box::new(op);
        let mut sqe = op.entry().0;
        sqe.user_data = RESERVED | id;
        if let Err(e) = self.push_sqe(&sqe) {
            return Err((e, *op));
        }
        let role = op.fd_role();
        self.st.next_owned = self.st.next_owned.wrapping_add(1);
        // In the table before the entry is published, so the completion
        // side finds it whenever the CQE comes. Moving the box does not move
        // the builder, nor a Vec its heap buffer.
        lock(&self.sh.pending).insert(id, InFlight { op, role });
        Ok(Ticket(id))
    }

    /// Publishes the pushed entries (store-release of the SQ tail).
    pub(crate) fn publish(&mut self) {
        self.sh.q.sq_tail().store(self.st.tail, Ordering::Release);
        self.st.published = self.st.tail;
    }

    /// `offload_enter(fd, to_submit, min_complete, flags)` on either
    /// backend; the errno is returned bare so callers can retry. An inline
    /// ring whose `offload_enter` is refused with `EPERM` (the task is
    /// traced or has syscall user dispatch on) has its entries run as
    /// direct calls.
    pub(crate) fn enter_raw(&mut self, to_submit: u32, min_complete: u32, flags: u32) -> std::result::Result<u32, i32> {
        match self.sh.enter(to_submit, min_complete, flags) {
            Err(libc::EPERM) if !self.sh.is_worker() => {
                self.st.enter_fallback = Some(Error::new(
                    ErrorKind::Os,
                    libc::EPERM,
                    "offload_enter",
                    "refused for a task traced with PTRACE_SYSCALL/PTRACE_SYSEMU or with syscall user dispatch on; \
                     the entries ran as direct system calls",
                ));
                let n = self.enter_directly(to_submit)?;
                if flags & OFFLOAD_ENTER_GETEVENTS != 0 {
                    self.sh.poll_for(min_complete);
                }
                Ok(n)
            }
            r => {
                if r.is_ok() {
                    self.st.enter_fallback = None;
                }
                r
            }
        }
    }

    /// The executor for direct calls. It runs what both the crate's table
    /// (with the restrictions it was given) and the kernel's answer to
    /// `PROBE` allow: the crate vets its table as the kernel vets its own.
    fn direct_exec(&mut self) -> Box<Exec> {
        if let Some(exec) = self.st.direct.take() {
            return exec;
        }
        let mut allow = self.st.allow;
        if let Ok(p) = self.sh.probe() {
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
        let q = &self.sh.q;
        let head = q.sq_head().load(Ordering::Acquire);
        let queued = self.st.tail.wrapping_sub(head);
        if queued > q.sq_entries {
            return Err(libc::EINVAL);
        }
        let n = to_submit.min(queued);
        if n == 0 {
            return Ok(0);
        }
        self.st.direct_submissions += 1;
        // Completions come out in order: the CQEs the kernel posted before
        // are reaped first (see `Spill`).
        let mark = q.cq_tail().load(Ordering::Acquire);
        let sqes: Vec<offload_sqe> = (0..queued).map(|i| q.read_sqe(head.wrapping_add(i))).collect();
        q.sq_tail().store(head, Ordering::Release);
        let mut exec = self.direct_exec();
        let (done, consumed) = {
            let mut spill = lock(&self.sh.spill);
            let mut queue = DirectQueue { sqes: &sqes[..n as usize], next: 0, mark, spill: &mut spill };
            let done = exec.submit(n, &mut queue);
            (done, queue.next)
        };
        self.st.direct = Some(exec);
        for (i, sqe) in sqes[consumed..].iter().enumerate() {
            q.write_sqe(head.wrapping_add(i as u32), sqe);
        }
        self.st.tail = head.wrapping_add(queued - consumed as u32);
        self.publish();
        if done.posted {
            if let Some(efd) = &self.sh.eventfd {
                emulated::signal_eventfd(std::os::fd::AsFd::as_fd(efd));
            }
        }
        done.ret
    }

    /// After the tail store: a full barrier, then the SQ flags. Wakes a
    /// sleeping worker (`offload_enter(fd, 0, 0, OFFLOAD_ENTER_SQ_WAKEUP)`)
    /// only when `OFFLOAD_SQ_NEED_WAKEUP` is set; a gone worker is an error.
    fn wake_if_needed(&mut self, what: &'static str) -> Result<()> {
        // Pairs with the worker's flag store, full barrier, tail load: either
        // it sees our tail or we see its flag (io_uring's sqpoll protocol).
        fence(Ordering::SeqCst);
        let flags = self.sh.q.sq_flags().load(Ordering::Relaxed);
        if flags & OFFLOAD_SQ_WORKER_GONE != 0 {
            return Err(enter_error(what, libc::EOWNERDEAD));
        }
        if flags & OFFLOAD_SQ_NEED_WAKEUP != 0 {
            self.enter_raw(0, 0, OFFLOAD_ENTER_SQ_WAKEUP).map_err(|e| enter_error(what, e))?;
        }
        Ok(())
    }

    /// [`Ring::submit`](crate::Ring::submit).
    pub fn submit(&mut self) -> Result<u32> {
        self.submit_inner(0, 0, "offload_enter")
    }

    /// [`Ring::submit_and_wait`](crate::Ring::submit_and_wait), counting
    /// what is in the CQ (and the completions of direct calls).
    pub fn submit_and_wait(&mut self, want: u32) -> Result<u32> {
        self.submit_inner(want, 0, "offload_enter")
    }

    /// `set_aside`: completions the completion side took out of the CQ and
    /// has not handed out; they count towards `want`.
    pub(crate) fn submit_inner(&mut self, want: u32, set_aside: usize, what: &'static str) -> Result<u32> {
        self.sh.check_owner(what)?;
        let fresh = self.st.tail.wrapping_sub(self.st.published);
        self.publish();
        let need = self.sh.need_in_cq(want, set_aside, what)?;
        if self.sh.is_worker() {
            self.wake_if_needed(what)?;
            if need > 0 {
                self.enter_raw(0, need, OFFLOAD_ENTER_GETEVENTS).map_err(|e| enter_error(what, e))?;
            }
            return Ok(fresh);
        }
        let pending = self.sq_len();
        // Kernels without OFFLOAD_FEAT_GETEVENTS refuse the flag; there every
        // completion of the submission is posted before offload_enter
        // returns, so that is what the caller gets.
        let flags = if need > 0 && self.sh.features().contains(Features::GETEVENTS) {
            OFFLOAD_ENTER_GETEVENTS
        } else {
            0
        };
        let min = if flags == 0 { 0 } else { need };
        let n = self.enter_raw(pending, min, flags).map_err(|e| enter_error(what, e))?;
        if self.sq_len() == 0 {
            // A chain ends with its submission.
            self.st.open_chain = false;
        }
        Ok(n)
    }
}

impl<'r> CompletionQueue<'r> {
    pub(crate) fn into_completions(self) -> Completions<'r> {
        Completions { cq: self, reaped: false }
    }

    pub(crate) fn into_owned_completions(mut self) -> std::collections::vec_deque::Drain<'r, OwnedCompletion> {
        self.drain(|_, _| {});
        self.wake_after_reaping();
        self.st.owned_done.drain(..)
    }
}

impl CompletionQueue<'_> {
    /// Whether a worker polls this ring (`OFFLOAD_SETUP_WORKER`).
    pub fn is_worker(&self) -> bool {
        self.sh.is_worker()
    }

    /// [`Ring::completions`](crate::Ring::completions).
    pub fn completions(&mut self) -> Completions<'_> {
        CompletionQueue { sh: self.sh, st: &mut *self.st }.into_completions()
    }

    /// [`Ring::owned_completions`](crate::Ring::owned_completions).
    pub fn owned_completions(&mut self) -> std::collections::vec_deque::Drain<'_, OwnedCompletion> {
        CompletionQueue { sh: self.sh, st: &mut *self.st }.into_owned_completions()
    }

    /// [`Ring::owned_in_flight`](crate::Ring::owned_in_flight).
    pub fn owned_in_flight(&self) -> usize {
        lock(&self.sh.pending).len()
    }

    /// [`Ring::cq_len`](crate::Ring::cq_len).
    pub fn cq_len(&self) -> u32 {
        let set_aside = self.st.backlog.len() + lock(&self.sh.spill).len();
        self.sh.q.cq_tail().load(Ordering::Acquire).wrapping_sub(self.st.head).wrapping_add(set_aside as u32)
    }

    /// `offload_enter(fd, 0, n, OFFLOAD_ENTER_GETEVENTS)`: waits until `n`
    /// completions are ready to reap ([`cq_len`](CompletionQueue::cq_len)
    /// is at least `n`). On a worker ring this also wakes a sleeping
    /// worker. A signal makes it fail with `EINTR`.
    ///
    /// Requires [`Features::GETEVENTS`] (else [`ErrorKind::Unsupported`]),
    /// and `n` at most the CQ size ([`ErrorKind::InvalidInput`]).
    pub fn wait(&mut self, n: u32) -> Result<()> {
        const WHAT: &str = "offload_enter GETEVENTS";
        self.sh.check_owner(WHAT)?;
        let need = self.sh.need_in_cq(n, self.st.backlog.len(), WHAT)?;
        if need == 0 {
            return Ok(());
        }
        if !self.sh.features().contains(Features::GETEVENTS) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                libc::EINVAL,
                WHAT,
                "this kernel cannot wait for completions (no OFFLOAD_FEAT_GETEVENTS)",
            ));
        }
        match self.sh.enter(0, need, OFFLOAD_ENTER_GETEVENTS) {
            // A traced task: the entries run as direct calls on the
            // submitting side; their completions are not the kernel's to count.
            Err(libc::EPERM) if !self.sh.is_worker() => {
                self.sh.poll_for(need);
                Ok(())
            }
            r => r.map(drop).map_err(|e| enter_error(WHAT, e)),
        }
    }

    /// Takes the next completion: a direct call's when its turn has come,
    /// else one off the CQ.
    pub(crate) fn pop_cqe(&mut self) -> Option<Completion> {
        if self.sh.check_fork("completions").is_err() {
            return None;
        }
        {
            let mut spill = lock(&self.sh.spill);
            if let Some(&(mark, c)) = spill.front() {
                // Every CQE before the mark has been reaped.
                if mark.wrapping_sub(self.st.head) as i32 <= 0 {
                    spill.pop_front();
                    return Some(c);
                }
            }
        }
        self.pop_cq()
    }

    /// Takes one CQE off the CQ (load-acquire of the tail, store-release of
    /// the head).
    fn pop_cq(&mut self) -> Option<Completion> {
        let q = &self.sh.q;
        let tail = q.cq_tail().load(Ordering::Acquire);
        if tail == self.st.head {
            return None;
        }
        let c = q.read_cqe(self.st.head);
        self.st.head = self.st.head.wrapping_add(1);
        q.cq_head().store(self.st.head, Ordering::Release);
        Some(c.into())
    }

    /// Reaps CQEs until the CQ is empty, routing crate entries; user
    /// completions go to the backlog. Returns batch CQEs to `batch`.
    pub(crate) fn drain(&mut self, mut batch: impl FnMut(u64, i64)) {
        while let Some(c) = self.pop_cqe() {
            if c.user_data & RESERVED == 0 {
                self.st.backlog.push_back(c);
            } else if c.user_data & BATCH != 0 {
                batch(c.user_data & !(RESERVED | BATCH), c.res);
            } else {
                self.complete_owned(c);
            }
        }
    }

    pub(crate) fn complete_owned(&mut self, c: Completion) {
        let id = c.user_data & !RESERVED;
        let op = lock(&self.sh.pending).remove(&id);
        if let Some(op) = op {
            self.st.owned_done.push_back(op.complete(Ticket(id), c.res));
        }
    }

    /// Reaping does not tell the kernel: a worker that went to sleep on a
    /// full CQ with entries queued needs a wakeup, which only then costs a
    /// system call.
    pub(crate) fn wake_after_reaping(&mut self) {
        if !self.sh.is_worker() {
            return;
        }
        fence(Ordering::SeqCst);
        let q = &self.sh.q;
        let flags = q.sq_flags().load(Ordering::Relaxed);
        let queued = q.sq_tail().load(Ordering::Acquire) != q.sq_head().load(Ordering::Acquire);
        if flags & OFFLOAD_SQ_NEED_WAKEUP != 0 && flags & OFFLOAD_SQ_WORKER_GONE == 0 && queued {
            let _ = self.sh.enter(0, 0, OFFLOAD_ENTER_SQ_WAKEUP);
        }
    }
}

/// Iterator of [`Ring::completions`](crate::Ring::completions) and
/// [`CompletionQueue::completions`]: reaps each CQE as it is yielded.
#[derive(Debug)]
pub struct Completions<'a> {
    cq: CompletionQueue<'a>,
    reaped: bool,
}

impl Iterator for Completions<'_> {
    type Item = Completion;

    fn next(&mut self) -> Option<Completion> {
        if let Some(c) = self.cq.st.backlog.pop_front() {
            return Some(c);
        }
        loop {
            let c = self.cq.pop_cqe()?;
            self.reaped = true;
            if c.user_data & RESERVED == 0 {
                return Some(c);
            }
            self.cq.complete_owned(c);
        }
    }
}

impl Drop for Completions<'_> {
    fn drop(&mut self) {
        if self.reaped {
            self.cq.wake_after_reaping();
        }
    }
}
