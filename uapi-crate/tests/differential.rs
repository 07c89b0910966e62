//! The same seeded random sequence of entries, run on the kernel backend and
//! on the emulated backend, must give identical `offload_enter` results and
//! identical CQE sequences: bad fds, bad pointers, link chains, skip-success,
//! unknown flags, non-offloadable numbers and a full CQ included.
//!
//! On a host without offload the kernel half cannot run and says so; with
//! `SYSCALL_OFFLOAD_REQUIRE_KERNEL=1` (VM runs) it fails instead.
//! `SYSCALL_OFFLOAD_SEED=n` replays one seed.

mod common;

use std::os::fd::{AsRawFd, OwnedFd};

use syscall_offload::op::{self, Op};
use syscall_offload::{Backend, Entry, Ring, SqeFlags};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct Files {
    null: std::fs::File,
    zero: std::fs::File,
    pipe: (OwnedFd, OwnedFd),
}

const BAD_PTRS: [u64; 3] = [8, 0xdead_0000_0000, u64::MAX - 4095];
const BAD_FDS: [i32; 3] = [-1, 999_999, i32::MAX];

fn entry(rng: &mut Rng, f: &Files, buf: &mut [u8], stat: &mut libc::stat) -> Entry {
    let len = rng.below(buf.len() as u64) as usize;
    let e = match rng.below(12) {
        0 => op::Getpid::new().entry(),
        1 => Entry::syscall([libc::SYS_getppid, libc::SYS_getuid, libc::SYS_getegid][rng.below(3) as usize] as u32, [0; 6]),
        2 => Entry::syscall(libc::SYS_write as u32, [f.null.as_raw_fd() as u64, buf.as_ptr() as u64, len as u64, 0, 0, 0]),
        3 => Entry::syscall(libc::SYS_read as u32, [f.zero.as_raw_fd() as u64, buf.as_mut_ptr() as u64, len as u64, 0, 0, 0]),
        4 => Entry::syscall(libc::SYS_read as u32, [f.zero.as_raw_fd() as u64, BAD_PTRS[rng.below(3) as usize] as *mut u8 as u64, len.max(1) as u64, 0, 0, 0]),
        5 => Entry::syscall(libc::SYS_read as u32, [BAD_FDS[rng.below(3) as usize] as u64, buf.as_mut_ptr() as u64, len as u64, 0, 0, 0]),
        6 => Entry::syscall(libc::SYS_close as u32, [BAD_FDS[rng.below(3) as usize] as u64, 0, 0, 0, 0, 0]),
        7 => {
            let nrs = [libc::SYS_fork as u32, libc::SYS_execve as u32, libc::SYS_clone as u32, libc::SYS_exit as u32,
                libc::SYS_io_uring_setup as u32, libc::SYS_setuid as u32, 463, 464, 465, 9999, u32::MAX];
            Entry::syscall(nrs[rng.below(nrs.len() as u64) as usize], [0; 6])
        }
        8 => Entry::syscall(libc::SYS_fstat as u32, [f.null.as_raw_fd() as u64, stat as *mut libc::stat as u64, 0, 0, 0, 0]),
        9 => Entry::syscall(libc::SYS_fstat as u32, [f.null.as_raw_fd() as u64, BAD_PTRS[rng.below(3) as usize], 0, 0, 0, 0]),
        10 => Entry::syscall(libc::SYS_lseek as u32, [f.pipe.0.as_raw_fd() as u64, 0, 0, 0, 0, 0]),
        _ => Entry::syscall(libc::SYS_write as u32, [f.null.as_raw_fd() as u64, buf.as_ptr() as u64, (usize::MAX - rng.below(2) as usize) as u64, 0, 0, 0]),
    };
    let mut flags = SqeFlags::empty();
    if rng.chance(30) {
        flags |= SqeFlags::LINK;
    }
    if rng.chance(25) {
        flags |= SqeFlags::SKIP_SUCCESS;
    }
    if rng.chance(5) {
        flags |= SqeFlags::ASYNC;
    }
    let e = e.flags(flags);
    if rng.chance(3) {
        e.raw_flags(flags.bits() | 1 << (3 + rng.below(29)))
    } else {
        e
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Event {
    Enter(Result<u32, i32>),
    Cqe(u64, i64),
}

fn run_sequence(backend: Backend, seed: u64, f: &Files, count: usize) -> Vec<Event> {
    let mut ring = Ring::builder(8).cq_entries(8).backend(backend).build().expect("ring");
    let mut rng = Rng(seed | 1);
    let mut buf = vec![0u8; 256];
    // SAFETY: all-zero is a valid struct stat.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    let mut events = Vec::new();
    let mut user_data = 0u64;
    let reap = |ring: &mut Ring, events: &mut Vec<Event>| {
        events.extend(ring.completions().map(|c| Event::Cqe(c.user_data, c.res)));
    };
    while (user_data as usize) < count {
        let k = 1 + rng.below(ring.sq_space().max(1) as u64);
        for _ in 0..k {
            if ring.sq_space() == 0 {
                break;
            }
            let e = entry(&mut rng, f, &mut buf, &mut stat).user_data(user_data);
            user_data += 1;
            // SAFETY: pointers are into `buf`/`stat`, alive for the whole
            // run, or deliberately bad addresses the kernel checks.
            unsafe { ring.push(&e).expect("push") };
        }
        let r = ring.submit().map_err(|e| e.errno());
        let busy = r == Err(libc::EBUSY);
        events.push(Event::Enter(r));
        if busy || rng.chance(60) {
            reap(&mut ring, &mut events);
        }
    }
    while ring.sq_len() > 0 {
        events.push(Event::Enter(ring.submit().map_err(|e| e.errno())));
        reap(&mut ring, &mut events);
    }
    reap(&mut ring, &mut events);
    events
}

fn files() -> Files {
    Files {
        null: std::fs::OpenOptions::new().read(true).write(true).open("/dev/null").expect("/dev/null"),
        zero: std::fs::File::open("/dev/zero").expect("/dev/zero"),
        pipe: common::pipe(),
    }
}

fn seeds() -> Vec<u64> {
    match std::env::var("SYSCALL_OFFLOAD_SEED") {
        Ok(s) => vec![s.parse().expect("SYSCALL_OFFLOAD_SEED must be a number")],
        Err(_) => (1..=24).map(|i| 0x5eed_0000 + i).collect(),
    }
}

#[test]
fn kernel_and_emulated_backends_give_identical_cqes() {
    if !common::need_kernel() {
        return;
    }
    let f = files();
    for seed in seeds() {
        let k = run_sequence(Backend::Kernel, seed, &f, 400);
        let e = run_sequence(Backend::Emulated, seed, &f, 400);
        if let Some(i) = k.iter().zip(&e).position(|(a, b)| a != b) {
            panic!(
                "seed {seed}: backends differ at event {i}: kernel {:?}, emulated {:?}\ncontext kernel {:?}\ncontext emulated {:?}",
                k[i],
                e[i],
                &k[i.saturating_sub(5)..(i + 5).min(k.len())],
                &e[i.saturating_sub(5)..(i + 5).min(e.len())]
            );
        }
        assert_eq!(k.len(), e.len(), "seed {seed}: one backend posted more");
    }
}

#[test]
fn kernel_and_emulated_backends_probe_the_same_table() {
    if !common::need_kernel() {
        return;
    }
    let k = common::ring(Backend::Kernel, 1).probe().unwrap();
    let e = common::ring(Backend::Emulated, 1).probe().unwrap();
    assert_eq!(k.iter().collect::<Vec<_>>(), e.iter().collect::<Vec<_>>());
    assert_eq!(k.nr_syscalls(), e.nr_syscalls());
}

#[test]
fn the_random_sequence_is_deterministic_and_covers_every_outcome() {
    let f = files();
    let a = run_sequence(Backend::Emulated, 7, &f, 400);
    let b = run_sequence(Backend::Emulated, 7, &f, 400);
    assert_eq!(a, b);
    let has = |res: i64| a.iter().any(|ev| matches!(ev, Event::Cqe(_, r) if *r == res));
    for errno in [libc::EBADF, libc::EFAULT, libc::ECANCELED, libc::EOPNOTSUPP, libc::EINVAL, libc::ESPIPE] {
        assert!(has(-(errno as i64)), "sequence never produced errno {errno}");
    }
    assert!(a.contains(&Event::Enter(Err(libc::EBUSY))), "the CQ never filled");
    let posted = a.iter().filter(|ev| matches!(ev, Event::Cqe(..))).count();
    assert!(posted < 400, "skip-success never skipped");
}
