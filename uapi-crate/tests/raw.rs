//! The raw syscall wrappers against the kernel (skipped without offload,
//! failing under SYSCALL_OFFLOAD_REQUIRE_KERNEL=1). The emulated backend's
//! copies of these rules are covered through the Ring API in tests/api.rs.

mod common;

use std::os::fd::AsFd;

use syscall_offload::raw::{self, offload_params, EnterFlags};

fn params() -> offload_params {
    offload_params { size: 128, ..Default::default() }
}

fn errno<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    r.unwrap_err().raw_os_error().unwrap_or(0)
}

macro_rules! need_kernel {
    () => {
        if !common::need_kernel() {
            return;
        }
    };
}

#[test]
fn setup_validates_entries_flags_and_reserved_words() {
    need_kernel!();
    assert_eq!(errno(raw::setup(0, &mut params())), libc::EINVAL);
    assert_eq!(errno(raw::setup(4097, &mut params())), libc::EINVAL);
    assert_eq!(errno(raw::setup(4, &mut offload_params { flags: 1 << 20, ..params() })), libc::EINVAL);
    assert_eq!(errno(raw::setup(4, &mut offload_params { resv0: 1, ..params() })), libc::EINVAL);
    assert_eq!(errno(raw::setup(4, &mut offload_params { resv: [0, 0, 0, 0, 1], ..params() })), libc::EINVAL);
    assert_eq!(errno(raw::setup(4, &mut offload_params { size: 64, ..params() })), libc::EINVAL);
    let cq = |n| offload_params { flags: raw::OFFLOAD_SETUP_CQSIZE, cq_entries: n, ..params() };
    assert_eq!(errno(raw::setup(8, &mut cq(4))), libc::EINVAL);
    assert_eq!(errno(raw::setup(8, &mut cq(8193))), libc::EINVAL);
    let mut p = params();
    let _fd = raw::setup(5, &mut p).unwrap();
    assert_eq!((p.sq_entries, p.cq_entries), (8, 16));
    assert!(p.ring_size > 0);
    let mut p = offload_params { flags: raw::OFFLOAD_SETUP_WORKER, worker_idle_ms: 10, ..params() };
    assert_eq!(errno(raw::setup(4, &mut p)), libc::EOPNOTSUPP);
}

#[test]
fn the_ring_fd_is_always_close_on_exec() {
    need_kernel!();
    // With or without OFFLOAD_SETUP_CLOEXEC, which is still accepted.
    for flags in [0, raw::OFFLOAD_SETUP_CLOEXEC] {
        let fd = raw::setup(4, &mut offload_params { flags, ..params() }).unwrap();
        // SAFETY: F_GETFD on an open fd.
        let got = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&fd), libc::F_GETFD) };
        assert_eq!(got & libc::FD_CLOEXEC, libc::FD_CLOEXEC, "flags {flags:#x}");
    }
}

#[test]
fn enter_rejects_unknown_flags_and_foreign_fds() {
    need_kernel!();
    let mut p = params();
    let fd = raw::setup(4, &mut p).unwrap();
    // SAFETY: the SQ is empty: nothing runs.
    assert_eq!(errno(unsafe { raw::enter(fd.as_fd(), 0, 0, EnterFlags::from_bits_retain(1 << 9)) }), libc::EINVAL);
    // SAFETY: as above.
    assert_eq!(unsafe { raw::enter(fd.as_fd(), 1, 0, EnterFlags::empty()) }.unwrap(), 0);
    let file = std::fs::File::open("/dev/null").unwrap();
    // SAFETY: not a ring: nothing runs.
    assert_eq!(errno(unsafe { raw::enter(file.as_fd(), 1, 0, EnterFlags::empty()) }), libc::EINVAL);
}

#[test]
fn enter_on_an_inline_ring_refuses_waiting_and_wakeups() {
    need_kernel!();
    let fd = raw::setup(4, &mut params()).unwrap();
    for (min_complete, flags) in [(0, EnterFlags::GETEVENTS), (0, EnterFlags::SQ_WAKEUP), (1, EnterFlags::empty())] {
        // SAFETY: the SQ is empty: nothing runs.
        let r = unsafe { raw::enter(fd.as_fd(), 1, min_complete, flags) };
        assert_eq!(errno(r), libc::EINVAL, "min_complete {min_complete}, flags {flags:?}");
    }
}

#[test]
fn register_checks_bitmap_sizes_and_eventfds() {
    need_kernel!();
    let fd = raw::setup(4, &mut params()).unwrap();
    assert_eq!(errno(raw::register_probe(fd.as_fd(), &mut [])), libc::EINVAL);
    assert_eq!(errno(raw::register_probe(fd.as_fd(), &mut [0; 65])), libc::EINVAL);
    // SAFETY: NULL with a non-zero count is what we test.
    let r = unsafe { raw::register(fd.as_fd(), raw::OFFLOAD_REGISTER_PROBE, std::ptr::null_mut(), 1) };
    assert_eq!(errno(r), libc::EFAULT);
    let mut one = [0u64; 1];
    assert!(raw::register_probe(fd.as_fd(), &mut one).unwrap() >= 463);
    assert_ne!(one[0] & 1 << libc::SYS_read, 0);
    assert_eq!(errno(raw::unregister_eventfd(fd.as_fd())), libc::ENXIO);
    let file = std::fs::File::open("/dev/null").unwrap();
    assert_eq!(errno(raw::register_eventfd(fd.as_fd(), file.as_fd())), libc::EINVAL);
}

#[test]
fn the_ring_maps_only_shared_at_offset_zero() {
    need_kernel!();
    let mut p = params();
    let fd = raw::setup(4, &mut p).unwrap();
    let map = raw::Mmap::ring(fd.as_fd(), p.ring_size).unwrap();
    assert!(map.len() as u64 >= p.ring_size);
    drop(map);
    // SAFETY: a private mapping attempt the kernel must refuse; unmapped if not.
    let ptr = unsafe {
        libc::mmap(std::ptr::null_mut(), p.ring_size as usize, libc::PROT_READ, libc::MAP_PRIVATE,
            std::os::fd::AsRawFd::as_raw_fd(&fd), 0)
    };
    assert_eq!(ptr, libc::MAP_FAILED);
}
