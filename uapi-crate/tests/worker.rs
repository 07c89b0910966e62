//! Worker rings: submissions that do not wait, the idle/wakeup protocol,
//! waiting for completions, the SQ/CQ split, the eventfd, a gone worker.
//! On the emulated backend always, on the kernel backend when it has worker
//! mode (required with SYSCALL_OFFLOAD_REQUIRE_KERNEL=1).

mod common;

use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use common::*;
use syscall_offload::op::{self, Op};
use syscall_offload::{Backend, ErrorKind, Ring, SqFlags};

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
