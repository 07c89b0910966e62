//! One builder per offloadable system call, generated from the table of
//! offloadable calls (`src/table.rs`).
//!
//! Each builder is a struct named after its call (`Read`, `Sendto`,
//! `Openat`, ...) with a `new` constructor taking typed arguments: file
//! descriptors as [`Fd`] (from a `BorrowedFd`, anything `AsFd`, or an
//! `Arc<OwnedFd>`), buffers as [`Buf`]/[`BufMut`] (borrowed slices or owned
//! `Vec`s), flags as bitflags ([`crate::flags`]). The same builder serves
//! three ways:
//!
//! * the safe scoped batch, [`Batch::push`](crate::Batch::push): borrows
//!   are tied to the batch's lifetime;
//! * owned operations, [`Ring::push_owned`](crate::Ring::push_owned): any
//!   builder whose borrows are `'static`, typically with an owned `Vec` and
//!   an `Arc<OwnedFd>`; the ring keeps the builder until its completion;
//! * [`Op::entry`] for [`Ring::push`](crate::Ring::push) (`unsafe`): the
//!   entry points into the builder's buffers and into the builder itself
//!   (addresses, message headers), which must stay alive and unmoved until
//!   the completion.
//!
//! Calls that create file descriptors add `CLOEXEC` where the call takes
//! it; the batch and owned completions own the new fds. Calls that take
//! pointers the crate cannot type (raw `fcntl` commands, `ioctl`-like
//! options) are left to [`Entry::syscall`](crate::Entry::syscall).
//!
//! ```
//! use syscall_offload::op::{Getpid, Op, Write};
//! use syscall_offload::{Backend, Ring};
//! let mut ring = Ring::builder(8).backend(Backend::Emulated).build()?;
//! let (rx, tx) = std::os::unix::net::UnixStream::pair()?;
//! let ((w, p), res) = ring.batch(|b| (b.push(Write::new(&tx, b"hi")).id(), b.push(Getpid::new()).id()))?;
//! assert_eq!((res.get(w)?, res.get(p)?), (2, u64::from(std::process::id())));
//! assert_eq!(Getpid::new().nr(), libc::SYS_getpid as u32);
//! # drop(rx);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ffi::CStr;
use std::fmt;
use std::io::{IoSlice, IoSliceMut};
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::Arc;

pub use crate::flags::*;
use crate::entry::Entry;
use crate::sys::offload_sqe;

/// A file descriptor argument: borrowed for `'a`, or shared ownership (an
/// `Arc<OwnedFd>`, `'static`, for owned operations).
#[derive(Debug)]
pub enum Fd<'a> {
    /// Borrowed: must stay open for `'a`.
    Borrowed(BorrowedFd<'a>),
    /// Kept open by the builder itself.
    Shared(Arc<OwnedFd>),
}

impl Fd<'_> {
    fn raw(&self) -> u64 {
        match self {
            Fd::Borrowed(f) => f.as_raw_fd() as u64,
            Fd::Shared(f) => f.as_raw_fd() as u64,
        }
    }
}

impl<'a> From<BorrowedFd<'a>> for Fd<'a> {
    fn from(f: BorrowedFd<'a>) -> Fd<'a> {
        Fd::Borrowed(f)
    }
}

impl<'a, T: AsFd> From<&'a T> for Fd<'a> {
    fn from(f: &'a T) -> Fd<'a> {
        Fd::Borrowed(f.as_fd())
    }
}

impl From<Arc<OwnedFd>> for Fd<'static> {
    fn from(f: Arc<OwnedFd>) -> Fd<'static> {
        Fd::Shared(f)
    }
}

/// A directory fd of the `*at()` calls: `None` is `AT_FDCWD`.
pub type DirFd<'a> = Option<Fd<'a>>;

fn dirfd(d: &DirFd<'_>) -> u64 {
    d.as_ref().map_or(libc::AT_FDCWD as u64, Fd::raw)
}

/// A buffer the call reads: a borrowed slice, or an owned `Vec` (all of it).
pub enum Buf<'a> {
    /// Borrowed for `'a`.
    Borrowed(&'a [u8]),
    /// Owned: comes back with an owned completion.
    Owned(Vec<u8>),
}

impl Buf<'_> {
    fn ptr_len(&self) -> (u64, u64) {
        let s: &[u8] = match self {
            Buf::Borrowed(b) => b,
            Buf::Owned(v) => v,
        };
        (s.as_ptr() as u64, s.len() as u64)
    }
}

impl<'a> From<&'a [u8]> for Buf<'a> {
    fn from(b: &'a [u8]) -> Buf<'a> {
        Buf::Borrowed(b)
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for Buf<'a> {
    fn from(b: &'a [u8; N]) -> Buf<'a> {
        Buf::Borrowed(b)
    }
}

impl<'a> From<&'a Vec<u8>> for Buf<'a> {
    fn from(b: &'a Vec<u8>) -> Buf<'a> {
        Buf::Borrowed(b)
    }
}

impl From<Vec<u8>> for Buf<'static> {
    fn from(b: Vec<u8>) -> Buf<'static> {
        Buf::Owned(b)
    }
}

impl fmt::Debug for Buf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Buf({} bytes)", self.ptr_len().1)
    }
}

/// A buffer the call fills: a borrowed slice (all of it), or an owned
/// `Vec`, whose spare capacity (`len()..capacity()`) is filled and which
/// grows by what the call wrote.
pub enum BufMut<'a> {
    /// Borrowed for `'a`.
    Borrowed(&'a mut [u8]),
    /// Owned: comes back with an owned completion, extended.
    Owned(Vec<u8>),
}

impl BufMut<'_> {
    fn ptr_len(&mut self) -> (u64, u64) {
        match self {
            BufMut::Borrowed(b) => (b.as_mut_ptr() as u64, b.len() as u64),
            BufMut::Owned(v) => {
                let spare = v.spare_capacity_mut();
                (spare.as_mut_ptr() as u64, spare.len() as u64)
            }
        }
    }
}

impl<'a> From<&'a mut [u8]> for BufMut<'a> {
    fn from(b: &'a mut [u8]) -> BufMut<'a> {
        BufMut::Borrowed(b)
    }
}

impl<'a, const N: usize> From<&'a mut [u8; N]> for BufMut<'a> {
    fn from(b: &'a mut [u8; N]) -> BufMut<'a> {
        BufMut::Borrowed(b)
    }
}

impl<'a> From<&'a mut Vec<u8>> for BufMut<'a> {
    fn from(b: &'a mut Vec<u8>) -> BufMut<'a> {
        BufMut::Borrowed(b)
    }
}

impl From<Vec<u8>> for BufMut<'static> {
    fn from(b: Vec<u8>) -> BufMut<'static> {
        BufMut::Owned(b)
    }
}

impl fmt::Debug for BufMut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BufMut::Borrowed(b) => write!(f, "BufMut({} bytes)", b.len()),
            BufMut::Owned(v) => write!(f, "BufMut(Vec {}/{})", v.len(), v.capacity()),
        }
    }
}

/// A socket address in its C form, kept inside the builder.
#[derive(Clone, Copy)]
pub struct SockAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl SockAddr {
    fn ptr_len(&self) -> (u64, u64) {
        (&self.storage as *const libc::sockaddr_storage as u64, self.len as u64)
    }
}

impl From<SocketAddr> for SockAddr {
    fn from(addr: SocketAddr) -> SockAddr {
        // SAFETY: sockaddr_storage is plain integers; all zeroes is valid.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe { (&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>().write(sin) };
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe { (&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>().write(sin6) };
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        SockAddr { storage, len: len as libc::socklen_t }
    }
}

impl fmt::Debug for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SockAddr").field("family", &self.storage.ss_family).field("len", &self.len).finish()
    }
}

/// Where `getsockname`/`getpeername` write an address.
#[derive(Clone, Copy)]
pub struct SockAddrBuf {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl Default for SockAddrBuf {
    fn default() -> SockAddrBuf {
        // SAFETY: sockaddr_storage is plain integers; all zeroes is valid.
        SockAddrBuf { storage: unsafe { std::mem::zeroed() }, len: 0 }
    }
}

impl SockAddrBuf {
    /// An empty buffer.
    pub fn new() -> SockAddrBuf {
        SockAddrBuf::default()
    }

    /// Readies it for the kernel: the whole storage, its size in `len`.
    fn ptrs(&mut self) -> (u64, u64) {
        self.len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        (&mut self.storage as *mut libc::sockaddr_storage as u64, &mut self.len as *mut libc::socklen_t as u64)
    }

    /// The address the kernel wrote, if it is IPv4 or IPv6.
    pub fn to_socket_addr(&self) -> Option<SocketAddr> {
        let p = &self.storage as *const libc::sockaddr_storage;
        match self.storage.ss_family as i32 {
            libc::AF_INET if self.len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
                // SAFETY: the storage holds a sockaddr_in (family and length say so).
                let sin = unsafe { &*p.cast::<libc::sockaddr_in>() };
                let ip = std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
                Some(SocketAddr::from((ip, u16::from_be(sin.sin_port))))
            }
            libc::AF_INET6 if self.len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
                // SAFETY: the storage holds a sockaddr_in6.
                let sin6 = unsafe { &*p.cast::<libc::sockaddr_in6>() };
                let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                    ip,
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    /// The length the kernel wrote (`socklen_t`).
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the kernel wrote no address.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for SockAddrBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SockAddrBuf").field("addr", &self.to_socket_addr()).field("len", &self.len).finish()
    }
}

/// A `struct msghdr` with only an iovec (no address, no control data),
/// kept inside the builder.
struct MsgHdr(libc::msghdr);

impl Default for MsgHdr {
    fn default() -> MsgHdr {
        // SAFETY: msghdr is plain integers and pointers; zero is valid.
        MsgHdr(unsafe { std::mem::zeroed() })
    }
}

impl MsgHdr {
    fn with(&mut self, iov: *mut libc::iovec, n: usize) -> u64 {
        self.0.msg_iov = iov;
        self.0.msg_iovlen = n as _;
        &mut self.0 as *mut libc::msghdr as u64
    }
}

impl fmt::Debug for MsgHdr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MsgHdr")
    }
}

// SAFETY: the raw pointers in it point to the iovecs the builder borrows
// (`IoSlice`s are Send and Sync) and are only followed by the kernel.
unsafe impl Send for MsgHdr {}

/// One message of [`Sendmmsg`]: its iovecs; after the call, the bytes sent.
#[repr(transparent)]
pub struct SendMmsgHdr<'a>(libc::mmsghdr, PhantomData<&'a [IoSlice<'a>]>);

impl<'a> SendMmsgHdr<'a> {
    /// A message of `iov` (no address, no control data).
    pub fn new(iov: &'a [IoSlice<'a>]) -> SendMmsgHdr<'a> {
        // SAFETY: mmsghdr is plain integers and pointers; zero is valid.
        let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
        h.msg_hdr.msg_iov = iov.as_ptr() as *mut libc::iovec;
        h.msg_hdr.msg_iovlen = iov.len() as _;
        SendMmsgHdr(h, PhantomData)
    }

    /// `msg_len`: bytes sent of this message.
    pub fn msg_len(&self) -> u32 {
        self.0.msg_len
    }
}

/// One message of [`Recvmmsg`]: its iovecs; after the call, the bytes
/// received and the flags.
#[repr(transparent)]
pub struct RecvMmsgHdr<'a>(libc::mmsghdr, PhantomData<&'a mut [IoSliceMut<'a>]>);

impl<'a> RecvMmsgHdr<'a> {
    /// A message into `iov` (no address, no control data).
    pub fn new(iov: &'a mut [IoSliceMut<'a>]) -> RecvMmsgHdr<'a> {
        // SAFETY: mmsghdr is plain integers and pointers; zero is valid.
        let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
        h.msg_hdr.msg_iov = iov.as_mut_ptr().cast();
        h.msg_hdr.msg_iovlen = iov.len() as _;
        RecvMmsgHdr(h, PhantomData)
    }

    /// `msg_len`: bytes received into this message.
    pub fn msg_len(&self) -> u32 {
        self.0.msg_len
    }

    /// `msg_hdr.msg_flags` (`MSG_TRUNC`, ...).
    pub fn msg_flags(&self) -> i32 {
        self.0.msg_hdr.msg_flags
    }
}

macro_rules! hdr_traits {
    ($($t:ident),*) => {$(
        impl fmt::Debug for $t<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t)).field("msg_len", &self.0.msg_len).finish_non_exhaustive()
            }
        }
        // SAFETY: the pointers inside are those of the iovecs it borrows
        // (Send and Sync); only the kernel follows them.
        unsafe impl Send for $t<'_> {}
    )*};
}
hdr_traits!(SendMmsgHdr, RecvMmsgHdr);

/// What an entry does with file descriptors, for whoever holds its results.
#[derive(Debug)]
#[doc(hidden)]
pub enum FdRole {
    /// None.
    None,
    /// A successful result is a new fd.
    New,
    /// It closes this fd.
    Close(OwnedFd),
    /// It makes this fd's number name another file (`dup3`): the number is
    /// still ours afterwards, whatever the outcome.
    Replace(OwnedFd),
}

/// What an owned operation gives back.
#[derive(Debug, Default)]
#[doc(hidden)]
pub struct Parts {
    pub buf: Option<Vec<u8>>,
    pub fd: Option<Arc<OwnedFd>>,
    /// The result was more than the buffer's spare capacity.
    pub overflow: bool,
}

/// A field of a builder: what it hands back when the builder finishes as
/// an owned operation. `filled`: bytes the call wrote into a filling buffer.
trait Field {
    fn give_back(self, _filled: Option<usize>, _parts: &mut Parts)
    where
        Self: Sized,
    {
    }
}

impl Field for Fd<'_> {
    fn give_back(self, _: Option<usize>, parts: &mut Parts) {
        if let Fd::Shared(f) = self {
            parts.fd.get_or_insert(f);
        }
    }
}

impl Field for DirFd<'_> {
    fn give_back(self, filled: Option<usize>, parts: &mut Parts) {
        if let Some(f) = self {
            f.give_back(filled, parts);
        }
    }
}

impl Field for Buf<'_> {
    fn give_back(self, _: Option<usize>, parts: &mut Parts) {
        if let Buf::Owned(v) = self {
            parts.buf = Some(v);
        }
    }
}

impl Field for BufMut<'_> {
    fn give_back(self, filled: Option<usize>, parts: &mut Parts) {
        if let BufMut::Owned(mut v) = self {
            if let Some(n) = filled {
                if n <= v.capacity() - v.len() {
                    // SAFETY: the kernel initialized `n` bytes of the spare
                    // capacity: only calls that return the count they copied
                    // into the buffer pass `filled` (`RecvFlags` keeps
                    // `MSG_TRUNC` out of `recvfrom`).
                    unsafe { v.set_len(v.len() + n) };
                } else {
                    parts.overflow = true;
                }
            }
            parts.buf = Some(v);
        }
    }
}

macro_rules! plain_fields {
    ($($t:ty),* $(,)?) => { $(impl Field for $t {})* };
}
plain_fields!(
    u32, i32, u64, i64, usize, Option<OwnedFd>, Option<RawFd>, OwnedFd, SockAddr, MsgHdr, Whence, EpollOp, Advice, FcntlArg,
    MsgFlags, RecvFlags, SockFlags, OFlags, AtFlags, RwfFlags, EfdFlags, PipeFlags, DupFlags, RenameFlags,
    FallocFlags, SpliceFlags, SyncFileRangeFlags, TimerfdFlags, FlockOp, Access, FdFlags, std::net::Shutdown,
);
impl<T: ?Sized> Field for &T {}
impl<T: ?Sized> Field for &mut T {}
impl<T: ?Sized> Field for Option<&T> {}
impl<T: ?Sized> Field for Option<&mut T> {}

mod sealed {
    pub trait Sealed {}
}

/// An operation builder: one offloadable system call with its arguments.
///
/// Implemented only by the builders of this module (sealed): the batch and
/// the owned API trust the pointers in [`entry`](Op::entry).
pub trait Op<'a>: sealed::Sealed + fmt::Debug + 'a {
    /// The system call number (`SYS_*` of this architecture).
    fn nr(&self) -> u32;

    /// The system call's name, as in the kernel's table (`"pread64"`).
    fn name(&self) -> &'static str;

    /// The entry: the number and raw arguments. Its pointers point into
    /// the borrowed buffers and into `self` (addresses, message headers):
    /// to push it with [`Ring::push`](crate::Ring::push), keep `self` alive
    /// and in place until the completion.
    fn entry(&mut self) -> Entry;

    /// What the entry does with fds; takes the fd it owns out of `self`.
    #[doc(hidden)]
    fn fd_role(&mut self) -> FdRole;

    /// Finishes an owned operation with result `res`: what it owned.
    #[doc(hidden)]
    fn into_parts(self: Box<Self>, res: i64) -> Parts;
}

/// Six arguments from fewer.
fn args<const N: usize>(a: [u64; N]) -> [u64; 6] {
    let mut out = [0u64; 6];
    out[..N].copy_from_slice(&a);
    out
}

macro_rules! param_ty {
    ($t:ty) => { $t };
    ($t:ty, into) => { impl Into<$t> };
}

macro_rules! fills {
    () => {
        false
    };
    (fills) => {
        true
    };
}

macro_rules! fd_role {
    ($s:ident, plain) => {
        FdRole::None
    };
    ($s:ident, newfd) => {
        FdRole::New
    };
    ($s:ident, close) => {
        reclaim(&mut $s.fd, &mut $s.released).map_or(FdRole::None, FdRole::Close)
    };
    ($s:ident, replace) => {
        reclaim(&mut $s.newfd, &mut $s.released).map_or(FdRole::None, FdRole::Replace)
    };
    ($s:ident, fcntl) => {
        match $s.arg {
            FcntlArg::DupFdCloexec(_) => FdRole::New,
            _ => FdRole::None,
        }
    };
}

macro_rules! builders {
    ($(
        $(#[doc = $doc:literal])*
        $(#[cfg($cfg:meta)])?
        $name:ident $Ty:ident ($nr:ident) $role:ident $($fills:ident)? {
            $($f:ident : $t:ty $(as $conv:ident)?),* $(,)?
        }
        $([ $($xf:ident : $xt:ty = $xi:expr),* $(,)? ])?
        |$s:ident| $args:expr;
    )*) => {
        $(
            $(#[doc = $doc])*
            ///
            #[doc = concat!("Syscall `", stringify!($name), "` (`libc::", stringify!($nr), "`).")]
            $(#[cfg($cfg)])?
            #[derive(Debug)]
            pub struct $Ty<'a> {
                $($f: $t,)*
                $($($xf: $xt,)*)?
                _a: PhantomData<&'a ()>,
            }

            $(#[cfg($cfg)])?
            impl<'a> $Ty<'a> {
                #[doc = concat!("The `", stringify!($name), "` call with these arguments.")]
                #[allow(clippy::new_without_default, clippy::too_many_arguments)]
                pub fn new($($f: param_ty!($t $(, $conv)?)),*) -> $Ty<'a> {
                    $Ty { $($f: $f.into(),)* $($($xf: $xi,)*)? _a: PhantomData }
                }
            }

            $(#[cfg($cfg)])?
            impl sealed::Sealed for $Ty<'_> {}

            $(#[cfg($cfg)])?
            impl<'a> Op<'a> for $Ty<'a> {
                fn nr(&self) -> u32 {
                    libc::$nr as u32
                }

                fn name(&self) -> &'static str {
                    stringify!($name)
                }

                #[allow(clippy::unnecessary_cast)]
                fn entry(&mut self) -> Entry {
                    let $s = self;
                    let args: [u64; 6] = $args;
                    Entry(offload_sqe { nr: libc::$nr as u32, flags: 0, user_data: 0, args })
                }

                fn fd_role(&mut self) -> FdRole {
                    let _s = self;
                    fd_role!(_s, $role)
                }

                #[allow(unused_variables, unused_mut)]
                fn into_parts(self: Box<Self>, res: i64) -> Parts {
                    let mut parts = Parts::default();
                    let filled = (fills!($($fills)?) && res >= 0).then_some(res as usize);
                    let $Ty { $($f,)* .. } = *self;
                    $(Field::give_back($f, filled, &mut parts);)*
                    parts
                }
            }
        )*

        /// Every builder: the syscall name (as in the kernel's table) and
        /// number of this architecture.
        pub const BUILDERS: &[(&str, u32)] = &[$( $(#[cfg($cfg)])? (stringify!($name), libc::$nr as u32), )*];
    };
}

crate::table::offloadable!(builders);

// Used in the table's argument expressions.

/// The entry of `close`/`dup3` hands the fd to the kernel: from then on
/// the builder holds only its number, and no longer closes it on drop.
fn release(fd: &mut Option<OwnedFd>, released: &mut Option<RawFd>) -> u64 {
    if let Some(f) = fd.take() {
        *released = Some(f.into_raw_fd());
    }
    released.map_or(-1i64 as u64, |r| r as u64)
}

/// Takes the fd back for whoever settles the entry's result (a batch, an
/// owned completion).
fn reclaim(fd: &mut Option<OwnedFd>, released: &mut Option<RawFd>) -> Option<OwnedFd> {
    // SAFETY: `released` came from `into_raw_fd` of an fd this builder
    // owned, and only the entry that the batch or the owned API is about
    // to submit (and then settle) may close it.
    fd.take().or_else(|| released.take().map(|r| unsafe { OwnedFd::from_raw_fd(r) }))
}

fn opt_mut<T>(p: &mut Option<&mut T>) -> u64 {
    p.as_deref_mut().map_or(0, |p| p as *mut T as u64)
}

fn opt_ref<T>(p: &Option<&T>) -> u64 {
    p.map_or(0, |p| p as *const T as u64)
}

fn cstr(p: &CStr) -> u64 {
    p.as_ptr() as u64
}

fn fds2(p: &mut [RawFd; 2]) -> u64 {
    p.as_mut_ptr() as u64
}
