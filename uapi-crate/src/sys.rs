//! Mirrors of `include/uapi/linux/offload.h`.
//!
//! Every struct is `#[repr(C)]` with the zerocopy derives, so hidden padding
//! is rejected at compile time; `tests/layout.rs` compiles the series' own
//! header with the system C compiler and checks every size, alignment, field
//! offset and constant against these definitions.
//!
//! The names keep the C spelling (lower-case structs, upper-case constants)
//! so that a grep for a C name finds its mirror.

#![allow(non_camel_case_types)]

use bitflags::bitflags;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `struct offload_sqe`: one submission queue entry (64 bytes).
///
/// A system call of the process's native ABI with its six raw arguments.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct offload_sqe {
    /// Syscall number, native ABI of the process.
    pub nr: u32,
    /// `OFFLOAD_SQE_*` bits, see [`SqeFlags`].
    pub flags: u32,
    /// Copied to the CQE untouched.
    pub user_data: u64,
    /// Raw syscall arguments.
    pub args: [u64; 6],
}

/// `struct offload_cqe`: one completion queue entry (16 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct offload_cqe {
    /// The SQE's `user_data`.
    pub user_data: u64,
    /// The syscall's return value, or `-errno`.
    pub res: i64,
}

/// `struct offload_params`: the argument of `offload_setup(2)`.
///
/// Extensible: `size` is the size user space knows.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct offload_params {
    /// in: `sizeof(struct offload_params)`.
    pub size: u32,
    /// in: `OFFLOAD_SETUP_*`.
    pub flags: u32,
    /// out: SQ size, a power of two.
    pub sq_entries: u32,
    /// in with `OFFLOAD_SETUP_CQSIZE`, out: CQ size.
    pub cq_entries: u32,
    /// in with `OFFLOAD_SETUP_WORKER_CPU`, else 0.
    pub worker_cpu: u32,
    /// in with `OFFLOAD_SETUP_WORKER`, else 0.
    pub worker_idle_ms: u32,
    /// out: `OFFLOAD_FEAT_*`.
    pub features: u32,
    /// Must be zero.
    pub resv0: u32,
    /// out: bytes to `mmap()` at `OFFLOAD_OFF_RING`.
    pub ring_size: u64,
    /// out: offset of the SQ head (`__u32`, kernel writes).
    pub sq_head_off: u32,
    /// out: offset of the SQ tail (`__u32`, user writes).
    pub sq_tail_off: u32,
    /// out: offset of the SQ index mask.
    pub sq_mask_off: u32,
    /// out: offset of the SQ size.
    pub sq_entries_off: u32,
    /// out: offset of the SQ flags (`OFFLOAD_SQ_*`).
    pub sq_flags_off: u32,
    /// out: offset of the `struct offload_sqe` array.
    pub sqes_off: u32,
    /// out: offset of the CQ head (`__u32`, user writes).
    pub cq_head_off: u32,
    /// out: offset of the CQ tail (`__u32`, kernel writes).
    pub cq_tail_off: u32,
    /// out: offset of the CQ index mask.
    pub cq_mask_off: u32,
    /// out: offset of the CQ size.
    pub cq_entries_off: u32,
    /// out: offset of the `struct offload_cqe` array.
    pub cqes_off: u32,
    /// Must be zero.
    pub resv1: u32,
    /// Must be zero.
    pub resv: [u64; 5],
}

/// `OFFLOAD_SQE_LINK`
pub const OFFLOAD_SQE_LINK: u32 = 1 << 0;
/// `OFFLOAD_SQE_SKIP_SUCCESS`
pub const OFFLOAD_SQE_SKIP_SUCCESS: u32 = 1 << 1;
/// `OFFLOAD_SQE_ASYNC`
pub const OFFLOAD_SQE_ASYNC: u32 = 1 << 2;
/// `OFFLOAD_SQE_FLAGS_ALL`
pub const OFFLOAD_SQE_FLAGS_ALL: u32 = OFFLOAD_SQE_LINK | OFFLOAD_SQE_SKIP_SUCCESS | OFFLOAD_SQE_ASYNC;

/// `OFFLOAD_SQ_NEED_WAKEUP`: the worker sleeps; enter with `OFFLOAD_ENTER_SQ_WAKEUP`.
pub const OFFLOAD_SQ_NEED_WAKEUP: u32 = 1 << 0;
/// `OFFLOAD_SQ_WORKER_GONE`: the worker stopped (its creator thread exited);
/// `offload_enter()` fails with `EOWNERDEAD`.
pub const OFFLOAD_SQ_WORKER_GONE: u32 = 1 << 1;

/// `OFFLOAD_PARAMS_SIZE_VER0`
pub const OFFLOAD_PARAMS_SIZE_VER0: u32 = 128;

/// `OFFLOAD_SETUP_WORKER`
pub const OFFLOAD_SETUP_WORKER: u32 = 1 << 0;
/// `OFFLOAD_SETUP_WORKER_CPU`
pub const OFFLOAD_SETUP_WORKER_CPU: u32 = 1 << 1;
/// `OFFLOAD_SETUP_CQSIZE`
pub const OFFLOAD_SETUP_CQSIZE: u32 = 1 << 2;
/// `OFFLOAD_SETUP_CLOEXEC`
pub const OFFLOAD_SETUP_CLOEXEC: u32 = 1 << 3;

/// `OFFLOAD_MAX_ENTRIES`: the largest SQ.
pub const OFFLOAD_MAX_ENTRIES: u32 = 4096;
/// `OFFLOAD_MAX_CQ_ENTRIES`: the largest CQ.
pub const OFFLOAD_MAX_CQ_ENTRIES: u32 = 2 * OFFLOAD_MAX_ENTRIES;

/// `OFFLOAD_MAX_WORKER_IDLE_MS`: the longest `worker_idle_ms`.
pub const OFFLOAD_MAX_WORKER_IDLE_MS: u32 = 600_000;
/// `OFFLOAD_DEFAULT_WORKER_IDLE_MS`: what a `worker_idle_ms` of 0 asks for.
pub const OFFLOAD_DEFAULT_WORKER_IDLE_MS: u32 = 1000;

/// `OFFLOAD_FEAT_SQE_LINK`
pub const OFFLOAD_FEAT_SQE_LINK: u32 = 1 << 0;
/// `OFFLOAD_FEAT_SQE_SKIP_SUCCESS`
pub const OFFLOAD_FEAT_SQE_SKIP_SUCCESS: u32 = 1 << 1;
/// `OFFLOAD_FEAT_SECCOMP`
pub const OFFLOAD_FEAT_SECCOMP: u32 = 1 << 2;
/// `OFFLOAD_FEAT_WORKER`
pub const OFFLOAD_FEAT_WORKER: u32 = 1 << 3;
/// `OFFLOAD_FEAT_GETEVENTS`
pub const OFFLOAD_FEAT_GETEVENTS: u32 = 1 << 4;
/// `OFFLOAD_FEAT_SQE_ASYNC`
pub const OFFLOAD_FEAT_SQE_ASYNC: u32 = 1 << 5;

/// `OFFLOAD_OFF_RING`: `mmap()` offset of the one shared mapping.
pub const OFFLOAD_OFF_RING: u64 = 0;

/// `OFFLOAD_ENTER_GETEVENTS`
pub const OFFLOAD_ENTER_GETEVENTS: u32 = 1 << 0;
/// `OFFLOAD_ENTER_SQ_WAKEUP`
pub const OFFLOAD_ENTER_SQ_WAKEUP: u32 = 1 << 1;

/// `OFFLOAD_REGISTER_PROBE`
pub const OFFLOAD_REGISTER_PROBE: u32 = 0;
/// `OFFLOAD_REGISTER_ALLOWLIST`
pub const OFFLOAD_REGISTER_ALLOWLIST: u32 = 1;
/// `OFFLOAD_REGISTER_EVENTFD`
pub const OFFLOAD_REGISTER_EVENTFD: u32 = 2;
/// `OFFLOAD_UNREGISTER_EVENTFD`
pub const OFFLOAD_UNREGISTER_EVENTFD: u32 = 3;

/// `OFFLOAD_BITMAP_MAX_WORDS`: largest PROBE/ALLOWLIST bitmap, in `u64` words.
pub const OFFLOAD_BITMAP_MAX_WORDS: u32 = 64;

/// Syscall numbers of `offload_setup`, `offload_enter` and `offload_register`.
///
/// Only x86_64 is wired in the kernel series; elsewhere these are `None` and
/// the kernel backend reports [`Unsupported`](crate::ErrorKind::Unsupported).
pub mod nr {
    /// `__NR_offload_setup`
    #[cfg(target_arch = "x86_64")]
    pub const OFFLOAD_SETUP: Option<i64> = Some(463);
    /// `__NR_offload_enter`
    #[cfg(target_arch = "x86_64")]
    pub const OFFLOAD_ENTER: Option<i64> = Some(464);
    /// `__NR_offload_register`
    #[cfg(target_arch = "x86_64")]
    pub const OFFLOAD_REGISTER: Option<i64> = Some(465);

    /// `__NR_offload_setup`
    #[cfg(not(target_arch = "x86_64"))]
    pub const OFFLOAD_SETUP: Option<i64> = None;
    /// `__NR_offload_enter`
    #[cfg(not(target_arch = "x86_64"))]
    pub const OFFLOAD_ENTER: Option<i64> = None;
    /// `__NR_offload_register`
    #[cfg(not(target_arch = "x86_64"))]
    pub const OFFLOAD_REGISTER: Option<i64> = None;
}

bitflags! {
    /// SQE flags (`OFFLOAD_SQE_*`, the `flags` field of `struct offload_sqe`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct SqeFlags: u32 {
        /// `OFFLOAD_SQE_LINK`: the next entry runs only if this one returned
        /// `>= 0`; otherwise the rest of the chain completes with `-ECANCELED`.
        const LINK = OFFLOAD_SQE_LINK;
        /// `OFFLOAD_SQE_SKIP_SUCCESS`: post no CQE when the call succeeds.
        const SKIP_SUCCESS = OFFLOAD_SQE_SKIP_SUCCESS;
        /// `OFFLOAD_SQE_ASYNC`: on a worker ring the call (with the rest of
        /// its LINK chain, in order) runs on a helper thread, so the worker
        /// goes on draining the SQ; order with other entries is not kept.
        /// If no helper can be started (`RLIMIT_NPROC`, the pids cgroup),
        /// the entry completes with `-EAGAIN` and the rest of its chain
        /// with `-ECANCELED`. Requires [`Features::SQE_ASYNC`] (the emulated backend has it);
        /// on inline rings, and where the feature is missing, the entry
        /// completes with `-EINVAL`.
        const ASYNC = OFFLOAD_SQE_ASYNC;
    }

    /// `offload_setup()` flags (`OFFLOAD_SETUP_*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct SetupFlags: u32 {
        /// `OFFLOAD_SETUP_WORKER`: a kernel worker polls the SQ.
        const WORKER = OFFLOAD_SETUP_WORKER;
        /// `OFFLOAD_SETUP_WORKER_CPU`: pin the worker to `worker_cpu`.
        const WORKER_CPU = OFFLOAD_SETUP_WORKER_CPU;
        /// `OFFLOAD_SETUP_CQSIZE`: `cq_entries` is given.
        const CQSIZE = OFFLOAD_SETUP_CQSIZE;
        /// `OFFLOAD_SETUP_CLOEXEC`: the ring fd is `O_CLOEXEC` (the kernel
        /// makes it so without the flag too).
        const CLOEXEC = OFFLOAD_SETUP_CLOEXEC;
    }

    /// Feature bits returned by `offload_setup()` (`OFFLOAD_FEAT_*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Features: u32 {
        /// `OFFLOAD_FEAT_SQE_LINK`
        const SQE_LINK = OFFLOAD_FEAT_SQE_LINK;
        /// `OFFLOAD_FEAT_SQE_SKIP_SUCCESS`
        const SQE_SKIP_SUCCESS = OFFLOAD_FEAT_SQE_SKIP_SUCCESS;
        /// `OFFLOAD_FEAT_SECCOMP`: entries pass the seccomp filters.
        const SECCOMP = OFFLOAD_FEAT_SECCOMP;
        /// `OFFLOAD_FEAT_WORKER`: `OFFLOAD_SETUP_WORKER` works.
        const WORKER = OFFLOAD_FEAT_WORKER;
        /// `OFFLOAD_FEAT_GETEVENTS`: `OFFLOAD_ENTER_GETEVENTS` works (inline
        /// and worker rings).
        const GETEVENTS = OFFLOAD_FEAT_GETEVENTS;
        /// `OFFLOAD_FEAT_SQE_ASYNC`: `OFFLOAD_SQE_ASYNC` works on worker rings.
        const SQE_ASYNC = OFFLOAD_FEAT_SQE_ASYNC;
        // Bits of later kernels are kept, not dropped.
        const _ = !0;
    }

    /// `offload_enter()` flags (`OFFLOAD_ENTER_*`).
    ///
    /// A `min_complete` other than 0 needs `GETEVENTS`; `SQ_WAKEUP` on an
    /// inline ring is `EINVAL`. Kernels without [`Features::GETEVENTS`]
    /// refuse both flags with `EINVAL`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct EnterFlags: u32 {
        /// `OFFLOAD_ENTER_GETEVENTS`: wait, interruptibly, until the CQ holds
        /// `min_complete` CQEs (inline rings: after running the entries).
        const GETEVENTS = OFFLOAD_ENTER_GETEVENTS;
        /// `OFFLOAD_ENTER_SQ_WAKEUP`: wake a sleeping worker.
        const SQ_WAKEUP = OFFLOAD_ENTER_SQ_WAKEUP;
    }

    /// Bits of the shared SQ flags word (`OFFLOAD_SQ_*`, written by the kernel).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct SqFlags: u32 {
        /// `OFFLOAD_SQ_NEED_WAKEUP`: the worker sleeps; enter with `SQ_WAKEUP`.
        const NEED_WAKEUP = OFFLOAD_SQ_NEED_WAKEUP;
        /// `OFFLOAD_SQ_WORKER_GONE`: the worker stopped for good (the thread
        /// that created the ring exited); `offload_enter()` fails with
        /// `EOWNERDEAD`.
        const WORKER_GONE = OFFLOAD_SQ_WORKER_GONE;
        const _ = !0;
    }
}

/// `offload_register()` opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u32)]
pub enum RegisterOp {
    /// `OFFLOAD_REGISTER_PROBE`: arg `__u64 bitmap[nr_args]`, out.
    Probe = OFFLOAD_REGISTER_PROBE,
    /// `OFFLOAD_REGISTER_ALLOWLIST`: arg `__u64 bitmap[nr_args]`, in.
    Allowlist = OFFLOAD_REGISTER_ALLOWLIST,
    /// `OFFLOAD_REGISTER_EVENTFD`: arg `__s32 *eventfd`, `nr_args` 1.
    Eventfd = OFFLOAD_REGISTER_EVENTFD,
    /// `OFFLOAD_UNREGISTER_EVENTFD`: arg NULL, `nr_args` 0.
    UnregisterEventfd = OFFLOAD_UNREGISTER_EVENTFD,
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{align_of, size_of};

    #[test]
    fn struct_sizes_match_the_abi_notes() {
        assert_eq!(size_of::<offload_sqe>(), 64);
        assert_eq!(size_of::<offload_cqe>(), 16);
        assert_eq!(size_of::<offload_params>(), OFFLOAD_PARAMS_SIZE_VER0 as usize);
        assert_eq!(align_of::<offload_params>(), 8);
    }
}
