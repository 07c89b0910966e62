//! The echo-server suite: one server thread answering many connections of
//! a load generator, four ways:
//!
//! - `epoll`: `epoll_wait`, then a direct `read` and `write` per ready
//!   connection;
//! - `inline`: the same, but the loop iteration's writes go to an inline
//!   offload ring and run with one `offload_enter`;
//! - `inline-all`: every call of the loop goes through an inline ring, two
//!   `offload_enter` per iteration: the previous iteration's writes with
//!   the `epoll_wait` for the next readiness, then the reads of the ready
//!   connections;
//! - `worker`: `epoll_wait` direct; the reads of the ready connections and
//!   then their writes go to a worker ring, whose kernel thread runs them
//!   (the server thread enters the kernel only to wait: in `epoll_wait`, or
//!   with `OFFLOAD_ENTER_GETEVENTS` when the worker is slow to answer);
//! - `uring`: io_uring, a `RECV` per connection, a `SEND` for each
//!   message, one `io_uring_enter` (submit and wait) per loop iteration.
//!
//! The server runs in a child process (this binary, `echo-server`), so
//! its CPU time (its process CPU clock, all threads, workers included) and its
//! mode switches (the hist triggers, summed over its threads) are its own.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use syscall_offload::{Entry, Ring};

use crate::count::{self, Counter};
use crate::json::Obj;

const BUF: usize = 4096;
const LISTENER: u64 = u64::MAX;

/// The server variants.
pub const MODES: [&str; 5] = ["epoll", "inline", "inline-all", "worker", "uring"];

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

struct Epoll(OwnedFd);

impl Epoll {
    fn new() -> std::io::Result<Epoll> {
        // SAFETY: plain syscall.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a new epoll fd we own.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn add(&self, fd: RawFd, data: u64) -> std::io::Result<()> {
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: data };
        // SAFETY: ev is valid for the call.
        if unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn wait(&self, evs: &mut [libc::epoll_event], timeout: i32) -> usize {
        // SAFETY: evs is valid for evs.len() events.
        let n = unsafe { libc::epoll_wait(self.0.as_raw_fd(), evs.as_mut_ptr(), evs.len() as i32, timeout) };
        if n < 0 {
            if errno() == libc::EINTR {
                return 0;
            }
            panic!("epoll_wait: {}", std::io::Error::last_os_error());
        }
        n as usize
    }
}

struct Conn {
    fd: OwnedFd,
    buf: Box<[u8; BUF]>,
    /// Bytes of the write in flight (inline and worker rings).
    pending: usize,
}

fn accept_all(lfd: RawFd, ep: Option<&Epoll>, conns: &mut Vec<Option<Conn>>) {
    loop {
        // SAFETY: plain syscall, no address wanted.
        let fd = unsafe { libc::accept4(lfd, std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) };
        if fd < 0 {
            return;
        }
        let one: libc::c_int = 1;
        // SAFETY: one is a valid int option.
        unsafe { libc::setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, &one as *const _ as *const libc::c_void, 4) };
        if let Some(ep) = ep {
            ep.add(fd, fd as u64).expect("epoll_ctl");
        }
        let i = fd as usize;
        if conns.len() <= i {
            conns.resize_with(i + 1, || None);
        }
        // SAFETY: fd is a new socket we own.
        conns[i] = Some(Conn { fd: unsafe { OwnedFd::from_raw_fd(fd) }, buf: Box::new([0; BUF]), pending: 0 });
    }
}

/// Writes all of `b` with direct calls (the rest of a short write).
fn write_all(fd: RawFd, mut b: &[u8]) -> bool {
    while !b.is_empty() {
        // SAFETY: b is valid for its length.
        let r = unsafe { libc::write(fd, b.as_ptr() as *const libc::c_void, b.len()) };
        if r < 0 {
            if errno() == libc::EAGAIN {
                std::thread::yield_now();
                continue;
            }
            return false;
        }
        b = &b[r as usize..];
    }
    true
}

/// A write from a ring completed with `res`: write the rest of a short
/// one directly; drop the connection on an error.
fn finish_write(conns: &mut [Option<Conn>], i: usize, res: i64) {
    let Some(c) = conns[i].as_mut() else { return };
    let ok = res >= 0 && (res as usize == c.pending || write_all(i as RawFd, &c.buf[res as usize..c.pending]));
    if !ok {
        conns[i] = None;
    }
}

/// A read from a ring completed with `res`: queue the write that echoes
/// it on `ring` (as `user_data`), or drop the connection at EOF or on an
/// error. Returns whether a write was queued. The caller reaps the
/// write's completion before it drops the connection.
fn queue_echo(ring: &mut Ring, conns: &mut [Option<Conn>], i: usize, res: i64, user_data: u64) -> bool {
    let Some(c) = conns[i].as_mut() else { return false };
    if res == -(libc::EAGAIN as i64) {
        return false;
    }
    if res <= 0 {
        conns[i] = None;
        return false;
    }
    c.pending = res as usize;
    let e = Entry::syscall(libc::SYS_write as u32, [i as u64, c.buf.as_ptr() as u64, res as u64, 0, 0, 0]);
    // SAFETY: the buffer and fd live in conns[i], which the caller keeps
    // until this write's completion has been reaped.
    unsafe { ring.push(&e.user_data(user_data)) }.expect("push");
    true
}

/// What epoll reported ready: accept on the listener, and queue a read of
/// each ready connection on `ring` (`tag` or'd into its index as
/// user_data). Returns how many reads were queued. The caller reaps each
/// read's completion before it drops the connection.
fn queue_reads(ring: &mut Ring, evs: &[libc::epoll_event], ep: &Epoll, lfd: RawFd, conns: &mut Vec<Option<Conn>>, tag: u64) -> usize {
    let mut reads = 0;
    for ev in evs {
        if ev.u64 == LISTENER {
            accept_all(lfd, Some(ep), conns);
            continue;
        }
        let i = ev.u64 as usize;
        let Some(c) = conns[i].as_mut() else { continue };
        let e = Entry::syscall(libc::SYS_read as u32, [i as u64, c.buf.as_mut_ptr() as u64, BUF as u64, 0, 0, 0]);
        // SAFETY: the buffer and fd live in conns[i], which the caller
        // keeps until this read's completion has been reaped.
        unsafe { ring.push(&e.user_data(i as u64 | tag)) }.expect("push");
        reads += 1;
    }
    reads
}

fn read_direct(c: &mut Conn) -> isize {
    // SAFETY: the buffer is BUF bytes.
    unsafe { libc::read(c.fd.as_raw_fd(), c.buf.as_mut_ptr() as *mut libc::c_void, BUF) }
}

fn serve_epoll(l: TcpListener, inline: bool) -> ! {
    let ep = Epoll::new().expect("epoll");
    let lfd = l.as_raw_fd();
    ep.add(lfd, LISTENER).expect("epoll_ctl");
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut ring = if inline { Some(Ring::builder(256).cq_entries(512).build().expect("offload ring")) } else { None };
    if let Some(r) = &ring {
        eprintln!("echo-server: offload backend {:?}", r.backend());
    }
    let mut evs = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    loop {
        let n = ep.wait(&mut evs, -1);
        let mut queued = 0;
        for ev in &evs[..n] {
            if ev.u64 == LISTENER {
                accept_all(lfd, Some(&ep), &mut conns);
                continue;
            }
            let i = ev.u64 as usize;
            let Some(c) = conns[i].as_mut() else { continue };
            let r = read_direct(c);
            if r < 0 && errno() == libc::EAGAIN {
                continue;
            }
            if r <= 0 {
                conns[i] = None;
                continue;
            }
            match ring.as_mut() {
                None => {
                    if !write_all(c.fd.as_raw_fd(), &c.buf[..r as usize]) {
                        conns[i] = None;
                    }
                }
                Some(ring) => {
                    c.pending = r as usize;
                    let e = Entry::syscall(libc::SYS_write as u32, [i as u64, c.buf.as_ptr() as u64, r as u64, 0, 0, 0]);
                    // SAFETY: the buffer and fd stay until the completion
                    // is reaped below, in this iteration.
                    unsafe { ring.push(&e.user_data(i as u64)) }.expect("push");
                    queued += 1;
                }
            }
        }
        if let (Some(ring), true) = (ring.as_mut(), queued > 0) {
            ring.submit().expect("offload_enter");
            let done: Vec<(usize, i64)> = ring.completions().map(|c| (c.user_data as usize, c.res)).collect();
            assert_eq!(done.len(), queued, "inline ring: completions");
            for (i, res) in done {
                finish_write(&mut conns, i, res);
            }
        }
    }
}

const READ: u64 = 0;
const WRITE: u64 = 1 << 32;
/// The user_data of `inline-all`'s `epoll_wait` (bit 63 is the crate's).
const WAIT: u64 = 1 << 40;

/// Every call through an inline ring: per loop iteration, one
/// `offload_enter` runs the previous iteration's writes and then the
/// `epoll_wait` (which blocks in it), one more the reads of the ready
/// connections. Accepts stay direct.
fn serve_inline_all(l: TcpListener) -> ! {
    let ep = Epoll::new().expect("epoll");
    let lfd = l.as_raw_fd();
    ep.add(lfd, LISTENER).expect("epoll_ctl");
    let mut conns: Vec<Option<Conn>> = Vec::new();
    // Up to 256 writes and the wait, then up to 256 reads.
    let mut ring = Ring::builder(512).cq_entries(1024).build().expect("offload ring");
    eprintln!("echo-server: offload backend {:?}, every call on the ring", ring.backend());
    let mut evs = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    loop {
        let wait = Entry::syscall(
            libc::SYS_epoll_wait as u32,
            [ep.0.as_raw_fd() as u64, evs.as_mut_ptr() as u64, evs.len() as u64, -1i64 as u64, 0, 0],
        );
        // SAFETY: `evs` lives across the loop; the writes queued before it
        // point into connections dropped only once their completions are
        // reaped, below.
        unsafe { ring.push(&wait.user_data(WAIT)) }.expect("push");
        ring.submit().expect("offload_enter");
        let mut n = 0;
        let done: Vec<(u64, i64)> = ring.completions().map(|c| (c.user_data, c.res)).collect();
        for (ud, res) in done {
            if ud == WAIT {
                n = match res {
                    r if r >= 0 => r as usize,
                    r if r == -(libc::EINTR as i64) => 0,
                    r => panic!("epoll_wait: {}", std::io::Error::from_raw_os_error(-r as i32)),
                };
            } else {
                finish_write(&mut conns, ud as usize, res);
            }
        }
        // The reads complete below, in this iteration.
        let reads = queue_reads(&mut ring, &evs[..n], &ep, lfd, &mut conns, 0);
        if reads == 0 {
            continue;
        }
        ring.submit().expect("offload_enter");
        let done: Vec<(u64, i64)> = ring.completions().map(|c| (c.user_data, c.res)).collect();
        assert_eq!(done.len(), reads, "inline ring: completions");
        for (ud, res) in done {
            // The write completes with the next wait.
            queue_echo(&mut ring, &mut conns, ud as usize, res, ud);
        }
    }
}

fn serve_worker(l: TcpListener, cpu: Option<u32>, idle_ms: u64) -> ! {
    let ep = Epoll::new().expect("epoll");
    let lfd = l.as_raw_fd();
    ep.add(lfd, LISTENER).expect("epoll_ctl");
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut b = Ring::builder(512).cq_entries(1024).worker(Duration::from_millis(idle_ms));
    if let Some(c) = cpu {
        b = b.worker_cpu(c);
    }
    let mut ring = b.build().expect("worker ring");
    eprintln!("echo-server: offload backend {:?}, worker ring", ring.backend());
    let mut evs = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut reads = 0usize;
    loop {
        // Reads in flight: wait for them (spin a little, then sleep in
        // offload_enter with GETEVENTS), then queue the writes.
        let mut spins = 0u32;
        while reads > 0 {
            if ring.cq_len() == 0 {
                spins += 1;
                if spins < 4096 {
                    std::hint::spin_loop();
                    continue;
                }
                ring.wait(1).expect("offload_enter(GETEVENTS)");
            }
            spins = 0;
            let done: Vec<(u64, i64)> = ring.completions().map(|c| (c.user_data, c.res)).collect();
            let mut queued = false;
            for (ud, res) in done {
                let i = (ud & 0xffff_ffff) as usize;
                if ud & WRITE != 0 {
                    finish_write(&mut conns, i, res);
                    continue;
                }
                reads -= 1;
                // In-order ring: the write's completion comes before that
                // of the connection's next read.
                queued |= queue_echo(&mut ring, &mut conns, i, res, i as u64 | WRITE);
            }
            if queued {
                ring.submit().expect("submit");
            }
        }
        // Writes may still be in flight: the worker finishes them while
        // this thread waits for the next readiness.
        let n = ep.wait(&mut evs, -1);
        reads += queue_reads(&mut ring, &evs[..n], &ep, lfd, &mut conns, READ);
        if reads > 0 {
            ring.submit().expect("submit");
        }
    }
}

fn serve_uring(l: TcpListener) -> ! {
    use io_uring::{opcode, types, IoUring};
    let mut ring = IoUring::new(1024).expect("io_uring_setup");
    let lfd = l.as_raw_fd();
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let accept = opcode::Accept::new(types::Fd(lfd), std::ptr::null_mut(), std::ptr::null_mut()).flags(libc::SOCK_CLOEXEC).build().user_data(LISTENER);
    // SAFETY: accept takes no buffers.
    unsafe { ring.submission().push(&accept) }.expect("push");
    loop {
        ring.submit_and_wait(1).expect("io_uring_enter");
        let done: Vec<(u64, i32)> = ring.completion().map(|c| (c.user_data(), c.result())).collect();
        for (ud, res) in done {
            let next = if ud == LISTENER {
                if res >= 0 {
                    let fd = res;
                    let one: libc::c_int = 1;
                    // SAFETY: one is a valid int option.
                    unsafe { libc::setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, &one as *const _ as *const libc::c_void, 4) };
                    let i = fd as usize;
                    if conns.len() <= i {
                        conns.resize_with(i + 1, || None);
                    }
                    // SAFETY: a new socket we own.
                    let mut c = Conn { fd: unsafe { OwnedFd::from_raw_fd(fd) }, buf: Box::new([0; BUF]), pending: 0 };
                    let r = opcode::Recv::new(types::Fd(fd), c.buf.as_mut_ptr(), BUF as u32).build().user_data(i as u64 | READ);
                    conns[i] = Some(c);
                    // SAFETY: the buffer lives in conns[i] until the completion.
                    unsafe { ring.submission().push(&r) }.expect("push");
                }
                Some(accept.clone())
            } else {
                let i = (ud & 0xffff_ffff) as usize;
                let Some(c) = conns[i].as_mut() else { continue };
                let fd = types::Fd(i as RawFd);
                if ud & WRITE != 0 {
                    if res < 0 {
                        conns[i] = None;
                        None
                    } else if (res as usize) < c.pending {
                        c.buf.copy_within(res as usize..c.pending, 0);
                        c.pending -= res as usize;
                        Some(opcode::Send::new(fd, c.buf.as_ptr(), c.pending as u32).build().user_data(i as u64 | WRITE))
                    } else {
                        Some(opcode::Recv::new(fd, c.buf.as_mut_ptr(), BUF as u32).build().user_data(i as u64 | READ))
                    }
                } else if res <= 0 {
                    conns[i] = None;
                    None
                } else {
                    c.pending = res as usize;
                    Some(opcode::Send::new(fd, c.buf.as_ptr(), res as u32).build().user_data(i as u64 | WRITE))
                }
            };
            if let Some(e) = next {
                // SAFETY: buffers live in conns until their completions.
                unsafe { ring.submission().push(&e) }.expect("push");
            }
        }
    }
}

/// `echo-server MODE [WORKER_IDLE_MS]`: prints `port N` on stdout, then
/// serves forever.
pub fn server(mode: &str, idle_ms: u64) -> Result<(), String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = l.local_addr().map_err(|e| e.to_string())?.port();
    if mode == "uring" {
        // Probe first, so that a host without io_uring says so and exits.
        io_uring::IoUring::new(8).map_err(|e| format!("skip: io_uring_setup: {e}"))?;
    } else {
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
    }
    // The server thread on CPU 0, a worker ring's thread on CPU 1; the
    // load generator where the scheduler puts it.
    let cpu = count::pin_for_worker();
    println!("port {port}");
    std::io::stdout().flush().ok();
    match mode {
        "epoll" => serve_epoll(l, false),
        "inline" => serve_epoll(l, true),
        "inline-all" => serve_inline_all(l),
        "worker" => serve_worker(l, cpu, idle_ms),
        "uring" => serve_uring(l),
        _ => Err(format!("unknown server mode {mode}")),
    }
}

/// One run of the echo suite.
pub struct Params {
    pub mode: String,
    pub conns: usize,
    pub size: usize,
    pub requests: u64,
    pub count_requests: u64,
    /// The worker ring's idle time before its thread sleeps.
    pub worker_idle_ms: u64,
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Client {
    ep: Epoll,
    socks: Vec<TcpStream>,
    msg: Vec<u8>,
    got: Vec<usize>,
    start: Vec<Instant>,
    buf: Vec<u8>,
}

impl Client {
    /// `n` requests, one outstanding per connection; latencies in ns.
    fn phase(&mut self, n: u64, lat: &mut Vec<u64>) -> Result<(), String> {
        let size = self.msg.len();
        let mut sent = 0u64;
        let mut done = 0u64;
        let mut outstanding = 0;
        for i in 0..self.socks.len() {
            if sent < n {
                self.send(i)?;
                sent += 1;
                outstanding += 1;
            }
        }
        let mut evs = vec![libc::epoll_event { events: 0, u64: 0 }; self.socks.len()];
        let deadline = Duration::from_secs(60);
        let mut last = Instant::now();
        while outstanding > 0 {
            let k = self.ep.wait(&mut evs, 1000);
            if k == 0 && last.elapsed() > deadline {
                return Err(format!("echo client: no answer for {deadline:?} ({outstanding} outstanding)"));
            }
            for ev in &evs[..k] {
                let i = ev.u64 as usize;
                let r = match self.socks[i].read(&mut self.buf) {
                    Ok(0) => return Err("echo client: server closed a connection".into()),
                    Ok(r) => r,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(format!("echo client: {e}")),
                };
                self.got[i] += r;
                if self.got[i] < size {
                    continue;
                }
                if self.got[i] > size {
                    return Err("echo client: more bytes than sent".into());
                }
                last = Instant::now();
                lat.push(self.start[i].elapsed().as_nanos() as u64);
                done += 1;
                outstanding -= 1;
                if sent < n {
                    self.send(i)?;
                    sent += 1;
                    outstanding += 1;
                }
            }
        }
        debug_assert_eq!(done, n);
        Ok(())
    }

    fn send(&mut self, i: usize) -> Result<(), String> {
        self.got[i] = 0;
        self.start[i] = Instant::now();
        self.socks[i].write_all(&self.msg).map_err(|e| format!("echo client: {e}"))
    }
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[k] as f64
}

/// Runs one server variant under the load generator; its JSON record.
pub fn run(p: &Params) -> Result<Obj, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let child = Command::new(exe)
        .args(["echo-server", &p.mode, &p.worker_idle_ms.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut server = Server(child);
    let pid = server.0.id() as i32;
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().expect("stdout")).read_line(&mut line).map_err(|e| e.to_string())?;
    let Some(port) = line.trim().strip_prefix("port ").and_then(|s| s.parse::<u16>().ok()) else {
        let mut err = String::new();
        if let Some(mut e) = server.0.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let err = err.trim().lines().last().unwrap_or("").trim_start_matches("Error: ").trim_matches('"').to_string();
        return Err(if err.starts_with("skip:") { err } else { format!("echo-server {}: {err}", p.mode) });
    };
    let mut backend = String::new();
    let mut stderr = server.0.stderr.take();
    let ep = Epoll::new().map_err(|e| e.to_string())?;
    let mut socks = Vec::new();
    for i in 0..p.conns {
        let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
        ep.add(s.as_raw_fd(), i as u64).map_err(|e| e.to_string())?;
        socks.push(s);
    }
    let n = socks.len();
    let mut cl = Client { ep, socks, msg: vec![b'x'; p.size], got: vec![0; n], start: vec![Instant::now(); n], buf: vec![0; BUF.max(p.size)] };
    let mut lat = Vec::with_capacity(p.requests as usize);
    cl.phase((p.requests / 10).max(p.conns as u64), &mut lat)?;
    if p.mode.starts_with("inline") || p.mode == "worker" {
        // The server reports its backend on stderr once it made its ring.
        if let Some(e) = stderr.as_mut() {
            let mut b = [0u8; 256];
            // SAFETY: plain fcntl on our pipe.
            unsafe { libc::fcntl(e.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
            if let Ok(k) = e.read(&mut b) {
                backend = String::from_utf8_lossy(&b[..k]).trim().trim_start_matches("echo-server: offload backend ").to_lowercase();
            }
        }
    }
    lat.clear();
    let cpu0 = count::proc_cpu_ns(pid).map_err(|e| e.to_string())?;
    let tick0 = count::proc_cpu_secs(pid).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    cl.phase(p.requests, &mut lat)?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = (count::proc_cpu_ns(pid).map_err(|e| e.to_string())? - cpu0) / 1e9;
    let ticks = count::proc_cpu_secs(pid).map_err(|e| e.to_string())? - tick0;
    lat.sort_unstable();

    let mut o = Obj::new();
    o.str("suite", "echo").str("mode", &p.mode).int("conns", p.conns as i64).int("size", p.size as i64);
    if p.mode == "worker" {
        o.int("worker_idle_ms", p.worker_idle_ms as i64);
    }
    o.str("backend", if backend.is_empty() { if p.mode == "uring" { "io_uring" } else { "direct" } } else { &backend });
    o.int("requests", p.requests as i64);
    o.num("rps", p.requests as f64 / wall);
    o.num("p50_us", pct(&lat, 0.50) / 1e3);
    o.num("p99_us", pct(&lat, 0.99) / 1e3);
    o.num("cpu_s_per_mreq", cpu * 1e6 / p.requests as f64);
    // The same from /proc/PID/stat (clock ticks), as a cross-check.
    o.num("cpu_s_per_mreq_proc", ticks * 1e6 / p.requests as f64);
    o.int("server_threads", count::tids(pid).len() as i64);

    if p.count_requests > 0 {
        let c = Counter::start().map_err(|e| format!("tracefs hist triggers: {e}"))?;
        let s0 = c.snapshot().map_err(|e| e.to_string())?;
        lat.clear();
        cl.phase(p.count_requests, &mut lat)?;
        // Let a worker finish what it still has: its threads count too.
        std::thread::sleep(Duration::from_millis(50));
        let s1 = c.snapshot().map_err(|e| e.to_string())?;
        drop(c);
        let sys = count::delta(&s0, &s1, &count::tids(pid));
        o.num("syscalls_per_req", sys as f64 / p.count_requests as f64);
    }
    drop(cl);
    Ok(o)
}
