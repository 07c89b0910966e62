//! Owned-buffer operations: the buffer and fd move into the ring and come
//! back with the completion; a ring dropped with operations in flight waits
//! for them or leaks them, never frees what a worker may still write.
//! Inline rings on every backend, worker rings on the emulated backend and
//! on the kernel backend when it has worker mode (required with
//! SYSCALL_OFFLOAD_REQUIRE_KERNEL=1).

mod common;

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use syscall_offload::op;
use syscall_offload::{ErrorKind, Ring, SqFlags};

/// Every ring kind the owned API runs on: inline on each backend, worker
/// on each backend that has it.
fn rings(entries: u32) -> Vec<(String, Ring)> {
    let mut v: Vec<(String, Ring)> = backends().into_iter().map(|b| (format!("{b:?} inline"), ring(b, entries))).collect();
    for b in worker_backends() {
        v.push((format!("{b:?} worker"), worker_ring(b, entries, Duration::from_millis(5))));
    }
    v
}

/// Reads what is in the pipe without blocking (`EAGAIN`: nothing).
fn read_now(fd: &OwnedFd) -> std::io::Result<Vec<u8>> {
    let mut buf = [0u8; 64];
    // SAFETY: a live buffer of its length.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(buf[..n as usize].to_vec())
}

fn nonblocking(fd: &OwnedFd) {
    // SAFETY: plain fcntl on a valid fd.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
}

#[test]
fn owned_writes_and_reads_return_their_buffers_and_fds() {
    for (kind, mut r) in rings(8) {
        let (rx, tx) = pipe();
        let (rx, tx) = (Arc::new(rx), Arc::new(tx));
        let w = r.push_owned(op::Write::new(tx.clone(), b"owned bytes".to_vec())).unwrap();
        let rd = r.push_owned(op::Read::new(rx.clone(), Vec::with_capacity(32))).unwrap();
        r.wait_owned().unwrap();
        assert_eq!(r.owned_in_flight(), 0);
        let done: Vec<_> = r.owned_completions().collect();
        assert_eq!(done.len(), 2, "{kind}");
        assert_eq!((done[0].ticket, done[0].result.as_ref().unwrap(), &done[0].buf[..]), (w, &11, &b"owned bytes"[..]));
        assert_eq!((done[1].ticket, &done[1].buf[..]), (rd, &b"owned bytes"[..]), "{kind}");
        drop(done);
        assert_eq!((Arc::strong_count(&rx), Arc::strong_count(&tx)), (1, 1), "{kind}: the fds came back");
    }
}

#[test]
fn an_owned_read_appends_to_what_the_buffer_holds() {
    for (kind, mut r) in rings(4) {
        let (rx, tx) = pipe();
        let mut buf = Vec::with_capacity(16);
        buf.extend_from_slice(b"ab");
        r.push_owned(op::Write::new(Arc::new(tx), b"cd".to_vec())).unwrap();
        r.push_owned(op::Read::new(Arc::new(rx), buf)).unwrap();
        r.wait_owned().unwrap();
        let done: Vec<_> = r.owned_completions().collect();
        assert_eq!(&done[1].buf[..], b"abcd", "{kind}");
    }
}

#[test]
fn owned_errors_come_back_with_the_buffer() {
    for (kind, mut r) in rings(4) {
        let (rx, _tx) = pipe();
        // Reading the write end of a pipe fails with EBADF.
        let (_rx2, tx2) = pipe();
        r.push_owned(op::Read::new(Arc::new(tx2), Vec::with_capacity(8))).unwrap();
        r.wait_owned().unwrap();
        let done: Vec<_> = r.owned_completions().collect();
        assert_eq!(done[0].result.as_ref().unwrap_err().raw_os_error(), Some(libc::EBADF), "{kind}");
        assert_eq!((done[0].buf.len(), done[0].buf.capacity()), (0, 8));
        drop(rx);
    }
}

#[test]
fn a_full_submission_queue_hands_the_operation_back() {
    for (kind, mut r) in rings(2) {
        let (_rx, tx) = pipe();
        let tx = Arc::new(tx);
        for _ in 0..2 {
            r.push_owned(op::Write::new(tx.clone(), vec![1])).unwrap();
        }
        if r.is_worker() {
            continue; // the worker may already have taken them
        }
        let (e, op) = r.push_owned(op::Write::new(tx.clone(), vec![2, 3])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::SubmissionQueueFull, "{kind}");
        drop(op);
        assert_eq!(Arc::strong_count(&tx), 3, "{kind}: two queued, one handed back and dropped");
    }
}

#[test]
fn dropping_an_inline_ring_frees_owned_operations_it_never_ran() {
    for b in backends() {
        let mut r = ring(b, 8);
        let (rx, tx) = pipe();
        let tx = Arc::new(tx);
        r.push_owned(op::Write::new(tx.clone(), b"never".to_vec())).unwrap();
        drop(r);
        assert_eq!(Arc::strong_count(&tx), 1);
        nonblocking(&rx);
        assert_eq!(read_now(&rx).unwrap_err().raw_os_error(), Some(libc::EAGAIN), "it never ran");
    }
}

#[test]
fn dropping_a_worker_ring_runs_what_was_queued_and_waits_for_it() {
    for b in worker_backends() {
        let mut r = worker_ring(b, 8, Duration::from_millis(5));
        let (rx, tx) = pipe();
        let tx = Arc::new(tx);
        // Pushed, never submitted: the drop publishes it and waits.
        r.push_owned(op::Write::new(tx.clone(), b"at drop".to_vec())).unwrap();
        drop(r);
        assert_eq!(Arc::strong_count(&tx), 1, "{b:?}: completed, so freed");
        nonblocking(&rx);
        assert_eq!(read_now(&rx).unwrap(), b"at drop");
    }
}

#[test]
fn dropping_a_worker_ring_waits_for_an_owned_read_that_completes_later() {
    for b in worker_backends() {
        let mut r = worker_ring(b, 8, Duration::from_millis(50));
        let (rx, tx) = pipe();
        let rx = Arc::new(rx);
        r.push_owned(op::Read::new(rx.clone(), Vec::with_capacity(16))).unwrap();
        r.submit().unwrap();
        eventually(10, "the worker takes the read", || r.sq_len() == 0);
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            // SAFETY: a live 4-byte buffer.
            assert_eq!(unsafe { libc::write(tx.as_raw_fd(), b"late".as_ptr().cast(), 4) }, 4);
            tx
        });
        let t = Instant::now();
        drop(r);
        assert!(t.elapsed() >= Duration::from_millis(200), "{b:?}: the drop waited for the read");
        assert_eq!(Arc::strong_count(&rx), 1, "{b:?}: the read completed and was freed, not leaked");
        let _tx = writer.join().unwrap();
        nonblocking(&rx);
        assert_eq!(read_now(&rx).unwrap_err().raw_os_error(), Some(libc::EAGAIN), "the read took the bytes");
    }
}

#[test]
fn dropping_a_worker_ring_with_a_blocked_owned_read_leaks_it_instead_of_freeing_it() {
    for b in worker_backends() {
        let mut r = worker_ring(b, 8, Duration::from_millis(50));
        let (rx, tx) = pipe();
        let rx = Arc::new(rx);
        r.push_owned(op::Read::new(rx.clone(), Vec::with_capacity(4096))).unwrap();
        r.submit().unwrap();
        eventually(10, "the worker takes the read", || r.sq_len() == 0);
        let t = Instant::now();
        drop(r);
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(10), "{b:?}: {took:?}");
        assert_eq!(Arc::strong_count(&rx), 2, "{b:?}: the operation (and its buffer) was leaked");
        // The blocked read may still complete into the leaked buffer: that
        // memory is never freed, so this is harmless.
        // SAFETY: a live 3-byte buffer.
        let _ = unsafe { libc::write(tx.as_raw_fd(), b"bye".as_ptr().cast(), 3) };
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_ring_whose_worker_is_gone_leaks_owned_operations_at_once() {
    for b in worker_backends() {
        let mut r = std::thread::spawn(move || worker_ring(b, 8, Duration::from_millis(5))).join().unwrap();
        eventually(10, "WORKER_GONE", || r.sq_flags().contains(SqFlags::WORKER_GONE));
        let (_rx, tx) = pipe();
        let tx = Arc::new(tx);
        r.push_owned(op::Write::new(tx.clone(), b"x".to_vec())).unwrap();
        assert_eq!(r.submit().unwrap_err().kind(), ErrorKind::WorkerGone);
        let e = r.wait_owned().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WorkerGone, "{e}");
        let t = Instant::now();
        drop(r);
        assert!(t.elapsed() < Duration::from_millis(500), "{b:?}: no waiting for a gone worker");
        assert_eq!(Arc::strong_count(&tx), 2, "{b:?}: leaked, not freed");
    }
}

#[test]
fn owned_operations_go_through_a_split_ring() {
    const N: usize = 200;
    for b in worker_backends() {
        let mut r = worker_ring(b, 8, Duration::from_millis(2));
        let (rx, tx) = pipe();
        let tx = Arc::new(tx);
        let (mut sq, mut cq) = r.split();
        let total = std::thread::scope(|s| {
            let tx2 = tx.clone();
            s.spawn(move || {
                for i in 0..N {
                    let mut op = op::Write::new(tx2.clone(), vec![i as u8; 3]);
                    loop {
                        match sq.push_owned(op) {
                            Ok(_) => break,
                            Err((e, back)) => {
                                assert_eq!(e.kind(), ErrorKind::SubmissionQueueFull);
                                op = back;
                                sq.submit().unwrap();
                                std::thread::yield_now();
                            }
                        }
                    }
                    sq.submit().unwrap();
                }
            });
            let mut total = 0;
            let mut n = 0;
            let end = Instant::now() + Duration::from_secs(60);
            while n < N {
                assert!(Instant::now() < end, "{n} of {N} owned completions");
                cq.wait(1).unwrap();
                for c in cq.owned_completions() {
                    total += c.result.unwrap();
                    n += 1;
                }
            }
            assert_eq!(cq.owned_in_flight(), 0);
            total
        });
        assert_eq!(total, 3 * N, "{b:?}");
        assert_eq!(Arc::strong_count(&tx), 1, "{b:?}: every op came back");
        let mut got = Vec::new();
        nonblocking(&rx);
        while let Ok(chunk) = read_now(&rx) {
            got.extend(chunk);
        }
        let want: Vec<u8> = (0..N).flat_map(|i| [i as u8; 3]).collect();
        assert_eq!(got, want, "{b:?}: in order");
    }
}

/// Regression test: `wait_owned` counted unreaped user completions as the
/// completion it waited for, and spun instead of sleeping in the kernel.
#[test]
fn wait_owned_sleeps_while_user_completions_wait_to_be_reaped() {
    use syscall_offload::op::Op;
    for b in worker_backends() {
        let mut r = worker_ring(b, 8, Duration::from_millis(50));
        // SAFETY: getpid takes no pointers.
        unsafe { r.push(&op::Getpid::new().entry().user_data(1)).unwrap() };
        r.submit_and_wait(1).unwrap();
        let (rx, tx) = pipe();
        r.push_owned(op::Read::new(Arc::new(rx), Vec::with_capacity(8))).unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            // SAFETY: a live 2-byte buffer.
            unsafe { libc::write(tx.as_raw_fd(), b"ok".as_ptr().cast(), 2) };
            tx
        });
        let before = thread_cpu_time();
        r.wait_owned().unwrap();
        let spent = thread_cpu_time() - before;
        assert!(spent < Duration::from_millis(100), "{b:?}: {spent:?} of CPU in 200 ms of waiting: spinning");
        let _tx = writer.join().unwrap();
        assert_eq!(r.completions().map(|c| c.user_data).collect::<Vec<_>>(), [1]);
    }
}

/// CPU time of the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec to fill.
    assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) }, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
