//! The shim's own rules (DESIGN.md, "Unmodified applications: the preload
//! shim"), each checked against `examples/evloop.rs` run under the shim in
//! every mode: the bytes a client receives are the same as with the shim
//! off.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn evloop(mode: &str, kind: &str, chunk: usize, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let port = free_port();
    let dir = tmpdir(&format!("evloop-{kind}"));
    let mut c = Command::new(example("evloop"));
    c.arg(port.to_string()).arg(kind).arg(chunk.to_string()).args(extra);
    Server::start(c, mode, port, dir, env)
}

fn quit(s: &mut Server) {
    let mut c = s.connect();
    c.write_all(b"Q\n").unwrap();
    let st = s.wait();
    assert!(st.success(), "evloop exited with {st}: {}", s.stderr());
}

fn echo_stream(s: &Server, lines: usize) {
    let sock = s.connect();
    let mut w = sock.try_clone().unwrap();
    let mut req = Vec::new();
    for i in 0..lines {
        req.extend_from_slice(format!("E{i}-{}\n", "y".repeat(i % 97)).as_bytes());
    }
    let expect = req.clone();
    let t = std::thread::spawn(move || w.write_all(&req).unwrap());
    let mut got = vec![0u8; expect.len()];
    (&sock).read_exact(&mut got).unwrap();
    t.join().unwrap();
    assert!(got == expect, "{}: echoed stream differs", s.mode);
}

/// Read-ahead leaves data buffered when the loop reads less than arrived:
/// level-triggered waits (epoll, poll, select) must report it, and an
/// edge-triggered loop that reads to EAGAIN must get all of it.
#[test]
fn buffered_data_is_reported_ready_in_every_loop_kind() {
    for mode in modes() {
        for (kind, chunk) in [("lt", 100), ("et", 4096), ("poll", 100), ("select", 100)] {
            eprintln!("--- {mode} {kind}");
            let mut s = evloop(&mode, kind, chunk, &[], &[]);
            echo_stream(&s, scaled(3000));
            // Several clients at once.
            let hs: Vec<_> = (0..scaled(8))
                .map(|_| {
                    let sock = s.connect();
                    std::thread::spawn(move || {
                        let mut r = BufReader::new(sock.try_clone().unwrap());
                        let mut w = sock;
                        for i in 0..scaled(200) {
                            w.write_all(format!("E{i}\n").as_bytes()).unwrap();
                            let mut l = String::new();
                            r.read_line(&mut l).unwrap();
                            assert_eq!(l, format!("E{i}\n"));
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            quit(&mut s);
            if kind == "lt" {
                s.check_mode_used();
            }
        }
    }
}

/// A client with a tiny receive buffer reading a few bytes at a time: the
/// server's deferred writes go short; the rest is sent in order, once.
#[test]
fn short_writes_are_repaired_in_order() {
    for mode in modes() {
        let mut s = evloop(&mode, "lt", 4096, &[], &[]);
        slow_big_reply(&s, 600_000);
        echo_stream(&s, scaled(500));
        quit(&mut s);
        s.check_mode_used();
    }
}

fn slow_big_reply(s: &Server, n: usize) {
    let sock = tiny_rcvbuf_socket(s.port);
    (&sock).write_all(format!("B{n}\nE-after\n").as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 5];
    while got.len() < 32 * 1024 {
        let k = (&sock).read(&mut b).unwrap();
        assert!(k > 0);
        got.extend_from_slice(&b[..k]);
    }
    let mut rest = vec![0u8; n + 1 + 8 - got.len()];
    (&sock).read_exact(&mut rest).unwrap();
    got.extend(rest);
    let mut want: Vec<u8> = (0..n).map(|i| b'a' + (i % 23) as u8).collect();
    want.extend_from_slice(b"\nE-after\n");
    assert!(got == want, "{}: big reply differs", s.mode);
}

fn tiny_rcvbuf_socket(port: u16) -> TcpStream {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a new fd we own.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        let size: i32 = 2048;
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &size as *const _ as *const _, 4);
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be() },
            sin_zero: [0; 8],
        };
        assert_eq!(libc::connect(fd, &addr as *const _ as *const _, 16), 0);
        let s = TcpStream::from_raw_fd(fd);
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        s
    }
}

/// A loop that waits without a timeout and does not ask for EPOLLOUT (it
/// believes its replies are sent): a deferred write that goes short inside
/// the batch whose wait then blocks must still be finished by the shim.
#[test]
fn backlog_is_sent_while_the_loop_waits_forever() {
    for mode in modes() {
        let mut s = evloop(&mode, "forever", 4096, &["smallsnd"], &[]);
        let sock = tiny_rcvbuf_socket(s.port);
        // Under the shim's 32 KiB "large" mark, bigger than the room in the
        // socket (8 KiB send buffer, 2 KiB receive buffer): the write goes
        // short inside the batch whose wait blocks.
        let n = 30_000;
        let mut want: Vec<u8> = (0..n).map(|i| b'a' + (i % 23) as u8).collect();
        want.push(b'\n');
        for round in 0..5 {
            (&sock).write_all(format!("B{n}\n").as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            let mut got = vec![0u8; n + 1];
            (&sock).read_exact(&mut got).unwrap();
            assert!(got == want, "{mode}: reply {round} differs");
        }
        quit(&mut s);
        s.check_mode_used();
    }
}

/// An error of a deferred write (the peer reset the connection) reaches
/// the loop through a later call on that fd, the loop closes it, nothing
/// leaks and the others are served.
#[test]
fn deferred_write_errors_are_reported_by_the_next_call() {
    for mode in modes() {
        let mut s = evloop(&mode, "lt", 4096, &[], &[]);
        let before = s.fds();
        for _ in 0..3 {
            let c = s.connect();
            (&c).write_all(b"B3000000\n").unwrap();
            let mut some = [0u8; 1000];
            (&c).read_exact(&mut some).unwrap();
            // Close with a reset: the server's next writes fail.
            let l = libc::linger { l_onoff: 1, l_linger: 0 };
            // SAFETY: setsockopt on our socket.
            unsafe {
                libc::setsockopt(
                    std::os::fd::AsRawFd::as_raw_fd(&c),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    &l as *const _ as *const _,
                    std::mem::size_of::<libc::linger>() as u32,
                )
            };
            drop(c);
        }
        echo_stream(&s, 100);
        let t = Instant::now();
        while s.fds() > before + 1 {
            assert!(t.elapsed() < Duration::from_secs(30), "{mode}: fds {} > {before}", s.fds());
            std::thread::sleep(Duration::from_millis(20));
        }
        quit(&mut s);
        // Off: the loop's own writes fail. With the shim the reply was
        // deferred whole, so the error reaches the loop through whichever
        // call on the fd comes next (here often the read); either way the
        // loop closed all three (checked above) and kept serving.
        let out = std::fs::read_to_string(s.dir.join("stdout")).unwrap();
        eprintln!("{mode}: {}", out.trim());
    }
}

/// Bytes deferred by a thread that exits, and by a process that calls
/// _exit right after writing, reach the peer.
#[test]
fn thread_exit_and_exit_send_what_was_deferred() {
    for mode in modes() {
        let mut s = evloop(&mode, "lt", 4096, &[], &[]);
        let sock = s.connect();
        let mut r = BufReader::new(sock.try_clone().unwrap());
        for _ in 0..3 {
            (&sock).write_all(b"T\n").unwrap();
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            assert_eq!(l, "thread-bye\n", "{mode}");
        }
        (&sock).write_all(b"Z\n").unwrap();
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        assert_eq!(l, "bye\n", "{mode}");
        assert!(s.wait().success());
    }
}

/// Injected faults make every deferred write take the repair path.
#[test]
fn injected_short_writes_and_eagain_take_the_repair_path() {
    for mode in modes().into_iter().filter(|m| m != "off") {
        for inject in ["short", "eagain"] {
            eprintln!("--- {mode} inject={inject}");
            let mut s = evloop(&mode, "lt", 100, &[], &[("OFFLOAD_PRELOAD_INJECT", inject)]);
            echo_stream(&s, scaled(1000));
            slow_big_reply(&s, 200_000);
            quit(&mut s);
            s.check_mode_used();
            let st = s.stats();
            let main = st.iter().max_by_key(|x| x["calls"].parse::<u64>().unwrap()).unwrap();
            assert!(main["short_repairs"].parse::<u64>().unwrap() > 10, "{mode} {inject}: {main:?}");
        }
    }
}

/// A fork child never sends what its parent deferred.
#[test]
fn fork_child_never_sends_the_parents_bytes() {
    for mode in modes() {
        let mut s = evloop(&mode, "lt", 4096, &[], &[]);
        let sock = s.connect();
        let mut r = BufReader::new(sock.try_clone().unwrap());
        for _ in 0..scaled(20) {
            (&sock).write_all(b"F\nE-done\n").unwrap();
            for want in ["before-fork\n", "after-fork\n", "E-done\n"] {
                let mut l = String::new();
                r.read_line(&mut l).unwrap();
                assert_eq!(l, want, "{mode}");
            }
        }
        quit(&mut s);
        s.check_mode_used();
    }
}

/// FIONREAD and MSG_PEEK count the bytes the shim read ahead.
#[test]
fn fionread_and_msg_peek_count_buffered_bytes() {
    for mode in modes() {
        let mut s = evloop(&mode, "lt", 1, &[], &[]);
        let sock = s.connect();
        let mut r = BufReader::new(sock.try_clone().unwrap());
        for _ in 0..10 {
            (&sock).write_all(b"P\nXXXXXXXXX\n").unwrap();
            // The 10 peeked bytes end with the newline: two lines come back.
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            r.read_line(&mut l).unwrap();
            assert_eq!(l, "P10 XXXXXXXXX\n\n", "{mode}");
        }
        quit(&mut s);
    }
}

/// A signal handler that writes to a socket while the loop runs (often
/// inside the shim) neither deadlocks nor loses bytes.
#[test]
fn signal_handler_that_writes_does_not_deadlock() {
    for mode in modes() {
        let mut s = evloop(&mode, "lt", 4096, &["sigwrite"], &[]);
        let sig = s.connect();
        (&sig).write_all(b"S\n").unwrap();
        let t = Instant::now();
        echo_stream(&s, scaled(5000));
        let mut c = s.connect();
        let mut r = BufReader::new(c.try_clone().unwrap());
        for i in 0..scaled(300) {
            c.write_all(format!("E{i}\n").as_bytes()).unwrap();
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
        }
        let mut b = [0u8; 64];
        let k = (&sig).read(&mut b).unwrap();
        assert!(k > 0 && b[..k].iter().all(|&x| x == b's'), "{mode}");
        eprintln!("{mode}: {:?} with a write every 2 ms from SIGALRM", t.elapsed());
        quit(&mut s);
    }
}

/// Without usable offload the shim says so once on stderr and passes
/// every call through.
#[test]
fn fallback_prints_one_line_and_passes_through() {
    let sysctl = std::path::Path::new(syscall_offload::raw::SYSCTL_PATH);
    let restore = if sysctl.exists() {
        // A kernel with offload: refuse it with the sysctl, if we may.
        let old = std::fs::read_to_string(sysctl).unwrap();
        if std::fs::write(sysctl, "2").is_err() {
            eprintln!("skip: cannot write {} (not root)", sysctl.display());
            return;
        }
        Some(old)
    } else {
        None
    };
    let mut s = evloop("inline", "lt", 100, &[], &[]);
    echo_stream(&s, 500);
    quit(&mut s);
    if let Some(old) = restore {
        std::fs::write(sysctl, old.trim()).unwrap();
    }
    let err = s.stderr();
    let lines: Vec<_> = err.lines().filter(|l| l.starts_with("offload-preload:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("passing every call through"), "{err}");
    let st = s.stats();
    assert!(st.iter().all(|x| x["deferred"] == "0" && x["enters"] == "0"), "{st:?}");
}
