//! The emulated backend: the kernel side of an inline ring, run in user
//! space with direct system calls.
//!
//! It follows the kernel series' `offload_enter` step by step: the same
//! order, the same CQ back-pressure (an SQE is consumed only when a CQ slot
//! is free), the same link-chain state carried across calls, the same errors.
//! What it cannot reproduce: seccomp actions other than ALLOW/LOG/ERRNO act
//! as they would on a direct call (a KILL or TRAP filter kills or signals
//! the process instead of completing the entry with `-EPERM`); a syscall
//! interrupted by a handler installed with `SA_RESTART` is restarted instead
//! of completing with `-EINTR`; and a signal is noticed only through an
//! entry that returned `-EINTR`.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;

use crate::queue::Queues;
use crate::sys::*;
use crate::table;

#[derive(Debug)]
pub(crate) struct Emulator {
    /// The kernel's private copy of the SQ head (what it publishes).
    sq_head: u32,
    /// The kernel's private copy of the CQ tail.
    cq_tail: u32,
    /// Inside a failed link chain: cancel until an entry without LINK.
    cancel_chain: bool,
    allowlist: [u64; table::BITMAP_WORDS],
    eventfd: Option<OwnedFd>,
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

impl Emulator {
    pub(crate) fn new() -> Emulator {
        Emulator { sq_head: 0, cq_tail: 0, cancel_chain: false, allowlist: table::bitmap(), eventfd: None }
    }

    fn allowed(&self, nr: u32) -> bool {
        let nr = nr as usize;
        nr < table::NR_SYSCALLS as usize && self.allowlist[nr / 64] & (1 << (nr % 64)) != 0
    }

    fn run(&self, sqe: &offload_sqe) -> i64 {
        if sqe.flags & !OFFLOAD_SQE_FLAGS_ALL != 0 {
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

    /// `offload_enter()` on an inline ring; returns the count or an errno.
    pub(crate) fn enter(&mut self, q: &Queues, to_submit: u32, flags: u32) -> Result<u32, i32> {
        if flags & !(OFFLOAD_ENTER_GETEVENTS | OFFLOAD_ENTER_SQ_WAKEUP) != 0 {
            return Err(libc::EINVAL);
        }
        let tail = q.sq_tail().load(Ordering::Acquire);
        let queued = tail.wrapping_sub(self.sq_head);
        if queued > q.sq_entries {
            return Err(libc::EINVAL);
        }
        let todo = to_submit.min(queued);
        let mut done = 0;
        let mut posted = false;
        let mut cq_full = false;
        while done < todo {
            let cq_head = q.cq_head().load(Ordering::Acquire);
            if self.cq_tail.wrapping_sub(cq_head) >= q.cq_entries {
                cq_full = true;
                break;
            }
            let sqe = q.read_sqe(self.sq_head);
            self.sq_head = self.sq_head.wrapping_add(1);
            q.sq_head().store(self.sq_head, Ordering::Release);

            let link = sqe.flags & OFFLOAD_SQE_LINK != 0;
            let res = if self.cancel_chain {
                self.cancel_chain = link;
                -(libc::ECANCELED as i64)
            } else {
                let res = self.run(&sqe);
                self.cancel_chain = link && res < 0;
                res
            };
            if res < 0 || sqe.flags & OFFLOAD_SQE_SKIP_SUCCESS == 0 {
                q.write_cqe(self.cq_tail, &offload_cqe { user_data: sqe.user_data, res });
                self.cq_tail = self.cq_tail.wrapping_add(1);
                q.cq_tail().store(self.cq_tail, Ordering::Release);
                posted = true;
            }
            done += 1;
            if res == -(libc::EINTR as i64) {
                // A signal interrupted the call: the kernel stops here.
                break;
            }
        }
        if posted {
            if let Some(efd) = &self.eventfd {
                let one: u64 = 1;
                // SAFETY: writes 8 bytes from a live u64. A failure (counter
                // at its maximum) is ignored, as eventfd_signal() does.
                let _ = unsafe { libc::write(efd.as_raw_fd(), (&one as *const u64).cast(), 8) };
            }
        }
        if done == 0 && cq_full {
            return Err(libc::EBUSY);
        }
        Ok(done)
    }

    pub(crate) fn probe(&self, bitmap: &mut [u64]) -> Result<u32, i32> {
        if bitmap.is_empty() || bitmap.len() > OFFLOAD_BITMAP_MAX_WORDS as usize {
            return Err(libc::EINVAL);
        }
        for (i, w) in bitmap.iter_mut().enumerate() {
            *w = self.allowlist.get(i).copied().unwrap_or(0);
        }
        Ok(table::NR_SYSCALLS)
    }

    pub(crate) fn restrict(&mut self, bitmap: &[u64]) -> Result<(), i32> {
        if bitmap.is_empty() || bitmap.len() > OFFLOAD_BITMAP_MAX_WORDS as usize {
            return Err(libc::EINVAL);
        }
        for (i, w) in self.allowlist.iter_mut().enumerate() {
            *w &= bitmap.get(i).copied().unwrap_or(0);
        }
        Ok(())
    }

    pub(crate) fn register_eventfd(&mut self, fd: BorrowedFd<'_>) -> Result<(), i32> {
        if self.eventfd.is_some() {
            return Err(libc::EBUSY);
        }
        let raw = fd.as_raw_fd();
        // The kernel takes a reference to the eventfd's file and rejects any
        // other kind of file with EINVAL.
        match std::fs::read_link(format!("/proc/self/fd/{raw}")) {
            Ok(p) if p.as_os_str() == "anon_inode:[eventfd]" => {}
            Ok(_) => return Err(libc::EINVAL),
            Err(_) => return Err(libc::EBADF),
        }
        self.eventfd = Some(fd.try_clone_to_owned().map_err(|e| e.raw_os_error().unwrap_or(libc::EBADF))?);
        Ok(())
    }

    pub(crate) fn unregister_eventfd(&mut self) -> Result<(), i32> {
        self.eventfd.take().map(drop).ok_or(libc::ENXIO)
    }
}
