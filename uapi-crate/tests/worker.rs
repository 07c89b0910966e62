//! Worker rings: submissions that do not wait, the idle/wakeup protocol,
//! waiting for completions, the SQ/CQ split, the eventfd, a gone worker.
//! On the emulated backend always, on the kernel backend when it has worker
//! mode (required with SYSCALL_OFFLOAD_REQUIRE_KERNEL=1).

mod common;

use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use syscall_offload::op::{self, Op};
use syscall_offload::{Backend, ErrorKind, Ring, SqFlags, SqeFlags};

const LONG_IDLE: Duration = Duration::from_secs(5);

fn pid() -> i64 {
    std::process::id() as i64
}

fn push_getpids(ring: &mut Ring, ids: std::ops::Range<u64>) {
    for i in ids {
        // SAFETY: getpid takes no pointers.
        unsafe { ring.push(&op::Getpid::new().entry().user_data(i)).expect("push") };
    }
}

fn reap_ids(ring: &mut Ring) -> Vec<u64> {
    ring.completions()
        .map(|c| {
            assert_eq!(c.res, pid(), "{c:?}");
            c.user_data
        })
        .collect()
}

#[test]
fn bad_worker_settings_are_typed_errors() {
    for b in backends() {
        let bad = [
            (Ring::builder(8).worker(Duration::ZERO), ErrorKind::InvalidInput),
            (Ring::builder(8).worker(Duration::from_millis(600_001)), ErrorKind::InvalidInput),
            (Ring::builder(8).worker(Duration::from_secs(u64::MAX)), ErrorKind::InvalidInput),
            (Ring::builder(8).cpu(0), ErrorKind::InvalidInput),
            (Ring::builder(8).worker(Duration::from_millis(10)).cpu(1 << 20), ErrorKind::WorkerCpuUnavailable),
            (Ring::builder(8).worker(Duration::from_millis(10)).cpu(u32::MAX), ErrorKind::WorkerCpuUnavailable),
        ];
        for (builder, kind) in bad {
            let e = builder.clone().backend(b).build().unwrap_err();
            assert_eq!((e.kind(), e.errno()), (kind, libc::EINVAL), "{builder:?}: {e}");
        }
    }
}

/// The online CPUs (`/sys/devices/system/cpu/online`).
fn online_cpus() -> Vec<u32> {
    let list = std::fs::read_to_string("/sys/devices/system/cpu/online").expect("online CPUs");
    let mut cpus = Vec::new();
    for part in list.trim().split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        cpus.extend(lo.parse::<u32>().unwrap()..=hi.parse::<u32>().unwrap());
    }
    cpus
}

/// Regression: `cpu()` refused a CPU outside the caller's affinity mask,
/// which the kernel accepts (as io_uring's SQPOLL does): an event loop
/// pinned to one CPU puts its worker on another.
#[test]
fn a_cpu_outside_the_affinity_mask_is_accepted() {
    let cpus = online_cpus();
    let [here, there, ..] = cpus[..] else {
        skipped(&test_name(), "needs two online CPUs");
        return;
    };
    // A thread of its own, pinned to `here` only.
    std::thread::spawn(move || {
        // SAFETY: a zeroed cpu_set_t is empty; CPU_SET stays in bounds.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `here` is an online CPU number, within the set.
        unsafe { libc::CPU_SET(here as usize, &mut set) };
        // SAFETY: a valid cpu_set_t of the size given.
        assert_eq!(unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) }, 0);
        for b in worker_backends() {
            let mut r = Ring::builder(8).worker(Duration::from_millis(10)).cpu(there).backend(b).build().unwrap();
            assert_eq!((r.params().worker_cpu, r.is_worker()), (there, true), "{b:?}");
            push_getpids(&mut r, 0..1);
            r.submit_and_wait(1).unwrap();
            assert_eq!(reap_ids(&mut r), [0], "{b:?}: the worker runs on CPU {there}");
            if let Some(fd) = r.as_fd() {
                let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
                assert!(info.contains(&format!("WorkerCpu:\t{there}\n")), "{info}");
            }
        }
    })
    .join()
    .unwrap();
}

#[test]
fn an_offline_or_missing_cpu_is_worker_cpu_unavailable() {
    let missing = online_cpus().iter().max().unwrap() + 1;
    for b in worker_backends() {
        let e = Ring::builder(8).worker(Duration::from_millis(10)).cpu(missing).backend(b).build().unwrap_err();
        assert_eq!((e.kind(), e.errno()), (ErrorKind::WorkerCpuUnavailable, libc::EINVAL), "CPU {missing}: {e}");
        assert!(e.to_string().contains(&format!("CPU {missing}")), "{e}");
    }
}

#[test]
fn idle_times_are_whole_milliseconds_rounded_up() {
    for b in worker_backends() {
        let r = worker_ring(b, 4, Duration::from_micros(1));
        assert_eq!(r.params().worker_idle_ms, 1);
        let r = worker_ring(b, 4, Duration::from_micros(2500));
        assert_eq!(r.params().worker_idle_ms, 3);
        let r = worker_ring(b, 4, Duration::from_millis(600_000));
        assert_eq!(r.params().worker_idle_ms, 600_000);
    }
}

#[test]
fn worker_rings_say_worker_and_getevents() {
    use syscall_offload::Features;
    for b in worker_backends() {
        let r = worker_ring(b, 4, LONG_IDLE);
        assert!(r.features().contains(Features::WORKER | Features::GETEVENTS), "{:?}", r.features());
        assert!(!r.sq_flags().contains(SqFlags::WORKER_GONE), "{:?}", r.sq_flags());
    }
}

#[test]
fn an_awake_worker_runs_submissions_without_any_enter_call() {
    for b in worker_backends() {
        let mut r = worker_ring(b, 16, LONG_IDLE);
        // Whether a new worker starts awake is the kernel's business: one
        // waited-for submission makes sure it is.
        push_getpids(&mut r, 100..101);
        r.submit_and_wait(1).unwrap();
        assert_eq!(reap_ids(&mut r), [100]);
        let entered = r.enter_calls();
        push_getpids(&mut r, 0..8);
        assert_eq!(r.submit().unwrap(), 8, "submit returns what it published");
        assert_eq!(r.submit().unwrap(), 0);
        eventually(10, "8 completions", || r.cq_len() == 8);
        assert_eq!(reap_ids(&mut r), (0..8).collect::<Vec<_>>(), "in submission order");
        assert_eq!(r.enter_calls(), entered, "{b:?}: no system call while the worker is awake");
    }
}

#[test]
fn an_idle_worker_sets_need_wakeup_and_one_enter_wakes_it() {
    for b in worker_backends() {
        let mut r = worker_ring(b, 8, Duration::from_millis(5));
        eventually(10, "NEED_WAKEUP", || r.sq_flags().contains(SqFlags::NEED_WAKEUP));
        push_getpids(&mut r, 0..2);
        r.submit().unwrap();
        assert_eq!(r.enter_calls(), 1, "one wakeup");
        eventually(10, "completions after the wakeup", || r.cq_len() == 2);
        assert_eq!(reap_ids(&mut r), [0, 1]);
    }
}

/// The flag/tail race: the worker goes to sleep while entries are being
/// published. A lost wakeup leaves an entry unrun: the test times out.
#[test]
fn no_wakeup_is_lost_across_many_idle_periods() {
    for b in worker_backends() {
        let mut r = worker_ring(b, 8, Duration::from_millis(1));
        for round in 0..300u64 {
            if round % 3 == 0 {
                std::thread::sleep(Duration::from_micros(round % 7 * 400));
            }
            push_getpids(&mut r, round..round + 1);
            r.submit().unwrap();
            eventually(10, &format!("round {round}"), || r.cq_len() == 1);
            assert_eq!(reap_ids(&mut r), [round]);
        }
        assert!(r.enter_calls() <= 300);
    }
}

#[test]
fn submit_and_wait_waits_for_the_worker() {
    for b in worker_backends() {
        let mut r = worker_ring(b, 8, Duration::from_millis(2));
        for round in 0..20u64 {
            push_getpids(&mut r, round * 5..round * 5 + 5);
            assert_eq!(r.submit_and_wait(5).unwrap(), 5);
            assert!(r.cq_len() >= 5);
            assert_eq!(reap_ids(&mut r).len(), 5);
            if round % 4 == 0 {
                std::thread::sleep(Duration::from_millis(5)); // let it sleep
            }
        }
        let e = r.submit_and_wait(17).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "more than the CQ holds: {e}");
    }
}

#[test]
fn submit_and_wait_works_on_inline_rings() {
    for b in backends() {
        let mut r = ring(b, 8);
        push_getpids(&mut r, 0..3);
        assert_eq!(r.submit_and_wait(3).unwrap(), 3);
        assert_eq!(reap_ids(&mut r), [0, 1, 2]);
        assert_eq!(r.submit_and_wait(0).unwrap(), 0);
        assert_eq!(r.wait(0).map_err(|e| e.kind()), Ok(()));
    }
}

#[test]
fn a_full_cq_holds_entries_back_until_it_is_reaped() {
    for b in worker_backends() {
        let mut r = Ring::builder(4).cq_entries(4).worker(Duration::from_millis(5)).backend(b).build().unwrap();
        push_getpids(&mut r, 0..4);
        r.submit_and_wait(4).unwrap();
        push_getpids(&mut r, 4..8);
        r.submit().unwrap();
        // The worker takes nothing without a free CQ slot, and goes to sleep.
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!((r.cq_len(), r.sq_len()), (4, 4), "nothing dropped, nothing run");
        // Reaping wakes the worker if it went to sleep on the full CQ.
        assert_eq!(reap_ids(&mut r), [0, 1, 2, 3]);
        eventually(10, "the held-back entries", || r.cq_len() == 4);
        assert_eq!(reap_ids(&mut r), [4, 5, 6, 7]);
    }
}

#[test]
fn split_pushes_and_reaps_from_two_threads() {
    const N: u64 = 2000;
    for b in worker_backends() {
        let mut r = worker_ring(b, 16, Duration::from_millis(1));
        let (mut sq, mut cq) = r.split();
        let got = std::thread::scope(|s| {
            s.spawn(move || {
                for i in 0..N {
                    // SAFETY: getpid takes no pointers.
                    while unsafe { sq.push(&op::Getpid::new().entry().user_data(i)) }.is_err() {
                        sq.submit().unwrap();
                        std::thread::yield_now();
                    }
                    if i % 7 == 0 {
                        sq.submit().unwrap();
                    }
                }
                sq.submit().unwrap();
            });
            let reaper = s.spawn(move || {
                let mut got = Vec::new();
                let end = Instant::now() + Duration::from_secs(60);
                while (got.len() as u64) < N {
                    assert!(Instant::now() < end, "only {} of {N} completions", got.len());
                    cq.wait(1).unwrap();
                    got.extend(cq.completions().map(|c| c.user_data));
                }
                got
            });
            reaper.join().unwrap()
        });
        assert_eq!(got, (0..N).collect::<Vec<_>>(), "{b:?}: every entry once, in order");
    }
}

#[test]
fn split_works_on_inline_rings() {
    for b in backends() {
        let mut r = ring(b, 8);
        let (mut sq, mut cq) = r.split();
        std::thread::scope(|s| {
            s.spawn(move || {
                for i in 0..100 {
                    // SAFETY: getpid takes no pointers.
                    unsafe { sq.push(&op::Getpid::new().entry().user_data(i)).unwrap() };
                    // The CQ (16) may be full: the submission then waits
                    // for the reaper.
                    while sq.sq_len() > 0 {
                        let _ = sq.submit();
                        std::thread::yield_now();
                    }
                }
            });
            let mut seen = 0u64;
            while seen < 100 {
                for c in cq.completions() {
                    assert_eq!(c.user_data, seen);
                    seen += 1;
                }
                std::thread::yield_now();
            }
        });
    }
}

fn epoll_wait_one(epfd: &std::os::fd::OwnedFd, ms: i32) -> i32 {
    let mut ev = libc::epoll_event { events: 0, u64: 0 };
    // SAFETY: one valid epoll_event to fill.
    unsafe { libc::epoll_wait(epfd.as_raw_fd(), &mut ev, 1, ms) }
}

#[test]
fn the_eventfd_wakes_an_epoll_loop_for_worker_completions() {
    use std::os::fd::FromRawFd;
    for b in worker_backends().into_iter().chain(backends()) {
        let mut r = Ring::builder(8).backend(b);
        if b == Backend::Emulated || worker_backends().contains(&b) {
            r = r.worker(Duration::from_millis(5));
        }
        let mut r = r.build().unwrap();
        let efd = r.eventfd().unwrap();
        // SAFETY: no pointers.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(epfd >= 0);
        // SAFETY: a new fd nobody else owns.
        let epfd = unsafe { std::os::fd::OwnedFd::from_raw_fd(epfd) };
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: 7 };
        // SAFETY: valid fds and event.
        assert_eq!(unsafe { libc::epoll_ctl(epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, efd.as_fd().as_raw_fd(), &mut ev) }, 0);
        assert_eq!(epoll_wait_one(&epfd, 0), 0, "nothing posted yet");
        assert_eq!(efd.read().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
        for round in 0..3 {
            std::thread::sleep(Duration::from_millis(10 * round)); // asleep or not
            push_getpids(&mut r, 0..2);
            r.submit().unwrap();
            assert_eq!(epoll_wait_one(&epfd, 10_000), 1, "{b:?} round {round}");
            assert!(efd.read().unwrap() >= 1);
            eventually(10, "both completions", || r.cq_len() == 2);
            assert_eq!(reap_ids(&mut r), [0, 1]);
        }
    }
}

#[test]
fn a_worker_is_gone_when_its_creator_thread_exits() {
    for b in worker_backends() {
        let mut r = std::thread::spawn(move || worker_ring(b, 8, Duration::from_millis(5))).join().unwrap();
        eventually(10, "WORKER_GONE", || r.sq_flags().contains(SqFlags::WORKER_GONE));
        push_getpids(&mut r, 0..1);
        let e = r.submit().unwrap_err();
        assert_eq!((e.kind(), e.errno()), (ErrorKind::WorkerGone, libc::EOWNERDEAD), "{b:?}: {e}");
        let e = r.wait(1).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WorkerGone, "{e}");
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(r.cq_len(), 0, "queued entries never run");
        // A batch fails cleanly: the worker took none of its entries.
        let e = r.batch(|b| b.push(op::Getpid::new()).id()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WorkerGone, "{e}");
        assert!(!e.results().ran(*e.value()));
    }
}

#[test]
fn a_batch_on_a_worker_ring_waits_for_every_entry() {
    for b in worker_backends() {
        let mut r = worker_ring(b, 4, Duration::from_millis(2));
        let (rx, tx) = std::os::unix::net::UnixStream::pair().unwrap();
        let msg = b"through the worker";
        let mut out = [0u8; 18];
        let ((w, rd), res) = r
            .batch(|bt| {
                let w = bt.push(op::Write::new(tx.as_fd(), msg)).link().id();
                let rd = bt.push(op::Read::new(rx.as_fd(), &mut out)).id();
                for _ in 0..9 {
                    bt.push(op::Getpid::new());
                }
                (w, rd)
            })
            .unwrap();
        assert_eq!((res.get(w).unwrap(), res.get(rd).unwrap()), (18, 18));
        assert_eq!(&out, msg);
        assert_eq!(res.ran_count(), 11);
    }
}

/// Writes `bytes` to a pipe directly.
fn put(fd: &std::os::fd::OwnedFd, bytes: &[u8]) {
    // SAFETY: a live buffer of that length.
    assert_eq!(unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) }, bytes.len() as isize);
}

fn reap(r: &mut Ring) -> Vec<(u64, i64)> {
    r.completions().map(|c| (c.user_data, c.res)).collect()
}

/// Pushes the entry of `op` with `ASYNC` (and `more` flags).
///
/// # Safety
///
/// As for `Ring::push`: the builder (which holds the fd) and its buffer
/// must outlive the entry.
unsafe fn push_async<'a>(r: &mut Ring, op: &mut impl op::Op<'a>, id: u64, more: SqeFlags) {
    let e = op.entry().flags(SqeFlags::ASYNC | more).user_data(id);
    // SAFETY: the caller's promise.
    unsafe { r.push(&e).unwrap() };
}

#[test]
fn a_blocking_async_read_does_not_stall_a_later_write() {
    for b in worker_backends() {
        let mut r = worker_ring(b, 8, LONG_IDLE);
        let (rx, tx) = pipe();
        let mut buf = [0u8; 8];
        let mut read = op::Read::new(&rx, &mut buf);
        // SAFETY: the builder, its buffer and the fds live until both
        // entries have completed (below).
        unsafe { push_async(&mut r, &mut read, 1, SqeFlags::empty()) };
        // Without ASYNC the read would block the worker, and this write
        // behind it would never run.
        // SAFETY: a static buffer; `tx` lives until the completions came.
        unsafe { r.push(&op::Write::new(&tx, b"hi").entry().user_data(2)).unwrap() };
        r.submit().unwrap();
        eventually(10, "both completions", || r.cq_len() == 2);
        let mut cs = reap(&mut r);
        cs.sort_unstable();
        assert_eq!(cs, [(1, 2), (2, 2)], "{b:?}");
        drop(read);
        assert_eq!(&buf[..2], b"hi");
    }
}

#[test]
fn an_async_chain_runs_in_order_on_a_helper() {
    for b in worker_backends() {
        let mut r = worker_ring(b, 8, LONG_IDLE);
        let (rx, tx) = pipe();
        let (rx2, tx2) = pipe();
        let mut buf = [0u8; 8];
        let mut read = op::Read::new(&rx, &mut buf);
        // SAFETY: the builder, the buffers (static or kept) and the fds
        // live until the completions came.
        unsafe {
            push_async(&mut r, &mut read, 1, SqeFlags::LINK);
            r.push(&op::Write::new(&tx2, b"after").entry().user_data(2)).unwrap();
            r.push(&op::Write::new(&tx, b"go").entry().user_data(3)).unwrap();
        }
        r.submit().unwrap();
        eventually(10, "three completions", || r.cq_len() == 3);
        let cs = reap(&mut r);
        let pos = |id| cs.iter().position(|c| c.0 == id).unwrap();
        assert!(pos(1) < pos(2), "{b:?}: the chain keeps its order: {cs:?}");
        assert!(pos(3) < pos(1), "{b:?}: the write behind the chain ran first: {cs:?}");
        assert_eq!([cs[pos(1)].1, cs[pos(2)].1, cs[pos(3)].1], [2, 5, 2]);
        let mut out = [0u8; 5];
        // SAFETY: a live buffer.
        assert_eq!(unsafe { libc::read(rx2.as_raw_fd(), out.as_mut_ptr().cast(), 5) }, 5);
        assert_eq!(&out, b"after");
    }
}

#[test]
fn a_failed_entry_of_an_async_chain_cancels_the_rest_of_it() {
    for b in worker_backends() {
        let mut r = worker_ring(b, 8, LONG_IDLE);
        // SAFETY: no pointers.
        unsafe {
            let e = op::Close::new(None).entry().flags(SqeFlags::ASYNC | SqeFlags::LINK).user_data(1);
            r.push(&e).unwrap();
            r.push(&op::Getpid::new().entry().user_data(2)).unwrap();
            r.push(&op::Getpid::new().entry().user_data(3)).unwrap();
        }
        r.submit_and_wait(3).unwrap();
        let mut cs = reap(&mut r);
        cs.sort_unstable();
        assert_eq!(cs, [(1, -libc::EBADF as i64), (2, -libc::ECANCELED as i64), (3, pid())], "{b:?}");
    }
}

#[test]
fn at_most_four_async_chains_run_at_once() {
    for b in worker_backends() {
        let mut r = worker_ring(b, 16, LONG_IDLE);
        let pipes: Vec<_> = (0..5).map(|_| pipe()).collect();
        // The fifth has data, but waits for a helper.
        put(&pipes[4].1, b"5");
        let mut reads: Vec<_> = pipes
            .iter()
            .map(|(rx, _)| op::Read::new(Arc::new(rx.try_clone().unwrap()), Vec::with_capacity(1)))
            .collect();
        for (i, read) in reads.iter_mut().enumerate() {
            // SAFETY: the builders (their Vecs and fds) live until every
            // read has completed (the end of the test).
            unsafe { push_async(&mut r, read, i as u64, SqeFlags::empty()) };
        }
        // SAFETY: no pointers.
        unsafe { r.push(&op::Getpid::new().entry().user_data(9)).unwrap() };
        r.submit().unwrap();
        eventually(10, "the worker goes on", || r.cq_len() >= 1);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(reap(&mut r), [(9, pid())], "{b:?}: four helpers block, the fifth chain waits");
        put(&pipes[0].1, b"1");
        eventually(10, "the first read and then the fifth", || r.cq_len() == 2);
        let mut cs = reap(&mut r);
        cs.sort_unstable();
        assert_eq!(cs, [(0, 1), (4, 1)], "{b:?}");
        for (_, tx) in &pipes[1..4] {
            put(tx, b"x");
        }
        eventually(10, "the rest", || r.cq_len() == 3);
        drop(reads);
    }
}

#[test]
fn dropping_a_worker_ring_with_a_blocked_helper_does_not_wait_for_it() {
    for b in worker_backends() {
        let mut r = worker_ring(b, 4, LONG_IDLE);
        let (rx, tx) = pipe();
        // Leaked: the helper may write it after the ring is gone.
        let read = Box::leak(Box::new(op::Read::new(Arc::new(rx), Vec::with_capacity(4))));
        // SAFETY: the builder, its buffer and its fd are leaked.
        unsafe { push_async(&mut r, read, 1, SqeFlags::empty()) };
        r.submit().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let t = Instant::now();
        drop(r);
        assert!(t.elapsed() < Duration::from_secs(2), "{b:?}: the drop waited for the blocked read");
        put(&tx, b"late");
    }
}

const NO_HELPER: &str = "SYSCALL_OFFLOAD_TEST_NO_HELPER";

/// Runs in the child of `an_async_chain_without_a_helper_fails_with_eagain`
/// only: as user 65534, with `RLIMIT_NPROC` used up once the ring is set
/// up, so that no helper thread can be started.
#[test]
#[ignore = "the unprivileged half of an_async_chain_without_a_helper_fails_with_eagain, which runs it"]
fn no_helper_child() {
    if std::env::var_os(NO_HELPER).is_none() {
        skipped(&test_name(), "runs only as the child of an_async_chain_without_a_helper_fails_with_eagain");
        return;
    }
    for b in worker_backends() {
        let mut r = worker_ring(b, 8, LONG_IDLE);
        let (rx, tx) = pipe();
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: a live rlimit to fill and then pass.
        unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_NPROC, &mut lim), 0);
            let none = libc::rlimit { rlim_cur: 0, rlim_max: lim.rlim_max };
            assert_eq!(libc::setrlimit(libc::RLIMIT_NPROC, &none), 0);
        }
        let mut buf = [0u8; 8];
        let mut read = op::Read::new(&rx, &mut buf);
        // SAFETY: the builder, its buffer and the fds live until every
        // entry has completed; the write's buffer is static.
        unsafe {
            push_async(&mut r, &mut read, 1, SqeFlags::LINK);
            r.push(&op::Getpid::new().entry().user_data(2)).unwrap();
            // Run on the worker, the read would wait for this forever.
            r.push(&op::Write::new(&tx, b"unblock!").entry().user_data(3)).unwrap();
            r.push(&op::Getpid::new().entry().user_data(4)).unwrap();
        }
        r.submit().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while r.cq_len() < 4 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        if r.cq_len() < 4 {
            put(&tx, b"unblock!"); // let the worker go, then fail
        }
        let cs = reap(&mut r);
        let eagain = -(libc::EAGAIN as i64);
        let canceled = -(libc::ECANCELED as i64);
        assert_eq!(cs, [(1, eagain), (2, canceled), (3, 8), (4, pid())], "{b:?}");

        // With the limit back, ASYNC works again: the read takes the
        // write's bytes on a helper.
        // SAFETY: the limits read above.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &lim) }, 0);
        // SAFETY: as above.
        unsafe { push_async(&mut r, &mut read, 5, SqeFlags::empty()) };
        r.submit_and_wait(1).unwrap();
        assert_eq!(reap(&mut r), [(5, 8)], "{b:?}");
        drop(read);
        assert_eq!(&buf, b"unblock!");
    }
}

/// Regression: with no helper thread to be had, the emulated worker (as
/// the kernel's did) ran the ASYNC chain itself, and a read waiting for a
/// later entry's write stalled the ring for good. The chain now fails
/// with EAGAIN, its links with ECANCELED, and the ring goes on.
#[test]
fn an_async_chain_without_a_helper_fails_with_eagain() {
    // SAFETY: no arguments.
    if unsafe { libc::geteuid() } != 0 {
        skipped(&test_name(), "needs root: setresuid() to a user whose RLIMIT_NPROC binds");
        return;
    }
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "no_helper_child", "--ignored", "--nocapture", "--test-threads=1"]).env(NO_HELPER, "1");
    // SAFETY: between fork and exec: async-signal-safe syscalls only.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(65534, 65534, 65534) != 0
                || libc::setresuid(65534, 65534, 65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the child failed: {}\n{text}{}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("test no_helper_child ... ok"), "the child ran no test:\n{text}");
}
