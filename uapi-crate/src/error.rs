//! The crate's one error type.

use std::fmt;
use std::io;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A system call failed; [`Error::errno`] says why.
    Os,
    /// The running kernel has no syscall offload (or this architecture is not
    /// wired), and the [`Kernel`](crate::Backend::Kernel) backend was asked for.
    Unsupported,
    /// An argument was rejected before reaching the kernel (the errno is
    /// `EINVAL` or what the kernel would have said).
    InvalidInput,
    /// The submission queue has no free slot: submit first.
    SubmissionQueueFull,
    /// The ring was created by another process (this one was forked from it).
    /// A ring is usable only from the process that created it.
    Forked,
    /// The operation needs worker mode, which the running kernel lacks
    /// (`OFFLOAD_FEAT_WORKER` is not set; errno `EOPNOTSUPP`).
    WorkerUnsupported,
    /// The ring's worker stopped for good: the thread that created the
    /// ring exited (`OFFLOAD_SQ_WORKER_GONE`; errno `EOWNERDEAD`). Queued
    /// entries will not run; create a new ring.
    WorkerGone,
    /// The worker cannot be pinned to the CPU given to
    /// [`Builder::cpu`](crate::Builder::cpu): it does not exist, is
    /// offline, or is outside this process's cpuset (errno `EINVAL`, as
    /// `offload_setup` says for `OFFLOAD_SETUP_WORKER_CPU`). A CPU outside
    /// the caller's own affinity mask is no reason: the kernel accepts it.
    WorkerCpuUnavailable,
}

/// An error of this crate: the errno, what failed, and a [`ErrorKind`].
///
/// Converts into [`std::io::Error`] (keeping the errno where there is one),
/// so `?` works in functions that return `io::Result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    errno: i32,
    what: &'static str,
    detail: Option<String>,
}

/// `Result<T, syscall_offload::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn os(what: &'static str, errno: i32) -> Self {
        Error { kind: ErrorKind::Os, errno, what, detail: None }
    }

    pub(crate) fn from_io(what: &'static str, e: &io::Error) -> Self {
        Error::os(what, e.raw_os_error().unwrap_or(libc::EIO))
    }

    pub(crate) fn new(kind: ErrorKind, errno: i32, what: &'static str, detail: impl Into<String>) -> Self {
        Error { kind, errno, what, detail: Some(detail.into()) }
    }

    pub(crate) fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, libc::EINVAL, what, detail)
    }

    pub(crate) fn unsupported(what: &'static str, detail: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unsupported, libc::ENOSYS, what, detail)
    }

    pub(crate) fn forked(what: &'static str) -> Self {
        Error::new(
            ErrorKind::Forked,
            libc::EPERM,
            what,
            "the ring belongs to the process that created it; create a new ring after fork()",
        )
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The errno (`libc::E*`) that describes the failure.
    pub fn errno(&self) -> i32 {
        self.errno
    }

    /// What failed, e.g. `"offload_setup"` or `"mmap ring"`.
    pub fn what(&self) -> &'static str {
        self.what
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.what)?;
        match &self.detail {
            Some(d) => write!(f, "{d} ({})", io::Error::from_raw_os_error(self.errno)),
            None => write!(f, "{}", io::Error::from_raw_os_error(self.errno)),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match e.kind {
            ErrorKind::Unsupported | ErrorKind::WorkerUnsupported => io::ErrorKind::Unsupported,
            ErrorKind::InvalidInput => io::ErrorKind::InvalidInput,
            _ => io::Error::from_raw_os_error(e.errno).kind(),
        };
        io::Error::new(kind, e)
    }
}
