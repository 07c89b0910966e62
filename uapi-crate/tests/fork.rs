//! A ring is usable only from the process that created it. One test in its
//! own binary, so the fork happens with no other test thread running.

mod common;

use syscall_offload::op::{self, Op};
use syscall_offload::ErrorKind;

#[test]
fn using_a_ring_after_fork_is_a_typed_error() {
    for b in common::backends() {
        let mut ring = common::ring(b, 4);
        // SAFETY: no pointers.
        unsafe { ring.push(&op::Getpid::new().entry().user_data(1)).unwrap() };
        // SAFETY: the child only calls into the ring and then _exit()s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let mut code = 0;
            if ring.submit().map_err(|e| e.kind()) != Err(ErrorKind::Forked) {
                code |= 1;
            }
            // SAFETY: no pointers.
            if unsafe { ring.push(&op::Getpid::new().entry()) }.map_err(|e| e.kind()) != Err(ErrorKind::Forked) {
                code |= 2;
            }
            if ring.batch(|b| b.push(op::Getpid::new()).id()).map(drop).map_err(|e| e.kind()) != Err(ErrorKind::Forked) {
                code |= 4;
            }
            if ring.probe().map(drop).map_err(|e| e.kind()) != Err(ErrorKind::Forked) {
                code |= 8;
            }
            if ring.completions().next().is_some() {
                code |= 16;
            }
            // SAFETY: leaves the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for our child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "child died: {status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), 0, "child saw a ring that still worked (bits)");
        // The parent's ring is untouched by the child.
        assert_eq!(ring.submit().unwrap(), 1);
        let c: Vec<_> = ring.completions().collect();
        assert_eq!((c.len(), c[0].user_data), (1, 1));
    }
}
