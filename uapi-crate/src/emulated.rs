//! The emulated backend: the kernel side of an inline ring, run in user
//! space with direct system calls.
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
//! What it cannot reproduce: seccomp actions other than ALLOW/LOG/ERRNO act
//! as they would on a direct call (a KILL or TRAP filter kills or signals
//! the process instead of completing the entry with `-EPERM`); and a
//! signal is seen only through an entry that returned `-EINTR`, which is
//! taken for an interrupted call the kernel would put back in the queue
//! (`-ERESTARTSYS`), except for the calls that report `-EINTR` themselves
//! (`close`, `poll`, `epoll_wait`).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;

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

    fn allowed(&self, nr: u32) -> bool {
        let nr = nr as usize;
        nr < table::NR_SYSCALLS as usize && self.allowlist[nr / 64] & (1 << (nr % 64)) != 0
    }

    /// Narrows the allowlist to `bitmap` (missing words count as 0).
    pub(crate) fn restrict(&mut self, bitmap: &[u64]) {
        for (i, w) in self.allowlist.iter_mut().enumerate() {
            *w &= bitmap.get(i).copied().unwrap_or(0);
        }
    }

    fn run(&self, sqe: &offload_sqe) -> i64 {
        // Inline rings refuse OFFLOAD_SQE_ASYNC until worker rings give it
        // a meaning, like any other bit they do not implement.
        if sqe.flags & !(OFFLOAD_SQE_LINK | OFFLOAD_SQE_SKIP_SUCCESS) != 0 {
            return -(libc::EINVAL as i64);
        }
        if !self.allowed(sqe.nr) {
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
            let res = if cancel { -(libc::ECANCELED as i64) } else { self.run(&sqe) };
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

/// An emulated ring: the kernel's private indices and registrations.
#[derive(Debug)]
pub(crate) struct Emulator {
    /// The kernel's private copy of the SQ head (what it publishes).
    sq_head: u32,
    /// The kernel's private copy of the CQ tail.
    cq_tail: u32,
    exec: Exec,
    eventfd: Option<OwnedFd>,
    /// Unit tests: errnos the next `enter` calls fail with (None: run).
    #[cfg(test)]
    pub(crate) script: std::collections::VecDeque<Option<i32>>,
}

/// The emulated ring's queues, seen from the kernel side.
struct EmulatedQueue<'a> {
    q: &'a Queues,
    sq_head: &'a mut u32,
    cq_tail: &'a mut u32,
}

impl Queue for EmulatedQueue<'_> {
    fn ready(&self) -> Result<(), i32> {
        // Pairs with the user's store-release of the tail after the SQEs.
        let queued = self.q.sq_tail().load(Ordering::Acquire).wrapping_sub(*self.sq_head);
        if queued > self.q.sq_entries {
            return Err(libc::EINVAL);
        }
        if queued == 0 {
            return Err(libc::ENOENT);
        }
        // Pairs with the user's store-release of the CQ head.
        if self.cq_tail.wrapping_sub(self.q.cq_head().load(Ordering::Acquire)) >= self.q.cq_entries {
            return Err(libc::EBUSY);
        }
        Ok(())
    }

    fn take(&mut self) -> offload_sqe {
        let sqe = self.q.read_sqe(*self.sq_head);
        *self.sq_head = self.sq_head.wrapping_add(1);
        self.q.sq_head().store(*self.sq_head, Ordering::Release);
        sqe
    }

    fn untake(&mut self) {
        *self.sq_head = self.sq_head.wrapping_sub(1);
        self.q.sq_head().store(*self.sq_head, Ordering::Release);
    }

    fn post(&mut self, cqe: offload_cqe) {
        self.q.write_cqe(*self.cq_tail, &cqe);
        *self.cq_tail = self.cq_tail.wrapping_add(1);
        self.q.cq_tail().store(*self.cq_tail, Ordering::Release);
    }
}

impl Emulator {
    pub(crate) fn new() -> Emulator {
        Emulator {
            sq_head: 0,
            cq_tail: 0,
            exec: Exec::new(table::bitmap()),
            eventfd: None,
            #[cfg(test)]
            script: Default::default(),
        }
    }

    /// `offload_enter()` on an inline ring; returns the count or an errno.
    pub(crate) fn enter(&mut self, q: &Queues, to_submit: u32, min_complete: u32, flags: u32) -> Result<u32, i32> {
        // Inline rings complete everything before returning: nothing to
        // wait for, no worker to wake.
        if flags != 0 || min_complete != 0 {
            return Err(libc::EINVAL);
        }
        #[cfg(test)]
        if let Some(Some(e)) = self.script.pop_front() {
            return Err(e);
        }
        if to_submit == 0 {
            return Ok(0);
        }
        let mut queue = EmulatedQueue { q, sq_head: &mut self.sq_head, cq_tail: &mut self.cq_tail };
        let done = self.exec.submit(to_submit, &mut queue);
        if done.posted {
            if let Some(efd) = &self.eventfd {
                signal_eventfd(efd.as_fd());
            }
        }
        done.ret
    }

    pub(crate) fn probe(&self, bitmap: &mut [u64]) -> Result<u32, i32> {
        if bitmap.is_empty() || bitmap.len() > OFFLOAD_BITMAP_MAX_WORDS as usize {
            return Err(libc::EINVAL);
        }
        for (i, w) in bitmap.iter_mut().enumerate() {
            *w = self.exec.allowlist.get(i).copied().unwrap_or(0);
        }
        Ok(table::NR_SYSCALLS)
    }

    pub(crate) fn restrict(&mut self, bitmap: &[u64]) -> Result<(), i32> {
        if bitmap.is_empty() || bitmap.len() > OFFLOAD_BITMAP_MAX_WORDS as usize {
            return Err(libc::EINVAL);
        }
        self.exec.restrict(bitmap);
        Ok(())
    }

    pub(crate) fn register_eventfd(&mut self, fd: BorrowedFd<'_>) -> Result<(), i32> {
        if self.eventfd.is_some() {
            return Err(libc::EBUSY);
        }
        self.eventfd = Some(check_eventfd(fd)?);
        Ok(())
    }

    pub(crate) fn unregister_eventfd(&mut self) -> Result<(), i32> {
        self.eventfd.take().map(drop).ok_or(libc::ENXIO)
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
