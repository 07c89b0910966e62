//! `OFFLOAD_PRELOAD*` settings, read once, and the fallback decision.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

use syscall_offload::raw::{self, KernelSupport};

use crate::engine::KRing;
use crate::sys::say;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Everything passes through (asked for, or no usable offload).
    Off,
    /// Per-thread inline rings.
    Inline,
    /// Per-thread worker rings.
    Worker,
    /// The shim's full logic with direct system calls in place of a ring
    /// (`OFFLOAD_PRELOAD=emulate`): for tests on kernels without offload.
    Emulate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inject {
    None,
    /// Every first attempt of a deferred write sends half its bytes.
    Short,
    /// Every first attempt of a deferred write is refused with EAGAIN.
    Eagain,
}

#[derive(Debug)]
pub struct Config {
    pub mode: Mode,
    /// The mode asked for, as the user spelled it (stats line).
    pub asked: String,
    pub inject: Inject,
    pub stats: bool,
    pub stats_file: Option<std::ffi::CString>,
    pub worker_idle_ms: u32,
    pub worker_cpus: Vec<u32>,
    /// Largest write that is deferred.
    pub defer_max: usize,
    /// Milliseconds a buffered-but-unsent backlog may wait before the shim
    /// retries it (the wait is woken this often while a backlog exists).
    pub backlog_ms: i64,
}

const UNINIT: u8 = 0;
const BUSY: u8 = 1;
const READY: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(UNINIT);
static CONFIG: OnceLock<Config> = OnceLock::new();

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.is_empty())
}

/// The configuration, or None while it is being decided (a call made by
/// the decision itself passes through).
pub fn get() -> Option<&'static Config> {
    match STATE.load(Ordering::Acquire) {
        READY => CONFIG.get(),
        BUSY => None,
        _ => {
            if STATE.compare_exchange(UNINIT, BUSY, Ordering::AcqRel, Ordering::Acquire).is_err() {
                return None;
            }
            let c = decide();
            let _ = CONFIG.set(c);
            STATE.store(READY, Ordering::Release);
            crate::shim::install_hooks();
            CONFIG.get()
        }
    }
}

fn decide() -> Config {
    let asked = env("OFFLOAD_PRELOAD").unwrap_or_else(|| "inline".into());
    let mut mode = match asked.as_str() {
        "off" | "0" => Mode::Off,
        "worker" => Mode::Worker,
        "emulate" => Mode::Emulate,
        "inline" | "1" | "on" => Mode::Inline,
        other => {
            say(&format!("OFFLOAD_PRELOAD={other} is not one of inline, worker, off, emulate; using inline"));
            Mode::Inline
        }
    };
    let inject = match env("OFFLOAD_PRELOAD_INJECT").as_deref() {
        Some("short") => Inject::Short,
        Some("eagain") => Inject::Eagain,
        _ => Inject::None,
    };
    let stats_file = env("OFFLOAD_PRELOAD_STATS_FILE").and_then(|p| std::ffi::CString::new(p).ok());
    let stats = env("OFFLOAD_PRELOAD_STATS").is_some_and(|v| v != "0") || stats_file.is_some();
    let worker_idle_ms = env("OFFLOAD_PRELOAD_WORKER_IDLE_MS").and_then(|v| v.parse().ok()).unwrap_or(100);
    let worker_cpus = env("OFFLOAD_PRELOAD_WORKER_CPUS")
        .map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_default();
    let mut c = Config {
        mode,
        asked,
        inject,
        stats,
        stats_file,
        worker_idle_ms,
        worker_cpus,
        defer_max: 64 * 1024,
        backlog_ms: 2,
    };
    if matches!(mode, Mode::Inline | Mode::Worker) {
        mode = probe(&c);
        c.mode = mode;
    }
    c
}

/// Whether this kernel gives us rings; says why not, once, on stderr.
fn probe(c: &Config) -> Mode {
    match raw::kernel_support() {
        KernelSupport::Available { .. } => {}
        _ => {
            say("the running kernel has no syscall offload (no /proc/sys/kernel/offload_disabled); passing every call through");
            return Mode::Off;
        }
    }
    if c.mode == Mode::Worker {
        match KRing::new(8, Some((c.worker_idle_ms.max(1), None))) {
            Ok(r) => {
                r.close();
                return Mode::Worker;
            }
            Err(e) => say(&format!(
                "worker rings refused ({}); using inline rings",
                std::io::Error::from_raw_os_error(e)
            )),
        }
    }
    match KRing::new(8, None) {
        Ok(r) => {
            r.close();
            Mode::Inline
        }
        Err(e) => {
            say(&format!(
                "offload_setup refused ({}): kernel.offload_disabled, seccomp or a security module; passing every call through",
                std::io::Error::from_raw_os_error(e)
            ));
            Mode::Off
        }
    }
}
