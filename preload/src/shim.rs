//! The one place that decides, for each intercepted call: defer, flush, or
//! pass through. Per-thread state (the ring and the thread's batch) lives
//! in a thread-local reachable from signal handlers; per-fd state lives in
//! [`crate::table`].

use std::cell::{Cell, RefCell};

use libc::{c_int, epoll_event, iovec};
use syscall_offload::raw::offload_sqe;

use crate::config::{self, Config, Inject, Mode};
use crate::engine::{run_direct, sqe, KRing};
use crate::stats::{add, bump, STATS};
use crate::sys::{gettid, now_ms, raw, say};
use crate::table::{Fd, Interest, Table, RBUF, TABLE};

/// Pending bytes per thread before the batch is flushed early.
const THREAD_CAP: usize = 4 << 20;
/// A fd with this many pending bytes may well get a short write: the wait
/// of that batch does not block, so the shim sees the backlog first.
const RISKY: usize = 32 * 1024;
/// How long exit, exec and thread exit wait for backlogs to drain.
const EXIT_DRAIN_MS: i64 = 5000;
const SQ_ENTRIES: u32 = 1024;
/// The longest a wait submitted with deferred writes blocks before the shim
/// looks at their results (a short write makes a backlog that the shim, not
/// the application, must retry). Under load the wait returns sooner anyway.
const FLUSH_WAIT_MS: i64 = 10;

thread_local! {
    /// Nesting depth of the shim on this thread: a call made while the shim
    /// is already running (its own, or a signal handler's) passes through.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    static THREAD: Holder = const { Holder(RefCell::new(None)) };
}

struct Holder(RefCell<Option<Box<Thread>>>);

impl Drop for Holder {
    fn drop(&mut self) {
        // Thread exit (and exit() for the main thread): send what was
        // deferred, then free the ring.
        DEPTH.with(|d| d.set(d.get() + 1));
        if let Some(mut t) = self.0.borrow_mut().take() {
            t.drain_all(EXIT_DRAIN_MS);
            t.release(true);
        }
    }
}

/// Runs `f` with the shim active on this thread, or returns None when the
/// call must pass through (shim off, nested call, thread exiting).
pub fn with<R>(f: impl FnOnce(&mut Thread, &'static Config) -> R) -> Option<R> {
    if DEPTH.try_with(|d| d.get()).unwrap_or(1) != 0 {
        return None;
    }
    let cfg = config::get()?;
    if cfg.mode == Mode::Off {
        return None;
    }
    DEPTH.with(|d| d.set(1));
    let r = THREAD
        .try_with(|h| {
            let mut slot = h.0.borrow_mut();
            let t = slot.get_or_insert_with(|| Box::new(Thread::new()));
            bump(&STATS.calls);
            f(t, cfg)
        })
        .ok();
    DEPTH.with(|d| d.set(0));
    r
}

enum Engine {
    Direct,
    Ring(KRing),
}

/// Bytes of one fd in a batch being run.
struct Fly {
    fd: i32,
    buf: Vec<u8>,
    off: usize,
    /// Bytes this attempt sends (less than the rest under fault injection).
    len: usize,
    flags: i32,
    first: bool,
    zombie: bool,
    until: i64,
    /// Fault injection: do not send, complete with -EAGAIN.
    refuse: bool,
}

/// A socket the application closed while a backlog remained: the shim keeps
/// a duplicate open until the backlog is sent (the kernel would have sent
/// those bytes after close() too).
struct Zombie {
    fd: i32,
    buf: Vec<u8>,
    off: usize,
    flags: i32,
    /// Give up (close) after this time (CLOCK_MONOTONIC ms): a peer that
    /// never reads must not keep the socket forever.
    until: i64,
}

/// How long a closed socket's backlog is retried.
const ZOMBIE_MS: i64 = 60_000;

pub struct Thread {
    tid: i32,
    engine: Option<Engine>,
    /// Fds with pending bytes owned by this thread.
    dirty: Vec<i32>,
    backlogged: Vec<i32>,
    zombies: Vec<Zombie>,
    pending_bytes: usize,
    risky: bool,
    fly: Vec<Fly>,
    sqes: Vec<offload_sqe>,
    res: Vec<i64>,
    evbuf: Vec<epoll_event>,
    out: Vec<epoll_event>,
    ra: Vec<(i32, Vec<u8>)>,
    after: Vec<(i32, Option<i32>)>,
}

fn table() -> crate::sys::Guard<'static, Option<Table>> {
    TABLE.lock()
}

macro_rules! tab {
    ($g:ident) => {
        $g.get_or_insert_with(Table::default)
    };
}

impl Thread {
    fn new() -> Thread {
        Thread {
            tid: gettid(),
            engine: None,
            dirty: Vec::new(),
            backlogged: Vec::new(),
            zombies: Vec::new(),
            pending_bytes: 0,
            risky: false,
            fly: Vec::new(),
            sqes: Vec::new(),
            res: Vec::new(),
            evbuf: Vec::new(),
            out: Vec::new(),
            ra: Vec::new(),
            after: Vec::new(),
        }
    }

    fn engine(&mut self, cfg: &Config) -> &mut Engine {
        if self.engine.is_none() {
            let e = match cfg.mode {
                Mode::Inline => KRing::new(SQ_ENTRIES, None),
                Mode::Worker => {
                    let cpu = worker_cpu(cfg);
                    KRing::new(SQ_ENTRIES, Some((cfg.worker_idle_ms, cpu)))
                }
                _ => Err(0),
            };
            self.engine = Some(match e {
                Ok(r) => Engine::Ring(r),
                Err(0) => Engine::Direct,
                Err(e) => {
                    say(&format!(
                        "thread {}: offload_setup failed ({}); this thread makes direct calls",
                        self.tid,
                        std::io::Error::from_raw_os_error(e)
                    ));
                    Engine::Direct
                }
            });
        }
        self.engine.as_mut().unwrap()
    }

    /// The ring fd, to keep the application from closing it.
    pub fn ring_fd(&self) -> Option<i32> {
        match &self.engine {
            Some(Engine::Ring(r)) => Some(r.fd()),
            _ => None,
        }
    }

    fn has_backlog(&self) -> bool {
        !self.backlogged.is_empty() || !self.zombies.is_empty()
    }

    fn has_pending(&self) -> bool {
        !self.dirty.is_empty() || self.has_backlog()
    }

    /// The timeout of the wait that ends a batch, from the application's
    /// `remaining` ms (-1: none). It does not block when events are ready
    /// already (`ready`), or when a write in flight may go short
    /// (`short_likely`, or a risky batch). Else a write in flight bounds it
    /// to FLUSH_WAIT_MS: look at the results, then wait again. A backlog
    /// bounds it to `cfg.backlog_ms`, to retry the rest.
    fn wait_ms(&self, cfg: &Config, remaining: i64, ready: bool, short_likely: bool) -> i64 {
        let has_fly = self.has_pending();
        if ready || remaining == 0 || (has_fly && (self.risky || short_likely)) {
            0
        } else if has_fly && !(0..=FLUSH_WAIT_MS).contains(&remaining) {
            FLUSH_WAIT_MS
        } else if self.has_backlog() {
            if remaining < 0 {
                cfg.backlog_ms
            } else {
                remaining.min(cfg.backlog_ms)
            }
        } else {
            remaining
        }
    }

    /// Runs `self.sqes` (the last one a blocking wait when `wait_last`).
    fn run(&mut self, cfg: &Config, wait_last: bool) {
        bump(&STATS.flushes);
        let n = self.sqes.len();
        self.res.clear();
        self.res.resize(n, -(libc::ECANCELED as i64));
        let sqes = std::mem::take(&mut self.sqes);
        let mut res = std::mem::take(&mut self.res);
        match self.engine(cfg) {
            Engine::Direct => {
                for (s, r) in sqes.iter().zip(res.iter_mut()) {
                    *r = run_direct(s);
                }
            }
            Engine::Ring(ring) => {
                if let Err(e) = ring.run(&sqes, &mut res, wait_last) {
                    // EPERM: traced (the tracer sees direct calls); keep the
                    // ring. Anything else: the ring is unusable here.
                    if e != libc::EPERM {
                        say(&format!(
                            "thread {}: offload_enter failed ({}); this thread makes direct calls",
                            self.tid,
                            std::io::Error::from_raw_os_error(e)
                        ));
                        if let Some(Engine::Ring(r)) = self.engine.take() {
                            r.close();
                        }
                        self.engine = Some(Engine::Direct);
                    }
                }
            }
        }
        self.sqes = sqes;
        self.res = res;
    }

    /// Submits every deferred write and backlog of this thread, then
    /// `extra` in the same batch; returns the result of `extra` (0 without).
    pub fn flush(&mut self, cfg: &Config, extra: Option<offload_sqe>, extra_waits: bool) -> i64 {
        if !self.has_pending() {
            return match extra {
                Some(s) => run_direct(&s),
                None => 0,
            };
        }
        let mut g = table();
        let t = tab!(g);
        self.fly.clear();
        for fd in self.dirty.drain(..) {
            let f = t.fd_mut(fd);
            if f.pending.is_empty() {
                continue;
            }
            let buf = std::mem::take(&mut f.pending);
            f.inflight = true;
            let len = buf.len();
            let (len, refuse) = match cfg.inject {
                Inject::None => (len, false),
                Inject::Short => (if len > 1 { len / 2 } else { len }, false),
                Inject::Eagain => (len, true),
            };
            self.fly.push(Fly { fd, buf, off: 0, len, flags: f.pflags, first: true, zombie: false, until: 0, refuse });
        }
        for fd in self.backlogged.drain(..) {
            let f = t.fd_mut(fd);
            if f.backlog.len() <= f.boff {
                continue;
            }
            let buf = std::mem::take(&mut f.backlog);
            f.inflight = true;
            let len = buf.len() - f.boff;
            self.fly.push(Fly { fd, buf, off: f.boff, len, flags: f.bflags, first: false, zombie: false, until: 0, refuse: false });
        }
        for z in self.zombies.drain(..) {
            let len = z.buf.len() - z.off;
            self.fly.push(Fly {
                fd: z.fd,
                buf: z.buf,
                off: z.off,
                len,
                flags: z.flags,
                first: false,
                zombie: true,
                until: z.until,
                refuse: false,
            });
        }
        drop(g);
        self.pending_bytes = 0;
        self.risky = false;
        self.sqes.clear();
        for f in &self.fly {
            let s = if f.refuse {
                sqe(libc::SYS_getpid, &[])
            } else {
                // SAFETY: off < buf.len(), so the pointer stays in the buffer.
                let p = unsafe { f.buf.as_ptr().add(f.off) };
                sqe(libc::SYS_sendto, &[f.fd as u64, p as u64, f.len as u64, (f.flags | libc::MSG_DONTWAIT) as u64, 0, 0])
            };
            self.sqes.push(s);
        }
        if let Some(s) = extra {
            self.sqes.push(s);
        }
        self.run(cfg, extra.is_some() && extra_waits);
        let mut g = table();
        let t = tab!(g);
        self.after.clear();
        for (i, mut f) in self.fly.drain(..).enumerate() {
            let r = if f.refuse { -(libc::EAGAIN as i64) } else { self.res[i] };
            if r >= 0 {
                f.off += r as usize;
            }
            let rest = f.buf.len() - f.off;
            let failed = r < 0 && r != -(libc::EAGAIN as i64) && r != -(libc::EINTR as i64);
            if f.first && rest > 0 && !failed {
                bump(&STATS.short_repairs);
            }
            if f.zombie {
                if rest > 0 && !failed && now_ms() < f.until {
                    self.zombies.push(Zombie { fd: f.fd, buf: f.buf, off: f.off, flags: f.flags, until: f.until });
                } else {
                    t.give(f.buf);
                    self.after.push((f.fd, None));
                }
                continue;
            }
            let x = t.fd_mut(f.fd);
            x.inflight = false;
            if failed {
                x.err = -r as i32;
                x.backlog = Vec::new();
                x.boff = 0;
                if x.pending.is_empty() {
                    x.owner = 0;
                }
                t.give(f.buf);
            } else if rest > 0 {
                x.backlog = f.buf;
                x.boff = f.off;
                x.bflags = f.flags;
                self.backlogged.push(f.fd);
            } else {
                if let Some(how) = x.shut_after.take() {
                    self.after.push((f.fd, Some(how)));
                }
                if x.pending.is_empty() {
                    x.owner = 0;
                }
                t.give(f.buf);
            }
        }
        drop(g);
        for (fd, how) in self.after.drain(..) {
            match how {
                Some(how) => raw(libc::SYS_shutdown, &[fd as u64, how as u64]),
                None => raw(libc::SYS_close, &[fd as u64]),
            };
        }
        match extra {
            Some(_) => *self.res.last().unwrap(),
            None => 0,
        }
    }

    /// Flushes, then sends backlogs with poll(2) for at most `ms`
    /// (exit, exec, thread exit, blocking fds).
    pub fn drain_all(&mut self, ms: i64) {
        let Some(cfg) = config::get() else { return };
        let deadline = now_ms() + ms;
        self.flush(cfg, None, false);
        while self.has_backlog() && now_ms() < deadline {
            let mut pfds: Vec<libc::pollfd> = self
                .backlogged
                .iter()
                .copied()
                .chain(self.zombies.iter().map(|z| z.fd))
                .map(|fd| libc::pollfd { fd, events: libc::POLLOUT, revents: 0 })
                .collect();
            let left = (deadline - now_ms()).clamp(1, 100);
            raw(libc::SYS_poll, &[pfds.as_mut_ptr() as u64, pfds.len() as u64, left as u64]);
            self.flush(cfg, None, false);
        }
    }

    /// Sends the backlog of one fd before a blocking call on it.
    fn drain_fd_blocking(&mut self, cfg: &Config, fd: i32) {
        loop {
            self.flush(cfg, None, false);
            if !self.backlogged.contains(&fd) {
                return;
            }
            let mut p = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
            raw(libc::SYS_poll, &[&mut p as *mut _ as u64, 1, 1000]);
        }
    }

    /// Thread exit or fork child: drop the ring.
    pub fn release(&mut self, unmap: bool) {
        if let Some(Engine::Ring(r)) = self.engine.take() {
            if unmap {
                r.close();
            } else {
                r.forget_in_child();
            }
        }
    }

    // ------------------------------------------------------------------
    // Writes

    /// A socket write of `iov` with send `flags`. Returns the raw result,
    /// or None when the call must be made directly (after a flush).
    pub fn write(&mut self, cfg: &Config, fd: c_int, iov: &[iovec], flags: c_int) -> Option<i64> {
        let len: usize = iov.iter().map(|v| v.iov_len).sum();
        let mut g = table();
        let t = tab!(g);
        let tid = self.tid;
        let f = t.fd(fd)?;
        if !f.tcp {
            return None;
        }
        if f.err != 0 {
            bump(&STATS.late_errors);
            let e = std::mem::take(&mut f.err);
            return Some(-(e as i64));
        }
        let nonblock = f.nonblock || flags & libc::MSG_DONTWAIT != 0;
        if f.has_write_state() && f.owner != tid && f.owner != 0 {
            // Another thread's batch holds earlier bytes of this fd.
            if nonblock {
                bump(&STATS.eagain);
                return Some(-(libc::EAGAIN as i64));
            }
            drop(g);
            while self.other_owns(fd) {
                raw(libc::SYS_sched_yield, &[]);
            }
            return None;
        }
        if f.backlog.len() > f.boff {
            drop(g);
            if !nonblock {
                self.drain_fd_blocking(cfg, fd);
                return None;
            }
            // Try to move the backlog now; refuse like a full socket if it stays.
            self.flush(cfg, None, false);
            if self.backlogged.contains(&fd) {
                bump(&STATS.eagain);
                {
                    let mut g = table();
                    tab!(g).owe(fd);
                }
                return Some(-(libc::EAGAIN as i64));
            }
            return self.write(cfg, fd, iov, flags);
        }
        let flags = flags & !libc::MSG_DONTWAIT;
        let ok_flags = flags & !(libc::MSG_NOSIGNAL | libc::MSG_MORE) == 0;
        if !f.nonblock || len == 0 || len > cfg.defer_max || !ok_flags {
            return None;
        }
        if (!f.pending.is_empty() && f.pflags != flags) || self.pending_bytes + len > THREAD_CAP {
            drop(g);
            self.flush(cfg, None, false);
            return self.write(cfg, fd, iov, flags);
        }
        if f.pending.is_empty() {
            let fresh = t.buf();
            let f = t.fd_mut(fd);
            f.pending = fresh;
            f.pflags = flags;
            f.owner = tid;
            self.dirty.push(fd);
        }
        let f = t.fd_mut(fd);
        for v in iov {
            if v.iov_len > 0 {
                // SAFETY: the application passed a readable buffer of iov_len bytes.
                f.pending.extend_from_slice(unsafe { std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len) });
            }
        }
        if f.pending.len() >= RISKY {
            self.risky = true;
        }
        self.pending_bytes += len;
        bump(&STATS.deferred);
        add(&STATS.deferred_bytes, len as u64);
        Some(len as i64)
    }

    fn other_owns(&self, fd: i32) -> bool {
        let mut g = table();
        let t = tab!(g);
        t.fd(fd).is_some_and(|f| f.has_write_state() && f.owner != 0 && f.owner != self.tid)
    }

    /// Before a direct call that sends on or reads `fd` (sendfile, splice,
    /// a large or non-deferrable write): flush; with a backlog left on the
    /// fd, a nonblocking call gets EAGAIN and a blocking one waits for it.
    pub fn before_output(&mut self, cfg: &Config, fd: c_int, nonblock_hint: bool) -> Option<i64> {
        self.flush(cfg, None, false);
        if !self.backlogged.contains(&fd) {
            let mut g = table();
            let t = tab!(g);
            if let Some(f) = t.fd(fd) {
                if f.err != 0 {
                    bump(&STATS.late_errors);
                    return Some(-(std::mem::take(&mut f.err) as i64));
                }
            }
            return None;
        }
        let nonblock = nonblock_hint || {
            let mut g = table();
            tab!(g).fd(fd).is_some_and(|f| f.nonblock)
        };
        if nonblock {
            bump(&STATS.eagain);
            {
                    let mut g = table();
                    tab!(g).owe(fd);
                }
            return Some(-(libc::EAGAIN as i64));
        }
        self.drain_fd_blocking(cfg, fd);
        None
    }

    // ------------------------------------------------------------------
    // Reads

    /// Serves a read from the read-ahead buffer, or reports a deferred
    /// error. `copy` receives the buffered bytes and returns how many it took.
    pub fn read_buffered(&mut self, fd: c_int, peek: bool, copy: &mut dyn FnMut(&[u8]) -> usize) -> Option<i64> {
        let mut g = table();
        let t = tab!(g);
        let f = t.fd(fd)?;
        if f.err != 0 {
            bump(&STATS.late_errors);
            return Some(-(std::mem::take(&mut f.err) as i64));
        }
        if !f.has_read_state() {
            return None;
        }
        bump(&STATS.buffered_reads);
        if f.buffered() > 0 {
            let n = copy(&f.rbuf[f.rstart..]);
            if !peek {
                f.rstart += n;
                if f.buffered() == 0 {
                    let b = std::mem::take(&mut f.rbuf);
                    f.rstart = 0;
                    let done = !f.has_read_state();
                    t.give(b);
                    if done {
                        t.unbuffer(fd);
                    }
                }
            }
            return Some(n as i64);
        }
        if f.reof {
            if !peek {
                f.reof = false;
                t.unbuffer(fd);
            }
            return Some(0);
        }
        let e = f.rerr;
        if !peek {
            f.rerr = 0;
            t.unbuffer(fd);
        }
        Some(-(e as i64))
    }

    /// Bytes buffered for `fd` (FIONREAD).
    pub fn buffered_len(&mut self, fd: c_int) -> usize {
        let mut g = table();
        tab!(g).fd(fd).map_or(0, |f| f.buffered())
    }

    /// Before a direct read: flush, and send a blocking fd's backlog first
    /// (the peer may be waiting for it before it answers).
    pub fn before_input(&mut self, cfg: &Config, fd: c_int) {
        self.flush(cfg, None, false);
        if self.backlogged.contains(&fd) {
            let blocking = {
                let mut g = table();
                tab!(g).fd(fd).is_some_and(|f| !f.nonblock)
            };
            if blocking {
                self.drain_fd_blocking(cfg, fd);
            }
        }
    }

    // ------------------------------------------------------------------
    // Descriptors

    /// A socket accepted: it starts with a clean state.
    pub fn accepted(&mut self, fd: c_int, family: i32, nonblock: bool) {
        let tcp = matches!(family, libc::AF_INET | libc::AF_INET6) && {
            let mut proto: c_int = 0;
            let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
            raw(
                libc::SYS_getsockopt,
                &[fd as u64, libc::SOL_SOCKET as u64, libc::SO_PROTOCOL as u64, &mut proto as *mut _ as u64, &mut len as *mut _ as u64],
            ) == 0
                && proto == libc::IPPROTO_TCP
        };
        let mut g = table();
        let t = tab!(g);
        let old = t.forget(fd);
        give_all(t, old);
        let f = t.fd_mut(fd);
        f.tcp = tcp;
        f.nonblock = nonblock;
    }

    /// A new fd the shim must not defer on (dup of anything, new epoll fd, ...).
    pub fn fresh_fd(&mut self, fd: c_int) {
        let mut g = table();
        let t = tab!(g);
        let old = t.forget(fd);
        give_all(t, old);
    }

    /// `fd` is about to share its file with another number: no more
    /// deferral on it (two numbers, one byte stream).
    pub fn duplicated(&mut self, fd: c_int) {
        let mut g = table();
        if let Some(f) = tab!(g).fd(fd) {
            f.tcp = false;
        }
    }

    pub fn set_nonblock(&mut self, fd: c_int, on: bool) {
        let mut g = table();
        let t = tab!(g);
        if fd >= 0 && (fd as usize) < t.fds.len() {
            t.fd_mut(fd).nonblock = on;
        }
    }

    /// close(fd) or an fd replaced by dup2/dup3: settles the shim's state.
    /// A remaining backlog keeps a duplicate alive until it is sent.
    pub fn closing(&mut self, cfg: &Config, fd: c_int) {
        self.flush(cfg, None, false);
        let mut g = table();
        let t = tab!(g);
        let has_backlog = t.fd(fd).is_some_and(|f| f.backlog.len() > f.boff);
        let mut old = t.forget(fd);
        drop(g);
        if has_backlog {
            self.backlogged.retain(|&x| x != fd);
            let z = raw(libc::SYS_fcntl, &[fd as u64, libc::F_DUPFD_CLOEXEC as u64, 0]);
            if z >= 0 {
                // The application's registrations go with its close, not ours.
                for e in &old.epfds {
                    raw(libc::SYS_epoll_ctl, &[*e as u64, libc::EPOLL_CTL_DEL as u64, fd as u64, 0]);
                }
                self.zombies.push(Zombie {
                    fd: z as i32,
                    buf: std::mem::take(&mut old.backlog),
                    off: old.boff,
                    flags: old.bflags,
                    until: now_ms() + ZOMBIE_MS,
                });
            }
        }
        let mut g = table();
        give_all(tab!(g), old);
    }

    pub fn shutdown(&mut self, cfg: &Config, fd: c_int, how: c_int) -> Option<i64> {
        self.flush(cfg, None, false);
        if how == libc::SHUT_RD || !self.backlogged.contains(&fd) {
            return None;
        }
        let mut g = table();
        tab!(g).fd_mut(fd).shut_after = Some(how);
        Some(0)
    }

    // ------------------------------------------------------------------
    // Epoll

    pub fn epoll_ctl(&mut self, cfg: &Config, epfd: c_int, op: c_int, fd: c_int, ev: *mut epoll_event) -> i64 {
        let mut mine = epoll_event { events: 0, u64: fd as u64 };
        let app = if ev.is_null() {
            None
        } else {
            // SAFETY: the application passed an epoll_event (packed on x86_64).
            Some(unsafe { ev.read_unaligned() })
        };
        if let Some(a) = app {
            mine.events = a.events;
        }
        let arg = if ev.is_null() { 0 } else { &mut mine as *mut _ as u64 };
        let r = self.flush(cfg, Some(sqe(libc::SYS_epoll_ctl, &[epfd as u64, op as u64, fd as u64, arg])), false);
        if r < 0 {
            return r;
        }
        let mut g = table();
        let t = tab!(g);
        match op {
            libc::EPOLL_CTL_ADD | libc::EPOLL_CTL_MOD => {
                let a = app.unwrap_or(epoll_event { events: 0, u64: 0 });
                t.ep.entry(epfd).or_default().insert(fd, Interest { events: a.events, data: a.u64, disabled: false });
                let f = t.fd_mut(fd);
                if !f.epfds.contains(&epfd) {
                    f.epfds.push(epfd);
                }
            }
            libc::EPOLL_CTL_DEL => {
                if let Some(m) = t.ep.get_mut(&epfd) {
                    m.remove(&fd);
                }
                if let Some(f) = t.fd(fd) {
                    f.epfds.retain(|&e| e != epfd);
                }
            }
            _ => {}
        }
        r
    }

    /// epoll_wait with the deferred writes in the same submission, buffered
    /// data reported as readiness, and read-ahead of the sockets it returns.
    pub fn epoll_wait(
        &mut self,
        cfg: &Config,
        epfd: c_int,
        events: *mut epoll_event,
        max: c_int,
        timeout: c_int,
        sigmask: u64,
    ) -> i64 {
        if max <= 0 || events.is_null() {
            self.flush(cfg, None, false);
            return raw(libc::SYS_epoll_pwait, &[epfd as u64, events as u64, max as u64, timeout as u64, sigmask, 8]);
        }
        let max = max as usize;
        let deadline = if timeout > 0 { now_ms() + timeout as i64 } else { 0 };
        loop {
            self.out.clear();
            self.synthesize(epfd, max);
            let remaining = match timeout {
                t if t < 0 => -1,
                0 => 0,
                _ => (deadline - now_ms()).max(0),
            };
            let t = self.wait_ms(cfg, remaining, !self.out.is_empty(), cfg.inject != Inject::None);
            let room = max - self.out.len();
            let mut n = 0usize;
            if room > 0 {
                self.evbuf.clear();
                self.evbuf.resize(room, epoll_event { events: 0, u64: 0 });
                let w = sqe(libc::SYS_epoll_wait, &[epfd as u64, self.evbuf.as_mut_ptr() as u64, room as u64, t as u64]);
                let r = if sigmask == 0 {
                    self.flush(cfg, Some(w), true)
                } else {
                    // epoll_pwait is not offloadable: flush, then wait directly.
                    self.flush(cfg, None, false);
                    let a = w.args;
                    raw(libc::SYS_epoll_pwait, &[a[0], a[1], a[2], a[3], sigmask, 8])
                };
                if r < 0 {
                    if self.out.is_empty() {
                        return r;
                    }
                } else {
                    n = r as usize;
                }
            } else {
                self.flush(cfg, None, false);
            }
            self.translate(cfg, epfd, n);
            if !self.out.is_empty() {
                let k = self.out.len().min(max);
                // SAFETY: the application's array holds `max` >= k events.
                unsafe { std::ptr::copy_nonoverlapping(self.out.as_ptr(), events, k) };
                return k as i64;
            }
            if timeout == 0 || (timeout > 0 && now_ms() >= deadline) {
                return 0;
            }
        }
    }

    /// Level-triggered interest in buffered fds becomes readiness.
    fn synthesize(&mut self, epfd: c_int, max: usize) {
        let mut g = table();
        let t = tab!(g);
        if t.buffered.is_empty() && t.owed.is_empty() {
            return;
        }
        let Some(m) = t.ep.get_mut(&epfd) else { return };
        // EPOLLOUT owed for writes refused while a backlog existed, once
        // the backlog is gone.
        let mut k = 0;
        while k < t.owed.len() {
            let fd = t.owed[k];
            let Some(f) = t.fds.get_mut(fd as usize) else {
                t.owed.swap_remove(k);
                continue;
            };
            if f.backlog.len() > f.boff || f.inflight {
                k += 1;
                continue;
            }
            f.owe_out = false;
            t.owed.swap_remove(k);
            if let Some(i) = m.get_mut(&fd) {
                if !i.disabled && i.events & libc::EPOLLOUT as u32 != 0 && self.out.len() < max {
                    if i.events & libc::EPOLLONESHOT as u32 != 0 {
                        i.disabled = true;
                    }
                    bump(&STATS.synthesized);
                    self.out.push(epoll_event { events: libc::EPOLLOUT as u32, u64: fd as u64 });
                }
            }
        }
        for &fd in &t.buffered {
            if self.out.len() >= max {
                break;
            }
            if let Some(i) = m.get_mut(&fd) {
                if i.disabled || i.events & libc::EPOLLIN as u32 == 0 || i.events & libc::EPOLLET as u32 != 0 {
                    continue;
                }
                if i.events & libc::EPOLLONESHOT as u32 != 0 {
                    i.disabled = true;
                }
                bump(&STATS.synthesized);
                if let Some(o) = self.out.iter_mut().find(|o| o.u64 as i32 == fd) {
                    o.events |= libc::EPOLLIN as u32;
                } else {
                    self.out.push(epoll_event { events: libc::EPOLLIN as u32, u64: fd as u64 });
                }
            }
        }
    }

    /// Kernel events (data = fd) become the application's (its data), merged
    /// with the synthesized ones; readable sockets are read ahead.
    fn translate(&mut self, cfg: &Config, epfd: c_int, n: usize) {
        let mut g = table();
        let t = tab!(g);
        // Synthesized events carry the fd for now: merge, then map.
        for k in 0..n {
            let ev = self.evbuf[k];
            let fd = ev.u64 as i32;
            let events = ev.events;
            if let Some(o) = self.out.iter_mut().find(|o| o.u64 as i32 == fd) {
                o.events |= events;
                continue;
            }
            self.out.push(epoll_event { events, u64: fd as u64 });
        }
        let Some(m) = t.ep.get_mut(&epfd) else {
            self.out.clear();
            return;
        };
        self.ra.clear();
        let mut w = 0;
        for k in 0..self.out.len() {
            let ev = self.out[k];
            let fd = ev.u64 as i32;
            let Some(i) = m.get_mut(&fd) else { continue };
            if i.events & libc::EPOLLONESHOT as u32 != 0 {
                i.disabled = true;
            }
            let data = i.data;
            let want_in = i.events & libc::EPOLLIN as u32 != 0;
            let ev_events = ev.events;
            self.out[w] = epoll_event { events: ev_events, u64: data };
            w += 1;
            if want_in && ev_events & libc::EPOLLIN as u32 != 0 {
                if let Some(f) = t.fds.get_mut(fd as usize) {
                    if f.tcp && !f.has_read_state() && !f.ra_busy && f.err == 0 {
                        f.ra_busy = true;
                        self.ra.push((fd, Vec::new()));
                    }
                }
            }
        }
        self.out.truncate(w);
        if self.ra.is_empty() {
            return;
        }
        for (_, b) in self.ra.iter_mut() {
            *b = t.buf();
            b.reserve(RBUF);
        }
        drop(g);
        self.sqes.clear();
        for (fd, b) in &mut self.ra {
            self.sqes.push(sqe(
                libc::SYS_recvfrom,
                &[*fd as u64, b.as_mut_ptr() as u64, b.capacity().min(4 * RBUF) as u64, libc::MSG_DONTWAIT as u64, 0, 0],
            ));
        }
        add(&STATS.readahead, self.ra.len() as u64);
        self.run(cfg, false);
        let mut g = table();
        let t = tab!(g);
        for (k, (fd, mut b)) in self.ra.drain(..).enumerate() {
            let r = self.res[k];
            let f = t.fd_mut(fd);
            f.ra_busy = false;
            if r > 0 {
                // SAFETY: the kernel wrote r bytes into the spare capacity.
                unsafe { b.set_len(r as usize) };
                f.rbuf = b;
                f.rstart = 0;
                t.buffered.push(fd);
                continue;
            }
            if r == 0 {
                f.reof = true;
                t.buffered.push(fd);
            } else if r != -(libc::EAGAIN as i64) && r != -(libc::EINTR as i64) {
                f.rerr = -r as i32;
                t.buffered.push(fd);
            }
            t.give(b);
        }
    }

    // ------------------------------------------------------------------
    // poll and select: flush, report buffered data, wake for backlogs

    pub fn poll(&mut self, cfg: &Config, fds: *mut libc::pollfd, nfds: u64, timeout: c_int) -> i64 {
        // SAFETY: the application passed nfds pollfds.
        let pf = if fds.is_null() { &mut [][..] } else { unsafe { std::slice::from_raw_parts_mut(fds, nfds as usize) } };
        let deadline = if timeout > 0 { now_ms() + timeout as i64 } else { 0 };
        loop {
            let synth: Vec<usize> = {
                let mut g = table();
                let t = tab!(g);
                pf.iter()
                    .enumerate()
                    .filter(|(_, p)| p.events & libc::POLLIN != 0 && t.fd(p.fd).is_some_and(|f| f.has_read_state() || f.err != 0))
                    .map(|(i, _)| i)
                    .collect()
            };
            let remaining = match timeout {
                t if t < 0 => -1,
                0 => 0,
                _ => (deadline - now_ms()).max(0),
            };
            let t = self.wait_ms(cfg, remaining, !synth.is_empty(), false);
            let r = self.flush(cfg, Some(sqe(libc::SYS_poll, &[fds as u64, nfds, t as u64])), true);
            if r < 0 && synth.is_empty() {
                return r;
            }
            let mut n = r.max(0);
            for i in synth {
                if pf[i].revents == 0 {
                    n += 1;
                }
                pf[i].revents |= libc::POLLIN;
                bump(&STATS.synthesized);
            }
            if n > 0 || timeout == 0 || (timeout > 0 && now_ms() >= deadline) {
                return n;
            }
        }
    }

    /// select/pselect: flush, then the caller makes the call; buffered fds
    /// in `readfds` are reported readable (the returned list says which).
    pub fn select_prepare(&mut self, cfg: &Config, nfds: c_int, readfds: *mut libc::fd_set) -> Vec<c_int> {
        self.flush(cfg, None, false);
        if readfds.is_null() {
            return Vec::new();
        }
        let mut g = table();
        let t = tab!(g);
        let mut v = Vec::new();
        for &fd in &t.buffered {
            // SAFETY: the application passed an fd_set; fd < nfds <= FD_SETSIZE.
            if fd < nfds && fd < libc::FD_SETSIZE as c_int && unsafe { libc::FD_ISSET(fd, readfds) } {
                v.push(fd);
            }
        }
        v
    }
}

fn give_all(t: &mut Table, f: Fd) {
    t.give(f.pending);
    t.give(f.backlog);
    t.give(f.rbuf);
}

fn worker_cpu(cfg: &Config) -> Option<u32> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    if cfg.worker_cpus.is_empty() {
        return None;
    }
    let i = NEXT.fetch_add(1, Ordering::Relaxed);
    Some(cfg.worker_cpus[i % cfg.worker_cpus.len()])
}

// ----------------------------------------------------------------------
// Process-wide hooks: fork, exit, stats

extern "C" fn atfork_prepare() {
    let _ = with(|t, cfg| {
        t.flush(cfg, None, false);
    });
    DEPTH.with(|d| d.set(d.get() + 1));
    TABLE.raw_lock();
}

extern "C" fn atfork_parent() {
    TABLE.force_unlock();
    DEPTH.with(|d| d.set(d.get() - 1));
}

extern "C" fn atfork_child() {
    // SAFETY: taken in atfork_prepare by this thread, the only one left.
    if let Some(t) = unsafe { TABLE.get_locked() } {
        t.reset_for_child();
    }
    TABLE.force_unlock();
    // The ring's mapping is not inherited: forget it, close its fd. The
    // thread's pending list is empty (flushed in prepare) or the parent's.
    let _ = THREAD.try_with(|h| {
        if let Some(mut t) = h.0.borrow_mut().take() {
            t.release(false);
            t.dirty.clear();
            t.backlogged.clear();
            // Zombies are the parent's; the child closes its copies.
            for z in t.zombies.drain(..) {
                crate::sys::raw6(libc::SYS_close, [z.fd as u64, 0, 0, 0, 0, 0]);
            }
        }
    });
    DEPTH.with(|d| d.set(d.get() - 1));
}

extern "C" fn at_exit() {
    print_stats();
}

pub fn print_stats() {
    let Some(cfg) = config::get() else { return };
    if !cfg.stats {
        return;
    }
    let line = format!("offload-preload: {}\n", crate::stats::line(&cfg.asked));
    let fd = match &cfg.stats_file {
        Some(p) => crate::sys::raw6(
            libc::SYS_openat,
            [libc::AT_FDCWD as u64, p.as_ptr() as u64, (libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC) as u64, 0o644, 0, 0],
        ),
        None => 2,
    };
    if fd >= 0 {
        crate::sys::raw6(libc::SYS_write, [fd as u64, line.as_ptr() as u64, line.len() as u64, 0, 0, 0]);
        if fd != 2 {
            crate::sys::raw6(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0]);
        }
    }
}

pub fn install_hooks() {
    // SAFETY: registering plain extern "C" handlers.
    unsafe {
        libc::pthread_atfork(Some(atfork_prepare), Some(atfork_parent), Some(atfork_child));
        libc::atexit(at_exit);
    }
}

/// _exit and exec: send what this thread deferred first.
pub fn before_image_ends() {
    let _ = with(|t, _| t.drain_all(EXIT_DRAIN_MS));
}

/// Whether `fd` is one of this thread's ring fds.
pub fn is_ring_fd(fd: c_int) -> bool {
    THREAD.try_with(|h| h.0.try_borrow().ok().and_then(|t| t.as_ref().and_then(|t| t.ring_fd())) == Some(fd)).unwrap_or(false)
}
