//! The micro suite: the per-call cost of small calls made one at a time,
//! in inline batches, by a worker ring, and through io_uring.
//!
//! Operations: a 64-byte `write` to `/dev/null`, a 64-byte `read` from
//! `/dev/zero`, `getppid` (io_uring has no getppid: its row uses `NOP`,
//! the least an io_uring entry can do, and says so).

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use syscall_offload::{Entry, Ring};

use crate::count::{self, Counter};
use crate::json::Obj;

/// An operation of the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `write(/dev/null, buf, 64)`
    Write,
    /// `read(/dev/zero, buf, 64)`
    Read,
    /// `getppid()`
    Getppid,
}

impl Op {
    pub fn parse(s: &str) -> Option<Op> {
        match s {
            "write" => Some(Op::Write),
            "read" => Some(Op::Read),
            "getppid" => Some(Op::Getppid),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Op::Write => "write",
            Op::Read => "read",
            Op::Getppid => "getppid",
        }
    }
}

/// How the calls are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Direct,
    Inline,
    Worker,
    Uring,
    UringSqpoll,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "direct" => Some(Mode::Direct),
            "inline" => Some(Mode::Inline),
            "worker" => Some(Mode::Worker),
            "uring" => Some(Mode::Uring),
            "uring-sqpoll" => Some(Mode::UringSqpoll),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Direct => "direct",
            Mode::Inline => "inline",
            Mode::Worker => "worker",
            Mode::Uring => "uring",
            Mode::UringSqpoll => "uring-sqpoll",
        }
    }
}

struct Files {
    null: File,
    zero: File,
    buf: Vec<[u8; 64]>,
}

impl Files {
    fn open(batch: usize) -> std::io::Result<Files> {
        Ok(Files {
            null: File::options().write(true).open("/dev/null")?,
            zero: File::open("/dev/zero")?,
            buf: vec![[0x5a; 64]; batch.max(1)],
        })
    }

    fn raw(&mut self, op: Op, i: usize) -> (u32, [u64; 6]) {
        let p = self.buf[i].as_mut_ptr() as u64;
        match op {
            Op::Write => (libc::SYS_write as u32, [self.null.as_raw_fd() as u64, p, 64, 0, 0, 0]),
            Op::Read => (libc::SYS_read as u32, [self.zero.as_raw_fd() as u64, p, 64, 0, 0, 0]),
            Op::Getppid => (libc::SYS_getppid as u32, [0; 6]),
        }
    }

    fn want(&self, op: Op) -> i64 {
        match op {
            Op::Write | Op::Read => 64,
            // SAFETY: getppid has no arguments.
            Op::Getppid => (unsafe { libc::getppid() }) as i64,
        }
    }
}

/// One way of making the calls, set up once, run batch by batch.
trait Runner {
    /// Makes one batch of calls and checks every result. The time spent
    /// only waiting for another thread (worker, SQPOLL) to finish is
    /// returned (as this thread's CPU time), to be reported apart from
    /// the application's own CPU, when `timed` (reading a CPU clock is a
    /// system call: the counting pass reads none).
    fn batch(&mut self, timed: bool) -> Result<Duration, String>;
    /// What runs the calls (kernel or emulated backend, ...).
    fn backend(&self) -> String;
}

struct Direct {
    op: Op,
    f: Files,
    want: i64,
}

impl Runner for Direct {
    fn batch(&mut self, _timed: bool) -> Result<Duration, String> {
        let fd: RawFd = match self.op {
            Op::Write => self.f.null.as_raw_fd(),
            _ => self.f.zero.as_raw_fd(),
        };
        let p = self.f.buf[0].as_mut_ptr();
        // SAFETY: p points to 64 writable bytes owned by self.
        let r = unsafe {
            match self.op {
                Op::Write => libc::write(fd, p as *const libc::c_void, 64) as i64,
                Op::Read => libc::read(fd, p as *mut libc::c_void, 64) as i64,
                Op::Getppid => libc::getppid() as i64,
            }
        };
        if r != self.want {
            return Err(format!("direct {}: {r}", self.op.name()));
        }
        Ok(Duration::ZERO)
    }

    fn backend(&self) -> String {
        "direct".into()
    }
}

struct Offload {
    op: Op,
    f: Files,
    ring: Ring,
    batch: usize,
    want: i64,
    worker: bool,
}

impl Runner for Offload {
    fn batch(&mut self, timed: bool) -> Result<Duration, String> {
        for i in 0..self.batch {
            let (nr, args) = self.f.raw(self.op, i);
            // SAFETY: the buffers and fds live in self.f, which outlives
            // the batch: this function waits for every completion.
            unsafe { self.ring.push(&Entry::syscall(nr, args).user_data(i as u64)) }.map_err(|e| e.to_string())?;
        }
        self.ring.submit().map_err(|e| e.to_string())?;
        let mut waited = Duration::ZERO;
        if self.worker {
            let c = if timed { count::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID) } else { 0.0 };
            spin_until(|| self.ring.cq_len() as usize >= self.batch)?;
            if timed {
                waited = Duration::from_nanos((count::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID) - c) as u64);
            }
        }
        let mut n = 0;
        for c in self.ring.completions() {
            if c.res != self.want {
                return Err(format!("{} entry {}: {}", self.op.name(), c.user_data, c.res));
            }
            n += 1;
        }
        if n != self.batch {
            return Err(format!("{n} completions for {} entries", self.batch));
        }
        Ok(waited)
    }

    fn backend(&self) -> String {
        format!("{:?}", self.ring.backend()).to_lowercase()
    }
}

struct Uring {
    op: Op,
    f: Files,
    ring: io_uring::IoUring,
    batch: usize,
    want: i64,
    sqpoll: bool,
}

impl Runner for Uring {
    fn batch(&mut self, timed: bool) -> Result<Duration, String> {
        use io_uring::{opcode, types};
        {
            let mut sq = self.ring.submission();
            for i in 0..self.batch {
                let p = self.f.buf[i].as_mut_ptr();
                let e = match self.op {
                    Op::Write => opcode::Write::new(types::Fd(self.f.null.as_raw_fd()), p, 64).offset(u64::MAX).build(),
                    Op::Read => opcode::Read::new(types::Fd(self.f.zero.as_raw_fd()), p, 64).offset(u64::MAX).build(),
                    Op::Getppid => opcode::Nop::new().build(),
                };
                // SAFETY: the buffers live in self.f; this function waits
                // for every completion before it returns.
                unsafe { sq.push(&e.user_data(i as u64)) }.map_err(|_| "io_uring SQ full".to_string())?;
            }
        }
        let mut waited = Duration::ZERO;
        if self.sqpoll {
            self.ring.submit().map_err(|e| e.to_string())?;
            let c0 = if timed { count::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID) } else { 0.0 };
            let (ring, batch) = (&mut self.ring, self.batch);
            spin_until(|| {
                let mut cq = ring.completion();
                cq.sync();
                cq.len() >= batch
            })?;
            if timed {
                waited = Duration::from_nanos((count::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID) - c0) as u64);
            }
        } else {
            self.ring.submit_and_wait(self.batch).map_err(|e| e.to_string())?;
        }
        let want = match self.op {
            Op::Getppid => 0,
            _ => self.want,
        };
        let mut n = 0;
        for c in self.ring.completion() {
            if c.result() as i64 != want {
                return Err(format!("io_uring {} entry {}: {}", self.op.name(), c.user_data(), c.result()));
            }
            n += 1;
        }
        if n != self.batch {
            return Err(format!("io_uring: {n} completions for {} entries", self.batch));
        }
        Ok(waited)
    }

    fn backend(&self) -> String {
        if self.sqpoll { "io_uring sqpoll" } else { "io_uring" }.into()
    }
}

/// Spins until `done`, making no system call (the clock is read only
/// every 2^22 spins, to give up after 30 s).
fn spin_until(mut done: impl FnMut() -> bool) -> Result<(), String> {
    let mut spins = 0u64;
    let mut t: Option<Instant> = None;
    while !done() {
        std::hint::spin_loop();
        spins += 1;
        if spins % (1 << 22) == 0 {
            let t = *t.get_or_insert_with(Instant::now);
            if t.elapsed() > Duration::from_secs(30) {
                return Err("no completions for 30 s".into());
            }
        }
    }
    Ok(())
}

fn make(op: Op, mode: Mode, batch: usize, cpu: Option<u32>) -> Result<Box<dyn Runner>, String> {
    let f = Files::open(batch).map_err(|e| e.to_string())?;
    let want = f.want(op);
    let entries = (batch.max(1) as u32).next_power_of_two();
    Ok(match mode {
        Mode::Direct => Box::new(Direct { op, f, want }),
        Mode::Inline | Mode::Worker => {
            let mut b = Ring::builder(entries).cq_entries(entries * 2);
            if mode == Mode::Worker {
                b = b.worker(Duration::from_millis(1000));
                if let Some(c) = cpu {
                    b = b.worker_cpu(c);
                }
            }
            let ring = b.build().map_err(|e| format!("offload ring: {e}"))?;
            Box::new(Offload { op, f, ring, batch, want, worker: mode == Mode::Worker })
        }
        Mode::Uring | Mode::UringSqpoll => {
            let mut b = io_uring::IoUring::builder();
            if mode == Mode::UringSqpoll {
                b.setup_sqpoll(1000);
                if let Some(c) = cpu {
                    b.setup_sqpoll_cpu(c);
                }
            }
            let ring = b.build(entries * 2).map_err(|e| format!("io_uring_setup: {e}"))?;
            Box::new(Uring { op, f, ring, batch, want, sqpoll: mode == Mode::UringSqpoll })
        }
    })
}

/// One run of the micro suite.
pub struct Params {
    pub op: Op,
    pub mode: Mode,
    pub batch: usize,
    /// Calls timed.
    pub calls: u64,
    /// Calls counted with the tracepoints on (0: no counting).
    pub count_calls: u64,
}

/// Runs one configuration and returns its JSON record, or the reason it
/// could not run (`Err` with "skip: ..." for a missing prerequisite).
pub fn run(p: &Params) -> Result<Obj, String> {
    let batch = if p.mode == Mode::Direct { 1 } else { p.batch };
    let pin = count::pin_for_worker();
    let mut r = make(p.op, p.mode, batch, pin).map_err(|e| format!("skip: {e}"))?;
    let batches = (p.calls / batch as u64).max(1);
    // Warm up: page in, wake the worker, fill the caches.
    for _ in 0..(batches / 20).clamp(1, 200) {
        r.batch(true)?;
    }
    let pid = std::process::id() as i32;
    let t0 = Instant::now();
    let c0 = count::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID);
    let p0 = count::clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID);
    let mut waited = Duration::ZERO;
    for _ in 0..batches {
        waited += r.batch(true)?;
    }
    let wall = t0.elapsed().as_nanos() as f64;
    let cpu = count::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID) - c0;
    let pcpu = count::clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID) - p0;
    let calls = (batches * batch as u64) as f64;
    let wait = waited.as_nanos() as f64;

    let mut o = Obj::new();
    o.str("suite", "micro").str("op", p.op.name()).str("mode", p.mode.name()).int("batch", batch as i64);
    o.str("backend", &r.backend());
    o.str("cpus", if pin.is_some() { "app on cpu 0, worker/SQPOLL thread on cpu 1" } else { "one cpu" });
    if matches!(p.mode, Mode::Uring | Mode::UringSqpoll) && p.op == Op::Getppid {
        o.str("note", "io_uring has no getppid: NOP entries");
    }
    o.int("calls", calls as i64);
    o.num("wall_ns_per_call", wall / calls);
    o.num("app_cpu_ns_per_call", (cpu - wait) / calls);
    o.num("app_wait_ns_per_call", wait / calls);
    o.num("other_threads_cpu_ns_per_call", (pcpu - cpu) / calls);
    o.num("total_cpu_ns_per_call", pcpu / calls);

    if p.count_calls > 0 {
        let cb = (p.count_calls / batch as u64).max(1);
        let me = count::gettid();
        let c = Counter::start().map_err(|e| format!("tracefs hist triggers: {e}"))?;
        let s0 = c.snapshot().map_err(|e| e.to_string())?;
        let s1 = c.snapshot().map_err(|e| e.to_string())?;
        for _ in 0..cb {
            r.batch(false)?;
        }
        let s2 = c.snapshot().map_err(|e| e.to_string())?;
        drop(c);
        let all = count::tids(pid);
        // Reading the hist costs syscalls of its own: subtract one reading.
        let app = count::delta(&s1, &s2, &[me]) - count::delta(&s0, &s1, &[me]);
        let proc_ = count::delta(&s1, &s2, &all) - count::delta(&s0, &s1, &all);
        let n = (cb * batch as u64) as f64;
        o.num("app_syscalls_per_call", app as f64 / n);
        o.num("process_syscalls_per_call", proc_ as f64 / n);
    }
    Ok(o)
}
