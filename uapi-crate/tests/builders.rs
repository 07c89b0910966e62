//! The operation builders (`syscall_offload::op`): one per offloadable
//! call, checked against the kernel series' table, and a run of the typed
//! ones that create fds, take out-parameters or small structs.

mod common;

use std::ffi::CString;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;

use common::*;
use syscall_offload::op::{self, Op};
use syscall_offload::Ring;

/// The names in the kernel series' table (`E(name, flags)` lines that the
/// patches add to kernel/offload/table.c), or None without the series.
fn series_table() -> Option<Vec<String>> {
    let patches = Path::new(env!("CARGO_MANIFEST_DIR")).join("../patches");
    let mut names = Vec::new();
    for e in std::fs::read_dir(patches).ok()? {
        let text = std::fs::read_to_string(e.ok()?.path()).ok()?;
        let mut in_table = false;
        for line in text.lines() {
            if line.starts_with("+++ ") {
                in_table = line.ends_with("kernel/offload/table.c");
            } else if let Some(rest) = line.strip_prefix("+\tE(").filter(|_| in_table) {
                names.push(rest.split(',').next()?.trim().to_string());
            }
        }
    }
    (!names.is_empty()).then_some(names)
}

#[test]
fn every_call_of_the_series_table_has_a_builder() {
    let Some(names) = series_table() else {
        assert!(
            std::env::var("SYSCALL_OFFLOAD_REQUIRE_HEADER").map_or(true, |v| v != "1"),
            "SYSCALL_OFFLOAD_REQUIRE_HEADER=1 but no patches/ with kernel/offload/table.c"
        );
        skipped(&test_name(), "no kernel series in patches/");
        return;
    };
    #[cfg(target_arch = "x86_64")]
    assert_eq!(names.len(), op::BUILDERS.len(), "{names:?}");
    for name in &names {
        #[cfg(target_arch = "x86_64")]
        assert!(op::BUILDERS.iter().any(|(n, _)| n == name), "no builder for {name}");
        let _ = name;
    }
}

#[test]
fn every_offloadable_number_has_a_builder() {
    for b in backends() {
        let probe = Ring::builder(4).backend(b).build().unwrap().probe().unwrap();
        let offloadable: Vec<u32> = probe.iter().collect();
        let mut built: Vec<u32> = op::BUILDERS.iter().map(|&(_, nr)| nr).collect();
        built.sort_unstable();
        for nr in &offloadable {
            assert!(built.contains(nr), "{b:?}: offloadable syscall {nr} has no builder");
        }
        assert_eq!(built, offloadable, "{b:?}: builders for calls that are not offloadable");
        built.dedup();
        assert_eq!(built.len(), op::BUILDERS.len(), "one builder per call");
    }
}

#[test]
fn a_builder_makes_the_entry_of_its_call() {
    let mut buf = [0u8; 4];
    let stdin = std::io::stdin();
    let mut read = op::Read::new(&stdin, &mut buf[..]);
    let e = read.entry();
    assert_eq!((e.nr(), read.nr(), read.name()), (libc::SYS_read as u32, libc::SYS_read as u32, "read"));
    assert_eq!(e.args()[0], 0);
    assert_eq!(e.args()[2], 4);
    let mut open = op::Openat::new(None, c"x", op::OFlags::empty(), 0);
    let a = open.entry().args();
    assert_eq!(a[0] as i32, libc::AT_FDCWD);
    assert_ne!(a[2] as i32 & libc::O_CLOEXEC, 0, "openat adds O_CLOEXEC");
}

fn raw_pair(fds: [RawFd; 2]) -> (OwnedFd, OwnedFd) {
    // SAFETY: the call just created both fds for us.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

#[test]
fn fd_creating_builders_hand_their_fds_to_the_results() {
    for b in backends() {
        let mut r = ring(b, 16);
        let mut pipe = [-1; 2];
        let mut pair = [-1; 2];
        let ((ev, ep, sock, pipe_id), mut res) = r
            .batch(|bt| {
                let ev = bt.push(op::Eventfd2::new(3, op::EfdFlags::NONBLOCK)).id();
                let ep = bt.push(op::EpollCreate1::new()).id();
                let sock = bt.push(op::Socket::new(libc::AF_INET, libc::SOCK_STREAM, op::SockFlags::NONBLOCK, 0)).id();
                let p = bt.push(op::Pipe2::new(&mut pipe, op::PipeFlags::empty())).id();
                bt.push(op::Socketpair::new(libc::AF_UNIX, libc::SOCK_DGRAM, op::SockFlags::empty(), 0, &mut pair));
                (ev, ep, sock, p)
            })
            .unwrap();
        assert!(res.iter().all(|x| x.is_ok()), "{b:?}: {res:?}");
        assert_eq!(res.take_fd(pipe_id).unwrap_err().raw_os_error(), Some(libc::EBADF), "pipe2 returns 0");
        let (ev, ep, sock) = (res.take_fd(ev).unwrap(), res.take_fd(ep).unwrap(), res.take_fd(sock).unwrap());
        let (prx, ptx) = raw_pair(pipe);
        let (sa, sb) = raw_pair(pair);
        for fd in [&ev, &ep, &sock, &prx, &sa] {
            // SAFETY: F_GETFD on an fd we own.
            assert_eq!(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) }, libc::FD_CLOEXEC, "{b:?}: CLOEXEC");
        }
        // epoll_ctl, epoll_wait on the eventfd (readable: its count is 3),
        // a dup through fcntl and a dup3 over an fd of ours, sendmmsg and
        // recvmmsg on the socket pair.
        let event = libc::epoll_event { events: libc::EPOLLIN as u32, u64: 7 };
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 2];
        let target = std::fs::File::open("/dev/null").unwrap();
        let target_raw = target.as_raw_fd();
        let (one, two) = ([1u8, 2], [3u8]);
        let (s1, s2) = ([IoSlice::new(&one)], [IoSlice::new(&two)]);
        let mut msgs = [op::SendMmsgHdr::new(&s1), op::SendMmsgHdr::new(&s2)];
        let (mut in1, mut in2) = ([0u8; 4], [0u8; 4]);
        let (mut r1, mut r2) = ([IoSliceMut::new(&mut in1)], [IoSliceMut::new(&mut in2)]);
        let mut rmsgs = [op::RecvMmsgHdr::new(&mut r1), op::RecvMmsgHdr::new(&mut r2)];
        let ((wait, dup, dup3, sent, got), mut res) = r
            .batch(|bt| {
                bt.push(op::EpollCtl::new(&ep, op::EpollOp::Add, &ev, Some(&event)));
                let wait = bt.push(op::EpollWait::new(&ep, &mut events, 0)).id();
                let dup = bt.push(op::Fcntl::new(&ev, op::FcntlArg::DupFdCloexec(100))).id();
                let dup3 = bt.push(op::Dup3::new(&ev, OwnedFd::from(target), op::DupFlags::CLOEXEC)).id();
                let sent = bt.push(op::Sendmmsg::new(&sa, &mut msgs, op::MsgFlags::empty())).id();
                let got = bt.push(op::Recvmmsg::new(&sb, &mut rmsgs, op::RecvFlags::DONTWAIT, None)).id();
                (wait, dup, dup3, sent, got)
            })
            .unwrap();
        assert_eq!(res.get(wait).unwrap(), 1, "{b:?}");
        let dup = res.take_fd(dup).unwrap();
        assert!(dup.as_raw_fd() >= 100);
        assert_eq!(res.take_fd(dup3).unwrap().as_raw_fd(), target_raw, "{b:?}: dup3's fd comes back");
        assert_eq!((res.get(sent).unwrap(), res.get(got).unwrap()), (2, 2), "{b:?}");
        // (The headers stay borrowed with the batch's lifetime: their
        // msg_len is for entries pushed with Ring::push or owned ones.)
        assert_eq!({ events[0].u64 }, 7);
        assert_eq!((&in1[..2], &in2[..1]), (&[1u8, 2][..], &[3u8][..]));
        drop((prx, ptx, sock));
    }
}

#[test]
fn path_and_out_parameter_builders_work() {
    for b in backends() {
        let mut r = ring(b, 16);
        let dir = std::env::temp_dir().join(format!("so-builders-{}-{b:?}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = std::fs::File::open(&dir).unwrap();
        std::os::unix::fs::symlink("target-name", dir.join("link")).unwrap();
        // SAFETY: all zeroes is a valid stat and statx.
        let (mut st, mut stx): (libc::stat, libc::statx) = unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
        let mut link = [0u8; 64];
        let ((mk, stat, statx, rl, mv, rm, acc), res) = r
            .batch(|bt| {
                let mk = bt.push(op::Mkdirat::new(Some(d.as_fd().into()), c"sub", 0o700)).link().id();
                let stat =
                    bt.push(op::Newfstatat::new(Some((&d).into()), c"sub", &mut st, op::AtFlags::empty())).id();
                let statx = bt
                    .push(op::Statx::new(Some((&d).into()), c"sub", op::AtFlags::empty(), libc::STATX_TYPE, &mut stx))
                    .id();
                let rl = bt.push(op::Readlinkat::new(Some((&d).into()), c"link", &mut link)).id();
                let mv = bt
                    .push(op::Renameat2::new(
                        Some((&d).into()),
                        c"sub",
                        Some((&d).into()),
                        c"sub2",
                        op::RenameFlags::NOREPLACE,
                    ))
                    .link()
                    .id();
                let rm = bt.push(op::Unlinkat::new(Some((&d).into()), c"sub2", op::AtFlags::REMOVEDIR)).id();
                let acc = bt
                    .push(op::Faccessat2::new(Some((&d).into()), c"link", op::Access::empty(), op::AtFlags::SYMLINK_NOFOLLOW))
                    .id();
                (mk, stat, statx, rl, mv, rm, acc)
            })
            .unwrap();
        for id in [mk, stat, statx, mv, rm, acc] {
            assert!(res.get(id).is_ok(), "{b:?}: {id:?}: {:?}", res.get(id));
        }
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFDIR);
        assert_eq!(u32::from(stx.stx_mode) & libc::S_IFMT, libc::S_IFDIR);
        let n = res.get(rl).unwrap() as usize;
        assert_eq!(&link[..n], b"target-name");
        assert!(!dir.join("sub2").exists());
        std::fs::remove_dir_all(&dir).unwrap();
        let _ = CString::new("x");
    }
}

#[test]
fn sockets_bind_and_name_themselves_through_builders() {
    for b in backends() {
        let mut r = ring(b, 8);
        let sock = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut name = op::SockAddrBuf::new();
        let mut val = [0u8; 4];
        let mut len = 0;
        let one = 1i32.to_ne_bytes();
        let (_, res) = r
            .batch(|bt| {
                bt.push(op::Setsockopt::new(&sock, libc::SOL_SOCKET, libc::SO_KEEPALIVE, &one));
                bt.push(op::Getsockopt::new(&sock, libc::SOL_SOCKET, libc::SO_KEEPALIVE, &mut val, &mut len));
                bt.push(op::Getsockname::new(&sock, &mut name));
            })
            .unwrap();
        assert!(res.iter().all(|x| x.is_ok()), "{b:?}: {res:?}");
        assert_eq!((i32::from_ne_bytes(val), len), (1, 4));
        assert_eq!(name.to_socket_addr(), Some(sock.local_addr().unwrap()));
    }
}

#[test]
fn owned_builders_give_back_buffers_and_fds() {
    for b in backends() {
        let mut r = ring(b, 8);
        let dir: Arc<OwnedFd> = Arc::new(std::fs::File::open("/").unwrap().into());
        let getdents = r.push_owned(op::Getdents64::new(dir.clone(), Vec::with_capacity(4096))).unwrap();
        let sock = r
            .push_owned(op::Socket::new(libc::AF_UNIX, libc::SOCK_DGRAM, op::SockFlags::empty(), 0))
            .unwrap();
        let null: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        let close = r.push_owned(op::Close::new(null)).unwrap();
        r.wait_owned().unwrap();
        let mut done: Vec<_> = r.owned_completions().collect();
        done.sort_by_key(|c| c.ticket);
        assert_eq!([done[0].ticket, done[1].ticket, done[2].ticket], [getdents, sock, close]);
        let n = *done[0].result.as_ref().unwrap();
        assert!(n > 0 && done[0].buf.len() == n, "{b:?}: the Vec grew by what getdents64 wrote");
        assert!(Arc::ptr_eq(done[0].fd.as_ref().unwrap(), &dir));
        assert!(done[1].new_fd.is_some(), "{b:?}: the new socket is owned");
        assert!(done[2].result.is_ok() && done[2].new_fd.is_none(), "{b:?}: the closed fd is forgotten");
    }
}
