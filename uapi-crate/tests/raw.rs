//! The raw syscall wrappers against the kernel (skipped without offload,
//! failing under SYSCALL_OFFLOAD_REQUIRE_KERNEL=1, where the kernel must
//! also have the v3 series). The emulated backend's copies of these rules
//! are covered through the Ring API: setup in tests/api.rs and
//! tests/worker.rs (`bad_worker_settings_are_typed_errors`), enter in the
//! unit test `emulated_enter_checks_its_arguments_as_the_kernel_does`.

mod common;

use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU32, Ordering};

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

    let worker = |flags, worker_idle_ms, worker_cpu| offload_params { flags, worker_idle_ms, worker_cpu, ..params() };
    let (w, pin) = (raw::OFFLOAD_SETUP_WORKER, raw::OFFLOAD_SETUP_WORKER | raw::OFFLOAD_SETUP_WORKER_CPU);
    if !v3_kernel(&p) {
        // The v2 series knows the worker flags but has no worker mode.
        assert_eq!(errno(raw::setup(4, &mut worker(w, 10, 0))), libc::EOPNOTSUPP);
        return;
    }
    let mut wp = worker(w, 10, 0);
    let wfd = raw::setup(4, &mut wp).unwrap();
    let want = raw::OFFLOAD_FEAT_WORKER | raw::OFFLOAD_FEAT_GETEVENTS | raw::OFFLOAD_FEAT_SQE_ASYNC;
    assert_eq!(wp.features & want, want, "features {:#x}", wp.features);
    let name = format!("offload-{}", wfd.as_raw_fd());
    assert!(thread_names().contains(&name), "no thread {name:?} among {:?}", thread_names());
    drop(wfd);
    // 0 asks for the default idle time; the longest one is accepted.
    for idle in [0, raw::OFFLOAD_MAX_WORKER_IDLE_MS] {
        raw::setup(1, &mut worker(w, idle, 0)).unwrap_or_else(|e| panic!("idle {idle}: {e}"));
    }
    // The CPU this thread runs on is online and in its cpuset.
    // SAFETY: sched_getcpu has no preconditions.
    let cpu = unsafe { libc::sched_getcpu() } as u32;
    raw::setup(1, &mut worker(pin, 10, cpu)).unwrap_or_else(|e| panic!("pinned to CPU {cpu}: {e}"));
    let nr_cpu_ids = nr_cpu_ids();
    for (what, mut bad) in [
        ("idle above OFFLOAD_MAX_WORKER_IDLE_MS", worker(w, raw::OFFLOAD_MAX_WORKER_IDLE_MS + 1, 0)),
        ("idle u32::MAX", worker(w, u32::MAX, 0)),
        ("WORKER_CPU without WORKER", worker(raw::OFFLOAD_SETUP_WORKER_CPU, 0, cpu)),
        ("worker_idle_ms without WORKER", worker(0, 10, 0)),
        ("worker_cpu without WORKER_CPU", worker(w, 10, 1)),
        ("worker_cpu without any flag", worker(0, 0, 1)),
        ("worker_cpu == nr_cpu_ids", worker(pin, 10, nr_cpu_ids)),
        ("worker_cpu u32::MAX", worker(pin, 10, u32::MAX)),
    ] {
        assert_eq!(errno(raw::setup(4, &mut bad)), libc::EINVAL, "{what}");
    }
}

/// Whether the kernel has the v3 series (worker rings, GETEVENTS) by
/// what setup said in `p.features`; the VM run must have it.
fn v3_kernel(p: &offload_params) -> bool {
    let v3 = raw::OFFLOAD_FEAT_WORKER | raw::OFFLOAD_FEAT_GETEVENTS;
    let has = p.features & v3 == v3;
    assert!(
        has || !common::kernel_required(),
        "SYSCALL_OFFLOAD_REQUIRE_KERNEL=1 but the kernel lacks the v3 series: features {:#x}",
        p.features
    );
    if !has {
        common::skipped(&common::test_name(), "v3 rules: the kernel has the v2 series, checked against that");
    }
    has
}

/// The names (comm) of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|c| c.trim_end().to_string())
        .collect()
}

/// The kernel's `nr_cpu_ids`: one past the last possible CPU.
fn nr_cpu_ids() -> u32 {
    let list = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
    let last = list.trim().rsplit([',', '-']).next().unwrap();
    last.parse::<u32>().unwrap_or_else(|e| panic!("possible CPUs {list:?}: {e}")) + 1
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
fn enter_on_an_inline_ring_waits_with_getevents_and_refuses_wakeups() {
    need_kernel!();
    let mut p = params();
    let fd = raw::setup(4, &mut p).unwrap();
    // SAFETY (every enter below): the SQ holds nothing but the getpid
    // queued further down, which takes no pointers.
    let enter = |to_submit, min_complete, flags| unsafe { raw::enter(fd.as_fd(), to_submit, min_complete, flags) };
    if !v3_kernel(&p) {
        // The v2 series refuses every flag and any min_complete.
        for (min_complete, flags) in [(0, EnterFlags::GETEVENTS), (0, EnterFlags::SQ_WAKEUP), (1, EnterFlags::empty())] {
            assert_eq!(errno(enter(1, min_complete, flags)), libc::EINVAL, "min_complete {min_complete}, flags {flags:?}");
        }
        return;
    }
    let getevents = EnterFlags::GETEVENTS;
    for (what, min_complete, flags) in [
        ("no worker to wake", 0, EnterFlags::SQ_WAKEUP),
        ("no worker to wake, waiting", 0, EnterFlags::SQ_WAKEUP | getevents),
        ("min_complete without GETEVENTS", 1, EnterFlags::empty()),
        ("min_complete above cq_entries", p.cq_entries + 1, getevents),
        ("min_complete u32::MAX", u32::MAX, getevents),
    ] {
        assert_eq!(errno(enter(1, min_complete, flags)), libc::EINVAL, "{what}");
    }
    // Nothing to run, nothing to wait for.
    assert_eq!(enter(1, 0, getevents).unwrap(), 0);
    // One getpid, run and waited for in one call.
    let map = raw::Mmap::ring(fd.as_fd(), p.ring_size).unwrap();
    let at = |off: u32| map.as_ptr().wrapping_add(off as usize);
    // SAFETY: the ring's words are aligned u32s in the mapping, at the
    // offsets setup gave; the kernel accesses them atomically too.
    let word = |off| unsafe { &*(at(off) as *const AtomicU32) };
    let sqe = raw::offload_sqe { nr: libc::SYS_getpid as u32, user_data: 7, ..Default::default() };
    // SAFETY: slot 0 of the SQE array, in the mapping, not yet published.
    unsafe { std::ptr::write(at(p.sqes_off).cast::<raw::offload_sqe>(), sqe) };
    word(p.sq_tail_off).store(1, Ordering::Release);
    assert_eq!(enter(1, 1, getevents).unwrap(), 1);
    assert_eq!(word(p.sq_head_off).load(Ordering::Acquire), 1);
    assert_eq!(word(p.cq_tail_off).load(Ordering::Acquire).wrapping_sub(word(p.cq_head_off).load(Ordering::Relaxed)), 1);
    // SAFETY: CQE slot 0, posted (the CQ tail was loaded with Acquire).
    let cqe = unsafe { std::ptr::read(at(p.cqes_off).cast::<raw::offload_cqe>()) };
    assert_eq!((cqe.user_data, cqe.res), (7, i64::from(std::process::id())));
    // The CQE is still there: waiting for one returns at once.
    assert_eq!(enter(0, 1, getevents).unwrap(), 0);
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
