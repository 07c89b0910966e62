//! Debian's unmodified nginx under the shim: static files of several sizes
//! over keep-alive connections, compared byte for byte, with many
//! connections at once and a slow reader.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::*;

const SIZES: [usize; 6] = [0, 1, 1000, 70_000, 300_000, 2_000_000];

fn nginx(mode: &str) -> Option<Server> {
    if !have("/usr/sbin/nginx") {
        eprintln!("skip: /usr/sbin/nginx is not installed (scripts/deps.sh installs it)");
        return None;
    }
    let port = free_port();
    let dir = tmpdir("nginx");
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    for n in SIZES {
        std::fs::write(www.join(format!("f{n}")), pattern(n, n as u8)).unwrap();
    }
    let d = dir.display();
    let conf = format!(
        "daemon off; master_process on; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log {d}/access.log; sendfile on; tcp_nopush on; keepalive_requests 100000;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{ listen 127.0.0.1:{port}; root {d}/www; }}
}}
"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    // Workers drop to nobody when started as root: let them read the files.
    let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(&dir).status();
    let mut c = Command::new("/usr/sbin/nginx");
    c.arg("-c").arg(dir.join("nginx.conf")).arg("-p").arg(&dir);
    Some(Server::start(c, mode, port, dir, &[]))
}

fn stop(s: &mut Server) {
    // SAFETY: a signal to our child.
    unsafe { libc::kill(s.child.id() as i32, libc::SIGQUIT) };
    let st = s.wait();
    assert!(st.success(), "nginx exited with {st}: {}", s.stderr());
}

/// GET over a keep-alive connection; returns the body.
fn get(r: &mut BufReader<TcpStream>, path: &str) -> Vec<u8> {
    r.get_mut().write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
    let mut len = None;
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{path}: {status}");
    loop {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        if l == "\r\n" {
            break;
        }
        if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
            len = Some(v.trim().parse::<usize>().unwrap());
        }
    }
    let mut body = vec![0u8; len.expect("content-length")];
    r.read_exact(&mut body).unwrap();
    body
}

#[test]
fn static_files_over_keepalive_match_byte_for_byte() {
    for mode in modes() {
        eprintln!("--- nginx {mode}");
        let Some(mut s) = nginx(&mode) else { return };
        let port = s.port;
        let hs: Vec<_> = (0..scaled(12))
            .map(|t| {
                std::thread::spawn(move || {
                    let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    sock.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
                    let mut r = BufReader::new(sock);
                    for i in 0..scaled(30) {
                        let n = SIZES[(i + t) % SIZES.len()];
                        let body = get(&mut r, &format!("/f{n}"));
                        assert!(body == pattern(n, n as u8), "f{n} differs");
                    }
                })
            })
            .collect();
        // A slow reader of the largest file meanwhile.
        let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        (&sock).write_all(b"GET /f2000000 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut first = vec![0u8; 20_000];
        for c in first.chunks_mut(100) {
            (&sock).read_exact(c).unwrap();
        }
        drop(sock);
        for h in hs {
            h.join().unwrap();
        }
        // Pipelined requests on one connection.
        let sock = s.connect();
        let mut r = BufReader::new(sock.try_clone().unwrap());
        let mut req = Vec::new();
        for n in SIZES {
            req.extend_from_slice(format!("GET /f{n} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        }
        (&sock).write_all(&req).unwrap();
        for n in SIZES {
            // get() writes a request too: read the pipelined answers by hand.
            let mut status = String::new();
            r.read_line(&mut status).unwrap();
            assert!(status.starts_with("HTTP/1.1 200"));
            let mut len = 0;
            loop {
                let mut l = String::new();
                r.read_line(&mut l).unwrap();
                if l == "\r\n" {
                    break;
                }
                if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0u8; len];
            r.read_exact(&mut body).unwrap();
            assert!(body == pattern(n, n as u8), "{mode}: pipelined f{n} differs");
        }
        stop(&mut s);
        s.check_mode_used();
    }
}
