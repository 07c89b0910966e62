//! The whole API, on every available backend (see tests/common).

mod common;

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use syscall_offload::op::{self, Op};
use syscall_offload::{Backend, Completion, Entry, ErrorKind, OpId, RecvFlags, Ring, SqeFlags};

fn getpid_pid() -> i64 {
    std::process::id() as i64
}

fn run(ring: &mut Ring, entries: &[Entry]) -> Vec<Completion> {
    for e in entries {
        // SAFETY: the tests' entries point at statics, live locals of the
        // caller, or deliberately bad addresses the kernel checks.
        unsafe { ring.push(e).expect("push") };
    }
    let n = ring.submit().expect("submit");
    assert_eq!(n as usize, entries.len());
    ring.completions().collect()
}

#[test]
fn builder_rejects_zero_and_too_many_entries() {
    for b in backends() {
        for n in [0, 4097, u32::MAX] {
            let e = Ring::builder(n).backend(b).build().unwrap_err();
            assert_eq!((e.kind(), e.errno()), (ErrorKind::InvalidInput, libc::EINVAL), "{n}");
        }
    }
}

#[test]
fn builder_rejects_cq_smaller_than_sq_or_too_large() {
    for b in backends() {
        for cq in [4, 8193] {
            let e = Ring::builder(8).cq_entries(cq).backend(b).build().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{cq}");
        }
    }
}

#[test]
fn sizes_are_rounded_up_to_powers_of_two() {
    for b in backends() {
        let r = ring(b, 5);
        assert_eq!((r.sq_entries(), r.cq_entries()), (8, 16));
        let r = Ring::builder(5).cq_entries(20).backend(b).build().unwrap();
        assert_eq!((r.sq_entries(), r.cq_entries()), (8, 32));
        let r = Ring::builder(4096).cq_entries(8192).backend(b).build().unwrap();
        assert_eq!((r.sq_entries(), r.cq_entries()), (4096, 8192));
    }
}

/// A kernel with offload but without worker mode (the v2 series) refuses
/// a worker ring with a typed error; the emulated backend has workers.
#[test]
fn worker_mode_is_a_typed_error_without_worker_support() {
    for b in backends() {
        let inline = ring(b, 1);
        let worker = Ring::builder(8).worker(Duration::from_millis(10)).backend(b).build();
        if inline.features().contains(syscall_offload::Features::WORKER) {
            assert!(worker.unwrap().is_worker());
            continue;
        }
        let e = worker.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WorkerUnsupported, "{e}");
        assert!(matches!(e.errno(), libc::EOPNOTSUPP | libc::EINVAL), "{e}");
        let e = Ring::builder(8).worker_cpu(0).backend(b).build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WorkerUnsupported);
    }
}

#[test]
fn worker_on_an_unknown_cpu_is_worker_cpu_unavailable() {
    let e = Ring::builder(8).worker_cpu(1 << 20).build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WorkerCpuUnavailable);
    let e = Ring::builder(8).worker(Duration::from_secs(u64::MAX / 2)).build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[test]
fn kernel_backend_without_offload_is_unsupported_and_auto_falls_back() {
    if kernel_available() {
        let r = Ring::new(4).unwrap();
        assert_eq!((r.backend(), r.fallback()), (Backend::Kernel, None));
        return;
    }
    let e = Ring::builder(4).backend(Backend::Kernel).build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let msg = e.to_string();
    assert!(msg.contains("CONFIG_SYSCALL_OFFLOAD") && msg.contains("Backend::Emulated"), "{msg}");
    let r = Ring::new(4).unwrap();
    assert_eq!(r.backend(), Backend::Emulated);
    assert_eq!(r.fallback(), Some(&e), "Auto says why it took the emulated backend");
    assert_eq!(ring(Backend::Emulated, 4).fallback(), None, "an emulated ring asked for is no fallback");
    // The raw calls refuse too, without issuing 463..465.
    let mut p = syscall_offload::raw::offload_params { size: 128, ..Default::default() };
    let e = syscall_offload::raw::setup(4, &mut p).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
}

#[test]
fn entries_complete_in_submission_order_with_their_user_data() {
    for b in backends() {
        let mut r = ring(b, 8);
        let es: Vec<Entry> = (0..8).map(|i| op::Getpid::new().entry().user_data(i)).collect();
        let cs = run(&mut r, &es);
        assert_eq!(cs, (0..8).map(|i| Completion { user_data: i, res: getpid_pid() }).collect::<Vec<_>>());
    }
}

#[test]
fn unknown_sqe_flags_complete_with_einval() {
    for b in backends() {
        let mut r = ring(b, 4);
        let cs = run(&mut r, &[op::Getpid::new().entry().raw_flags(1 << 7).user_data(1), op::Getpid::new().entry().user_data(2)]);
        assert_eq!(cs[0].res, EINVAL);
        assert_eq!(cs[1].res, getpid_pid());
    }
}

#[test]
fn non_offloadable_syscalls_complete_with_eopnotsupp() {
    for b in backends() {
        let mut r = ring(b, 8);
        let nrs = [libc::SYS_fork as u32, libc::SYS_execve as u32, libc::SYS_exit as u32, 463, 464, 465, 100_000];
        let es: Vec<Entry> = nrs.iter().map(|&nr| Entry::syscall(nr, [0; 6])).collect();
        for c in run(&mut r, &es) {
            assert_eq!(c.res, EOPNOTSUPP);
        }
    }
}

#[test]
fn a_bad_pointer_fails_only_its_own_entry() {
    for b in backends() {
        let mut r = ring(b, 4);
        let zero = std::fs::File::open("/dev/zero").unwrap();
        let cs = run(&mut r, &[Entry::syscall(libc::SYS_read as u32, [zero.as_raw_fd() as u64, 8 as *mut u8 as u64, 16, 0, 0, 0]), op::Getpid::new().entry()]);
        assert_eq!(cs[0].res, EFAULT);
        assert_eq!(cs[1].res, getpid_pid());
    }
}

#[test]
fn a_length_over_isize_max_is_rejected_by_the_kernel_not_a_crash() {
    for b in backends() {
        let mut r = ring(b, 4);
        let zero = std::fs::File::open("/dev/zero").unwrap();
        let mut buf = [0u8; 8];
        let cs = run(&mut r, &[Entry::syscall(libc::SYS_read as u32, [zero.as_raw_fd() as u64, buf.as_mut_ptr() as u64, usize::MAX as u64, 0, 0, 0])]);
        assert!(cs[0].res < 0, "{cs:?}");
    }
}

#[test]
fn a_failed_link_cancels_the_rest_of_its_chain_only() {
    for b in backends() {
        let mut r = ring(b, 8);
        let cs = run(
            &mut r,
            &[
                op::Close::new(None).entry().flags(SqeFlags::LINK).user_data(1),
                op::Getpid::new().entry().flags(SqeFlags::LINK).user_data(2),
                op::Getpid::new().entry().user_data(3),
                op::Getpid::new().entry().user_data(4),
            ],
        );
        let res: Vec<i64> = cs.iter().map(|c| c.res).collect();
        assert_eq!(res, [EBADF, ECANCELED, ECANCELED, getpid_pid()]);
    }
}

#[test]
fn a_chain_ends_with_its_submission() {
    for b in backends() {
        let mut r = ring(b, 8);
        let cs = run(&mut r, &[op::Close::new(None).entry().flags(SqeFlags::LINK)]);
        assert_eq!(cs[0].res, EBADF);
        let cs = run(&mut r, &[op::Getpid::new().entry(), op::Getpid::new().entry()]);
        assert_eq!((cs[0].res, cs[1].res), (getpid_pid(), getpid_pid()));
    }
}

#[test]
fn a_failed_chain_cut_by_a_full_cq_is_cancelled_by_the_next_enter() {
    for b in backends() {
        let mut r = Ring::builder(4).cq_entries(4).backend(b).build().unwrap();
        let entries = [
            op::Getpid::new().entry(),
            op::Getpid::new().entry(),
            op::Getpid::new().entry(),
            op::Close::new(None).entry().flags(SqeFlags::LINK).user_data(1),
            op::Getpid::new().entry().flags(SqeFlags::LINK).user_data(2),
            op::Getpid::new().entry().user_data(3),
        ];
        for e in &entries[..3] {
            // SAFETY: no pointers.
            unsafe { r.push(e).unwrap() };
        }
        assert_eq!(r.submit().unwrap(), 3);
        for e in &entries[3..] {
            // SAFETY: no pointers.
            unsafe { r.push(e).unwrap() };
        }
        assert_eq!(r.submit().unwrap(), 1, "one CQ slot was free: the chain's failing head took it");
        let cs: Vec<_> = r.completions().map(|c| (c.user_data, c.res)).collect();
        assert_eq!(cs[3], (1, EBADF));
        assert_eq!(r.submit().unwrap(), 2);
        let cs: Vec<_> = r.completions().map(|c| (c.user_data, c.res)).collect();
        assert_eq!(cs, [(2, ECANCELED), (3, ECANCELED)]);
    }
}

#[test]
fn async_entries_complete_with_einval_on_inline_rings() {
    for b in backends() {
        let mut r = ring(b, 4);
        let cs = run(&mut r, &[op::Getpid::new().entry().flags(SqeFlags::ASYNC), op::Getpid::new().entry()]);
        assert_eq!((cs[0].res, cs[1].res), (EINVAL, getpid_pid()));
    }
}

#[test]
fn a_successful_link_runs_the_next_entry() {
    for b in backends() {
        let mut r = ring(b, 8);
        let cs = run(&mut r, &[op::Getpid::new().entry().flags(SqeFlags::LINK), op::Close::new(None).entry()]);
        assert_eq!((cs[0].res, cs[1].res), (getpid_pid(), EBADF));
    }
}

#[test]
fn skip_success_posts_only_failures() {
    for b in backends() {
        let mut r = ring(b, 8);
        let cs = run(
            &mut r,
            &[
                op::Getpid::new().entry().flags(SqeFlags::SKIP_SUCCESS).user_data(1),
                op::Close::new(None).entry().flags(SqeFlags::SKIP_SUCCESS).user_data(2),
                op::Getpid::new().entry().flags(SqeFlags::SKIP_SUCCESS | SqeFlags::LINK).user_data(3),
                op::Close::new(None).entry().flags(SqeFlags::SKIP_SUCCESS | SqeFlags::LINK).user_data(4),
                op::Getpid::new().entry().flags(SqeFlags::SKIP_SUCCESS).user_data(5),
                op::Getpid::new().entry().user_data(6),
            ],
        );
        assert_eq!(
            cs,
            [
                Completion { user_data: 2, res: EBADF },
                Completion { user_data: 4, res: EBADF },
                Completion { user_data: 5, res: ECANCELED },
                Completion { user_data: 6, res: getpid_pid() },
            ]
        );
    }
}

#[test]
fn pushing_to_a_full_queue_is_an_error_not_a_panic() {
    for b in backends() {
        let mut r = ring(b, 2);
        for _ in 0..2 {
            // SAFETY: no pointers.
            unsafe { r.push(&op::Getpid::new().entry()).unwrap() };
        }
        // SAFETY: as above.
        let e = unsafe { r.push(&op::Getpid::new().entry()) }.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::SubmissionQueueFull);
        assert_eq!(r.submit().unwrap(), 2);
        // SAFETY: as above.
        unsafe { r.push(&op::Getpid::new().entry()).unwrap() };
    }
}

#[test]
fn reserved_user_data_is_rejected() {
    let mut r = ring(Backend::Emulated, 2);
    // SAFETY: no pointers.
    let e = unsafe { r.push(&op::Getpid::new().entry().user_data(1 << 63)) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[test]
fn a_full_cq_stops_consumption_and_then_returns_ebusy() {
    for b in backends() {
        let mut r = Ring::builder(4).cq_entries(4).backend(b).build().unwrap();
        for _ in 0..3 {
            // SAFETY: no pointers.
            unsafe { r.push(&op::Getpid::new().entry()).unwrap() };
        }
        assert_eq!(r.submit().unwrap(), 3);
        for _ in 0..4 {
            // SAFETY: no pointers.
            unsafe { r.push(&op::Getpid::new().entry()).unwrap() };
        }
        assert_eq!(r.submit().unwrap(), 1, "one CQ slot was free");
        let e = r.submit().unwrap_err();
        assert_eq!(e.errno(), libc::EBUSY);
        assert_eq!(r.completions().take(2).count(), 2);
        assert_eq!(r.submit().unwrap(), 2);
        assert_eq!(r.sq_len(), 1);
        assert_eq!(r.completions().count(), 4);
        assert_eq!(r.submit().unwrap(), 1);
        assert_eq!(r.completions().count(), 1);
    }
}

#[test]
fn probe_reports_the_table_and_restrict_only_shrinks() {
    for b in backends() {
        let mut r = ring(b, 4);
        let p = r.probe().unwrap();
        assert!(p.nr_syscalls() >= 463);
        assert!(p.is_offloadable(libc::SYS_read as u32) && p.is_offloadable(libc::SYS_getpid as u32));
        assert!(!p.is_offloadable(libc::SYS_clone as u32) && !p.is_offloadable(463));
        assert_eq!(p.iter().count(), if cfg!(target_arch = "x86_64") { 72 } else { p.iter().count() });
        r.restrict(&[libc::SYS_getpid as u32, libc::SYS_close as u32]).unwrap();
        r.restrict(&[libc::SYS_getpid as u32, libc::SYS_read as u32]).unwrap();
        let p = r.probe().unwrap();
        assert_eq!(p.iter().collect::<Vec<_>>(), [libc::SYS_getpid as u32]);
        let cs = run(&mut r, &[op::Getpid::new().entry(), op::Close::new(None).entry()]);
        assert_eq!((cs[0].res, cs[1].res), (getpid_pid(), EOPNOTSUPP));
        assert_eq!(r.restrict_bitmap(&[]).unwrap_err().errno(), libc::EINVAL);
        assert_eq!(r.restrict_bitmap(&[0; 65]).unwrap_err().errno(), libc::EINVAL);
    }
}

fn eventfd() -> OwnedFd {
    // SAFETY: eventfd returns a new fd or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    assert!(fd >= 0);
    // SAFETY: a fresh fd.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn eventfd_count(fd: &OwnedFd) -> u64 {
    let mut v = 0u64;
    // SAFETY: reads 8 bytes into v.
    let n = unsafe { libc::read(fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    if n == 8 {
        v
    } else {
        0
    }
}

#[test]
fn a_registered_eventfd_is_signalled_when_completions_are_posted() {
    for b in backends() {
        let mut r = ring(b, 4);
        let efd = eventfd();
        r.register_eventfd(efd.as_fd()).unwrap();
        assert_eq!(r.register_eventfd(efd.as_fd()).unwrap_err().errno(), libc::EBUSY);
        run(&mut r, &[op::Getpid::new().entry()]);
        assert!(eventfd_count(&efd) >= 1);
        run(&mut r, &[op::Getpid::new().entry().flags(SqeFlags::SKIP_SUCCESS)]);
        assert_eq!(eventfd_count(&efd), 0, "nothing posted, nothing signalled");
        r.unregister_eventfd().unwrap();
        assert_eq!(r.unregister_eventfd().unwrap_err().errno(), libc::ENXIO);
        run(&mut r, &[op::Getpid::new().entry()]);
        assert_eq!(eventfd_count(&efd), 0);
        let (rx, _tx) = pipe();
        assert_eq!(r.register_eventfd(rx.as_fd()).unwrap_err().errno(), libc::EINVAL);
    }
}

#[test]
fn batch_writes_and_reads_borrowed_buffers() {
    for b in backends() {
        let mut r = ring(b, 4);
        let (rx, tx) = pipe();
        let a = b"abc".to_vec();
        let bb = b"defg".to_vec();
        let mut out = [0u8; 7];
        let mut out2 = [0u8; 3];
        let iov = [IoSlice::new(&bb)];
        let ((), res) = r
            .batch(|bt| {
                bt.push(op::Write::new(tx.as_fd(), &a));
                bt.push(op::Writev::new(tx.as_fd(), &iov));
                bt.push(op::Read::new(rx.as_fd(), &mut out));
            })
            .unwrap();
        assert_eq!(res.iter().map(|r| r.unwrap()).collect::<Vec<_>>(), [3, 4, 7]);
        assert_eq!(&out, b"abcdefg");
        let mut iov = [IoSliceMut::new(&mut out2)];
        let (_, res) = r
            .batch(|bt| {
                bt.push(op::Write::new(tx.as_fd(), b"xyz"));
                bt.push(op::Readv::new(rx.as_fd(), &mut iov));
            })
            .unwrap();
        assert_eq!(res.get(syscall_offload::OpId(1)).unwrap(), 3);
        assert_eq!(&out2, b"xyz");
    }
}

#[test]
fn batch_larger_than_both_queues_completes_every_entry() {
    for b in backends() {
        let mut r = Ring::builder(4).cq_entries(4).backend(b).build().unwrap();
        let (_, res) = r
            .batch(|bt| {
                for _ in 0..100 {
                    bt.push(op::Getpid::new());
                }
            })
            .unwrap();
        assert_eq!(res.len(), 100);
        assert!(res.iter().all(|r| r.unwrap() == std::process::id() as u64));
        assert_eq!(r.sq_len(), 0);
    }
}

#[test]
fn batch_links_cancel_and_end_with_the_batch() {
    for b in backends() {
        let mut r = ring(b, 8);
        let (bad, _tx) = pipe();
        let (_, res) = r
            .batch(|bt| {
                bt.push(op::Lseek::new(bad.as_fd(), -1, op::Whence::Set)).link();
                bt.push(op::Getpid::new()).link();
            })
            .unwrap();
        assert_eq!(res.iter().map(|r| r.map_err(|e| e.raw_os_error())).collect::<Vec<_>>(), [
            Err(Some(libc::ESPIPE)),
            Err(Some(libc::ECANCELED))
        ]);
        // The chain ended with the batch.
        let (_, res) = r.batch(|bt| bt.push(op::Getpid::new()).id()).unwrap();
        assert!(res.get(syscall_offload::OpId(0)).is_ok());
    }
}

#[test]
fn batch_after_pushed_entries_keeps_their_completions() {
    for b in backends() {
        let mut r = ring(b, 4);
        // SAFETY: no pointers.
        unsafe { r.push(&op::Getpid::new().entry().user_data(77)).unwrap() };
        let (_, res) = r.batch(|bt| bt.push(op::Getpid::new()).id()).unwrap();
        assert_eq!(res.len(), 1);
        let cs: Vec<_> = r.completions().collect();
        assert_eq!(cs, [Completion { user_data: 77, res: getpid_pid() }]);
    }
}

#[test]
fn batch_refuses_to_join_an_open_link_chain() {
    let mut r = ring(Backend::Emulated, 4);
    // SAFETY: no pointers.
    unsafe { r.push(&op::Getpid::new().entry().flags(SqeFlags::LINK)).unwrap() };
    assert_eq!(r.batch(|bt| bt.push(op::Getpid::new()).id()).unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[test]
fn a_panicking_batch_closure_submits_nothing() {
    for b in backends() {
        let mut r = ring(b, 4);
        let buf = vec![0u8; 16];
        let zero = std::fs::File::open("/dev/zero").unwrap();
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = r.batch(|bt| {
                bt.push(op::Write::new(zero.as_fd(), &buf));
                panic!("boom");
            });
        }));
        assert!(got.is_err());
        assert_eq!(r.sq_len(), 0);
        assert_eq!(r.completions().count(), 0);
        let (_, res) = r.batch(|bt| bt.push(op::Getpid::new()).id()).unwrap();
        assert_eq!(res.len(), 1);
    }
}

#[test]
fn batch_opens_reads_and_closes_files_with_owned_fds() {
    for b in backends() {
        let dir = temp_dir("open");
        let path = dir.join("f");
        std::fs::write(&path, b"offload").unwrap();
        let cpath = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        let mut r = ring(b, 4);
        let (id, mut res) = r.batch(|bt| bt.push(op::Openat::new(None, &cpath, op::OFlags::from_bits_retain(libc::O_RDONLY), 0)).id()).unwrap();
        let fd = res.take_fd(id).unwrap();
        assert_eq!(res.take_fd(id).unwrap_err().raw_os_error(), Some(libc::EBADF));
        let mut out = [0u8; 7];
        let (_, res) = r
            .batch(|bt| {
                bt.push(op::Pread::new(fd.as_fd(), &mut out, 0));
            })
            .unwrap();
        assert_eq!(res.get(syscall_offload::OpId(0)).unwrap(), 7);
        assert_eq!(&out, b"offload");
        let raw = fd.as_raw_fd();
        let (_, res) = r.batch(|bt| bt.push(op::Close::new(fd)).id()).unwrap();
        assert_eq!(res.get(syscall_offload::OpId(0)).unwrap(), 0);
        let _ = raw;
        let (id, res) = r.batch(|bt| bt.push(op::Openat::new(None, c"/nonexistent/x", op::OFlags::from_bits_retain(libc::O_RDONLY), 0)).id()).unwrap();
        assert_eq!(res.get(id).unwrap_err().raw_os_error(), Some(libc::ENOENT));
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn batch_drives_loopback_sockets() {
    for b in backends() {
        let mut r = ring(b, 8);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (sock, mut res) = r.batch(|bt| bt.push(op::Socket::new(libc::AF_INET, libc::SOCK_STREAM, op::SockFlags::empty(), 0)).id()).unwrap();
        let sock = res.take_fd(sock).unwrap();
        let (_, res) = r.batch(|bt| bt.push(op::Connect::new(sock.as_fd(), addr)).id()).unwrap();
        assert!(res.get(syscall_offload::OpId(0)).is_ok());
        let (mut peer, _) = listener.accept().unwrap();
        let msg = b"ping";
        let iov = [IoSlice::new(msg)];
        let (_, res) = r
            .batch(|bt| {
                bt.push(op::Sendto::new(sock.as_fd(), msg, op::MsgFlags::empty()));
                bt.push(op::Sendmsg::new(sock.as_fd(), &iov, op::MsgFlags::empty()));
            })
            .unwrap();
        assert_eq!(res.iter().map(|r| r.unwrap()).collect::<Vec<_>>(), [4, 4]);
        let mut got = [0u8; 8];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"pingping");
        peer.write_all(b"pong!").unwrap();
        let mut a = [0u8; 2];
        let mut c = [0u8; 3];
        let mut iov = [IoSliceMut::new(&mut c)];
        let (_, res) = r
            .batch(|bt| {
                bt.push(op::Recvfrom::new(sock.as_fd(), &mut a, op::RecvFlags::from_bits_truncate(libc::MSG_WAITALL)));
                bt.push(op::Recvmsg::new(sock.as_fd(), &mut iov, op::RecvFlags::from_bits_truncate(libc::MSG_WAITALL)));
                bt.push(op::Shutdown::new(sock.as_fd(), std::net::Shutdown::Both));
            })
            .unwrap();
        assert_eq!(res.iter().map(|r| r.unwrap()).collect::<Vec<_>>(), [2, 3, 0]);
        assert_eq!((&a, &c), (b"po", b"ng!"));
    }
}

#[test]
fn owned_operations_return_their_buffers() {
    for b in backends() {
        let mut r = ring(b, 4);
        let (rx, tx) = pipe();
        let rx = Arc::new(rx);
        let tx = Arc::new(tx);
        let w = r.push_owned(op::Write::new(tx.clone(), b"owned".to_vec())).unwrap();
        let rd = r.push_owned(op::Read::new(rx.clone(), Vec::with_capacity(16))).unwrap();
        assert_eq!(r.owned_in_flight(), 2);
        r.wait_owned().unwrap();
        let done: Vec<_> = r.owned_completions().collect();
        assert_eq!(done.len(), 2);
        assert_eq!((done[0].ticket, done[0].result.as_ref().unwrap()), (w, &5));
        assert_eq!((done[1].ticket, &done[1].buf[..]), (rd, &b"owned"[..]));
        assert_eq!(r.owned_in_flight(), 0);
    }
}

#[test]
fn dropping_a_ring_with_queued_entries_frees_everything() {
    for b in backends() {
        let mut r = ring(b, 8);
        let zero = Arc::new(OwnedFd::from(std::fs::File::open("/dev/zero").unwrap()));
        for _ in 0..4 {
            r.push_owned(op::Read::new(zero.clone(), Vec::with_capacity(4096))).unwrap();
        }
        // SAFETY: no pointers.
        unsafe { r.push(&op::Getpid::new().entry()).unwrap() };
        drop(r);
        assert_eq!(Arc::strong_count(&zero), 1, "the owned ops were dropped with the ring");
    }
}

fn fstat(fd: std::os::fd::RawFd) -> (u64, u64) {
    // SAFETY: all-zero is a valid struct stat; fstat writes into it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::fstat(fd, &mut st) }, 0, "fd {fd} is not open");
    (st.st_dev, st.st_ino)
}

/// Regression test: `OwnedOp::recv` (now `op::Recvfrom`) took raw flags, and with `MSG_TRUNC`
/// on a TCP socket the kernel discards the data without copying it and
/// reports its length, so the `Vec` grew over bytes nobody wrote (from
/// safe code). Now every flag it accepts leaves only copied bytes in the
/// buffer, and `MSG_TRUNC` is not one of them (see also the compile-fail
/// test `owned_recv_takes_no_raw_flags`).
#[test]
fn owned_recv_never_exposes_bytes_the_kernel_did_not_copy() {
    assert_eq!(RecvFlags::from_bits(libc::MSG_TRUNC), None);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    for b in backends() {
        for flags in [RecvFlags::empty(), RecvFlags::PEEK, RecvFlags::WAITALL, RecvFlags::DONTWAIT, RecvFlags::all() - RecvFlags::OOB] {
            let mut r = ring(b, 4);
            let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (sock, _) = listener.accept().unwrap();
            peer.write_all(b"offload!").unwrap();
            peer.shutdown(std::net::Shutdown::Write).unwrap(); // MSG_WAITALL stops at EOF
            // The spare capacity holds 0xaa, never sent: seeing it means
            // the buffer grew over bytes the kernel did not write.
            let mut buf = vec![0xaau8; 64];
            buf.clear();
            r.push_owned(op::Recvfrom::new(Arc::new(OwnedFd::from(sock)), buf, flags)).unwrap();
            r.wait_owned().unwrap();
            let done: Vec<_> = r.owned_completions().collect();
            match &done[0].result {
                Ok(n) => assert_eq!(&done[0].buf[..], &b"offload!"[..*n], "{b:?} {flags:?}"),
                Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EAGAIN), "{b:?} {flags:?}"),
            }
        }
    }
}

#[test]
fn batch_close_refused_by_the_allowlist_gives_the_fd_back() {
    for b in backends() {
        let mut r = ring(b, 4);
        r.restrict(&[libc::SYS_getpid as u32]).unwrap();
        let fd = OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        let (raw, id) = (fd.as_raw_fd(), fstat(fd.as_raw_fd()));
        let (op, mut res) = r.batch(|bt| bt.push(op::Close::new(fd)).id()).unwrap();
        assert_eq!(res.get(op).unwrap_err().raw_os_error(), Some(libc::EOPNOTSUPP));
        let back = res.take_fd(op).expect("the close did not run: the fd comes back");
        assert_eq!((back.as_raw_fd(), fstat(back.as_raw_fd())), (raw, id));
    }
}

#[test]
fn batch_close_cancelled_by_a_failed_chain_gives_the_fd_back() {
    for b in backends() {
        let mut r = ring(b, 4);
        let (bad, _tx) = pipe();
        let fd = OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        let id = fstat(fd.as_raw_fd());
        let ((seek, close), mut res) = r
            .batch(|bt| (bt.push(op::Lseek::new(bad.as_fd(), 0, op::Whence::Set)).link().id(), bt.push(op::Close::new(fd)).id()))
            .unwrap();
        assert_eq!(res.get(seek).unwrap_err().raw_os_error(), Some(libc::ESPIPE));
        assert_eq!(res.get(close).unwrap_err().raw_os_error(), Some(libc::ECANCELED));
        assert_eq!(fstat(res.take_fd(close).unwrap().as_raw_fd()), id);
    }
}

#[test]
fn batch_close_that_ran_keeps_nothing() {
    for b in backends() {
        let mut r = ring(b, 4);
        let fd = OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        let (op, mut res) = r.batch(|bt| bt.push(op::Close::new(fd)).id()).unwrap();
        assert_eq!(res.get(op).unwrap(), 0);
        assert_eq!(res.take_fd(op).unwrap_err().raw_os_error(), Some(libc::EBADF));
    }
}

/// An entry may dup3() another file over the ring's own fd: the batch runs
/// on, and the next `offload_enter` fails (the fd is no ring any more).
/// The batch reports what ran, and owns the fds those entries created.
#[test]
fn a_batch_that_fails_midway_returns_what_ran() {
    if !need_kernel() {
        return;
    }
    let mut r = ring(Backend::Kernel, 4);
    let ring_fd = r.as_fd().unwrap().as_raw_fd() as u64;
    let null = std::fs::File::open("/dev/null").unwrap();
    let err = r
        .batch(|bt| {
            let open = bt.push(op::Openat::new(None, c"/dev/null", op::OFlags::from_bits_retain(libc::O_RDONLY), 0)).id();
            let sock = bt.push(op::Socket::new(libc::AF_UNIX, libc::SOCK_STREAM, op::SockFlags::empty(), 0)).id();
            // SAFETY: no pointers; `null` outlives the batch.
            unsafe { bt.syscall(libc::SYS_dup3 as u32, [null.as_raw_fd() as u64, ring_fd, libc::O_CLOEXEC as u64, 0, 0, 0]) };
            bt.push(op::Getpid::new());
            // The SQ holds 4: these need a second offload_enter.
            let later = bt.push(op::Openat::new(None, c"/dev/null", op::OFlags::from_bits_retain(libc::O_RDONLY), 0)).id();
            bt.push(op::Getpid::new());
            (open, sock, later)
        })
        .unwrap_err();
    assert_eq!(err.errno(), libc::EINVAL, "{err}");
    let (_, (open, sock, later), mut res) = err.into_parts();
    assert_eq!((res.len(), res.ran_count()), (6, 4));
    assert!(res.ran(OpId(3)) && !res.ran(later) && !res.ran(OpId(5)));
    assert_eq!(res.get(later).unwrap_err().raw_os_error(), Some(libc::ECANCELED));
    let (a, s) = (res.take_fd(open).unwrap(), res.take_fd(sock).unwrap());
    assert_ne!(a.as_raw_fd(), s.as_raw_fd());
    assert_eq!(fstat(a.as_raw_fd()), fstat(null.as_raw_fd()));
    assert_eq!(r.sq_len(), 0, "the entries that did not run were taken back");
}

const PR_SET_SYSCALL_USER_DISPATCH: libc::c_int = 59;
const PR_SYS_DISPATCH_OFF: libc::c_ulong = 0;
const PR_SYS_DISPATCH_ON: libc::c_ulong = 1;

/// The kernel runs no entries for a task with syscall user dispatch on
/// (`offload_enter` fails with `EPERM`): the crate makes the calls itself,
/// each once, and says so.
#[test]
fn syscall_user_dispatch_makes_the_ring_call_directly() {
    if !need_kernel() {
        return;
    }
    let mut r = ring(Backend::Kernel, 4);
    let (rx, tx) = pipe();
    // SYSCALL_DISPATCH_FILTER_ALLOW: every syscall goes through.
    let selector = std::sync::atomic::AtomicU8::new(0);
    let mut out = [0u8; 6];
    // SAFETY: the selector outlives the dispatch, switched off below.
    let on = unsafe { libc::prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, 0, 0, selector.as_ptr()) };
    assert_eq!(on, 0, "{}", std::io::Error::last_os_error());
    let got = r.batch(|bt| {
        bt.push(op::Write::new(tx.as_fd(), b"abc"));
        bt.push(op::Write::new(tx.as_fd(), b"def"));
        bt.push(op::Getpid::new()).link();
        bt.push(op::Read::new(rx.as_fd(), &mut out));
        bt.push(op::Lseek::new(rx.as_fd(), 0, op::Whence::Set));
        bt.push(op::Getpid::new());
    });
    // SAFETY: switches this thread's dispatch off.
    assert_eq!(unsafe { libc::prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0) }, 0);
    let (_, res) = got.unwrap();
    let res: Vec<_> = res.iter().map(|r| r.map_err(|e| e.raw_os_error().unwrap())).collect();
    let pid = std::process::id() as u64;
    assert_eq!(res, [Ok(3), Ok(3), Ok(pid), Ok(6), Err(libc::ESPIPE), Ok(pid)]);
    assert_eq!(&out, b"abcdef");
    assert_eq!(r.fallback().map(|e| (e.what(), e.errno())), Some(("offload_enter", libc::EPERM)));
    assert_eq!(r.direct_submissions(), 2, "two submissions: the SQ holds 4");
    assert_eq!(r.sq_len(), 0);
    let (_, res) = r.batch(|bt| bt.push(op::Getpid::new()).id()).unwrap();
    assert_eq!(res.get(OpId(0)).unwrap(), pid);
    assert_eq!((r.fallback(), r.direct_submissions()), (None, 2), "the kernel runs the entries again");
}
