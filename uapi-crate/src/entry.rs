//! Submission entries and completions.

use std::io;

use crate::sys::{offload_cqe, offload_sqe, SqeFlags};

/// A submission queue entry (`struct offload_sqe`) being built.
///
/// Building an entry is safe; pushing it is not ([`Ring::push`](crate::Ring::push)),
/// because its arguments may be pointers the kernel will follow. Make one
/// with an operation builder's [`Op::entry`](crate::op::Op::entry) (typed
/// arguments; the entry points into the builder and its buffers) or with
/// [`Entry::syscall`] (raw arguments). The safe ways to pass buffers are
/// [`Ring::batch`](crate::Ring::batch) and
/// [`Ring::push_owned`](crate::Ring::push_owned).
///
/// ```
/// use syscall_offload::op::{Getpid, Op};
/// use syscall_offload::{Entry, SqeFlags};
/// let e = Getpid::new().entry().user_data(7).flags(SqeFlags::LINK);
/// assert_eq!(e.get_user_data(), 7);
/// assert_eq!(e.nr(), libc::SYS_getpid as u32);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct Entry(pub(crate) offload_sqe);

impl Entry {
    /// Any syscall number with six raw arguments (the escape hatch).
    pub fn syscall(nr: u32, args: [u64; 6]) -> Entry {
        Entry(offload_sqe { nr, flags: 0, user_data: 0, args })
    }

    /// Sets `user_data`, copied untouched into the completion.
    ///
    /// Values with bit 63 set are reserved for this crate's own entries
    /// (batches and owned operations); [`Ring::push`](crate::Ring::push)
    /// rejects them.
    pub fn user_data(mut self, user_data: u64) -> Entry {
        self.0.user_data = user_data;
        self
    }

    /// Replaces the flags.
    pub fn flags(mut self, flags: SqeFlags) -> Entry {
        self.0.flags = flags.bits();
        self
    }

    /// Sets raw flag bits, including ones the kernel does not know (which
    /// complete the entry with `-EINVAL`); for testing the kernel.
    pub fn raw_flags(mut self, flags: u32) -> Entry {
        self.0.flags = flags;
        self
    }

    /// The syscall number.
    pub fn nr(&self) -> u32 {
        self.0.nr
    }

    /// The raw arguments.
    pub fn args(&self) -> [u64; 6] {
        self.0.args
    }

    /// The `user_data`.
    pub fn get_user_data(&self) -> u64 {
        self.0.user_data
    }

    /// The flags as the kernel sees them (unknown bits dropped).
    pub fn get_flags(&self) -> SqeFlags {
        SqeFlags::from_bits_truncate(self.0.flags)
    }

    /// The `struct offload_sqe` this entry is.
    pub fn as_sqe(&self) -> &offload_sqe {
        &self.0
    }
}

/// A completion queue entry (`struct offload_cqe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Completion {
    /// The entry's `user_data`.
    pub user_data: u64,
    /// The syscall's return value, or `-errno`.
    pub res: i64,
}

impl Completion {
    /// `res` as an `io::Result`: `Ok(value)` or `Err(errno)`.
    pub fn result(&self) -> io::Result<u64> {
        res_to_result(self.res)
    }
}

impl From<offload_cqe> for Completion {
    fn from(c: offload_cqe) -> Completion {
        Completion { user_data: c.user_data, res: c.res }
    }
}

pub(crate) fn res_to_result(res: i64) -> io::Result<u64> {
    if res < 0 {
        Err(io::Error::from_raw_os_error(res.checked_neg().and_then(|e| i32::try_from(e).ok()).unwrap_or(libc::EIO)))
    } else {
        Ok(res as u64)
    }
}
