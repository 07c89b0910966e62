//! `liboffload_preload.so`: run an unmodified event loop's socket writes and
//! its wait on syscall offload rings.
//!
//! ```sh
//! LD_PRELOAD=/path/to/liboffload_preload.so redis-server
//! ```
//!
//! Each wrapper here is short: it hands the call to the `shim` module, which decides
//! whether to defer it, flush the thread's batch with it, or pass it through,
//! and otherwise makes the call with a raw system call (never through the
//! libc function it replaces). See README.md for the rules and their
//! reasons; DESIGN.md ("Unmodified applications: the preload shim") is the
//! contract.
//!
//! `OFFLOAD_PRELOAD=inline|worker|off|emulate` picks the mode (`emulate`
//! runs the shim's logic with direct calls, for tests on kernels without
//! offload), `OFFLOAD_PRELOAD_STATS=1` prints counters at exit.
#![allow(clippy::missing_safety_doc)]
#![deny(unsafe_op_in_unsafe_fn)]

mod config;
mod engine;
mod shim;
mod stats;
mod sys;
mod table;

use libc::{c_char, c_int, c_ulong, c_void, epoll_event, iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t};

use crate::shim::with;
use crate::sys::{raw, ret};

type R = i64;

fn iovs<'a>(iov: *const iovec, n: c_int) -> &'a [iovec] {
    if iov.is_null() || n <= 0 {
        return &[];
    }
    // SAFETY: the application passed n iovecs.
    unsafe { std::slice::from_raw_parts(iov, n as usize) }
}

/// A socket write: deferred, or made directly after the batch is flushed.
fn output(fd: c_int, iov: &[iovec], flags: c_int, deferrable: bool, direct: impl FnOnce() -> R) -> R {
    let r = with(|t, cfg| {
        if deferrable {
            if let Some(r) = t.write(cfg, fd, iov, flags) {
                return Some(r);
            }
        }
        t.before_output(cfg, fd, flags & libc::MSG_DONTWAIT != 0)
    });
    match r {
        Some(Some(r)) => ret(r),
        _ => ret(direct()),
    }
}

/// A read: from the read-ahead buffer, or directly after a flush.
fn input(fd: c_int, peek: bool, copy: &mut dyn FnMut(&[u8]) -> usize, direct: impl FnOnce() -> R) -> R {
    let r = with(|t, cfg| {
        if let Some(r) = t.read_buffered(fd, peek, copy) {
            return Some(r);
        }
        t.before_input(cfg, fd);
        None
    });
    match r {
        Some(Some(r)) => ret(r),
        _ => ret(direct()),
    }
}

/// Any other intercepted call: flush the batch first.
fn flushed(direct: impl FnOnce() -> R) -> R {
    let _ = with(|t, cfg| t.flush(cfg, None, false));
    ret(direct())
}

fn copy_to_iov(iov: &[iovec]) -> impl FnMut(&[u8]) -> usize + '_ {
    move |src: &[u8]| {
        let mut done = 0;
        for v in iov {
            if done == src.len() {
                break;
            }
            let k = v.iov_len.min(src.len() - done);
            // SAFETY: the application's iovec is writable for iov_len bytes.
            unsafe { std::ptr::copy_nonoverlapping(src.as_ptr().add(done), v.iov_base as *mut u8, k) };
            done += k;
        }
        done
    }
}

// ---- the write family -----------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    let iov = [iovec { iov_base: buf as *mut c_void, iov_len: n }];
    output(fd, &iov, 0, true, || raw(libc::SYS_write, &[fd as u64, buf as u64, n as u64])) as ssize_t
}

#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    output(fd, iovs(iov, cnt), 0, cnt > 0, || raw(libc::SYS_writev, &[fd as u64, iov as u64, cnt as u64])) as ssize_t
}

#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    let iov = [iovec { iov_base: buf as *mut c_void, iov_len: n }];
    output(fd, &iov, flags, true, || raw(libc::SYS_sendto, &[fd as u64, buf as u64, n as u64, flags as u64, 0, 0])) as ssize_t
}

#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    alen: socklen_t,
) -> ssize_t {
    let iov = [iovec { iov_base: buf as *mut c_void, iov_len: n }];
    output(fd, &iov, flags, addr.is_null(), || {
        raw(libc::SYS_sendto, &[fd as u64, buf as u64, n as u64, flags as u64, addr as u64, alen as u64])
    }) as ssize_t
}

#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    // SAFETY: the application passed a msghdr (or NULL, which the kernel rejects).
    let m = unsafe { msg.as_ref() };
    let plain = m.is_some_and(|m| m.msg_name.is_null() && m.msg_controllen == 0);
    let iov = m.map_or(&[][..], |m| iovs(m.msg_iov, m.msg_iovlen as c_int));
    output(fd, iov, flags, plain && !iov.is_empty(), || raw(libc::SYS_sendmsg, &[fd as u64, msg as u64, flags as u64]))
        as ssize_t
}

#[no_mangle]
pub unsafe extern "C" fn sendfile(out: c_int, inp: c_int, off: *mut libc::off_t, n: size_t) -> ssize_t {
    output(out, &[], 0, false, || raw(libc::SYS_sendfile, &[out as u64, inp as u64, off as u64, n as u64])) as ssize_t
}

#[no_mangle]
pub unsafe extern "C" fn sendfile64(out: c_int, inp: c_int, off: *mut libc::off_t, n: size_t) -> ssize_t {
    // SAFETY: same ABI on 64-bit targets.
    unsafe { sendfile(out, inp, off, n) }
}

// ---- the read family ------------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    let iov = [iovec { iov_base: buf, iov_len: n }];
    let mut copy = copy_to_iov(&iov);
    input(fd, false, &mut copy, || raw(libc::SYS_read, &[fd as u64, buf as u64, n as u64])) as ssize_t
}

#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    let v = iovs(iov, cnt);
    let mut copy = copy_to_iov(v);
    input(fd, false, &mut copy, || raw(libc::SYS_readv, &[fd as u64, iov as u64, cnt as u64])) as ssize_t
}

/// recv flags the read-ahead buffer can serve.
const SERVED: c_int = libc::MSG_PEEK | libc::MSG_WAITALL | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL | libc::MSG_CMSG_CLOEXEC;

#[no_mangle]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    let (addr_p, alen_p) = (addr as u64, alen as u64);
    let direct = move |buf: *mut c_void, n: size_t| {
        raw(libc::SYS_recvfrom, &[fd as u64, buf as u64, n as u64, flags as u64, addr_p, alen_p])
    };
    if flags & !SERVED != 0 {
        return flushed(|| direct(buf, n)) as ssize_t;
    }
    let iov = [iovec { iov_base: buf, iov_len: n }];
    let mut copy = copy_to_iov(&iov);
    let r = input(fd, flags & libc::MSG_PEEK != 0, &mut copy, || direct(buf, n));
    if r > 0 && !alen.is_null() {
        // A connected stream socket reports no address.
        // SAFETY: the application passed a socklen_t.
        unsafe { *alen = 0 };
    }
    if r > 0 && (r as usize) < n && flags & libc::MSG_WAITALL != 0 && flags & libc::MSG_PEEK == 0 {
        // MSG_WAITALL: the rest comes from the socket.
        // SAFETY: r < n, inside the application's buffer.
        let more = direct(unsafe { (buf as *mut u8).add(r as usize) } as *mut c_void, n - r as usize);
        if more > 0 {
            return (r + more) as ssize_t;
        }
    }
    r as ssize_t
}

#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    // SAFETY: forwards the application's arguments.
    unsafe { recvfrom(fd, buf, n, flags, std::ptr::null_mut(), std::ptr::null_mut()) }
}

#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    let msg_p = msg as u64;
    let direct = move || raw(libc::SYS_recvmsg, &[fd as u64, msg_p, flags as u64]);
    if msg.is_null() || flags & !SERVED != 0 || flags & libc::MSG_WAITALL != 0 {
        return flushed(direct) as ssize_t;
    }
    // SAFETY: the application passed a msghdr.
    let m = unsafe { &mut *msg };
    let v = iovs(m.msg_iov, m.msg_iovlen as c_int);
    let mut served = false;
    let mut inner = copy_to_iov(v);
    let mut copy = |src: &[u8]| {
        served = true;
        inner(src)
    };
    let r = input(fd, flags & libc::MSG_PEEK != 0, &mut copy, direct);
    if served {
        m.msg_namelen = 0;
        m.msg_controllen = 0;
        m.msg_flags = 0;
    }
    r as ssize_t
}

// ---- descriptors ----------------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn accept4(fd: c_int, addr: *mut sockaddr, alen: *mut socklen_t, flags: c_int) -> c_int {
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut sl = std::mem::size_of::<libc::sockaddr_storage>() as socklen_t;
    let r = with(|t, cfg| {
        t.flush(cfg, None, false);
        let r = raw(libc::SYS_accept4, &[fd as u64, &mut ss as *mut _ as u64, &mut sl as *mut _ as u64, flags as u64]);
        if r >= 0 {
            t.accepted(r as c_int, ss.ss_family as i32, flags & libc::SOCK_NONBLOCK != 0);
        }
        r
    });
    let r = match r {
        Some(r) => r,
        None => raw(libc::SYS_accept4, &[fd as u64, &mut ss as *mut _ as u64, &mut sl as *mut _ as u64, flags as u64]),
    };
    if r >= 0 && !addr.is_null() && !alen.is_null() {
        // As the kernel does: copy at most *alen bytes, report the full length.
        // SAFETY: the application passed a buffer of *alen bytes.
        unsafe {
            let k = (*alen).min(sl) as usize;
            std::ptr::copy_nonoverlapping(&ss as *const _ as *const u8, addr as *mut u8, k);
            *alen = sl;
        }
    }
    ret(r) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, alen: *mut socklen_t) -> c_int {
    // SAFETY: forwards the application's arguments.
    unsafe { accept4(fd, addr, alen, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if shim::is_ring_fd(fd) {
        // The shim's own ring (a program closing every fd): keep it.
        return 0;
    }
    let _ = with(|t, cfg| t.closing(cfg, fd));
    ret(raw(libc::SYS_close, &[fd as u64])) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    let r = with(|t, cfg| {
        t.flush(cfg, None, false);
        t.duplicated(fd);
        let r = raw(libc::SYS_dup, &[fd as u64]);
        if r >= 0 {
            t.fresh_fd(r as c_int);
        }
        r
    });
    ret(r.unwrap_or_else(|| raw(libc::SYS_dup, &[fd as u64]))) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    let r = with(|t, cfg| {
        if old != new {
            t.duplicated(old);
            t.closing(cfg, new);
        } else {
            t.flush(cfg, None, false);
        }
        let r = raw(libc::SYS_dup3, &[old as u64, new as u64, flags as u64]);
        if r >= 0 {
            t.fresh_fd(new);
        }
        r
    });
    ret(r.unwrap_or_else(|| raw(libc::SYS_dup3, &[old as u64, new as u64, flags as u64]))) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if old == new {
        // dup2(fd, fd) checks fd and returns it; dup3 would say EINVAL.
        let r = raw(libc::SYS_fcntl, &[old as u64, libc::F_GETFD as u64]);
        return if r < 0 { ret(r) as c_int } else { old };
    }
    // SAFETY: forwards the application's arguments.
    unsafe { dup3(old, new, 0) }
}

fn fcntl_impl(fd: c_int, cmd: c_int, arg: c_ulong) -> R {
    let r = with(|t, cfg| {
        t.flush(cfg, None, false);
        match cmd {
            libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
                t.duplicated(fd);
                let r = raw(libc::SYS_fcntl, &[fd as u64, cmd as u64, arg]);
                if r >= 0 {
                    t.fresh_fd(r as c_int);
                }
                r
            }
            libc::F_SETFL => {
                let r = raw(libc::SYS_fcntl, &[fd as u64, cmd as u64, arg]);
                if r >= 0 {
                    t.set_nonblock(fd, arg as c_int & libc::O_NONBLOCK != 0);
                }
                r
            }
            _ => raw(libc::SYS_fcntl, &[fd as u64, cmd as u64, arg]),
        }
    });
    ret(r.unwrap_or_else(|| raw(libc::SYS_fcntl, &[fd as u64, cmd as u64, arg])))
}

// fcntl and ioctl are variadic in C; on x86_64 the third argument arrives
// in the same register either way, so a fixed third parameter reads it.
#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    fcntl_impl(fd, cmd, arg) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    fcntl_impl(fd, cmd, arg) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, req: c_ulong, arg: *mut c_void) -> c_int {
    let direct = || raw(libc::SYS_ioctl, &[fd as u64, req, arg as u64]);
    let r = with(|t, cfg| {
        t.flush(cfg, None, false);
        let r = direct();
        if r >= 0 && !arg.is_null() {
            match req {
                libc::FIONREAD => {
                    // SAFETY: FIONREAD writes an int at arg.
                    unsafe { *(arg as *mut c_int) += t.buffered_len(fd) as c_int };
                }
                // SAFETY: FIONBIO reads an int at arg.
                libc::FIONBIO => t.set_nonblock(fd, unsafe { *(arg as *const c_int) } != 0),
                _ => {}
            }
        }
        r
    });
    ret(r.unwrap_or_else(direct)) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn shutdown(fd: c_int, how: c_int) -> c_int {
    let r = with(|t, cfg| t.shutdown(cfg, fd, how));
    match r {
        Some(Some(r)) => ret(r) as c_int,
        _ => ret(raw(libc::SYS_shutdown, &[fd as u64, how as u64])) as c_int,
    }
}

#[no_mangle]
pub unsafe extern "C" fn setsockopt(fd: c_int, lvl: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int {
    flushed(|| raw(libc::SYS_setsockopt, &[fd as u64, lvl as u64, name as u64, val as u64, len as u64])) as c_int
}

// ---- epoll, poll, select ----------------------------------------------------

fn epoll_created(r: R) -> c_int {
    if r >= 0 {
        let _ = with(|t, _| t.fresh_fd(r as c_int));
    }
    ret(r) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn epoll_create1(flags: c_int) -> c_int {
    let r = flushed(|| raw(libc::SYS_epoll_create1, &[flags as u64]));
    if r < 0 {
        return r as c_int;
    }
    epoll_created(r)
}

#[no_mangle]
pub unsafe extern "C" fn epoll_create(size: c_int) -> c_int {
    if size <= 0 {
        return ret(-(libc::EINVAL as i64)) as c_int;
    }
    // SAFETY: no arguments to check.
    unsafe { epoll_create1(0) }
}

#[no_mangle]
pub unsafe extern "C" fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, ev: *mut epoll_event) -> c_int {
    let r = with(|t, cfg| t.epoll_ctl(cfg, epfd, op, fd, ev));
    ret(r.unwrap_or_else(|| raw(libc::SYS_epoll_ctl, &[epfd as u64, op as u64, fd as u64, ev as u64]))) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn epoll_wait(epfd: c_int, ev: *mut epoll_event, max: c_int, timeout: c_int) -> c_int {
    let r = with(|t, cfg| t.epoll_wait(cfg, epfd, ev, max, timeout, 0));
    ret(r.unwrap_or_else(|| raw(libc::SYS_epoll_wait, &[epfd as u64, ev as u64, max as u64, timeout as u64]))) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    ev: *mut epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const libc::sigset_t,
) -> c_int {
    let r = with(|t, cfg| t.epoll_wait(cfg, epfd, ev, max, timeout, mask as u64));
    ret(r.unwrap_or_else(|| {
        raw(libc::SYS_epoll_pwait, &[epfd as u64, ev as u64, max as u64, timeout as u64, mask as u64, 8])
    })) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int {
    let r = with(|t, cfg| t.poll(cfg, fds, n, timeout));
    ret(r.unwrap_or_else(|| raw(libc::SYS_poll, &[fds as u64, n, timeout as u64]))) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn ppoll(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    tmo: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    let direct = || raw(libc::SYS_ppoll, &[fds as u64, n, tmo as u64, mask as u64, 8]);
    if mask.is_null() {
        // SAFETY: the application passed a timespec or NULL.
        let ms = unsafe { tmo.as_ref() }.map_or(-1, |t| {
            (t.tv_sec.saturating_mul(1000).saturating_add((t.tv_nsec + 999_999) / 1_000_000)).clamp(0, c_int::MAX as i64) as c_int
        });
        let r = with(|t, cfg| t.poll(cfg, fds, n, ms));
        return ret(r.unwrap_or_else(direct)) as c_int;
    }
    flushed(direct) as c_int
}

/// select/pselect: buffered data in `readfds` makes the call not block and
/// is reported readable.
fn select_common(nfds: c_int, rd: *mut libc::fd_set, call: &mut dyn FnMut(bool) -> R) -> R {
    let synth = with(|t, cfg| t.select_prepare(cfg, nfds, rd)).unwrap_or_default();
    let r = call(!synth.is_empty());
    if r < 0 || synth.is_empty() {
        return ret(r);
    }
    let mut n = r;
    for fd in synth {
        // SAFETY: rd is the application's fd_set; fd < nfds <= FD_SETSIZE.
        unsafe {
            if !libc::FD_ISSET(fd, rd) {
                libc::FD_SET(fd, rd);
                n += 1;
            }
        }
    }
    n
}

#[no_mangle]
pub unsafe extern "C" fn select(
    nfds: c_int,
    rd: *mut libc::fd_set,
    wr: *mut libc::fd_set,
    ex: *mut libc::fd_set,
    tv: *mut libc::timeval,
) -> c_int {
    select_common(nfds, rd, &mut |now| {
        let mut zero = libc::timeval { tv_sec: 0, tv_usec: 0 };
        let tvp = if now { &mut zero as *mut _ } else { tv };
        raw(libc::SYS_select, &[nfds as u64, rd as u64, wr as u64, ex as u64, tvp as u64])
    }) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn pselect(
    nfds: c_int,
    rd: *mut libc::fd_set,
    wr: *mut libc::fd_set,
    ex: *mut libc::fd_set,
    ts: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    select_common(nfds, rd, &mut |now| {
        let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        let tsp = if now { &zero as *const _ } else { ts };
        let sig: [u64; 2] = [mask as u64, 8];
        let sigp = if mask.is_null() { 0 } else { sig.as_ptr() as u64 };
        raw(libc::SYS_pselect6, &[nfds as u64, rd as u64, wr as u64, ex as u64, tsp as u64, sigp])
    }) as c_int
}

// ---- the end of an image: exec, _exit -------------------------------------
// fork is handled by pthread_atfork handlers (they also cover daemon()),
// exit() and thread exit by the thread-local state's destructor.

macro_rules! next {
    ($name:literal, $ty:ty) => {{
        // SAFETY: dlsym with RTLD_NEXT finds libc's definition, whose C
        // prototype is $ty.
        let p = unsafe { libc::dlsym(libc::RTLD_NEXT, $name.as_ptr()) };
        if p.is_null() {
            None
        } else {
            // SAFETY: as above.
            Some(unsafe { std::mem::transmute::<*mut c_void, $ty>(p) })
        }
    }};
}

type ExecFn = unsafe extern "C" fn(*const c_char, *const *const c_char, *const *const c_char) -> c_int;
type ExecvFn = unsafe extern "C" fn(*const c_char, *const *const c_char) -> c_int;
type FexecFn = unsafe extern "C" fn(c_int, *const *const c_char, *const *const c_char) -> c_int;

#[no_mangle]
pub unsafe extern "C" fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
    shim::before_image_ends();
    match next!(c"execve", ExecFn) {
        // SAFETY: the application's arguments, to libc's execve.
        Some(f) => unsafe { f(path, argv, envp) },
        None => ret(raw(libc::SYS_execve, &[path as u64, argv as u64, envp as u64])) as c_int,
    }
}

#[no_mangle]
pub unsafe extern "C" fn execvpe(file: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
    shim::before_image_ends();
    match next!(c"execvpe", ExecFn) {
        // SAFETY: the application's arguments, to libc's execvpe.
        Some(f) => unsafe { f(file, argv, envp) },
        None => ret(-(libc::ENOSYS as i64)) as c_int,
    }
}

#[no_mangle]
pub unsafe extern "C" fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    shim::before_image_ends();
    match next!(c"execv", ExecvFn) {
        // SAFETY: the application's arguments, to libc's execv.
        Some(f) => unsafe { f(path, argv) },
        None => ret(-(libc::ENOSYS as i64)) as c_int,
    }
}

#[no_mangle]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    shim::before_image_ends();
    match next!(c"execvp", ExecvFn) {
        // SAFETY: the application's arguments, to libc's execvp.
        Some(f) => unsafe { f(file, argv) },
        None => ret(-(libc::ENOSYS as i64)) as c_int,
    }
}

#[no_mangle]
pub unsafe extern "C" fn fexecve(fd: c_int, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
    shim::before_image_ends();
    match next!(c"fexecve", FexecFn) {
        // SAFETY: the application's arguments, to libc's fexecve.
        Some(f) => unsafe { f(fd, argv, envp) },
        None => ret(-(libc::ENOSYS as i64)) as c_int,
    }
}

#[no_mangle]
pub unsafe extern "C" fn _exit(status: c_int) -> ! {
    shim::before_image_ends();
    shim::print_stats();
    loop {
        sys::raw6(libc::SYS_exit_group, [status as u64, 0, 0, 0, 0, 0]);
    }
}

#[no_mangle]
pub unsafe extern "C" fn _Exit(status: c_int) -> ! {
    // SAFETY: same function.
    unsafe { _exit(status) }
}
