//! Shared by the integration tests: which backends to run on.
#![allow(dead_code)]

use syscall_offload::{raw, Backend, Ring};

/// `SYSCALL_OFFLOAD_REQUIRE_KERNEL=1`: the kernel backend must work (VM runs).
pub fn kernel_required() -> bool {
    std::env::var("SYSCALL_OFFLOAD_REQUIRE_KERNEL").is_ok_and(|v| v == "1")
}

/// Whether the kernel backend works here; panics if it is required and does not.
pub fn kernel_available() -> bool {
    let ok = match Ring::builder(1).backend(Backend::Kernel).build() {
        Ok(_) => true,
        Err(e) => {
            assert!(!kernel_required(), "SYSCALL_OFFLOAD_REQUIRE_KERNEL=1 but the kernel backend fails: {e}");
            false
        }
    };
    if kernel_required() {
        assert!(raw::kernel_has_offload());
    }
    ok
}

/// The backends every API test runs on: always Emulated, and Kernel when
/// the running kernel has offload (required with SYSCALL_OFFLOAD_REQUIRE_KERNEL=1).
pub fn backends() -> Vec<Backend> {
    if kernel_available() {
        vec![Backend::Kernel, Backend::Emulated]
    } else {
        vec![Backend::Emulated]
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
