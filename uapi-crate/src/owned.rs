//! Owned-buffer operations: buffers move into the ring and come back with
//! the completion, so nothing borrowed can dangle however long the kernel
//! takes. This is the safe interface for worker rings, and works on inline
//! rings too.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use bitflags::bitflags;

use crate::entry::res_to_result;
use crate::sys::offload_sqe;

bitflags! {
    /// `recvfrom()` flags (`MSG_*`) an [`OwnedOp::recv`] may use.
    ///
    /// Only flags after which the call returns the number of bytes it
    /// copied into the buffer: the crate extends the buffer by that count.
    /// `MSG_TRUNC` is not one (with it the kernel reports the length of the
    /// datagram, or discards stream data without copying it, so the count
    /// covers bytes that were never written); nor are unknown bits.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct RecvFlags: i32 {
        /// `MSG_DONTWAIT`: fail with `EAGAIN` instead of blocking.
        const DONTWAIT = libc::MSG_DONTWAIT;
        /// `MSG_PEEK`: copy the data without taking it off the queue.
        const PEEK = libc::MSG_PEEK;
        /// `MSG_WAITALL`: block until the buffer is full (or EOF, an error,
        /// a signal).
        const WAITALL = libc::MSG_WAITALL;
        /// `MSG_OOB`: the out-of-band byte.
        const OOB = libc::MSG_OOB;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
    Pread(u64),
    Pwrite(u64),
    Send(i32),
    Recv(RecvFlags),
}

/// An operation that owns its buffer and file descriptor.
///
/// Reads fill the spare capacity of the `Vec` (from `len()` to
/// `capacity()`) and extend it by what was read; writes send the whole
/// `Vec`.
///
/// ```
/// use std::sync::Arc;
/// use std::os::fd::OwnedFd;
/// use syscall_offload::{Backend, OwnedOp, Ring};
///
/// let mut ring = Ring::builder(8).backend(Backend::Emulated).build()?;
/// let zero: OwnedFd = std::fs::File::open("/dev/zero")?.into();
/// let ticket = ring.push_owned(OwnedOp::read(Arc::new(zero), Vec::with_capacity(16)))
///     .map_err(|(e, _op)| e)?;
/// ring.submit()?;
/// let done: Vec<_> = ring.owned_completions().collect();
/// assert_eq!(done[0].ticket, ticket);
/// assert_eq!(*done[0].result.as_ref().unwrap(), 16);
/// assert_eq!(done[0].buf, vec![0u8; 16]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct OwnedOp {
    kind: Kind,
    fd: Arc<OwnedFd>,
    buf: Vec<u8>,
}

impl OwnedOp {
    /// `read(fd, spare capacity of buf)`
    pub fn read(fd: Arc<OwnedFd>, buf: Vec<u8>) -> OwnedOp {
        OwnedOp { kind: Kind::Read, fd, buf }
    }
    /// `write(fd, buf)`
    pub fn write(fd: Arc<OwnedFd>, buf: Vec<u8>) -> OwnedOp {
        OwnedOp { kind: Kind::Write, fd, buf }
    }
    /// `pread64(fd, spare capacity of buf, offset)`
    pub fn pread(fd: Arc<OwnedFd>, buf: Vec<u8>, offset: u64) -> OwnedOp {
        OwnedOp { kind: Kind::Pread(offset), fd, buf }
    }
    /// `pwrite64(fd, buf, offset)`
    pub fn pwrite(fd: Arc<OwnedFd>, buf: Vec<u8>, offset: u64) -> OwnedOp {
        OwnedOp { kind: Kind::Pwrite(offset), fd, buf }
    }
    /// `sendto(fd, buf, flags, NULL, 0)`
    pub fn send(fd: Arc<OwnedFd>, buf: Vec<u8>, flags: i32) -> OwnedOp {
        OwnedOp { kind: Kind::Send(flags), fd, buf }
    }
    /// `recvfrom(fd, spare capacity of buf, flags, NULL, NULL)`
    ///
    /// `flags` is a [`RecvFlags`]: `MSG_TRUNC` would make the kernel report
    /// bytes it never copied into the buffer.
    pub fn recv(fd: Arc<OwnedFd>, buf: Vec<u8>, flags: RecvFlags) -> OwnedOp {
        OwnedOp { kind: Kind::Recv(flags), fd, buf }
    }

    /// The operation's completion: its result, and its buffer extended by
    /// what a read copied into it.
    pub(crate) fn complete(mut self, ticket: Ticket, res: i64) -> OwnedCompletion {
        let result = res_to_result(res).and_then(|n| {
            let n = usize::try_from(n).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
            if self.reads() {
                let spare = self.buf.capacity() - self.buf.len();
                if n > spare {
                    return Err(io::Error::from_raw_os_error(libc::EIO));
                }
                // SAFETY: the kernel initialized `n <= spare` bytes past
                // `len`: every owned read returns the count it copied
                // (`RecvFlags` keeps `MSG_TRUNC` out of `recvfrom`).
                unsafe { self.buf.set_len(self.buf.len() + n) };
            }
            Ok(n)
        });
        OwnedCompletion { ticket, result, buf: self.buf, fd: self.fd }
    }

    fn reads(&self) -> bool {
        matches!(self.kind, Kind::Read | Kind::Pread(_) | Kind::Recv(_))
    }

    pub(crate) fn sqe(&mut self, user_data: u64) -> offload_sqe {
        let fd = self.fd.as_raw_fd() as u64;
        let (ptr, len) = if self.reads() {
            let spare = self.buf.spare_capacity_mut();
            (spare.as_mut_ptr() as u64, spare.len() as u64)
        } else {
            (self.buf.as_ptr() as u64, self.buf.len() as u64)
        };
        let (nr, args) = match self.kind {
            Kind::Read => (libc::SYS_read, [fd, ptr, len, 0, 0, 0]),
            Kind::Write => (libc::SYS_write, [fd, ptr, len, 0, 0, 0]),
            Kind::Pread(off) => (libc::SYS_pread64, [fd, ptr, len, off, 0, 0]),
            Kind::Pwrite(off) => (libc::SYS_pwrite64, [fd, ptr, len, off, 0, 0]),
            Kind::Send(fl) => (libc::SYS_sendto, [fd, ptr, len, fl as u64, 0, 0]),
            Kind::Recv(fl) => (libc::SYS_recvfrom, [fd, ptr, len, fl.bits() as u64, 0, 0]),
        };
        offload_sqe { nr: nr as u32, flags: 0, user_data, args }
    }
}

/// Identifies an owned operation until its completion comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub(crate) u64);

/// A finished owned operation: its result and everything it owned.
pub struct OwnedCompletion {
    /// The ticket [`Ring::push_owned`](crate::Ring::push_owned) returned.
    pub ticket: Ticket,
    /// Bytes transferred, or the error.
    pub result: io::Result<usize>,
    /// The buffer (extended by what was read, for reads).
    pub buf: Vec<u8>,
    /// The file descriptor.
    pub fd: Arc<OwnedFd>,
}

impl fmt::Debug for OwnedCompletion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedCompletion")
            .field("ticket", &self.ticket)
            .field("result", &self.result)
            .field("buf.len", &self.buf.len())
            .finish()
    }
}

