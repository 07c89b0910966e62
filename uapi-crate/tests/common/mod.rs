//! Shared by the integration tests: which backends to run on, and skips
//! that show.
#![allow(dead_code)]

use std::io::Write;
use std::sync::Once;

use syscall_offload::{raw, Backend, Ring};

/// `SYSCALL_OFFLOAD_REQUIRE_KERNEL=1`: the kernel backend must work (VM runs).
pub fn kernel_required() -> bool {
    std::env::var("SYSCALL_OFFLOAD_REQUIRE_KERNEL").is_ok_and(|v| v == "1")
}

/// Says that (part of) a test was skipped, on the process's stderr itself:
/// the test harness captures only `print!`/`eprint!`, so the line shows in
/// `cargo test` output although the test is reported as passed.
pub fn skipped(what: &str, reason: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what}: {reason}");
}

/// The name of the running test (libtest names each test's thread so).
pub fn test_name() -> String {
    std::thread::current().name().unwrap_or("this test").to_string()
}

/// Why the kernel backend does not work here, or `None` if it does.
/// Panics instead under `SYSCALL_OFFLOAD_REQUIRE_KERNEL=1`.
fn kernel_unavailable() -> Option<String> {
    let why = match Ring::builder(1).backend(Backend::Kernel).build() {
        Ok(_) => None,
        Err(_) if !raw::kernel_has_offload() => Some("the running kernel has no syscall offload".to_string()),
        Err(e) => Some(e.to_string()),
    };
    if kernel_required() {
        assert!(raw::kernel_has_offload(), "SYSCALL_OFFLOAD_REQUIRE_KERNEL=1 but the kernel has no offload");
        assert!(why.is_none(), "SYSCALL_OFFLOAD_REQUIRE_KERNEL=1 but the kernel backend fails: {}", why.unwrap());
    }
    why
}

/// Whether the kernel backend works here; panics if it is required and does not.
pub fn kernel_available() -> bool {
    kernel_unavailable().is_none()
}

/// For a test of the kernel backend only: whether it can run; if not, says
/// SKIPPED with the reason (and under `SYSCALL_OFFLOAD_REQUIRE_KERNEL=1`
/// fails instead).
pub fn need_kernel() -> bool {
    match kernel_unavailable() {
        None => true,
        Some(why) => {
            skipped(&test_name(), &format!("needs the kernel backend ({why})"));
            false
        }
    }
}

/// The backends every API test runs on: always Emulated, and Kernel when
/// the running kernel has offload (required with SYSCALL_OFFLOAD_REQUIRE_KERNEL=1).
/// Without it, says once per test binary that the kernel half is skipped.
pub fn backends() -> Vec<Backend> {
    match kernel_unavailable() {
        None => vec![Backend::Kernel, Backend::Emulated],
        Some(why) => {
            static ONCE: Once = Once::new();
            ONCE.call_once(|| {
                let exe = std::env::current_exe().ok();
                let bin = exe.as_deref().and_then(|p| p.file_name()).map_or("?".into(), |n| n.to_string_lossy());
                skipped(&format!("kernel backend of the tests in {bin}"), &format!("emulated backend only: {why}"));
            });
            vec![Backend::Emulated]
        }
    }
}

pub fn ring(backend: Backend, entries: u32) -> Ring {
    let r = Ring::builder(entries).backend(backend).build().expect("ring");
    assert_eq!(r.backend(), backend);
    r
}

/// A fresh directory under the temp dir (/tmp), removed by the caller.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "syscall-offload-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

pub const EINVAL: i64 = -(libc::EINVAL as i64);
pub const EOPNOTSUPP: i64 = -(libc::EOPNOTSUPP as i64);
pub const ECANCELED: i64 = -(libc::ECANCELED as i64);
pub const EBADF: i64 = -(libc::EBADF as i64);
pub const EFAULT: i64 = -(libc::EFAULT as i64);

/// `pipe2(O_CLOEXEC)`: (read end, write end).
pub fn pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two fds into the array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh fds owned by nobody else.
    unsafe { (std::os::fd::OwnedFd::from_raw_fd(fds[0]), std::os::fd::OwnedFd::from_raw_fd(fds[1])) }
}

/// Why the kernel backend has no worker rings here, or `None` if it has.
/// Panics instead under `SYSCALL_OFFLOAD_REQUIRE_KERNEL=1`: the VM runs
/// the worker-mode series.
fn kernel_worker_unavailable() -> Option<String> {
    if let Some(why) = kernel_unavailable() {
        return Some(why);
    }
    let why = match Ring::builder(1).worker(std::time::Duration::from_millis(10)).backend(Backend::Kernel).build() {
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    };
    if kernel_required() {
        assert!(why.is_none(), "SYSCALL_OFFLOAD_REQUIRE_KERNEL=1 but kernel worker rings fail: {}", why.unwrap());
    }
    why
}

/// The backends the worker-ring tests run on: Emulated, and Kernel when
/// the running kernel has worker mode (required with
/// SYSCALL_OFFLOAD_REQUIRE_KERNEL=1). Says once per binary what is skipped.
pub fn worker_backends() -> Vec<Backend> {
    match kernel_worker_unavailable() {
        None => vec![Backend::Kernel, Backend::Emulated],
        Some(why) => {
            static ONCE: Once = Once::new();
            ONCE.call_once(|| skipped("kernel backend of the worker-ring tests", &format!("emulated only: {why}")));
            vec![Backend::Emulated]
        }
    }
}

/// A worker ring of `entries` slots with `idle` before the worker sleeps.
pub fn worker_ring(backend: Backend, entries: u32, idle: std::time::Duration) -> Ring {
    let r = Ring::builder(entries).worker(idle).backend(backend).build().expect("worker ring");
    assert_eq!((r.backend(), r.is_worker()), (backend, true));
    r
}

/// Polls `cond` every millisecond until it holds; panics after `secs`
/// seconds, so that a lost wakeup fails the test instead of hanging it.
pub fn eventually(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !cond() {
        assert!(std::time::Instant::now() < end, "timed out after {secs} s waiting for: {what}");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
