//! Seccomp filters that refuse calls: a batch `close` they refuse gives the
//! fd back; `offload_setup` refused as container profiles refuse unknown
//! calls makes `Backend::Auto` take the emulated backend and say why.
//!
//! Each filter goes on a thread of its own (without `SECCOMP_FILTER_FLAG_TSYNC`
//! it binds that thread only), which ends with it.

mod common;

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use common::*;
use syscall_offload::op;
use syscall_offload::{Backend, ErrorKind, Ring};

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JEQ_K: u16 = 0x15;
const BPF_RET_K: u16 = 0x06;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt: 0, jf: 0, k }
}

/// Falls through if the accumulator is `k`, else skips `jf` instructions.
fn jeq(k: u32, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code: BPF_JMP_JEQ_K, jt: 0, jf, k }
}

/// Installs, on the calling thread, a filter that fails syscall `nr` (only
/// when its first argument is `arg0`, if given) with `errno`.
fn refuse(rules: &[(libc::c_long, Option<RawFd>, i32)]) {
    // struct seccomp_data: nr at 0, arch at 4, args[0] (low half) at 16.
    let same_arch = libc::sock_filter { code: BPF_JMP_JEQ_K, jt: 1, jf: 0, k: AUDIT_ARCH_X86_64 };
    let mut prog = vec![stmt(BPF_LD_W_ABS, 4), same_arch, stmt(BPF_RET_K, SECCOMP_RET_ALLOW)];
    for &(nr, arg0, errno) in rules {
        prog.push(stmt(BPF_LD_W_ABS, 0));
        match arg0 {
            None => prog.push(jeq(nr as u32, 1)),
            Some(fd) => prog.extend([jeq(nr as u32, 3), stmt(BPF_LD_W_ABS, 16), jeq(fd as u32, 1)]),
        }
        prog.push(stmt(BPF_RET_K, SECCOMP_RET_ERRNO | errno as u32));
    }
    prog.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_mut_ptr() };
    // SAFETY: prctl with integer arguments.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }, 0);
    // SAFETY: `fprog` points to `prog`, alive for the call (the kernel copies it).
    let r = unsafe { libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &fprog as *const libc::sock_fprog) };
    assert_eq!(r, 0, "seccomp: {}", std::io::Error::last_os_error());
}

/// Runs `f` on a new thread (which its filters die with) and returns its value.
fn on_own_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().expect("filtered thread panicked")
}

#[cfg(target_arch = "x86_64")]
#[test]
fn a_batch_close_refused_by_seccomp_gives_the_fd_back() {
    for b in backends() {
        let mut ring = ring(b, 4);
        let fds: Vec<OwnedFd> = (0..3).map(|_| std::fs::File::open("/dev/null").unwrap().into()).collect();
        let raws: [RawFd; 3] = [fds[0].as_raw_fd(), fds[1].as_raw_fd(), fds[2].as_raw_fd()];
        let back = on_own_thread(move || {
            // What filters answer: EPERM (also TRAP and TRACE for entries),
            // or any errno they choose.
            refuse(&[(libc::SYS_close, Some(raws[0]), libc::EPERM), (libc::SYS_close, Some(raws[1]), libc::EACCES)]);
            let mut fds = fds.into_iter();
            let (ids, mut res) = ring
                .batch(|bt| [bt.push(op::Close::new(fds.next().unwrap())).id(), bt.push(op::Close::new(fds.next().unwrap())).id(), bt.push(op::Close::new(fds.next().unwrap())).id()])
                .unwrap();
            let errs: Vec<_> = ids.iter().map(|&id| res.get(id).map_err(|e| e.raw_os_error().unwrap())).collect();
            assert_eq!(errs, [Err(libc::EPERM), Err(libc::EACCES), Ok(0)], "{b:?}");
            assert_eq!(res.take_fd(ids[2]).unwrap_err().raw_os_error(), Some(libc::EBADF), "{b:?}: the third was closed");
            // Closing them here would be refused too: hand them back.
            [res.take_fd(ids[0]).unwrap(), res.take_fd(ids[1]).unwrap()]
        });
        assert_eq!([back[0].as_raw_fd(), back[1].as_raw_fd()], [raws[0], raws[1]]);
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn auto_falls_back_when_a_seccomp_filter_refuses_offload_setup() {
    if !need_kernel() {
        return;
    }
    for errno in [libc::ENOSYS, libc::EPERM] {
        let (kernel, auto) = on_own_thread(move || {
            refuse(&[(463, None, errno)]);
            let kernel = Ring::builder(4).backend(Backend::Kernel).build().map(drop).unwrap_err();
            let auto = Ring::new(4).unwrap();
            (kernel, (auto.backend(), auto.fallback().cloned()))
        });
        assert_eq!((kernel.kind(), kernel.errno()), (ErrorKind::Os, errno));
        assert_eq!(auto, (Backend::Emulated, Some(kernel)));
    }
}
