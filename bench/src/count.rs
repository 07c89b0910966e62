//! What the kernel counts: mode switches from tracepoint hist triggers, CPU
//! time from `/proc` and the CPU clocks.
//!
//! A mode switch is a `raw_syscalls:sys_enter` event minus an
//! `offload:offload_submit` event of the same thread: every entry an
//! offload ring runs fires `sys_enter` too, in the thread that runs it (the
//! caller of an inline `offload_enter`, or a worker thread), as
//! `vm-tests/syscount.h` explains. The hists are keyed on `common_pid`,
//! the thread id; a process's count is the sum over its threads.

use std::collections::HashMap;
use std::fs;
use std::io;

const EVENTS: &str = "/sys/kernel/tracing/events";
const SPEC: &str = "hist:keys=common_pid:vals=hitcount:size=4096";
const ENTER: &str = "raw_syscalls/sys_enter";
const SUBMIT: &str = "offload/offload_submit";

/// Hist triggers on `sys_enter` and `offload_submit`, removed on drop.
pub struct Counter {
    offload: bool,
}

fn write_trigger(event: &str, spec: &str) -> io::Result<()> {
    fs::write(format!("{EVENTS}/{event}/trigger"), spec)
}

impl Counter {
    /// Turns the triggers on. Fails without tracefs, root or
    /// `CONFIG_HIST_TRIGGERS`; a kernel without offload counts `sys_enter`
    /// alone.
    pub fn start() -> io::Result<Counter> {
        let _ = write_trigger(ENTER, &format!("!{SPEC}"));
        write_trigger(ENTER, SPEC)?;
        let offload = fs::metadata(format!("{EVENTS}/{SUBMIT}")).is_ok();
        if offload {
            let _ = write_trigger(SUBMIT, &format!("!{SPEC}"));
            if let Err(e) = write_trigger(SUBMIT, SPEC) {
                let _ = write_trigger(ENTER, &format!("!{SPEC}"));
                return Err(e);
            }
        }
        Ok(Counter { offload })
    }

    /// Mode switches so far of each thread (sys_enter minus offload_submit).
    pub fn snapshot(&self) -> io::Result<HashMap<i32, i64>> {
        let mut m = read_hist(ENTER)?;
        if self.offload {
            for (tid, n) in read_hist(SUBMIT)? {
                *m.entry(tid).or_insert(0) -= n;
            }
        }
        Ok(m)
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        let _ = write_trigger(ENTER, &format!("!{SPEC}"));
        if self.offload {
            let _ = write_trigger(SUBMIT, &format!("!{SPEC}"));
        }
    }
}

fn read_hist(event: &str) -> io::Result<HashMap<i32, i64>> {
    let text = fs::read_to_string(format!("{EVENTS}/{event}/hist"))?;
    let mut m = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix("{ common_pid:") else { continue };
        let mut words = rest.split_whitespace();
        let tid = words.next().and_then(|w| w.parse::<i32>().ok());
        let hits = rest.split("hitcount:").nth(1).and_then(|s| s.split_whitespace().next()).and_then(|s| s.parse::<i64>().ok());
        if let (Some(t), Some(h)) = (tid, hits) {
            m.insert(t, h);
        }
    }
    Ok(m)
}

/// The sum of `after - before` over `tids`.
pub fn delta(before: &HashMap<i32, i64>, after: &HashMap<i32, i64>, tids: &[i32]) -> i64 {
    tids.iter().map(|t| after.get(t).copied().unwrap_or(0) - before.get(t).copied().unwrap_or(0)).sum()
}

/// The thread ids of process `pid` (`/proc/PID/task`).
pub fn tids(pid: i32) -> Vec<i32> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// User+system CPU seconds of process `pid`, all its threads (dead ones
/// too), from `/proc/PID/stat` (clock ticks).
pub fn proc_cpu_secs(pid: i32) -> io::Result<f64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // after "pid (comm)": state is field 0, utime 11, stime 12
    let ut: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    let st: f64 = f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((ut + st) / hz)
}

/// CPU seconds of every thread of process `pid` so far, dead ones
/// included: its process CPU-time clock (`clock_getcpuclockid`), in
/// nanoseconds rather than `/proc`'s clock ticks.
pub fn proc_cpu_ns(pid: i32) -> io::Result<f64> {
    let mut clk: libc::clockid_t = 0;
    // SAFETY: clk is valid to write.
    let r = unsafe { libc::clock_getcpuclockid(pid, &mut clk) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    let ns = clock_ns(clk);
    if ns.is_nan() {
        return Err(io::Error::last_os_error());
    }
    Ok(ns)
}

/// A CPU clock in nanoseconds (NaN if it cannot be read).
pub fn clock_ns(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid timespec to write.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64
}

/// This thread's id.
pub fn gettid() -> i32 {
    // SAFETY: gettid has no arguments.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// With two CPUs or more: pins the calling thread to CPU 0 and returns
/// `Some(1)`, the CPU for a worker or SQPOLL thread, so that a thread
/// spinning for completions never shares a CPU with the thread it waits
/// for. `None` (and no pinning) on one CPU.
pub fn pin_for_worker() -> Option<u32> {
    let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if n < 2 {
        return None;
    }
    // SAFETY: set is a plain cpu_set_t, zeroed then filled by the macros.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return None;
        }
    }
    Some(1)
}
