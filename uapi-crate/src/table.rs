//! The offloadable syscalls, mirroring the kernel's table (x86_64 names).
//!
//! The emulated backend uses it to decide which entries complete with
//! `-EOPNOTSUPP`, and to answer `PROBE`. It must list exactly what the
//! kernel series lists; the differential test checks it against the kernel's
//! own `PROBE` answer.

use libc::c_long;

macro_rules! table {
    ($($name:ident)*) => {
        /// Offloadable syscall numbers of this architecture.
        pub(crate) const OFFLOADABLE: &[c_long] = &[$(libc::$name),*];
    };
}

#[cfg(target_arch = "x86_64")]
table! {
    SYS_read SYS_write SYS_pread64 SYS_pwrite64 SYS_readv SYS_writev SYS_preadv SYS_pwritev
    SYS_preadv2 SYS_pwritev2 SYS_sendto SYS_recvfrom SYS_sendmsg SYS_recvmsg SYS_sendmmsg
    SYS_recvmmsg SYS_socket SYS_socketpair SYS_bind SYS_listen SYS_accept SYS_accept4
    SYS_connect SYS_shutdown SYS_getsockname SYS_getpeername SYS_setsockopt SYS_getsockopt
    SYS_close SYS_dup SYS_dup3 SYS_fcntl SYS_pipe2 SYS_eventfd2 SYS_epoll_create1
    SYS_epoll_ctl SYS_epoll_wait SYS_poll SYS_openat SYS_openat2 SYS_fstat SYS_newfstatat
    SYS_statx SYS_lseek SYS_getdents64 SYS_fsync SYS_fdatasync SYS_sync_file_range
    SYS_fallocate SYS_ftruncate SYS_fadvise64 SYS_flock SYS_sendfile SYS_splice SYS_tee
    SYS_copy_file_range SYS_mkdirat SYS_unlinkat SYS_renameat2 SYS_readlinkat SYS_faccessat2
    SYS_fchmod SYS_fchmodat SYS_timerfd_settime SYS_timerfd_gettime SYS_getpid SYS_getppid
    SYS_gettid SYS_getuid SYS_geteuid SYS_getgid SYS_getegid
}

// The kernel series wires only x86_64 so far; elsewhere the emulated backend
// offers the calls of the generic syscall ABI that match the x86_64 table.
#[cfg(not(target_arch = "x86_64"))]
table! {
    SYS_read SYS_write SYS_pread64 SYS_pwrite64 SYS_readv SYS_writev SYS_preadv SYS_pwritev
    SYS_preadv2 SYS_pwritev2 SYS_sendto SYS_recvfrom SYS_sendmsg SYS_recvmsg SYS_sendmmsg
    SYS_recvmmsg SYS_socket SYS_socketpair SYS_bind SYS_listen SYS_accept4
    SYS_connect SYS_shutdown SYS_getsockname SYS_getpeername SYS_setsockopt SYS_getsockopt
    SYS_close SYS_dup SYS_dup3 SYS_fcntl SYS_pipe2 SYS_eventfd2 SYS_epoll_create1
    SYS_epoll_ctl SYS_openat SYS_fstat SYS_lseek SYS_getdents64 SYS_fsync SYS_fdatasync
    SYS_fallocate SYS_ftruncate SYS_flock SYS_sendfile SYS_splice SYS_tee
    SYS_copy_file_range SYS_mkdirat SYS_unlinkat SYS_renameat2 SYS_readlinkat
    SYS_fchmod SYS_fchmodat SYS_timerfd_settime SYS_timerfd_gettime SYS_getpid SYS_getppid
    SYS_gettid SYS_getuid SYS_geteuid SYS_getgid SYS_getegid
}

/// The kernel's `NR_syscalls` with the offload syscalls wired (6.12 + 3).
#[cfg(target_arch = "x86_64")]
pub(crate) const NR_SYSCALLS: u32 = 466;
/// The generic syscall ABI's `__NR_syscalls` on 6.12.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) const NR_SYSCALLS: u32 = 463;

/// Words of a bitmap holding `NR_SYSCALLS` bits.
pub(crate) const BITMAP_WORDS: usize = (NR_SYSCALLS as usize).div_ceil(64);

/// The table as a bitmap.
pub(crate) fn bitmap() -> [u64; BITMAP_WORDS] {
    let mut map = [0u64; BITMAP_WORDS];
    for &nr in OFFLOADABLE {
        let nr = nr as usize;
        if nr < NR_SYSCALLS as usize {
            map[nr / 64] |= 1 << (nr % 64);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_no_duplicates_and_fits_nr_syscalls() {
        let mut v = OFFLOADABLE.to_vec();
        v.sort_unstable();
        v.dedup();
        assert_eq!(v.len(), OFFLOADABLE.len());
        assert!(v.iter().all(|&nr| (nr as u32) < NR_SYSCALLS));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn lifecycle_and_identity_calls_are_not_offloadable() {
        for nr in [libc::SYS_clone, libc::SYS_fork, libc::SYS_execve, libc::SYS_exit, libc::SYS_rt_sigaction,
            libc::SYS_setuid, libc::SYS_prctl, libc::SYS_io_uring_enter, 463, 464, 465]
        {
            assert!(!OFFLOADABLE.contains(&nr), "{nr}");
        }
        assert_eq!(OFFLOADABLE.len(), 72);
    }
}
