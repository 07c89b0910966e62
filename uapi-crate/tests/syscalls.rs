//! The system calls a submission makes, counted by the kernel: the
//! `raw_syscalls:sys_enter` tracepoint, in a trace instance of our own,
//! filtered on the test's thread. A small batch on the kernel backend is one
//! `offload_enter` (the kernel fires the tracepoint for each entry it runs,
//! with the entry's own number, too) and nothing else; on the emulated
//! backend it is the entries' calls and nothing else (no `getpid` for fork
//! detection, say).
//!
//! Needs root and tracefs: skipped without them, but failing under
//! `SYSCALL_OFFLOAD_REQUIRE_KERNEL=1` (the VM run, which has both).

mod common;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use common::*;
use syscall_offload::{Backend, Entry, Ring};

const ENTRY: libc::c_long = libc::SYS_getppid;

/// A trace instance recording this thread's `sys_enter` events.
struct Trace {
    dir: PathBuf,
    /// `None` once closed: the instance can be removed only then.
    enable: Option<File>,
}

impl Trace {
    fn start() -> Result<Trace, String> {
        let root = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
            .iter()
            .map(Path::new)
            .find(|p| p.join("instances").is_dir())
            .ok_or("tracefs is not mounted")?;
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        let dir = root.join("instances").join(format!("syscall-offload-test-{}-{tid}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let event = dir.join("events/raw_syscalls/sys_enter");
        let setup = || -> std::io::Result<File> {
            std::fs::write(event.join("filter"), format!("common_pid == {tid}"))?;
            let enable = OpenOptions::new().write(true).open(event.join("enable"))?;
            // This write's own sys_enter comes before the event is on.
            (&enable).write_all(b"1")?;
            Ok(enable)
        };
        match setup() {
            Ok(enable) => Ok(Trace { dir, enable: Some(enable) }),
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(format!("cannot trace raw_syscalls:sys_enter in {}: {e}", dir.display()))
            }
        }
    }

    /// Stops, and returns the syscall numbers entered since `start`.
    fn stop(mut self) -> Vec<i64> {
        let enable = self.enable.take().expect("started");
        (&enable).write_all(b"0").expect("disable the event");
        drop(enable);
        let text = std::fs::read_to_string(self.dir.join("trace")).expect("read the trace");
        let mut ids: Vec<i64> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split("sys_enter: NR ").nth(1)?.split_whitespace().next()?.parse().ok())
            .collect();
        // The write that turned the event off was recorded.
        assert_eq!(ids.pop(), Some(libc::SYS_write), "trace: {text}");
        ids
    }
}

impl Drop for Trace {
    fn drop(&mut self) {
        if let Some(enable) = self.enable.take() {
            let _ = (&enable).write_all(b"0");
        }
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            let _ = writeln!(std::io::stderr(), "cannot remove the trace instance {}: {e}", self.dir.display());
        }
    }
}

/// A trace, or `None` after saying SKIPPED (a failure when the kernel run
/// is required).
fn trace() -> Option<Trace> {
    match Trace::start() {
        Ok(t) => Some(t),
        Err(why) => {
            assert!(!kernel_required(), "SYSCALL_OFFLOAD_REQUIRE_KERNEL=1 but {why}");
            skipped(&test_name(), &format!("cannot count syscalls: {why}"));
            None
        }
    }
}

/// What the kernel should see for `n` entries of `ENTRY` on `backend`.
fn expected(backend: Backend, n: usize) -> Vec<i64> {
    let enter = match backend {
        Backend::Kernel => vec![syscall_offload::raw::nr::OFFLOAD_ENTER.unwrap()],
        _ => vec![],
    };
    enter.into_iter().chain(std::iter::repeat(ENTRY).take(n)).collect()
}

fn small_batch(ring: &mut Ring) {
    let (_, res) = ring
        .batch(|b| {
            for _ in 0..4 {
                // SAFETY: getppid takes no pointers.
                unsafe { b.syscall(ENTRY as u32, [0; 6]) };
            }
        })
        .unwrap();
    assert!(res.iter().all(|r| r.is_ok()));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn a_small_batch_makes_one_syscall_on_the_kernel_backend_and_no_extra_one_anywhere() {
    for b in backends() {
        let mut ring = ring(b, 8);
        small_batch(&mut ring); // first use: the fork handler, allocations
        let Some(t) = trace() else { return };
        small_batch(&mut ring);
        assert_eq!(t.stop(), expected(b, 4), "{b:?} batch");

        for _ in 0..4 {
            // SAFETY: getppid takes no pointers.
            unsafe { ring.push(&Entry::syscall(ENTRY as u32, [0; 6])).unwrap() };
        }
        let Some(t) = trace() else { return };
        assert_eq!(ring.submit().unwrap(), 4);
        assert_eq!(t.stop(), expected(b, 4), "{b:?} push and submit");
        assert_eq!(ring.completions().count(), 4);
    }
}
