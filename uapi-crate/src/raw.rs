//! Thin wrappers of the three system calls, rustix style.
//!
//! Each returns [`io::Result`] and takes or returns [`OwnedFd`]/[`BorrowedFd`].
//! Before issuing a syscall number they confirm that the running kernel has
//! syscall offload ([`kernel_has_offload`]): on kernels without it the numbers
//! 463 to 465 belong to other system calls (from Linux 6.13 on), so calling
//! them blindly would do something else entirely.
//!
//! The uapi structs and constants are re-exported here under their C names.

use std::ffi::c_void;
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::OnceLock;

use nix::sys::mman::{MapFlags, ProtFlags};

pub use crate::sys::nr;
pub use crate::sys::*;
use crate::error::Error;

/// The sysctl whose file exists exactly when the kernel has syscall offload.
///
/// `0`: everyone may create rings, `1`: only `CAP_SYS_ADMIN`, `2`: nobody.
pub const SYSCTL_PATH: &str = "/proc/sys/kernel/offload_disabled";

/// What the running kernel says about syscall offload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KernelSupport {
    /// The kernel has offload and this architecture's syscall numbers are
    /// known; `disabled` is the value of `kernel.offload_disabled`.
    Available {
        /// `kernel.offload_disabled` (0 all users, 1 only `CAP_SYS_ADMIN`, 2 nobody).
        disabled: u8,
    },
    /// No `kernel.offload_disabled` sysctl: the kernel was built without
    /// `CONFIG_SYSCALL_OFFLOAD`.
    Missing,
    /// The kernel has offload but this crate does not know the syscall
    /// numbers of this architecture.
    UnknownArch,
}

/// Reads [`SYSCTL_PATH`] (once per process; the answer cannot change).
pub fn kernel_support() -> KernelSupport {
    static SUPPORT: OnceLock<KernelSupport> = OnceLock::new();
    *SUPPORT.get_or_init(|| match std::fs::read_to_string(SYSCTL_PATH) {
        Err(_) => KernelSupport::Missing,
        Ok(_) if nr::OFFLOAD_SETUP.is_none() => KernelSupport::UnknownArch,
        Ok(s) => KernelSupport::Available { disabled: s.trim().parse().unwrap_or(2) },
    })
}

/// Whether the offload syscalls may be issued on this kernel.
pub fn kernel_has_offload() -> bool {
    matches!(kernel_support(), KernelSupport::Available { .. })
}

pub(crate) fn unsupported_error(what: &'static str) -> Error {
    let detail = match kernel_support() {
        KernelSupport::UnknownArch => {
            "the offload syscalls are not wired for this architecture yet; use Backend::Emulated"
        }
        _ => {
            "the running kernel has no syscall offload (no /proc/sys/kernel/offload_disabled): \
             boot a kernel built with CONFIG_SYSCALL_OFFLOAD=y (see the project README), \
             or use Backend::Emulated"
        }
    };
    Error::unsupported(what, detail)
}

fn check(what: &'static str) -> io::Result<i64> {
    match (kernel_has_offload(), what) {
        (true, "offload_setup") => nr::OFFLOAD_SETUP.ok_or_else(|| unsupported_error(what).into()),
        (true, "offload_enter") => nr::OFFLOAD_ENTER.ok_or_else(|| unsupported_error(what).into()),
        (true, _) => nr::OFFLOAD_REGISTER.ok_or_else(|| unsupported_error(what).into()),
        (false, _) => Err(unsupported_error(what).into()),
    }
}

fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `int offload_setup(__u32 entries, struct offload_params *p)`
///
/// Creates a ring and returns its fd. `params.size` should be
/// `size_of::<offload_params>()`; the kernel fills in the `out` fields.
///
/// Requires a kernel with `CONFIG_SYSCALL_OFFLOAD`; elsewhere it fails with
/// [`io::ErrorKind::Unsupported`] without issuing any syscall.
///
/// ```no_run
/// use syscall_offload::raw;
/// let mut p = raw::offload_params { size: 128, ..Default::default() };
/// let fd = raw::setup(8, &mut p)?;
/// assert_eq!(p.sq_entries, 8);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn setup(entries: u32, params: &mut offload_params) -> io::Result<OwnedFd> {
    let nr = check("offload_setup")?;
    // The kernel accesses `params.size` bytes: never claim more than we have.
    if params.size as usize > std::mem::size_of::<offload_params>() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: `params` is a valid, writable `struct offload_params` of at
    // least `params.size` bytes.
    let ret = unsafe { libc::syscall(nr as libc::c_long, entries, params as *mut offload_params) };
    let fd = cvt(ret)?;
    // SAFETY: on success the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `int offload_enter(int fd, __u32 to_submit, __u32 min_complete, __u32 flags)`
///
/// Returns the number of SQEs consumed.
///
/// # Safety
///
/// The kernel runs up to `to_submit` queued entries, which may read or write
/// any memory their arguments point to: every buffer referenced by a queued
/// entry must be valid for the access the syscall makes.
pub unsafe fn enter(fd: BorrowedFd<'_>, to_submit: u32, min_complete: u32, flags: EnterFlags) -> io::Result<u32> {
    let nr = check("offload_enter")?;
    // SAFETY: the caller guarantees the queued entries are valid; the
    // arguments are plain integers.
    let ret = unsafe {
        libc::syscall(nr as libc::c_long, fd.as_raw_fd(), to_submit, min_complete, flags.bits())
    };
    cvt(ret).map(|n| n as u32)
}

/// `int offload_register(int fd, __u32 opcode, void *arg, __u32 nr_args)`,
/// unchecked. Prefer [`register_probe`], [`register_allowlist`],
/// [`register_eventfd`] and [`unregister_eventfd`].
///
/// # Safety
///
/// `arg` must point to what `opcode` expects for `nr_args` (see
/// [`RegisterOp`]), or be NULL.
pub unsafe fn register(fd: BorrowedFd<'_>, opcode: u32, arg: *mut c_void, nr_args: u32) -> io::Result<i64> {
    let nr = check("offload_register")?;
    // SAFETY: the caller guarantees `arg`.
    let ret = unsafe { libc::syscall(nr as libc::c_long, fd.as_raw_fd(), opcode, arg, nr_args) };
    #[allow(clippy::useless_conversion)] // c_long is i32 on 32-bit targets
    cvt(ret).map(i64::from)
}

fn bitmap_words(len: usize) -> io::Result<u32> {
    if len == 0 || len > OFFLOAD_BITMAP_MAX_WORDS as usize {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(len as u32)
}

/// `offload_register(fd, OFFLOAD_REGISTER_PROBE, bitmap, bitmap.len())`
///
/// Sets bit `n` of `bitmap` iff syscall `n` may be offloaded on this ring;
/// returns the number of meaningful bits (the kernel's `NR_syscalls`).
/// `bitmap` must have 1 to 64 words.
pub fn register_probe(fd: BorrowedFd<'_>, bitmap: &mut [u64]) -> io::Result<u32> {
    let n = bitmap_words(bitmap.len())?;
    // SAFETY: `bitmap` is writable for `n` words.
    unsafe { register(fd, OFFLOAD_REGISTER_PROBE, bitmap.as_mut_ptr().cast(), n) }.map(|n| n as u32)
}

/// `offload_register(fd, OFFLOAD_REGISTER_ALLOWLIST, bitmap, bitmap.len())`
///
/// Narrows the ring's allowlist to `allowlist & bitmap` (bits past the
/// bitmap count as 0). The allowlist can only shrink.
pub fn register_allowlist(fd: BorrowedFd<'_>, bitmap: &[u64]) -> io::Result<()> {
    let n = bitmap_words(bitmap.len())?;
    // SAFETY: the kernel only reads `n` words of `bitmap`.
    unsafe { register(fd, OFFLOAD_REGISTER_ALLOWLIST, bitmap.as_ptr() as *mut c_void, n) }.map(drop)
}

/// `offload_register(fd, OFFLOAD_REGISTER_EVENTFD, &eventfd, 1)`
///
/// The eventfd is signalled after an `offload_enter` (or the worker) posts
/// CQEs. `EBUSY` if one is already registered.
pub fn register_eventfd(fd: BorrowedFd<'_>, eventfd: BorrowedFd<'_>) -> io::Result<()> {
    let mut efd: i32 = eventfd.as_raw_fd();
    // SAFETY: the kernel reads one `__s32`.
    unsafe { register(fd, OFFLOAD_REGISTER_EVENTFD, (&mut efd as *mut i32).cast(), 1) }.map(drop)
}

/// `offload_register(fd, OFFLOAD_UNREGISTER_EVENTFD, NULL, 0)`; `ENXIO` if
/// no eventfd is registered.
pub fn unregister_eventfd(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: NULL is what this opcode takes.
    unsafe { register(fd, OFFLOAD_UNREGISTER_EVENTFD, std::ptr::null_mut(), 0) }.map(drop)
}

/// A shared memory mapping, unmapped on drop.
///
/// [`Mmap::ring`] maps a ring fd (`mmap(NULL, len, PROT_READ | PROT_WRITE,
/// MAP_SHARED | MAP_POPULATE, fd, OFFLOAD_OFF_RING)`). The mapping keeps the
/// ring alive in the kernel by itself, but owners should still unmap it
/// before they close the fd.
#[derive(Debug)]
pub struct Mmap {
    ptr: NonNull<c_void>,
    len: usize,
}

// SAFETY: the mapping is plain memory; access to it is synchronized by the
// users of the pointer (the ring's atomics).
unsafe impl Send for Mmap {}
// SAFETY: as above; `Mmap` itself only hands out a raw pointer.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0)`
    pub fn ring(fd: BorrowedFd<'_>, len: u64) -> io::Result<Mmap> {
        let len = usize::try_from(len)
            .ok()
            .and_then(NonZeroUsize::new)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: a new mapping at an address the kernel picks; nothing is
        // aliased.
        let ptr = unsafe {
            nix::sys::mman::mmap(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED | MapFlags::MAP_POPULATE,
                fd,
                OFFLOAD_OFF_RING as libc::off_t,
            )
        }
        .map_err(io::Error::from)?;
        Ok(Mmap { ptr, len: len.get() })
    }

    /// Anonymous zeroed private memory (used by the emulated backend).
    pub(crate) fn anonymous(len: usize) -> io::Result<Mmap> {
        let len = NonZeroUsize::new(len).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: a new anonymous mapping; nothing is aliased.
        let ptr = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE,
            )
        }
        .map_err(io::Error::from)?;
        Ok(Mmap { ptr, len: len.get() })
    }

    /// Start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr().cast()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: a mapping has at least one byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: we own the mapping and nobody uses the pointer after drop.
        // munmap of a valid mapping cannot fail in a way we could handle.
        let _ = unsafe { nix::sys::mman::munmap(self.ptr, self.len) };
    }
}
