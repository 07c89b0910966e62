//! Typed flag sets and small enums of the operation builders ([`crate::op`]).
//!
//! Each set names its C constants; sets marked "open" keep bits they do not
//! name (`from_bits_retain`), because the kernel checks them: an unknown
//! bit makes the call fail with `EINVAL`, never anything unsafe.

use bitflags::bitflags;

bitflags! {
    /// `send*()` flags (`MSG_*`); open.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct MsgFlags: i32 {
        /// `MSG_DONTWAIT`
        const DONTWAIT = libc::MSG_DONTWAIT;
        /// `MSG_NOSIGNAL`: `EPIPE` without `SIGPIPE`.
        const NOSIGNAL = libc::MSG_NOSIGNAL;
        /// `MSG_MORE`
        const MORE = libc::MSG_MORE;
        /// `MSG_EOR`
        const EOR = libc::MSG_EOR;
        /// `MSG_OOB`
        const OOB = libc::MSG_OOB;
        /// `MSG_DONTROUTE`
        const DONTROUTE = libc::MSG_DONTROUTE;
        const _ = !0;
    }

    /// `recv*()` flags (`MSG_*`).
    ///
    /// Only flags after which the call returns the number of bytes it
    /// copied into the buffer: an owned read extends its buffer by that
    /// count. `MSG_TRUNC` is not one (with it the kernel reports the length
    /// of the datagram, or discards stream data without copying it, so the
    /// count covers bytes that were never written); nor are unknown bits.
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

    /// Socket creation flags (`SOCK_NONBLOCK`; `SOCK_CLOEXEC` is always
    /// added) of `socket`, `socketpair` and `accept4`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct SockFlags: i32 {
        /// `SOCK_NONBLOCK`
        const NONBLOCK = libc::SOCK_NONBLOCK;
        /// `SOCK_CLOEXEC` (added anyway).
        const CLOEXEC = libc::SOCK_CLOEXEC;
    }

    /// `open()` flags (`O_*`); open. Read-only is the empty set;
    /// `O_CLOEXEC` is always added by `openat`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct OFlags: i32 {
        /// `O_WRONLY`
        const WRONLY = libc::O_WRONLY;
        /// `O_RDWR`
        const RDWR = libc::O_RDWR;
        /// `O_CREAT`
        const CREAT = libc::O_CREAT;
        /// `O_EXCL`
        const EXCL = libc::O_EXCL;
        /// `O_TRUNC`
        const TRUNC = libc::O_TRUNC;
        /// `O_APPEND`
        const APPEND = libc::O_APPEND;
        /// `O_NONBLOCK`
        const NONBLOCK = libc::O_NONBLOCK;
        /// `O_DIRECTORY`
        const DIRECTORY = libc::O_DIRECTORY;
        /// `O_NOFOLLOW`
        const NOFOLLOW = libc::O_NOFOLLOW;
        /// `O_PATH`
        const PATH = libc::O_PATH;
        /// `O_TMPFILE`
        const TMPFILE = libc::O_TMPFILE;
        /// `O_DIRECT`
        const DIRECT = libc::O_DIRECT;
        /// `O_SYNC`
        const SYNC = libc::O_SYNC;
        /// `O_DSYNC`
        const DSYNC = libc::O_DSYNC;
        /// `O_NOATIME`
        const NOATIME = libc::O_NOATIME;
        /// `O_NOCTTY`
        const NOCTTY = libc::O_NOCTTY;
        /// `O_CLOEXEC`
        const CLOEXEC = libc::O_CLOEXEC;
        const _ = !0;
    }

    /// `AT_*` flags of the `*at()` calls; open.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct AtFlags: i32 {
        /// `AT_SYMLINK_NOFOLLOW`
        const SYMLINK_NOFOLLOW = libc::AT_SYMLINK_NOFOLLOW;
        /// `AT_EMPTY_PATH`
        const EMPTY_PATH = libc::AT_EMPTY_PATH;
        /// `AT_REMOVEDIR` (`unlinkat`)
        const REMOVEDIR = libc::AT_REMOVEDIR;
        /// `AT_EACCESS` (`faccessat2`)
        const EACCESS = libc::AT_EACCESS;
        /// `AT_NO_AUTOMOUNT`
        const NO_AUTOMOUNT = libc::AT_NO_AUTOMOUNT;
        /// `AT_STATX_FORCE_SYNC`
        const STATX_FORCE_SYNC = libc::AT_STATX_FORCE_SYNC;
        /// `AT_STATX_DONT_SYNC`
        const STATX_DONT_SYNC = libc::AT_STATX_DONT_SYNC;
        const _ = !0;
    }

    /// `RWF_*` flags of `preadv2`/`pwritev2`; open.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct RwfFlags: i32 {
        /// `RWF_HIPRI`
        const HIPRI = libc::RWF_HIPRI;
        /// `RWF_DSYNC`
        const DSYNC = libc::RWF_DSYNC;
        /// `RWF_SYNC`
        const SYNC = libc::RWF_SYNC;
        /// `RWF_NOWAIT`
        const NOWAIT = libc::RWF_NOWAIT;
        /// `RWF_APPEND`
        const APPEND = libc::RWF_APPEND;
        const _ = !0;
    }

    /// `eventfd2` flags (`EFD_*`; `EFD_CLOEXEC` is always added).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct EfdFlags: i32 {
        /// `EFD_SEMAPHORE`
        const SEMAPHORE = libc::EFD_SEMAPHORE;
        /// `EFD_NONBLOCK`
        const NONBLOCK = libc::EFD_NONBLOCK;
    }

    /// `pipe2` flags (`O_NONBLOCK`, `O_DIRECT`; `O_CLOEXEC` is always added).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct PipeFlags: i32 {
        /// `O_NONBLOCK`
        const NONBLOCK = libc::O_NONBLOCK;
        /// `O_DIRECT`: packet mode.
        const DIRECT = libc::O_DIRECT;
    }

    /// `dup3` flags (`O_CLOEXEC`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct DupFlags: i32 {
        /// `O_CLOEXEC`
        const CLOEXEC = libc::O_CLOEXEC;
    }

    /// `renameat2` flags (`RENAME_*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct RenameFlags: u32 {
        /// `RENAME_NOREPLACE`
        const NOREPLACE = libc::RENAME_NOREPLACE;
        /// `RENAME_EXCHANGE`
        const EXCHANGE = libc::RENAME_EXCHANGE;
        /// `RENAME_WHITEOUT`
        const WHITEOUT = libc::RENAME_WHITEOUT;
    }

    /// `fallocate` modes (`FALLOC_FL_*`); the empty set allocates.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct FallocFlags: i32 {
        /// `FALLOC_FL_KEEP_SIZE`
        const KEEP_SIZE = libc::FALLOC_FL_KEEP_SIZE;
        /// `FALLOC_FL_PUNCH_HOLE`
        const PUNCH_HOLE = libc::FALLOC_FL_PUNCH_HOLE;
        /// `FALLOC_FL_ZERO_RANGE`
        const ZERO_RANGE = libc::FALLOC_FL_ZERO_RANGE;
        /// `FALLOC_FL_COLLAPSE_RANGE`
        const COLLAPSE_RANGE = libc::FALLOC_FL_COLLAPSE_RANGE;
        /// `FALLOC_FL_INSERT_RANGE`
        const INSERT_RANGE = libc::FALLOC_FL_INSERT_RANGE;
    }

    /// `splice`/`tee` flags (`SPLICE_F_*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct SpliceFlags: u32 {
        /// `SPLICE_F_MOVE`
        const MOVE = libc::SPLICE_F_MOVE;
        /// `SPLICE_F_NONBLOCK`
        const NONBLOCK = libc::SPLICE_F_NONBLOCK;
        /// `SPLICE_F_MORE`
        const MORE = libc::SPLICE_F_MORE;
        /// `SPLICE_F_GIFT`
        const GIFT = libc::SPLICE_F_GIFT;
    }

    /// `sync_file_range` flags (`SYNC_FILE_RANGE_*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct SyncFileRangeFlags: u32 {
        /// `SYNC_FILE_RANGE_WAIT_BEFORE`
        const WAIT_BEFORE = libc::SYNC_FILE_RANGE_WAIT_BEFORE;
        /// `SYNC_FILE_RANGE_WRITE`
        const WRITE = libc::SYNC_FILE_RANGE_WRITE;
        /// `SYNC_FILE_RANGE_WAIT_AFTER`
        const WAIT_AFTER = libc::SYNC_FILE_RANGE_WAIT_AFTER;
    }

    /// `timerfd_settime` flags (`TFD_TIMER_*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct TimerfdFlags: i32 {
        /// `TFD_TIMER_ABSTIME`
        const ABSTIME = libc::TFD_TIMER_ABSTIME;
        /// `TFD_TIMER_CANCEL_ON_SET`
        const CANCEL_ON_SET = libc::TFD_TIMER_CANCEL_ON_SET;
    }

    /// `flock` operation (`LOCK_SH`, `LOCK_EX` or `LOCK_UN`, optionally
    /// with `LOCK_NB`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct FlockOp: i32 {
        /// `LOCK_SH`
        const SH = libc::LOCK_SH;
        /// `LOCK_EX`
        const EX = libc::LOCK_EX;
        /// `LOCK_UN`
        const UN = libc::LOCK_UN;
        /// `LOCK_NB`
        const NB = libc::LOCK_NB;
    }

    /// `faccessat2` mode (`R_OK`, `W_OK`, `X_OK`; the empty set is `F_OK`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Access: i32 {
        /// `R_OK`
        const READ = libc::R_OK;
        /// `W_OK`
        const WRITE = libc::W_OK;
        /// `X_OK`
        const EXEC = libc::X_OK;
    }

    /// `FD_*` descriptor flags of `fcntl(F_SETFD)`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct FdFlags: i32 {
        /// `FD_CLOEXEC`
        const CLOEXEC = libc::FD_CLOEXEC;
    }
}

/// `lseek` whence (`SEEK_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Whence {
    /// `SEEK_SET`
    Set,
    /// `SEEK_CUR`
    Cur,
    /// `SEEK_END`
    End,
    /// `SEEK_DATA`
    Data,
    /// `SEEK_HOLE`
    Hole,
}

impl Whence {
    pub(crate) fn raw(self) -> i32 {
        match self {
            Whence::Set => libc::SEEK_SET,
            Whence::Cur => libc::SEEK_CUR,
            Whence::End => libc::SEEK_END,
            Whence::Data => libc::SEEK_DATA,
            Whence::Hole => libc::SEEK_HOLE,
        }
    }
}

/// `epoll_ctl` operation (`EPOLL_CTL_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EpollOp {
    /// `EPOLL_CTL_ADD`
    Add,
    /// `EPOLL_CTL_MOD`
    Mod,
    /// `EPOLL_CTL_DEL`
    Del,
}

impl EpollOp {
    pub(crate) fn raw(self) -> i32 {
        match self {
            EpollOp::Add => libc::EPOLL_CTL_ADD,
            EpollOp::Mod => libc::EPOLL_CTL_MOD,
            EpollOp::Del => libc::EPOLL_CTL_DEL,
        }
    }
}

/// `fadvise64` advice (`POSIX_FADV_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Advice {
    /// `POSIX_FADV_NORMAL`
    Normal,
    /// `POSIX_FADV_RANDOM`
    Random,
    /// `POSIX_FADV_SEQUENTIAL`
    Sequential,
    /// `POSIX_FADV_WILLNEED`
    WillNeed,
    /// `POSIX_FADV_DONTNEED`
    DontNeed,
    /// `POSIX_FADV_NOREUSE`
    NoReuse,
}

impl Advice {
    pub(crate) fn raw(self) -> i32 {
        match self {
            Advice::Normal => libc::POSIX_FADV_NORMAL,
            Advice::Random => libc::POSIX_FADV_RANDOM,
            Advice::Sequential => libc::POSIX_FADV_SEQUENTIAL,
            Advice::WillNeed => libc::POSIX_FADV_WILLNEED,
            Advice::DontNeed => libc::POSIX_FADV_DONTNEED,
            Advice::NoReuse => libc::POSIX_FADV_NOREUSE,
        }
    }
}

/// The commands of `fcntl` an offloaded entry may carry: those that take
/// no pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FcntlArg {
    /// `F_GETFD`
    GetFd,
    /// `F_SETFD`
    SetFd(FdFlags),
    /// `F_GETFL`
    GetFl,
    /// `F_SETFL` (the kernel changes only `O_APPEND`, `O_ASYNC`,
    /// `O_DIRECT`, `O_NOATIME`, `O_NONBLOCK`)
    SetFl(OFlags),
    /// `F_DUPFD_CLOEXEC`: a new fd, the lowest free one at or above the
    /// number given.
    DupFdCloexec(i32),
    /// `F_GETPIPE_SZ`
    GetPipeSize,
    /// `F_SETPIPE_SZ`
    SetPipeSize(i32),
}

impl FcntlArg {
    pub(crate) fn raw(self) -> (i32, u64) {
        match self {
            FcntlArg::GetFd => (libc::F_GETFD, 0),
            FcntlArg::SetFd(f) => (libc::F_SETFD, f.bits() as u64),
            FcntlArg::GetFl => (libc::F_GETFL, 0),
            FcntlArg::SetFl(f) => (libc::F_SETFL, f.bits() as u64),
            FcntlArg::DupFdCloexec(min) => (libc::F_DUPFD_CLOEXEC, min as u64),
            FcntlArg::GetPipeSize => (libc::F_GETPIPE_SZ, 0),
            FcntlArg::SetPipeSize(n) => (libc::F_SETPIPE_SZ, n as u64),
        }
    }
}
