//! The offloadable syscalls, mirroring the kernel's table
//! (`kernel/offload/table.c`, x86_64 names), with the typed arguments of
//! each: the one source of the operation builders ([`crate::op`]) and of
//! the emulated backend's table.
//!
//! The emulated backend uses it to decide which entries complete with
//! `-EOPNOTSUPP`, and to answer `PROBE`. It must list exactly what the
//! kernel series lists: `tests/builders.rs` checks it against the series'
//! table, the differential test against the kernel's own `PROBE` answer.

use libc::c_long;

/// The table: one line per offloadable syscall, in the kernel table's
/// order, with what it takes. `offloadable!(callback)` hands it to a macro:
/// `numbers` below makes [`OFFLOADABLE`] of it, `op.rs` one builder per
/// line (`name Type(SYS_nr) role [fills] { params } [private fields] |s| args;`).
///
/// `role`: what the call does with fds (`plain`, `newfd`: returns one,
/// `close`, `replace`: `dup3`'s `newfd`, `fcntl`: by command). `fills`:
/// it returns the number of bytes it wrote into its `BufMut` (owned
/// buffers grow by that much). `as into`: the constructor takes anything
/// that converts.
macro_rules! offloadable {
    ($m:ident) => { $m! {
        /// `read(fd, buf, count)`
        read Read(SYS_read) plain fills { fd: Fd<'a> as into, buf: BufMut<'a> as into }
            |s| { let (p, n) = s.buf.ptr_len(); args([s.fd.raw(), p, n]) };
        /// `write(fd, buf, count)`
        write Write(SYS_write) plain { fd: Fd<'a> as into, buf: Buf<'a> as into }
            |s| { let (p, n) = s.buf.ptr_len(); args([s.fd.raw(), p, n]) };
        /// `pread64(fd, buf, count, offset)`
        pread64 Pread(SYS_pread64) plain fills { fd: Fd<'a> as into, buf: BufMut<'a> as into, offset: u64 }
            |s| { let (p, n) = s.buf.ptr_len(); args([s.fd.raw(), p, n, s.offset]) };
        /// `pwrite64(fd, buf, count, offset)`
        pwrite64 Pwrite(SYS_pwrite64) plain { fd: Fd<'a> as into, buf: Buf<'a> as into, offset: u64 }
            |s| { let (p, n) = s.buf.ptr_len(); args([s.fd.raw(), p, n, s.offset]) };
        /// `readv(fd, iov, iovcnt)` (`IoSliceMut` is ABI-compatible with `struct iovec`)
        readv Readv(SYS_readv) plain { fd: Fd<'a> as into, iov: &'a mut [IoSliceMut<'a>] }
            |s| args([s.fd.raw(), s.iov.as_mut_ptr() as u64, s.iov.len() as u64]);
        /// `writev(fd, iov, iovcnt)` (`IoSlice` is ABI-compatible with `struct iovec`)
        writev Writev(SYS_writev) plain { fd: Fd<'a> as into, iov: &'a [IoSlice<'a>] }
            |s| args([s.fd.raw(), s.iov.as_ptr() as u64, s.iov.len() as u64]);
        /// `preadv(fd, iov, iovcnt, offset)`
        preadv Preadv(SYS_preadv) plain { fd: Fd<'a> as into, iov: &'a mut [IoSliceMut<'a>], offset: u64 }
            |s| args([s.fd.raw(), s.iov.as_mut_ptr() as u64, s.iov.len() as u64, s.offset, 0]);
        /// `pwritev(fd, iov, iovcnt, offset)`
        pwritev Pwritev(SYS_pwritev) plain { fd: Fd<'a> as into, iov: &'a [IoSlice<'a>], offset: u64 }
            |s| args([s.fd.raw(), s.iov.as_ptr() as u64, s.iov.len() as u64, s.offset, 0]);
        /// `preadv2(fd, iov, iovcnt, offset, flags)`; offset -1 is the file position
        preadv2 Preadv2(SYS_preadv2) plain
            { fd: Fd<'a> as into, iov: &'a mut [IoSliceMut<'a>], offset: i64, flags: RwfFlags }
            |s| args([s.fd.raw(), s.iov.as_mut_ptr() as u64, s.iov.len() as u64, s.offset as u64, 0, s.flags.bits() as u64]);
        /// `pwritev2(fd, iov, iovcnt, offset, flags)`; offset -1 is the file position
        pwritev2 Pwritev2(SYS_pwritev2) plain
            { fd: Fd<'a> as into, iov: &'a [IoSlice<'a>], offset: i64, flags: RwfFlags }
            |s| args([s.fd.raw(), s.iov.as_ptr() as u64, s.iov.len() as u64, s.offset as u64, 0, s.flags.bits() as u64]);
        /// `socket(domain, type | flags | SOCK_CLOEXEC, protocol)`: a new fd
        socket Socket(SYS_socket) newfd { domain: i32, ty: i32, flags: SockFlags, protocol: i32 }
            |s| args([s.domain as u64, (s.ty | s.flags.bits() | libc::SOCK_CLOEXEC) as u64, s.protocol as u64]);
        /// `socketpair(domain, type | flags | SOCK_CLOEXEC, protocol, sv)`: two
        /// new fds written to `sv`, which the caller then owns (wrap them with
        /// `OwnedFd::from_raw_fd`)
        socketpair Socketpair(SYS_socketpair) plain
            { domain: i32, ty: i32, flags: SockFlags, protocol: i32, sv: &'a mut [RawFd; 2] }
            |s| args([s.domain as u64, (s.ty | s.flags.bits() | libc::SOCK_CLOEXEC) as u64, s.protocol as u64, fds2(s.sv)]);
        /// `bind(fd, addr, addrlen)`
        bind Bind(SYS_bind) plain { fd: Fd<'a> as into, addr: SockAddr as into }
            |s| { let (p, n) = s.addr.ptr_len(); args([s.fd.raw(), p, n]) };
        /// `listen(fd, backlog)`
        listen Listen(SYS_listen) plain { fd: Fd<'a> as into, backlog: i32 }
            |s| args([s.fd.raw(), s.backlog as u64]);
        /// `accept(fd, NULL, NULL)`: a new fd, without `O_CLOEXEC` (prefer
        /// [`Accept4`])
        #[cfg(target_arch = "x86_64")]
        accept Accept(SYS_accept) newfd { fd: Fd<'a> as into }
            |s| args([s.fd.raw(), 0, 0]);
        /// `accept4(fd, NULL, NULL, flags | SOCK_CLOEXEC)`: a new fd
        accept4 Accept4(SYS_accept4) newfd { fd: Fd<'a> as into, flags: SockFlags }
            |s| args([s.fd.raw(), 0, 0, (s.flags.bits() | libc::SOCK_CLOEXEC) as u64]);
        /// `connect(fd, addr, addrlen)`
        connect Connect(SYS_connect) plain { fd: Fd<'a> as into, addr: SockAddr as into }
            |s| { let (p, n) = s.addr.ptr_len(); args([s.fd.raw(), p, n]) };
        /// `shutdown(fd, how)`
        shutdown Shutdown(SYS_shutdown) plain { fd: Fd<'a> as into, how: std::net::Shutdown }
            |s| args([s.fd.raw(), match s.how {
                std::net::Shutdown::Read => libc::SHUT_RD,
                std::net::Shutdown::Write => libc::SHUT_WR,
                std::net::Shutdown::Both => libc::SHUT_RDWR,
            } as u64]);
        /// `sendto(fd, buf, len, flags, NULL, 0)`
        sendto Sendto(SYS_sendto) plain { fd: Fd<'a> as into, buf: Buf<'a> as into, flags: MsgFlags }
            |s| { let (p, n) = s.buf.ptr_len(); args([s.fd.raw(), p, n, s.flags.bits() as u64, 0, 0]) };
        /// `recvfrom(fd, buf, len, flags, NULL, NULL)`
        recvfrom Recvfrom(SYS_recvfrom) plain fills { fd: Fd<'a> as into, buf: BufMut<'a> as into, flags: RecvFlags }
            |s| { let (p, n) = s.buf.ptr_len(); args([s.fd.raw(), p, n, s.flags.bits() as u64, 0, 0]) };
        /// `sendmsg(fd, &{ msg_iov = iov }, flags)` (no address, no control data)
        sendmsg Sendmsg(SYS_sendmsg) plain { fd: Fd<'a> as into, iov: &'a [IoSlice<'a>], flags: MsgFlags }
            [hdr: MsgHdr = MsgHdr::default()]
            |s| args([s.fd.raw(), s.hdr.with(s.iov.as_ptr() as *mut libc::iovec, s.iov.len()), s.flags.bits() as u64]);
        /// `recvmsg(fd, &{ msg_iov = iov }, flags)` (no address, no control data)
        recvmsg Recvmsg(SYS_recvmsg) plain { fd: Fd<'a> as into, iov: &'a mut [IoSliceMut<'a>], flags: RecvFlags }
            [hdr: MsgHdr = MsgHdr::default()]
            |s| args([s.fd.raw(), s.hdr.with(s.iov.as_mut_ptr().cast(), s.iov.len()), s.flags.bits() as u64]);
        /// `sendmmsg(fd, msgs, vlen, flags)`
        sendmmsg Sendmmsg(SYS_sendmmsg) plain { fd: Fd<'a> as into, msgs: &'a mut [SendMmsgHdr<'a>], flags: MsgFlags }
            |s| args([s.fd.raw(), s.msgs.as_mut_ptr() as u64, s.msgs.len() as u64, s.flags.bits() as u64]);
        /// `recvmmsg(fd, msgs, vlen, flags, timeout)`; the kernel writes the
        /// time left back into `timeout`
        recvmmsg Recvmmsg(SYS_recvmmsg) plain {
            fd: Fd<'a> as into, msgs: &'a mut [RecvMmsgHdr<'a>], flags: RecvFlags, timeout: Option<&'a mut libc::timespec>
        }
            |s| args([s.fd.raw(), s.msgs.as_mut_ptr() as u64, s.msgs.len() as u64, s.flags.bits() as u64, opt_mut(&mut s.timeout)]);
        /// `getsockname(fd, addr, &addrlen)`
        getsockname Getsockname(SYS_getsockname) plain { fd: Fd<'a> as into, addr: &'a mut SockAddrBuf }
            |s| { let (p, l) = s.addr.ptrs(); args([s.fd.raw(), p, l]) };
        /// `getpeername(fd, addr, &addrlen)`
        getpeername Getpeername(SYS_getpeername) plain { fd: Fd<'a> as into, addr: &'a mut SockAddrBuf }
            |s| { let (p, l) = s.addr.ptrs(); args([s.fd.raw(), p, l]) };
        /// `setsockopt(fd, level, optname, value, len)`
        setsockopt Setsockopt(SYS_setsockopt) plain { fd: Fd<'a> as into, level: i32, optname: i32, value: &'a [u8] }
            |s| args([s.fd.raw(), s.level as u64, s.optname as u64, s.value.as_ptr() as u64, s.value.len() as u64]);
        /// `getsockopt(fd, level, optname, value, &len)`: `len` is set to the
        /// size of `value` when the entry is made, and holds the size the
        /// kernel wrote afterwards
        getsockopt Getsockopt(SYS_getsockopt) plain
            { fd: Fd<'a> as into, level: i32, optname: i32, value: &'a mut [u8], len: &'a mut libc::socklen_t }
            |s| {
                *s.len = s.value.len() as libc::socklen_t;
                args([s.fd.raw(), s.level as u64, s.optname as u64, s.value.as_mut_ptr() as u64, &mut *s.len as *mut libc::socklen_t as u64])
            };
        /// `close(fd)`: takes the fd. A batch hands it back if the entry did
        /// not close it (cancelled, refused, or not run). Once
        /// [`Op::entry`] has been called the builder no longer closes the
        /// fd when dropped: the entry is to close it (push it once).
        close Close(SYS_close) close { fd: Option<OwnedFd> as into } [released: Option<RawFd> = None]
            |s| args([release(&mut s.fd, &mut s.released)]);
        /// `dup(fd)`: a new fd, without `O_CLOEXEC` (prefer [`Fcntl`] with
        /// [`FcntlArg::DupFdCloexec`] or [`Dup3`])
        dup Dup(SYS_dup) newfd { fd: Fd<'a> as into }
            |s| args([s.fd.raw()]);
        /// `dup3(oldfd, newfd, flags)`: `newfd` is taken and names `oldfd`'s
        /// file afterwards; the results hand it back either way (as for
        /// [`Close`], after [`Op::entry`] the builder leaves it alone)
        dup3 Dup3(SYS_dup3) replace { oldfd: Fd<'a> as into, newfd: Option<OwnedFd> as into, flags: DupFlags }
            [released: Option<RawFd> = None]
            |s| args([s.oldfd.raw(), release(&mut s.newfd, &mut s.released), s.flags.bits() as u64]);
        /// `fcntl(fd, cmd, arg)` for the commands that take no pointer
        fcntl Fcntl(SYS_fcntl) fcntl { fd: Fd<'a> as into, arg: FcntlArg }
            |s| { let (cmd, arg) = s.arg.raw(); args([s.fd.raw(), cmd as u64, arg]) };
        /// `pipe2(fds, flags | O_CLOEXEC)`: two new fds written to `fds`,
        /// which the caller then owns (wrap them with `OwnedFd::from_raw_fd`)
        pipe2 Pipe2(SYS_pipe2) plain { fds: &'a mut [RawFd; 2], flags: PipeFlags }
            |s| args([fds2(s.fds), (s.flags.bits() | libc::O_CLOEXEC) as u64]);
        /// `eventfd2(initval, flags | EFD_CLOEXEC)`: a new fd
        eventfd2 Eventfd2(SYS_eventfd2) newfd { initval: u32, flags: EfdFlags }
            |s| args([s.initval as u64, (s.flags.bits() | libc::EFD_CLOEXEC) as u64]);
        /// `epoll_create1(EPOLL_CLOEXEC)`: a new fd
        epoll_create1 EpollCreate1(SYS_epoll_create1) newfd {}
            |_s| args([libc::EPOLL_CLOEXEC as u64]);
        /// `epoll_ctl(epfd, op, fd, event)`
        epoll_ctl EpollCtl(SYS_epoll_ctl) plain
            { epfd: Fd<'a> as into, op: EpollOp, fd: Fd<'a> as into, event: Option<&'a libc::epoll_event> }
            |s| args([s.epfd.raw(), s.op.raw() as u64, s.fd.raw(), opt_ref(&s.event)]);
        /// `epoll_wait(epfd, events, maxevents, timeout_ms)`
        #[cfg(target_arch = "x86_64")]
        epoll_wait EpollWait(SYS_epoll_wait) plain { epfd: Fd<'a> as into, events: &'a mut [libc::epoll_event], timeout_ms: i32 }
            |s| args([s.epfd.raw(), s.events.as_mut_ptr() as u64, s.events.len() as u64, s.timeout_ms as u64]);
        /// `poll(fds, nfds, timeout_ms)`
        #[cfg(target_arch = "x86_64")]
        poll Poll(SYS_poll) plain { fds: &'a mut [libc::pollfd], timeout_ms: i32 }
            |s| args([s.fds.as_mut_ptr() as u64, s.fds.len() as u64, s.timeout_ms as u64]);
        /// `timerfd_settime(fd, flags, new, old)`
        timerfd_settime TimerfdSettime(SYS_timerfd_settime) plain {
            fd: Fd<'a> as into, flags: TimerfdFlags, new: &'a libc::itimerspec, old: Option<&'a mut libc::itimerspec>
        }
            |s| args([s.fd.raw(), s.flags.bits() as u64, s.new as *const libc::itimerspec as u64, opt_mut(&mut s.old)]);
        /// `timerfd_gettime(fd, cur)`
        timerfd_gettime TimerfdGettime(SYS_timerfd_gettime) plain { fd: Fd<'a> as into, cur: &'a mut libc::itimerspec }
            |s| args([s.fd.raw(), &mut *s.cur as *mut libc::itimerspec as u64]);
        /// `openat(dirfd, path, flags | O_CLOEXEC, mode)`: a new fd
        openat Openat(SYS_openat) newfd { dir: DirFd<'a>, path: &'a CStr, flags: OFlags, mode: u32 }
            |s| args([dirfd(&s.dir), cstr(s.path), (s.flags.bits() | libc::O_CLOEXEC) as u64, s.mode as u64]);
        /// `openat2(dirfd, path, how, sizeof(*how))`: a new fd (`O_CLOEXEC`
        /// only if `how.flags` has it)
        openat2 Openat2(SYS_openat2) newfd { dir: DirFd<'a>, path: &'a CStr, how: &'a libc::open_how }
            |s| args([dirfd(&s.dir), cstr(s.path), s.how as *const libc::open_how as u64,
                      std::mem::size_of::<libc::open_how>() as u64]);
        /// `fstat(fd, statbuf)`
        fstat Fstat(SYS_fstat) plain { fd: Fd<'a> as into, stat: &'a mut libc::stat }
            |s| args([s.fd.raw(), &mut *s.stat as *mut libc::stat as u64]);
        /// `newfstatat(dirfd, path, statbuf, flags)`
        #[cfg(target_arch = "x86_64")]
        newfstatat Newfstatat(SYS_newfstatat) plain { dir: DirFd<'a>, path: &'a CStr, stat: &'a mut libc::stat, flags: AtFlags }
            |s| args([dirfd(&s.dir), cstr(s.path), &mut *s.stat as *mut libc::stat as u64, s.flags.bits() as u64]);
        /// `statx(dirfd, path, flags, mask, statxbuf)`
        #[cfg(target_arch = "x86_64")]
        statx Statx(SYS_statx) plain { dir: DirFd<'a>, path: &'a CStr, flags: AtFlags, mask: u32, statx: &'a mut libc::statx }
            |s| args([dirfd(&s.dir), cstr(s.path), s.flags.bits() as u64, s.mask as u64, &mut *s.statx as *mut libc::statx as u64]);
        /// `lseek(fd, offset, whence)`
        lseek Lseek(SYS_lseek) plain { fd: Fd<'a> as into, offset: i64, whence: Whence }
            |s| args([s.fd.raw(), s.offset as u64, s.whence.raw() as u64]);
        /// `getdents64(fd, buf, count)`
        getdents64 Getdents64(SYS_getdents64) plain fills { fd: Fd<'a> as into, buf: BufMut<'a> as into }
            |s| { let (p, n) = s.buf.ptr_len(); args([s.fd.raw(), p, n]) };
        /// `fsync(fd)`
        fsync Fsync(SYS_fsync) plain { fd: Fd<'a> as into }
            |s| args([s.fd.raw()]);
        /// `fdatasync(fd)`
        fdatasync Fdatasync(SYS_fdatasync) plain { fd: Fd<'a> as into }
            |s| args([s.fd.raw()]);
        /// `sync_file_range(fd, offset, nbytes, flags)`
        #[cfg(target_arch = "x86_64")]
        sync_file_range SyncFileRange(SYS_sync_file_range) plain
            { fd: Fd<'a> as into, offset: i64, nbytes: i64, flags: SyncFileRangeFlags }
            |s| args([s.fd.raw(), s.offset as u64, s.nbytes as u64, s.flags.bits() as u64]);
        /// `fallocate(fd, mode, offset, len)`
        fallocate Fallocate(SYS_fallocate) plain { fd: Fd<'a> as into, mode: FallocFlags, offset: i64, len: i64 }
            |s| args([s.fd.raw(), s.mode.bits() as u64, s.offset as u64, s.len as u64]);
        /// `ftruncate(fd, length)`
        ftruncate Ftruncate(SYS_ftruncate) plain { fd: Fd<'a> as into, length: i64 }
            |s| args([s.fd.raw(), s.length as u64]);
        /// `fadvise64(fd, offset, len, advice)`
        #[cfg(target_arch = "x86_64")]
        fadvise64 Fadvise64(SYS_fadvise64) plain { fd: Fd<'a> as into, offset: i64, len: i64, advice: Advice }
            |s| args([s.fd.raw(), s.offset as u64, s.len as u64, s.advice.raw() as u64]);
        /// `flock(fd, op)`
        flock Flock(SYS_flock) plain { fd: Fd<'a> as into, op: FlockOp }
            |s| args([s.fd.raw(), s.op.bits() as u64]);
        /// `sendfile(out_fd, in_fd, offset, count)` (`None`: the file position)
        sendfile Sendfile(SYS_sendfile) plain
            { out_fd: Fd<'a> as into, in_fd: Fd<'a> as into, offset: Option<&'a mut i64>, count: usize }
            |s| args([s.out_fd.raw(), s.in_fd.raw(), opt_mut(&mut s.offset), s.count as u64]);
        /// `splice(fd_in, off_in, fd_out, off_out, len, flags)`
        splice Splice(SYS_splice) plain {
            fd_in: Fd<'a> as into, off_in: Option<&'a mut i64>, fd_out: Fd<'a> as into, off_out: Option<&'a mut i64>,
            len: usize, flags: SpliceFlags
        }
            |s| args([s.fd_in.raw(), opt_mut(&mut s.off_in), s.fd_out.raw(), opt_mut(&mut s.off_out), s.len as u64, s.flags.bits() as u64]);
        /// `tee(fd_in, fd_out, len, flags)`
        tee Tee(SYS_tee) plain { fd_in: Fd<'a> as into, fd_out: Fd<'a> as into, len: usize, flags: SpliceFlags }
            |s| args([s.fd_in.raw(), s.fd_out.raw(), s.len as u64, s.flags.bits() as u64]);
        /// `copy_file_range(fd_in, off_in, fd_out, off_out, len, 0)`
        copy_file_range CopyFileRange(SYS_copy_file_range) plain {
            fd_in: Fd<'a> as into, off_in: Option<&'a mut i64>, fd_out: Fd<'a> as into, off_out: Option<&'a mut i64>, len: usize
        }
            |s| args([s.fd_in.raw(), opt_mut(&mut s.off_in), s.fd_out.raw(), opt_mut(&mut s.off_out), s.len as u64, 0]);
        /// `mkdirat(dirfd, path, mode)`
        mkdirat Mkdirat(SYS_mkdirat) plain { dir: DirFd<'a>, path: &'a CStr, mode: u32 }
            |s| args([dirfd(&s.dir), cstr(s.path), s.mode as u64]);
        /// `unlinkat(dirfd, path, flags)` (`AtFlags::REMOVEDIR` for a directory)
        unlinkat Unlinkat(SYS_unlinkat) plain { dir: DirFd<'a>, path: &'a CStr, flags: AtFlags }
            |s| args([dirfd(&s.dir), cstr(s.path), s.flags.bits() as u64]);
        /// `renameat2(olddirfd, oldpath, newdirfd, newpath, flags)`
        renameat2 Renameat2(SYS_renameat2) plain
            { old_dir: DirFd<'a>, old_path: &'a CStr, new_dir: DirFd<'a>, new_path: &'a CStr, flags: RenameFlags }
            |s| args([dirfd(&s.old_dir), cstr(s.old_path), dirfd(&s.new_dir), cstr(s.new_path), s.flags.bits() as u64]);
        /// `readlinkat(dirfd, path, buf, bufsiz)`
        readlinkat Readlinkat(SYS_readlinkat) plain fills { dir: DirFd<'a>, path: &'a CStr, buf: BufMut<'a> as into }
            |s| { let (p, n) = s.buf.ptr_len(); args([dirfd(&s.dir), cstr(s.path), p, n]) };
        /// `faccessat2(dirfd, path, mode, flags)`
        #[cfg(target_arch = "x86_64")]
        faccessat2 Faccessat2(SYS_faccessat2) plain { dir: DirFd<'a>, path: &'a CStr, mode: Access, flags: AtFlags }
            |s| args([dirfd(&s.dir), cstr(s.path), s.mode.bits() as u64, s.flags.bits() as u64]);
        /// `fchmod(fd, mode)`
        fchmod Fchmod(SYS_fchmod) plain { fd: Fd<'a> as into, mode: u32 }
            |s| args([s.fd.raw(), s.mode as u64]);
        /// `fchmodat(dirfd, path, mode)`
        fchmodat Fchmodat(SYS_fchmodat) plain { dir: DirFd<'a>, path: &'a CStr, mode: u32 }
            |s| args([dirfd(&s.dir), cstr(s.path), s.mode as u64]);
        /// `getpid()`
        getpid Getpid(SYS_getpid) plain {} |_s| [0; 6];
        /// `getppid()`
        getppid Getppid(SYS_getppid) plain {} |_s| [0; 6];
        /// `gettid()`
        gettid Gettid(SYS_gettid) plain {} |_s| [0; 6];
        /// `getuid()`
        getuid Getuid(SYS_getuid) plain {} |_s| [0; 6];
        /// `geteuid()`
        geteuid Geteuid(SYS_geteuid) plain {} |_s| [0; 6];
        /// `getgid()`
        getgid Getgid(SYS_getgid) plain {} |_s| [0; 6];
        /// `getegid()`
        getegid Getegid(SYS_getegid) plain {} |_s| [0; 6];
    } };
}
pub(crate) use offloadable;

macro_rules! numbers {
    ($(
        $(#[doc = $doc:literal])*
        $(#[cfg($cfg:meta)])?
        $name:ident $Ty:ident ($nr:ident) $role:ident $($fills:ident)? { $($params:tt)* }
        $([ $($private:tt)* ])?
        |$s:ident| $args:expr;
    )*) => {
        /// Offloadable syscall numbers of this architecture.
        pub(crate) const OFFLOADABLE: &[c_long] = &[$( $(#[cfg($cfg)])? libc::$nr, )*];
    };
}
offloadable!(numbers);

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
