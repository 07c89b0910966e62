//! Where a batch runs: a kernel ring (inline or worker) or, where the kernel
//! has none, direct system calls with the same results.

use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{fence, AtomicU32, Ordering};

use syscall_offload::raw::{self, offload_cqe, offload_params, offload_sqe, EnterFlags};

use crate::stats::{add, bump, STATS};
use crate::sys::raw6;

/// Builds an SQE.
pub fn sqe(nr: libc::c_long, args: &[u64]) -> offload_sqe {
    let mut a = [0u64; 6];
    a[..args.len()].copy_from_slice(args);
    offload_sqe { nr: nr as u32, flags: 0, user_data: 0, args: a }
}

pub fn run_direct(s: &offload_sqe) -> i64 {
    bump(&STATS.direct);
    raw6(s.nr as i64, s.args)
}

/// A kernel ring seen through its mapping.
pub struct KRing {
    fd: i32,
    map: ManuallyDrop<raw::Mmap>,
    sq_head: *const AtomicU32,
    sq_tail: *const AtomicU32,
    sq_flags: *const AtomicU32,
    sqes: *mut offload_sqe,
    cq_head: *const AtomicU32,
    cq_tail: *const AtomicU32,
    cqes: *const offload_cqe,
    sq_n: u32,
    cq_n: u32,
    worker: bool,
}

/// `OFFLOAD_SQ_WORKER_GONE` (worker-mode series).
const SQ_WORKER_GONE: u32 = 1 << 1;
const SPIN: u32 = 20_000;

impl KRing {
    /// `offload_setup()` and `mmap()`; the errno on failure.
    pub fn new(entries: u32, worker: Option<(u32, Option<u32>)>) -> Result<KRing, i32> {
        let mut p = offload_params { size: std::mem::size_of::<offload_params>() as u32, ..Default::default() };
        if let Some((idle_ms, cpu)) = worker {
            p.flags |= raw::OFFLOAD_SETUP_WORKER;
            p.worker_idle_ms = idle_ms;
            if let Some(cpu) = cpu {
                p.flags |= raw::OFFLOAD_SETUP_WORKER_CPU;
                p.worker_cpu = cpu;
            }
        }
        bump(&STATS.direct);
        let fd: OwnedFd = raw::setup(entries, &mut p).map_err(|e| e.raw_os_error().unwrap_or(libc::EINVAL))?;
        bump(&STATS.direct);
        let map = raw::Mmap::ring(fd.as_fd_compat(), p.ring_size).map_err(|e| e.raw_os_error().unwrap_or(libc::EINVAL))?;
        let len = map.len();
        let ok = |off: u32, size: usize| (off as usize).checked_add(size).is_some_and(|e| e <= len) && off % 4 == 0;
        let sq_n = p.sq_entries;
        let cq_n = p.cq_entries;
        if !(sq_n.is_power_of_two()
            && cq_n.is_power_of_two()
            && [p.sq_head_off, p.sq_tail_off, p.sq_flags_off, p.cq_head_off, p.cq_tail_off].iter().all(|&o| ok(o, 4))
            && ok(p.sqes_off, sq_n as usize * 64)
            && ok(p.cqes_off, cq_n as usize * 16))
        {
            return Err(libc::EINVAL);
        }
        let base = map.as_ptr();
        // SAFETY: every offset was checked to lie in the mapping.
        let at = |off: u32| unsafe { base.add(off as usize) };
        Ok(KRing {
            fd: fd.into_raw_fd(),
            sq_head: at(p.sq_head_off).cast(),
            sq_tail: at(p.sq_tail_off).cast(),
            sq_flags: at(p.sq_flags_off).cast(),
            sqes: at(p.sqes_off).cast(),
            cq_head: at(p.cq_head_off).cast(),
            cq_tail: at(p.cq_tail_off).cast(),
            cqes: at(p.cqes_off).cast(),
            map: ManuallyDrop::new(map),
            sq_n,
            cq_n,
            worker: worker.is_some(),
        })
    }

    pub fn fd(&self) -> i32 {
        self.fd
    }

    fn w(&self, p: *const AtomicU32) -> &AtomicU32 {
        // SAFETY: checked in `new`; the mapping lives as long as `self`.
        unsafe { &*p }
    }

    fn enter(&self, to_submit: u32, min_complete: u32, flags: EnterFlags) -> Result<u32, i32> {
        bump(&STATS.enters);
        let saved = crate::sys::errno();
        // SAFETY: every queued entry points into buffers that the caller
        // keeps alive until `run` returns (inline) or its CQE is reaped.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        // SAFETY: as above.
        let r = unsafe { raw::enter(fd, to_submit, min_complete, flags) };
        crate::sys::set_errno(saved);
        r.map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))
    }

    /// Reaps every posted CQE into `res` (indexed by `user_data`); returns how many.
    fn reap(&self, res: &mut [i64]) -> u32 {
        let head = self.w(self.cq_head).load(Ordering::Relaxed);
        let tail = self.w(self.cq_tail).load(Ordering::Acquire);
        let mut i = head;
        while i != tail {
            // SAFETY: the slot is below cq_n, in the mapping; the kernel
            // posted it before publishing `tail`.
            let c = unsafe { self.cqes.add((i & (self.cq_n - 1)) as usize).read_volatile() };
            if let Some(r) = res.get_mut(c.user_data as usize) {
                *r = c.res;
            }
            i = i.wrapping_add(1);
        }
        self.w(self.cq_head).store(tail, Ordering::Release);
        tail.wrapping_sub(head)
    }

    /// Runs `sqes` in order and stores each result in `res`. With `direct_last`
    /// the last entry (a blocking wait) runs as a direct call after the others
    /// are published: a worker runs the rest meanwhile; an inline ring gets it
    /// in the same submission. On a ring failure the entries not yet run are
    /// run directly and the errno is returned.
    pub fn run(&mut self, sqes: &[offload_sqe], res: &mut [i64], direct_last: bool) -> Result<(), i32> {
        let (ring_part, last) = if direct_last && self.worker {
            (&sqes[..sqes.len() - 1], sqes.last())
        } else {
            (sqes, None)
        };
        let mut done = 0usize;
        let cap = self.sq_n.min(self.cq_n) as usize;
        while done < ring_part.len() {
            let n = (ring_part.len() - done).min(cap);
            let tail = self.w(self.sq_tail).load(Ordering::Relaxed);
            for (k, s) in ring_part[done..done + n].iter().enumerate() {
                let mut e = *s;
                e.user_data = (done + k) as u64;
                let slot = (tail.wrapping_add(k as u32) & (self.sq_n - 1)) as usize;
                // SAFETY: the slot is in the mapping and free: the SQ is empty
                // between runs (every entry is consumed or taken back).
                unsafe { self.sqes.add(slot).write_volatile(e) };
            }
            self.w(self.sq_tail).store(tail.wrapping_add(n as u32), Ordering::Release);
            add(&STATS.entries, n as u64);
            let r = if self.worker {
                let r = self.kick();
                if r.is_ok() && last.is_some() && done + n == ring_part.len() {
                    // The wait, by this thread, while the worker runs the writes.
                    let l = sqes.len() - 1;
                    res[l] = run_direct(&sqes[l]);
                }
                r.and_then(|_| self.wait_all(n as u32, res))
            } else {
                self.inline_run(n as u32, res)
            };
            if let Err(e) = r {
                // Take back what the kernel did not consume, run it directly.
                let head = self.w(self.sq_head).load(Ordering::Acquire);
                self.w(self.sq_tail).store(head, Ordering::Release);
                let ran = head.wrapping_sub(tail) as usize;
                for i in done + ran..sqes.len() {
                    res[i] = run_direct(&sqes[i]);
                }
                return Err(e);
            }
            done += n;
        }
        if last.is_some() && ring_part.is_empty() {
            let l = sqes.len() - 1;
            res[l] = run_direct(&sqes[l]);
        }
        Ok(())
    }

    fn inline_run(&self, n: u32, res: &mut [i64]) -> Result<(), i32> {
        let mut consumed = 0;
        while consumed < n {
            match self.enter(n - consumed, 0, EnterFlags::empty()) {
                Ok(k) => consumed += k,
                // A signal before any entry ran: its handler has run, go on.
                Err(libc::EINTR) | Err(libc::ERESTART) => {}
                Err(e) => {
                    self.reap(res);
                    return Err(e);
                }
            }
            self.reap(res);
        }
        Ok(())
    }

    /// Publishes to a worker: wakes it if it sleeps.
    fn kick(&self) -> Result<(), i32> {
        fence(Ordering::SeqCst);
        let f = self.w(self.sq_flags).load(Ordering::Acquire);
        if f & SQ_WORKER_GONE != 0 {
            return Err(libc::EOWNERDEAD);
        }
        if f & raw::OFFLOAD_SQ_NEED_WAKEUP != 0 {
            self.enter(0, 0, EnterFlags::SQ_WAKEUP)?;
        }
        Ok(())
    }

    /// Waits for `n` completions of a worker ring: spins while the worker
    /// is running, then sleeps in `offload_enter(GETEVENTS)`.
    fn wait_all(&self, n: u32, res: &mut [i64]) -> Result<(), i32> {
        let mut got = 0;
        let mut spins = 0;
        while got < n {
            let k = self.reap(res);
            got += k;
            if got >= n {
                break;
            }
            if k == 0 {
                spins += 1;
                if spins < SPIN {
                    std::hint::spin_loop();
                    continue;
                }
                let f = self.w(self.sq_flags).load(Ordering::Acquire);
                if f & SQ_WORKER_GONE != 0 {
                    return Err(libc::EOWNERDEAD);
                }
                match self.enter(0, 1, EnterFlags::GETEVENTS | EnterFlags::SQ_WAKEUP) {
                    Ok(_) | Err(libc::EINTR) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Closes the ring (thread exit).
    pub fn close(mut self) {
        // SAFETY: dropped once, here; nothing uses the pointers afterwards.
        unsafe { ManuallyDrop::drop(&mut self.map) };
        raw6(libc::SYS_close, [self.fd as u64, 0, 0, 0, 0, 0]);
    }

    /// In a fork child: the mapping was not inherited (`VM_DONTCOPY`), so it
    /// must not be unmapped (the range may be reused); the fd is closed.
    pub fn forget_in_child(self) {
        raw6(libc::SYS_close, [self.fd as u64, 0, 0, 0, 0, 0]);
        // `map` is a ManuallyDrop: dropping `self` leaves the range alone.
    }
}

trait AsFdCompat {
    fn as_fd_compat(&self) -> BorrowedFd<'_>;
}

impl AsFdCompat for OwnedFd {
    fn as_fd_compat(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd is owned by `self` and outlives the borrow.
        unsafe { BorrowedFd::borrow_raw(self.as_raw_fd()) }
    }
}
