//! A signal that interrupts a batch: `offload_enter` consumes fewer entries
//! than queued (or none: `EINTR`, the entries stay queued), and the batch
//! enters again for the rest, running every entry exactly once. A binary
//! of its own: it installs a `SIGUSR1` handler without `SA_RESTART`.

mod common;

use std::io::Read;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use syscall_offload::op;

static HANDLED: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_usr1(_: libc::c_int) {
    HANDLED.fetch_add(1, Ordering::Relaxed);
}

fn install_handler() {
    // SAFETY: all-zero is a valid struct sigaction (empty mask, no flags).
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = on_usr1 as extern "C" fn(libc::c_int) as libc::sighandler_t;
    sa.sa_flags = 0; // no SA_RESTART: interrupted calls fail with EINTR
    // SAFETY: installs a handler that only touches an atomic.
    assert_eq!(unsafe { libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()) }, 0);
}

/// Whether thread `tid` of this process sleeps (state `S` in its stat).
fn sleeping(tid: libc::pid_t) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('S'))
}

#[test]
fn a_batch_interrupted_by_signals_runs_every_entry_once() {
    install_handler();
    for b in backends() {
        let mut ring = ring(b, 8);
        let (rx, tx) = pipe();
        let (mut log_rx, log_tx) = {
            let (r, w) = pipe();
            (std::fs::File::from(r), w)
        };
        // SAFETY: pthread_self and gettid have no preconditions.
        let (me, tid) = unsafe { (libc::pthread_self(), libc::gettid()) };
        let before = HANDLED.load(Ordering::Relaxed);
        let interrupter = std::thread::spawn(move || {
            // Each time the batch sleeps in its read, interrupt it; then
            // give the read its byte.
            for _ in 0..5 {
                while !sleeping(tid) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                // SAFETY: `me` is the test thread, which outlives this loop
                // (it joins this thread).
                assert_eq!(unsafe { libc::pthread_kill(me, libc::SIGUSR1) }, 0);
                std::thread::sleep(Duration::from_millis(20));
            }
            std::io::Write::write_all(&mut std::fs::File::from(tx), b"x").unwrap();
        });
        let mut byte = [0u8; 1];
        let got = ring.batch(|bt| {
            bt.push(op::Write::new(log_tx.as_fd(), b"a"));
            bt.push(op::Read::new(rx.as_fd(), &mut byte));
            bt.push(op::Write::new(log_tx.as_fd(), b"b"));
        });
        interrupter.join().unwrap();
        let (_, res) = got.unwrap();
        let res: Vec<_> = res.iter().map(|r| r.map_err(|e| e.raw_os_error())).collect();
        assert_eq!(res, [Ok(1), Ok(1), Ok(1)], "{b:?}");
        assert_eq!(&byte, b"x");
        drop(log_tx);
        let mut log = Vec::new();
        log_rx.read_to_end(&mut log).unwrap();
        assert_eq!(log, b"ab", "{b:?}: each entry ran once");
        assert!(HANDLED.load(Ordering::Relaxed) - before >= 5, "the batch was interrupted");
        assert_eq!(ring.sq_len(), 0);
    }
}
