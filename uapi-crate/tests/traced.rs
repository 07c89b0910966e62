//! The kernel runs no entries for a task that a tracer stops at every
//! syscall (`PTRACE_SYSCALL`, as strace does): `offload_enter` fails with
//! `EPERM`, the crate makes the calls itself and says so. The test runs
//! this binary again, under a minimal tracer of its own.

mod common;

use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

use common::*;
use syscall_offload::op;
use syscall_offload::{Backend, Ring};

const TRACEE: &str = "SYSCALL_OFFLOAD_TEST_TRACEE";

/// Runs in the traced child only.
#[test]
#[ignore = "the traced half of a_task_under_ptrace_syscall_makes_its_calls_directly, which runs it"]
fn tracee() {
    if std::env::var_os(TRACEE).is_none() {
        skipped(&test_name(), "runs only under the tracer of a_task_under_ptrace_syscall_makes_its_calls_directly");
        return;
    }
    let mut ring = Ring::builder(4).backend(Backend::Kernel).build().unwrap();
    let (rx, tx) = pipe();
    let mut out = [0u8; 5];
    let (_, res) = ring
        .batch(|b| {
            b.push(op::Write::new(tx.as_fd(), b"hello"));
            b.push(op::Getpid::new());
            b.push(op::Read::new(rx.as_fd(), &mut out));
        })
        .unwrap();
    let res: Vec<u64> = res.iter().map(Result::unwrap).collect();
    assert_eq!(res, [5, u64::from(std::process::id()), 5]);
    assert_eq!(&out, b"hello");
    let why = ring.fallback().expect("offload_enter was refused");
    assert_eq!((why.what(), why.errno()), ("offload_enter", libc::EPERM));
    assert_eq!(ring.direct_submissions(), 1);
}

fn ptrace(req: libc::c_uint, pid: libc::pid_t, data: libc::c_long) -> libc::c_long {
    // SAFETY: requests that take no pointers (addr is 0).
    unsafe { libc::ptrace(req, pid, 0, data) }
}

#[test]
fn a_task_under_ptrace_syscall_makes_its_calls_directly() {
    if !need_kernel() {
        return;
    }
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "tracee", "--ignored", "--nocapture", "--test-threads=1"]).env(TRACEE, "1");
    // SAFETY: between fork and exec: one async-signal-safe syscall.
    unsafe {
        cmd.pre_exec(|| {
            if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // Reaped by the waitpid() loop below, which a tracer has to run anyway.
    let pid = cmd.spawn().unwrap().id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: waits for our child, stopped by the exec under PTRACE_TRACEME.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFSTOPPED(status));
    let opts = libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_TRACECLONE | libc::PTRACE_O_EXITKILL;
    assert_eq!(ptrace(libc::PTRACE_SETOPTIONS, pid, opts as libc::c_long), 0);
    assert_eq!(ptrace(libc::PTRACE_SYSCALL, pid, 0), 0);
    // Stop every thread (the test runs on one libtest spawns) at every
    // syscall, as strace does, until the child is gone.
    let mut exit = None;
    let mut syscall_stops = 0u64;
    loop {
        // SAFETY: waits for any traced thread of ours.
        let tid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
        if tid == -1 {
            assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::ECHILD));
            break;
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            if tid == pid {
                exit = Some(status);
            }
            continue;
        }
        let sig = libc::WSTOPSIG(status);
        let inject = if sig == libc::SIGTRAP | 0x80 {
            syscall_stops += 1;
            0
        } else if status >> 16 != 0 || sig == libc::SIGSTOP || sig == libc::SIGTRAP {
            0 // a ptrace event, a new thread's first stop
        } else {
            sig
        };
        ptrace(libc::PTRACE_SYSCALL, tid, inject as libc::c_long);
    }
    let status = exit.expect("the child's exit");
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the traced child failed: {status:#x}");
    assert!(syscall_stops > 0, "the child was not traced");
}
