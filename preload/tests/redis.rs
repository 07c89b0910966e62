//! Debian's unmodified redis-server under the shim, in every mode of
//! `common::modes()`: what clients receive must be byte for byte what they
//! receive without the shim.

mod common;

use std::io::{BufReader, Read, Write};
use std::time::{Duration, Instant};

use common::*;

fn for_modes(tag: &str, extra: &[&str], f: impl Fn(&mut Server)) {
    for mode in modes() {
        eprintln!("--- {tag}: OFFLOAD_PRELOAD={mode}");
        let Some(mut s) = redis_server(&mode, tag, extra) else { return };
        f(&mut s);
        shutdown_redis(&mut s);
        s.check_mode_used();
    }
}

#[test]
fn values_1k_to_16m_come_back_byte_exact() {
    for_modes("values", &["--proto-max-bulk-len", "64mb"], |s| {
        let mut r = Redis::new(s.connect());
        let mut len = 1024;
        while len <= 16 << 20 {
            let v = pattern(len, len as u8);
            let key = format!("k{len}");
            assert_eq!(r.call(&[b"SET", key.as_bytes(), &v]), Reply::Status("OK".into()));
            assert!(r.call(&[b"GET", key.as_bytes()]) == Reply::Bulk(Some(v)), "{}: GET of {len} bytes differs", s.mode);
            len *= 4;
        }
    });
}

#[test]
fn slow_reader_with_tiny_receive_buffer_gets_a_big_reply_intact() {
    for_modes("slow", &[], |s| {
        let v = pattern(1 << 20, 7);
        let mut r = Redis::new(s.connect());
        assert_eq!(r.call(&[b"SET", b"big", &v]), Reply::Status("OK".into()));
        // A tiny receive buffer, set before connect, and reads of a few
        // bytes: the server's writes go short and the shim's backlog holds
        // the rest while other clients are served.
        let sock = socket_with_rcvbuf(s.port, 2048);
        let mut w = sock.try_clone().unwrap();
        w.write_all(&cmd(&[b"GET", b"big"])).unwrap();
        let mut got = Vec::new();
        let mut other = Redis::new(s.connect());
        let t = Instant::now();
        let mut small = [0u8; 7];
        let mut rd = sock;
        while got.len() < 64 * 1024 {
            let n = rd.read(&mut small).unwrap();
            assert!(n > 0, "EOF");
            got.extend_from_slice(&small[..n]);
            if got.len() % 4096 < 7 {
                // Others are served meanwhile.
                assert_eq!(other.call(&[b"PING"]), Reply::Status("PONG".into()));
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let mut rest = BufReader::new(rd);
        let hdr = format!("${}\r\n", v.len());
        let mut tail = vec![0u8; hdr.len() + v.len() + 2 - got.len()];
        rest.read_exact(&mut tail).unwrap();
        got.extend_from_slice(&tail);
        assert_eq!(&got[..hdr.len()], hdr.as_bytes());
        assert!(got[hdr.len()..hdr.len() + v.len()] == v[..], "{}: slow reader got different bytes", s.mode);
        eprintln!("slow reader: {} bytes in {:?}", got.len(), t.elapsed());
    });
}

fn socket_with_rcvbuf(port: u16, size: i32) -> std::net::TcpStream {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a new fd we own.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &size as *const _ as *const _, 4);
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be() },
            sin_zero: [0; 8],
        };
        let r = libc::connect(fd, &addr as *const _ as *const _, std::mem::size_of_val(&addr) as u32);
        assert_eq!(r, 0, "connect: {}", std::io::Error::last_os_error());
        std::net::TcpStream::from_raw_fd(fd)
    }
}

#[test]
fn one_mib_pipeline_larger_than_one_read_is_answered_in_order() {
    for_modes("pipe", &[], |s| {
        let mut buf = Vec::new();
        let mut n = 0;
        while buf.len() < 1 << 20 {
            let v = format!("value-{n}-{}", "x".repeat(n % 50));
            buf.extend_from_slice(&cmd(&[b"SET", format!("p{n}").as_bytes(), v.as_bytes()]));
            buf.extend_from_slice(&cmd(&[b"INCR", b"counter"]));
            n += 1;
        }
        let sock = s.connect();
        let mut w = sock.try_clone().unwrap();
        let writer = std::thread::spawn(move || w.write_all(&buf).unwrap());
        let mut r = BufReader::with_capacity(1 << 16, sock);
        for i in 0..n {
            assert_eq!(read_reply(&mut r).unwrap(), Reply::Status("OK".into()), "{}: reply {i}", s.mode);
            assert_eq!(read_reply(&mut r).unwrap(), Reply::Int(i as i64 + 1), "{}: INCR {i}", s.mode);
        }
        writer.join().unwrap();
        let mut c = Redis::new(s.connect());
        let last = format!("p{}", n - 1);
        assert!(matches!(c.call(&[b"GET", last.as_bytes()]), Reply::Bulk(Some(_))));
    });
}

#[test]
fn client_gone_mid_reply_leaves_the_server_serving_others() {
    for_modes("gone", &[], |s| {
        let v = pattern(4 << 20, 3);
        let mut r = Redis::new(s.connect());
        assert_eq!(r.call(&[b"SET", b"big", &v]), Reply::Status("OK".into()));
        let fds = s.fds();
        for _ in 0..5 {
            let mut c = s.connect();
            c.write_all(&cmd(&[b"GET", b"big"])).unwrap();
            let mut part = [0u8; 1000];
            c.read_exact(&mut part).unwrap();
            drop(c);
            assert_eq!(r.call(&[b"PING"]), Reply::Status("PONG".into()));
        }
        assert!(r.call(&[b"GET", b"big"]) == Reply::Bulk(Some(v)));
        // The server let go of those clients.
        let t = Instant::now();
        loop {
            let Reply::Bulk(Some(info)) = r.call(&[b"INFO", b"clients"]) else { panic!() };
            let info = String::from_utf8(info).unwrap();
            // No client and no socket of theirs left behind (the shim keeps
            // a closed socket only while its backlog can still be sent).
            if info.contains("connected_clients:1\r") && s.fds() == fds {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "{}: clients not released: {info}", s.mode);
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}

/// Many clients writing while BGSAVE forks: each reply arrives exactly once
/// and the RDB file loads.
#[test]
fn bgsave_fork_during_load_sends_each_reply_once() {
    for mode in modes() {
        let Some(mut s) = redis_server(&mode, "bgsave", &["--dbfilename", "dump.rdb"]) else { return };
        let port = s.port;
        let per_worker = scaled(1500) as i64;
        let workers: Vec<_> = (0..4)
            .map(|w| {
                std::thread::spawn(move || {
                    let sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                    let mut r = Redis::new(sock);
                    for i in 0..per_worker {
                        let k = format!("w{w}:{i}");
                        // A pipeline of two: SET then INCR, replies in order, once each.
                        let mut b = cmd(&[b"SET", k.as_bytes(), k.as_bytes()]);
                        b.extend(cmd(&[b"INCR", format!("n{w}").as_bytes()]));
                        r.w.write_all(&b).unwrap();
                        assert_eq!(read_reply(&mut r.r).unwrap(), Reply::Status("OK".into()));
                        assert_eq!(read_reply(&mut r.r).unwrap(), Reply::Int(i + 1));
                    }
                })
            })
            .collect();
        let mut c = Redis::new(s.connect());
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(150));
            let r = c.call(&[b"BGSAVE"]);
            assert!(matches!(r, Reply::Status(_) | Reply::Error(_)), "{r:?}");
            wait_no_child(&mut c);
        }
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(c.call(&[b"SAVE"]), Reply::Status("OK".into()));
        assert_eq!(c.call(&[b"DBSIZE"]), Reply::Int(4 * per_worker + 4));
        shutdown_redis(&mut s);
        s.check_mode_used();
        // The RDB file loads, with every key.
        let dir = s.dir.clone();
        let Some(mut s2) = redis_server("off", "bgsave-load", &["--dir", dir.to_str().unwrap(), "--dbfilename", "dump.rdb"])
        else {
            return;
        };
        let mut c = Redis::new(s2.connect());
        assert_eq!(c.call(&[b"DBSIZE"]), Reply::Int(4 * per_worker + 4), "{mode}: RDB did not load every key");
        assert_eq!(c.call(&[b"GET", b"n3"]), Reply::Bulk(Some(per_worker.to_string().into_bytes())));
        shutdown_redis(&mut s2);
    }
}

fn wait_no_child(c: &mut Redis) {
    for _ in 0..600 {
        let Reply::Bulk(Some(info)) = c.call(&[b"INFO", b"persistence"]) else { panic!() };
        if String::from_utf8_lossy(&info).contains("rdb_bgsave_in_progress:0") {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("BGSAVE did not finish");
}

#[test]
fn appendonly_file_holds_every_write_in_order() {
    for_modes("aof", &["--appendonly", "yes", "--appendfsync", "always"], |s| {
        let mut r = Redis::new(s.connect());
        for i in 0..scaled(300) as i64 {
            assert_eq!(r.call(&[b"RPUSH", b"log", format!("e{i}").as_bytes()]), Reply::Int(i + 1));
        }
        let Reply::Array(items) = r.call(&[b"LRANGE", b"log", b"0", b"-1"]) else { panic!() };
        let n = scaled(300);
        assert_eq!(items.len(), n);
        // The AOF (a directory of files since Redis 7) holds the RPUSHes in order.
        let mut aof = Vec::new();
        collect_files(&s.dir, &mut aof);
        let text = String::from_utf8_lossy(&aof);
        let mut at = 0;
        for i in 0..n {
            let needle = format!("$2\r\ne{i}\r\n");
            let needle = if i >= 10 { format!("${}\r\ne{i}\r\n", format!("e{i}").len()) } else { needle };
            let pos = text[at..].find(&needle).unwrap_or_else(|| panic!("{}: e{i} missing from the AOF after {at}", s.mode));
            at += pos + needle.len();
        }
    });
}

fn collect_files(dir: &std::path::Path, out: &mut Vec<u8>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, out);
        } else if p.to_string_lossy().contains(".aof") {
            out.extend(std::fs::read(&p).unwrap());
        }
    }
}

#[test]
fn pubsub_subscriber_that_stops_reading_is_disconnected_by_the_output_limit() {
    for_modes("pubsub", &["--client-output-buffer-limit", "pubsub 256kb 128kb 60"], |s| {
        let sub = socket_with_rcvbuf(s.port, 4096);
        let mut sw = sub.try_clone().unwrap();
        sw.write_all(&cmd(&[b"SUBSCRIBE", b"ch"])).unwrap();
        let mut first = [0u8; 10];
        (&sub).read_exact(&mut first).unwrap();
        let mut p = Redis::new(s.connect());
        let rss = s.rss_kib();
        let msg = vec![b'm'; 4000];
        let t = Instant::now();
        let mut published = 0;
        loop {
            let Reply::Int(n) = p.call(&[b"PUBLISH", b"ch", &msg]) else { panic!() };
            published += 1;
            if n == 0 {
                break; // the subscriber was dropped
            }
            assert!(t.elapsed() < Duration::from_secs(120), "{}: never disconnected", s.mode);
            assert!(published < 100_000, "{}: subscriber kept after {published} messages", s.mode);
        }
        let grown = s.rss_kib().saturating_sub(rss);
        eprintln!("{}: subscriber dropped after {published} messages, RSS grew {grown} KiB", s.mode);
        assert!(grown < 16 * 1024, "{}: RSS grew {grown} KiB", s.mode);
        // The shim held at most one bounded remainder for it: the server's
        // own limit did the work, as without the shim.
        assert!(published < 2000, "{}: {published} messages before the limit hit", s.mode);
    });
}
