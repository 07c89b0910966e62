//! Owned operations: any operation builder ([`crate::op`]) whose borrows
//! are `'static` (typically an owned `Vec` buffer and an `Arc<OwnedFd>`)
//! moves into the ring and comes back with its completion, so nothing
//! borrowed can dangle however long the kernel takes. This is the safe
//! interface for worker rings, and works on inline rings too.

use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::entry::res_to_result;
use crate::op::{FdRole, Op};

/// An owned operation in flight: the builder (which the entry points
/// into) and what it does with fds.
#[derive(Debug)]
pub(crate) struct InFlight {
    pub(crate) op: Box<dyn Op<'static> + Send>,
    pub(crate) role: FdRole,
}

impl InFlight {
    /// The operation's completion: its result, its buffer (extended by what
    /// a read copied into it) and its fds.
    pub(crate) fn complete(self, ticket: Ticket, res: i64) -> OwnedCompletion {
        let new_fd = crate::batch::settle(self.role, Some(res), &[]);
        let parts = self.op.into_parts(res);
        let result = if parts.overflow {
            // A read that says it copied more than the buffer could hold.
            Err(io::Error::from_raw_os_error(libc::EIO))
        } else {
            res_to_result(res)
                .and_then(|n| usize::try_from(n).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW)))
        };
        OwnedCompletion { ticket, result, buf: parts.buf.unwrap_or_default(), fd: parts.fd, new_fd }
    }
}

/// Identifies an owned operation until its completion comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub(crate) u64);

/// A finished owned operation: its result and everything it owned.
///
/// ```
/// use std::sync::Arc;
/// use std::os::fd::OwnedFd;
/// use syscall_offload::op::Read;
/// use syscall_offload::{Backend, Ring};
///
/// let mut ring = Ring::builder(8).backend(Backend::Emulated).build()?;
/// let zero: Arc<OwnedFd> = Arc::new(std::fs::File::open("/dev/zero")?.into());
/// let ticket = ring.push_owned(Read::new(zero, Vec::with_capacity(16))).map_err(|(e, _op)| e)?;
/// ring.submit()?;
/// let done: Vec<_> = ring.owned_completions().collect();
/// assert_eq!(done[0].ticket, ticket);
/// assert_eq!(*done[0].result.as_ref().unwrap(), 16);
/// assert_eq!(done[0].buf, vec![0u8; 16]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct OwnedCompletion {
    /// The ticket [`Ring::push_owned`](crate::Ring::push_owned) returned.
    pub ticket: Ticket,
    /// The call's result (bytes transferred, for reads and writes), or the
    /// error.
    pub result: io::Result<usize>,
    /// The operation's owned buffer ([`Buf::Owned`](crate::op::Buf::Owned)
    /// or [`BufMut::Owned`](crate::op::BufMut::Owned), the latter extended
    /// by what was read); empty if it had none.
    pub buf: Vec<u8>,
    /// The operation's shared fd ([`Fd::Shared`](crate::op::Fd::Shared)),
    /// if it had one.
    pub fd: Option<Arc<OwnedFd>>,
    /// The fd the call created (`socket`, `accept4`, `openat`, ...), the
    /// fd of a `close` that did not close it, or `dup3`'s `newfd`.
    pub new_fd: Option<OwnedFd>,
}

impl fmt::Debug for OwnedCompletion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedCompletion")
            .field("ticket", &self.ticket)
            .field("result", &self.result)
            .field("buf.len", &self.buf.len())
            .field("new_fd", &self.new_fd)
            .finish()
    }
}
