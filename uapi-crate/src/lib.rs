//! Batch Linux system calls through an **offload ring**.
//!
//! An offload ring is a file descriptor plus one shared mapping holding a
//! submission queue (SQ) of system call requests and a completion queue (CQ)
//! of their results. `offload_enter(2)` runs up to N queued calls in the
//! calling thread: N system calls for one mode switch. The kernel side is
//! the `CONFIG_SYSCALL_OFFLOAD` patch series (`include/uapi/linux/offload.h`);
//! this crate is its user-space interface.
//!
//! # Inline and worker rings
//!
//! * **Inline** (the default): [`Ring::submit`] runs the queued entries now,
//!   in order, in this thread, and every completion is posted before it
//!   returns.
//! * **Worker** ([`Builder::worker`], optionally pinned with
//!   [`Builder::cpu`]): a worker thread of the process polls the SQ and runs
//!   the entries while the application goes on. [`Ring::submit`] only
//!   publishes the tail, and makes a system call only to wake a worker that
//!   went to sleep after its idle time (`OFFLOAD_SQ_NEED_WAKEUP`, read after
//!   a full barrier). [`Ring::submit_and_wait`] and [`Ring::wait`] wait for
//!   completions (`OFFLOAD_ENTER_GETEVENTS`), [`Ring::eventfd`] gives an fd
//!   for epoll, and [`Ring::split`] a [`SubmissionQueue`] and a
//!   [`CompletionQueue`] for two threads. Kernels without worker mode fail
//!   with [`ErrorKind::WorkerUnsupported`]; the emulated backend runs the
//!   worker on a `std::thread`. A worker stops for good when the thread that
//!   created the ring exits ([`ErrorKind::WorkerGone`]).
//!
//! # Safety model
//!
//! An entry carries raw syscall arguments, some of them pointers the kernel
//! will follow later. The operations are built one way, with the builders
//! of [`op`] (one per offloadable call, generated from the crate's table
//! of offloadable calls: typed flags, `BorrowedFd`s, borrowed or owned
//! buffers), and used at three levels:
//!
//! * [`Ring::push`] is `unsafe` ([`op::Op::entry`] or [`Entry::syscall`]):
//!   the caller promises the buffers (and the builder) outlive the entry.
//! * [`Ring::batch`] is safe: its closure records entries whose buffers are
//!   borrowed for the whole call, and it returns only when every entry has
//!   completed (or was taken back out of the SQ). A panicking closure
//!   submits nothing.
//! * [`Ring::push_owned`] is safe for asynchronous use (worker rings): a
//!   builder with `'static` borrows (an owned `Vec`, an `Arc<OwnedFd>`)
//!   moves into the ring and comes back with the completion; a ring dropped
//!   with operations in flight waits for them or leaks them, never frees
//!   what the worker may still write.
//!
//! ```
//! use std::os::fd::AsFd;
//! use syscall_offload::Ring;
//! use syscall_offload::op;
//!
//! let mut ring = Ring::new(32)?; // Backend::Auto
//! let file = std::fs::File::open("/dev/zero")?;
//! let (mut a, mut b) = ([1u8; 8], [1u8; 8]);
//! let (_, results) = ring.batch(|batch| {
//!     batch.push(op::Read::new(file.as_fd(), &mut a));
//!     batch.push(op::Read::new(file.as_fd(), &mut b));
//! })?;
//! assert!(results.iter().all(|r| r.unwrap() == 8));
//! assert_eq!(a, [0; 8]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Backends
//!
//! [`Backend::Kernel`] uses the offload syscalls. Before issuing their
//! numbers the crate checks that `/proc/sys/kernel/offload_disabled` exists,
//! because on kernels without offload (6.13 and later) the same numbers are
//! other system calls; without it the kernel backend is
//! [`ErrorKind::Unsupported`], with a message saying what to do.
//! [`Backend::Emulated`] runs each entry as a direct system call in user
//! space with the kernel's semantics (order, link chains, skip-success, CQ
//! back-pressure, `-EOPNOTSUPP` outside the offloadable table), for
//! unpatched kernels and tests. [`Backend::Auto`] picks the kernel when it
//! can, and the emulated backend when the kernel lacks offload or refuses
//! `offload_setup` (`EPERM`, `EACCES`, `ENOSYS`: `kernel.offload_disabled`,
//! a security module, a container's seccomp profile). [`Ring::backend`]
//! always tells which one runs, and [`Ring::fallback`] why entries run as
//! direct calls.
//!
//! The kernel runs no entries for a task traced with `PTRACE_SYSCALL`
//! (strace) or with syscall user dispatch on: `offload_enter` fails with
//! `EPERM`, so that the tracer sees every call. The crate then makes the
//! queued calls itself, with the ring's rules, and [`Ring::fallback`] says
//! so until the kernel runs a submission again.
//!
//! # Layers
//!
//! * `sys` (private, re-exported in [`raw`]): `#[repr(C)]` mirrors of the
//!   uapi header with zerocopy derives, constants, syscall numbers.
//! * [`raw`]: `setup`/`enter`/`register` returning `io::Result` with
//!   `OwnedFd`/`BorrowedFd`, and the RAII [`raw::Mmap`].
//! * [`Ring`]: the queues (Acquire/Release on the indices), registration,
//!   [`Ring::batch`], owned operations.
//! * [`op`] and [`flags`]: the operation builders and their flag types.
//!
//! Errors are one type, [`Error`]: the errno, what failed, and an
//! [`ErrorKind`]. It converts into `std::io::Error`.
//!
//! A ring belongs to the process that created it: after `fork()` the child
//! gets [`ErrorKind::Forked`] (a `pthread_atfork` handler counts forks, so
//! the check costs no system call).
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod batch;
mod emulated;
mod entry;
mod error;
pub mod flags;
pub mod op;
mod owned;
mod queue;
pub mod raw;
mod ring;
mod split;
mod sys;
mod table;

pub use batch::{Batch, BatchError, BatchResults, OpId, OpRef};
pub use entry::{Completion, Entry};
pub use error::{Error, ErrorKind, Result};
pub use flags::RecvFlags;
pub use owned::{OwnedCompletion, Ticket};
pub use ring::{Backend, Builder, EventFd, Probe, Ring};
pub use split::{CompletionQueue, Completions, SubmissionQueue};
pub use sys::{EnterFlags, Features, RegisterOp, SetupFlags, SqFlags, SqeFlags};
