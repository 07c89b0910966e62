//! A small event-loop server for the shim's own tests: it calls the libc
//! functions the shim interposes the way servers do (nonblocking sockets,
//! its own output buffers, EPOLLOUT when a write is short).
//!
//! evloop PORT lt|et|poll|select|forever CHUNK [sigwrite] [smallsnd]
//!
//! (`forever`: level-triggered epoll waiting without a timeout.)
//!
//! Protocol, one command a line:
//!   E<text>  -> E<text>            echo
//!   B<n>     -> n pattern bytes, then a newline
//!   F        -> "before-fork\n", fork (the child _exits), "after-fork\n"
//!   P        -> "P<FIONREAD> <10 bytes peeked with MSG_PEEK>\n"
//!   S        -> this connection receives one 's' per SIGALRM, written
//!               from the signal handler
//!   T        -> "thread-bye\n", written by a thread that then exits
//!   Z        -> "bye\n", then the server _exits at once
//!   Q        -> the server exits

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};

use libc::c_int;

struct Conn {
    inbuf: Vec<u8>,
    out: Vec<u8>,
    want_out: bool,
}

static SIG_FD: AtomicI32 = AtomicI32::new(-1);
/// Writes that failed (other than EAGAIN); printed at Q.
static WRITE_ERRORS: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_alarm(_: c_int) {
    let fd = SIG_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the shim must keep it so.
        unsafe { libc::write(fd, b"s".as_ptr().cast(), 1) };
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 23) as u8).collect()
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let port: u16 = a[1].parse().unwrap();
    let kind = a[2].clone();
    let chunk: usize = a[3].parse().unwrap();
    let sigwrite = a[4..].iter().any(|s| s == "sigwrite");
    // An 8 KiB send buffer on accepted sockets: writes go short early.
    let smallsnd = a[4..].iter().any(|s| s == "smallsnd");
    // SAFETY: plain libc calls on fds this program owns; buffers outlive calls.
    unsafe {
        let ls = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0);
        let one: c_int = 1;
        libc::setsockopt(ls, libc::SOL_SOCKET, libc::SO_REUSEADDR, &one as *const _ as *const _, 4);
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be() },
            sin_zero: [0; 8],
        };
        assert_eq!(libc::bind(ls, &addr as *const _ as *const _, 16), 0);
        assert_eq!(libc::listen(ls, 128), 0);
        if sigwrite {
            libc::signal(libc::SIGALRM, on_alarm as *const () as usize);
            let it = libc::itimerval {
                it_interval: libc::timeval { tv_sec: 0, tv_usec: 2000 },
                it_value: libc::timeval { tv_sec: 0, tv_usec: 2000 },
            };
            libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut());
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        let ep = libc::epoll_create1(0);
        let et = if kind == "et" { libc::EPOLLET as u32 } else { 0 };
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: ls as u64 };
        libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, ls, &mut ev);
        let mut conns: HashMap<c_int, Conn> = HashMap::new();
        let mut buf = vec![0u8; chunk.max(1)];
        loop {
            // Which fds are ready: (fd, readable, writable)
            let mut ready: Vec<(c_int, bool, bool)> = Vec::new();
            match kind.as_str() {
                "lt" | "et" | "forever" => {
                    let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 64];
                    let n = libc::epoll_wait(ep, evs.as_mut_ptr(), 64, if kind == "forever" { -1 } else { 1000 });
                    if n < 0 && *libc::__errno_location() == libc::EINTR {
                        continue;
                    }
                    assert!(n >= 0, "epoll_wait: {}", std::io::Error::last_os_error());
                    for e in &evs[..n as usize] {
                        let (evv, fd) = (e.events, e.u64 as c_int);
                        ready.push((fd, evv & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0, evv & libc::EPOLLOUT as u32 != 0));
                    }
                }
                "poll" => {
                    let mut p = vec![libc::pollfd { fd: ls, events: libc::POLLIN, revents: 0 }];
                    for (fd, c) in &conns {
                        let ev = libc::POLLIN | if c.want_out { libc::POLLOUT } else { 0 };
                        p.push(libc::pollfd { fd: *fd, events: ev, revents: 0 });
                    }
                    let n = libc::poll(p.as_mut_ptr(), p.len() as u64, 1000);
                    if n < 0 {
                        continue;
                    }
                    for x in &p {
                        if x.revents != 0 {
                            ready.push((x.fd, x.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0, x.revents & libc::POLLOUT != 0));
                        }
                    }
                }
                _ => {
                    let mut rd: libc::fd_set = std::mem::zeroed();
                    let mut wr: libc::fd_set = std::mem::zeroed();
                    libc::FD_SET(ls, &mut rd);
                    let mut max = ls;
                    for (fd, c) in &conns {
                        libc::FD_SET(*fd, &mut rd);
                        if c.want_out {
                            libc::FD_SET(*fd, &mut wr);
                        }
                        max = max.max(*fd);
                    }
                    let mut tv = libc::timeval { tv_sec: 1, tv_usec: 0 };
                    let n = libc::select(max + 1, &mut rd, &mut wr, std::ptr::null_mut(), &mut tv);
                    if n < 0 {
                        continue;
                    }
                    for fd in std::iter::once(ls).chain(conns.keys().copied()) {
                        let r = libc::FD_ISSET(fd, &rd);
                        let w = libc::FD_ISSET(fd, &wr);
                        if r || w {
                            ready.push((fd, r, w));
                        }
                    }
                }
            }
            for (fd, readable, writable) in ready {
                if fd == ls {
                    loop {
                        let c = libc::accept4(ls, std::ptr::null_mut(), std::ptr::null_mut(), 0);
                        if c < 0 {
                            break;
                        }
                        // Nonblocking the way Redis does it: fcntl after accept.
                        if smallsnd {
                            let sz: c_int = 8192;
                            libc::setsockopt(c, libc::SOL_SOCKET, libc::SO_SNDBUF, &sz as *const _ as *const _, 4);
                        }
                        let fl = libc::fcntl(c, libc::F_GETFL);
                        libc::fcntl(c, libc::F_SETFL, fl | libc::O_NONBLOCK);
                        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32 | et, u64: c as u64 };
                        libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, c, &mut ev);
                        conns.insert(c, Conn { inbuf: Vec::new(), out: Vec::new(), want_out: false });
                    }
                    continue;
                }
                let mut close = false;
                if readable {
                    // LT: one read of at most CHUNK bytes per readiness, so
                    // data stays buffered; ET: read until EAGAIN.
                    loop {
                        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                        if n == 0 {
                            close = true;
                            break;
                        }
                        if n < 0 {
                            let e = *libc::__errno_location();
                            if e != libc::EAGAIN {
                                close = true;
                            }
                            break;
                        }
                        let c = conns.get_mut(&fd).unwrap();
                        c.inbuf.extend_from_slice(&buf[..n as usize]);
                        if !process(fd, c) {
                            std::process::exit(0);
                        }
                        if kind != "et" {
                            break;
                        }
                    }
                }
                if let Some(c) = conns.get_mut(&fd) {
                    if (writable || !c.out.is_empty()) && !flush(fd, c, ep, et) {
                        close = true;
                    }
                }
                if close {
                    libc::epoll_ctl(ep, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut());
                    if SIG_FD.load(Ordering::Relaxed) == fd {
                        SIG_FD.store(-1, Ordering::Relaxed);
                    }
                    libc::close(fd);
                    conns.remove(&fd);
                }
            }
        }
    }
}

/// Handles complete lines; false on Q.
unsafe fn process(fd: c_int, c: &mut Conn) -> bool {
    while let Some(i) = c.inbuf.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = c.inbuf.drain(..=i).collect();
        let line = &line[..line.len() - 1];
        match line.first() {
            Some(b'E') => {
                c.out.extend_from_slice(line);
                c.out.push(b'\n');
            }
            Some(b'B') => {
                let n: usize = std::str::from_utf8(&line[1..]).unwrap().parse().unwrap();
                c.out.extend(pattern(n));
                c.out.push(b'\n');
            }
            Some(b'F') => {
                // SAFETY: writes, fork and _exit on our own fd.
                unsafe {
                    libc::write(fd, b"before-fork\n".as_ptr().cast(), 12);
                    let pid = libc::fork();
                    if pid == 0 {
                        libc::_exit(0);
                    }
                    let mut st = 0;
                    libc::waitpid(pid, &mut st, 0);
                    libc::write(fd, b"after-fork\n".as_ptr().cast(), 11);
                }
            }
            Some(b'P') => {
                let mut n: c_int = 0;
                // SAFETY: FIONREAD writes an int; MSG_PEEK fills our buffer.
                let peeked = unsafe {
                    libc::ioctl(fd, libc::FIONREAD, &mut n);
                    let mut p = [0u8; 10];
                    let k = libc::recv(fd, p.as_mut_ptr().cast(), 10, libc::MSG_PEEK);
                    p[..k.max(0) as usize].to_vec()
                };
                // Count what this process already holds in its own input buffer too.
                let total = n as usize + c.inbuf.len();
                c.out.extend_from_slice(format!("P{} {}\n", total, String::from_utf8_lossy(&peeked)).as_bytes());
            }
            Some(b'S') => SIG_FD.store(fd, Ordering::Relaxed),
            Some(b'T') => {
                std::thread::spawn(move || {
                    // SAFETY: a write on our fd from another thread.
                    unsafe { libc::write(fd, b"thread-bye\n".as_ptr().cast(), 11) };
                })
                .join()
                .unwrap();
            }
            Some(b'Z') => {
                // SAFETY: a write, then the end of the process.
                unsafe {
                    libc::write(fd, b"bye\n".as_ptr().cast(), 4);
                    libc::_exit(0);
                }
            }
            Some(b'Q') => {
                println!("write-errors {}", WRITE_ERRORS.load(Ordering::Relaxed));
                return false;
            }
            _ => {}
        }
    }
    true
}

/// Writes what it can; false when the connection failed (the error of an
/// earlier write, reported by this one, counts).
unsafe fn flush(fd: c_int, c: &mut Conn, ep: c_int, et: u32) -> bool {
    while !c.out.is_empty() {
        // Writes of at most 16 KiB, as Redis and nginx make them.
        let k = c.out.len().min(16 * 1024);
        // SAFETY: k bytes of our buffer.
        let n = unsafe { libc::write(fd, c.out.as_ptr().cast(), k) };
        if n < 0 {
            // SAFETY: errno of this thread.
            let e = unsafe { *libc::__errno_location() };
            if e != libc::EAGAIN {
                WRITE_ERRORS.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            break;
        }
        c.out.drain(..n as usize);
    }
    let want = !c.out.is_empty();
    if want != c.want_out {
        c.want_out = want;
        let events = libc::EPOLLIN as u32 | et | if want { libc::EPOLLOUT as u32 } else { 0 };
        let mut ev = libc::epoll_event { events, u64: fd as u64 };
        // SAFETY: our epoll fd and a registered fd.
        unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd, &mut ev) };
    }
    true
}
