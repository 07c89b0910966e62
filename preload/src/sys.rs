//! Raw system calls and a lock that never calls into libc.
//!
//! The shim must not call the libc functions it interposes (they would come
//! back into the shim), and must not clobber `errno` when the application's
//! call succeeds, so every call here is a bare `syscall` instruction that
//! returns `-errno`.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

/// `syscall(nr, a...)` returning the raw result (`-errno` on failure).
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn raw6(nr: i64, a: [u64; 6]) -> i64 {
    let ret: i64;
    // SAFETY: the x86_64 syscall ABI; the kernel clobbers rcx and r11 only.
    // The arguments are what the caller passes: any pointer among them is the
    // caller's responsibility, as for libc's syscall().
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack)
        );
    }
    ret
}

/// `syscall(nr, a...)` returning the raw result (`-errno` on failure).
#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub fn raw6(nr: i64, a: [u64; 6]) -> i64 {
    let saved = errno();
    // SAFETY: as for the x86_64 version; errno is restored below.
    let r = unsafe { libc::syscall(nr as libc::c_long, a[0], a[1], a[2], a[3], a[4], a[5]) } as i64;
    let r = if r == -1 { -(errno() as i64) } else { r };
    set_errno(saved);
    r
}

/// Shorthand for calls with fewer arguments.
#[inline]
pub fn raw(nr: libc::c_long, a: &[u64]) -> i64 {
    let mut args = [0u64; 6];
    args[..a.len()].copy_from_slice(a);
    crate::stats::bump(&crate::stats::STATS.direct);
    #[allow(clippy::unnecessary_cast)] // c_long is i32 on 32-bit targets
    raw6(nr as i64, args)
}

pub fn errno() -> i32 {
    // SAFETY: glibc's thread-local errno.
    unsafe { *libc::__errno_location() }
}

pub fn set_errno(e: i32) {
    // SAFETY: glibc's thread-local errno.
    unsafe { *libc::__errno_location() = e }
}

/// Converts a raw result to the C convention (`-1` and `errno`).
#[inline]
pub fn ret(r: i64) -> i64 {
    if (-4095..0).contains(&r) {
        set_errno(-r as i32);
        -1
    } else {
        r
    }
}

pub fn gettid() -> i32 {
    raw6(libc::SYS_gettid, [0; 6]) as i32
}

/// `CLOCK_MONOTONIC` in milliseconds (vDSO, no system call).
pub fn now_ms() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: writes one timespec; clock_gettime is not interposed.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

/// Writes a line to stderr with a raw `write(2)`.
pub fn say(msg: &str) {
    let line = format!("offload-preload: {msg}\n");
    raw6(libc::SYS_write, [2, line.as_ptr() as u64, line.len() as u64, 0, 0, 0]);
}

/// A spin lock that yields with a raw `sched_yield`: no futex through libc,
/// no poisoning, and a state the fork child handler can reset.
///
/// It is never held across a blocking system call, and a signal handler
/// never takes it while its thread holds it (the shim's reentrancy guard
/// sends such calls straight to the kernel), so it cannot deadlock.
pub struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: access to `value` is serialized by `locked`.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub const fn new(value: T) -> Self {
        SpinLock { locked: AtomicBool::new(false), value: UnsafeCell::new(value) }
    }

    pub fn lock(&self) -> Guard<'_, T> {
        while self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            raw6(libc::SYS_sched_yield, [0; 6]);
        }
        Guard { lock: self }
    }

    /// Takes the lock for the duration of a `fork()`; see [`SpinLock::force_unlock`].
    pub fn raw_lock(&self) {
        std::mem::forget(self.lock());
    }

    /// Releases a lock taken with [`SpinLock::raw_lock`] (in the parent and in
    /// the child of a fork, where the only thread is the one that took it).
    pub fn force_unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }

    /// The value while the caller holds the lock through `raw_lock`.
    ///
    /// # Safety
    ///
    /// The caller took the lock with [`SpinLock::raw_lock`] and has not
    /// released it.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get_locked(&self) -> &mut T {
        // SAFETY: the caller holds the lock.
        unsafe { &mut *self.value.get() }
    }
}

pub struct Guard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: we hold the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: we hold the lock.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}
