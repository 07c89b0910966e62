//! Shared by the shim's integration tests: where the shim is, which modes
//! to run, servers started under it, their stats.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// target/<profile>/ of this test binary.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The shim. `cargo test` does not build a cdylib for integration tests,
/// so the first call builds it with the cargo that runs the tests (on the
/// host; in the VM the tree is read-only and preload/vm-manifest.sh built
/// it beforehand).
pub fn shim() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    if let Ok(p) = std::env::var("OFFLOAD_PRELOAD_SO") {
        return p.into();
    }
    let p = target_dir().join("liboffload_preload.so");
    BUILT.call_once(|| {
        if syscall_offload::raw::kernel_has_offload() && p.exists() {
            return; // the VM
        }
        let release = target_dir().ends_with("release");
        let mut c = Command::new(env!("CARGO"));
        c.args(["build", "--quiet", "-p", "offload-preload", "--lib"]).current_dir(env!("CARGO_MANIFEST_DIR"));
        if release {
            c.arg("--release");
        }
        let st = c.status().expect("run cargo build for the shim");
        assert!(st.success(), "cargo build -p offload-preload failed");
    });
    assert!(p.exists(), "{} is missing: cargo build -p offload-preload", p.display());
    p
}

/// An example program, built first on the host (`cargo test --test X`
/// does not rebuild examples).
pub fn example(name: &str) -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let p = target_dir().join("examples").join(name);
    BUILT.call_once(|| {
        if syscall_offload::raw::kernel_has_offload() && p.exists() {
            return; // the VM: read-only tree, built by the host
        }
        let mut c = Command::new(env!("CARGO"));
        c.args(["build", "--quiet", "-p", "offload-preload", "--examples"]).current_dir(env!("CARGO_MANIFEST_DIR"));
        if target_dir().ends_with("release") {
            c.arg("--release");
        }
        assert!(c.status().expect("run cargo build --examples").success(), "cargo build --examples failed");
    });
    assert!(p.exists(), "{} is missing (cargo test builds examples)", p.display());
    p
}

/// Whether the kernel has offload and worker rings.
fn kernel_modes() -> (bool, bool) {
    use syscall_offload::raw;
    if !raw::kernel_has_offload() {
        return (false, false);
    }
    let mut p = raw::offload_params { size: 128, flags: raw::OFFLOAD_SETUP_WORKER, worker_idle_ms: 10, ..Default::default() };
    let worker = raw::setup(4, &mut p).is_ok();
    (true, worker)
}

/// The modes to test: `OFFLOAD_PRELOAD_TEST_MODES` (comma-separated), else
/// inline (+ worker) on a kernel with offload (the VM: the host already ran
/// `off`, and the VM's own scripts run the Debian tools with the shim off),
/// off + emulate elsewhere. With `SYSCALL_OFFLOAD_REQUIRE_KERNEL=1` a kernel
/// without offload fails.
pub fn modes() -> Vec<String> {
    if let Ok(m) = std::env::var("OFFLOAD_PRELOAD_TEST_MODES") {
        return m.split(',').filter(|s| !s.is_empty()).map(String::from).collect();
    }
    let (inline, worker) = kernel_modes();
    let require = std::env::var("SYSCALL_OFFLOAD_REQUIRE_KERNEL").is_ok_and(|v| v == "1");
    assert!(inline || !require, "SYSCALL_OFFLOAD_REQUIRE_KERNEL=1 but the kernel has no syscall offload");
    if inline {
        let mut v = vec!["inline".to_string()];
        if worker {
            v.push("worker".into());
        }
        v
    } else {
        vec!["off".to_string(), "emulate".to_string()]
    }
}

/// Counts for loops: smaller on a kernel with offload, which here means a
/// TCG guest where everything is 10-100 times slower.
pub fn scaled(n: usize) -> usize {
    if syscall_offload::raw::kernel_has_offload() {
        (n / 3).max(1)
    } else {
        n
    }
}

pub fn have(bin: &str) -> bool {
    Path::new(bin).exists()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("offload-preload-{}-{}-{}", tag, std::process::id(), free_port()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A server process under the shim, killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
    pub mode: String,
    stats: PathBuf,
}

impl Server {
    /// Starts `cmd` with the shim in `mode` and waits for `port` to accept.
    pub fn start(mut cmd: Command, mode: &str, port: u16, dir: PathBuf, extra_env: &[(&str, &str)]) -> Server {
        let stats = dir.join("shim.stats");
        let _ = std::fs::remove_file(&stats);
        // Servers that drop privileges (nginx workers) append to it too.
        std::fs::write(&stats, "").unwrap();
        let _ = std::fs::set_permissions(&stats, std::os::unix::fs::PermissionsExt::from_mode(0o666));
        cmd.env("LD_PRELOAD", shim())
            .env("OFFLOAD_PRELOAD", mode)
            .env("OFFLOAD_PRELOAD_STATS_FILE", &stats)
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(dir.join("stdout")).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(dir.join("stderr")).unwrap()));
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn server");
        let s = Server { child, port, dir, mode: mode.into(), stats };
        let t = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t.elapsed() < Duration::from_secs(60), "server on port {port} did not start: {}", s.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    /// Open fds of the server process.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).map_or(0, |d| d.count())
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        s
    }

    /// Waits for the process to exit (after a shutdown command).
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(t.elapsed() < Duration::from_secs(60), "server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The stats lines the shim wrote at exit, one map per process.
    pub fn stats(&self) -> Vec<std::collections::HashMap<String, String>> {
        parse_stats(&std::fs::read_to_string(&self.stats).unwrap_or_default())
    }

    /// Checks, after exit, that the mode really ran: no fallback line, and
    /// in the ring modes the main process entered the kernel through a ring.
    pub fn check_mode_used(&self) {
        let err = self.stderr();
        let stats = self.stats();
        match self.mode.as_str() {
            "off" => assert!(stats.is_empty() || stats.iter().all(|s| s["deferred"] == "0"), "off mode deferred"),
            m => {
                assert!(!err.contains("passing every call through"), "{m}: the shim fell back: {err}");
                assert!(!err.contains("using inline rings"), "{m}: worker rings refused: {err}");
                let main = stats.iter().max_by_key(|s| s["calls"].parse::<u64>().unwrap()).expect("no stats line");
                assert!(main["deferred"].parse::<u64>().unwrap() > 0, "{m}: nothing deferred: {main:?}");
                // A worker ring whose worker never slept runs its entries
                // with no offload_enter() at all: that is the point of it.
                let proof = if m == "worker" { "entries" } else { "enters" };
                if m != "emulate" {
                    assert!(main[proof].parse::<u64>().unwrap() > 0, "{m}: no ring {proof}: {main:?}");
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() && std::env::var_os("OFFLOAD_PRELOAD_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn parse_stats(s: &str) -> Vec<std::collections::HashMap<String, String>> {
    s.lines()
        .filter(|l| l.contains(" stats "))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Deterministic bytes for a value of `len`.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ seed as u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

// ---- a minimal RESP client ---------------------------------------------------

pub fn cmd(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

pub fn read_reply<R: BufRead>(r: &mut R) -> std::io::Result<Reply> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if line.len() < 3 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    let body = String::from_utf8_lossy(&line[1..line.len() - 2]).to_string();
    Ok(match line[0] {
        b'+' => Reply::Status(body),
        b'-' => Reply::Error(body),
        b':' => Reply::Int(body.parse().unwrap()),
        b'$' => {
            let n: i64 = body.parse().unwrap();
            if n < 0 {
                Reply::Bulk(None)
            } else {
                let mut v = vec![0; n as usize + 2];
                r.read_exact(&mut v)?;
                v.truncate(n as usize);
                Reply::Bulk(Some(v))
            }
        }
        b'*' => {
            let n: i64 = body.parse().unwrap();
            let mut v = Vec::new();
            for _ in 0..n.max(0) {
                v.push(read_reply(r)?);
            }
            Reply::Array(v)
        }
        c => panic!("bad reply type {c}"),
    })
}

pub struct Redis {
    pub r: BufReader<TcpStream>,
    pub w: TcpStream,
}

impl Redis {
    pub fn new(s: TcpStream) -> Redis {
        Redis { w: s.try_clone().unwrap(), r: BufReader::with_capacity(1 << 16, s) }
    }
    pub fn call(&mut self, args: &[&[u8]]) -> Reply {
        self.w.write_all(&cmd(args)).unwrap();
        read_reply(&mut self.r).unwrap()
    }
}

pub fn redis_server(mode: &str, tag: &str, extra: &[&str]) -> Option<Server> {
    if !have("/usr/bin/redis-server") {
        eprintln!("skip: /usr/bin/redis-server is not installed (scripts/deps.sh installs it)");
        return None;
    }
    let port = free_port();
    let dir = tmpdir(tag);
    let mut c = Command::new("/usr/bin/redis-server");
    c.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--daemonize", "no", "--protected-mode", "no"])
        .arg("--dir")
        .arg(&dir)
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .args(extra);
    Some(Server::start(c, mode, port, dir, &[]))
}

pub fn shutdown_redis(s: &mut Server) {
    let mut r = Redis::new(s.connect());
    r.w.write_all(&cmd(&[b"SHUTDOWN", b"NOSAVE"])).unwrap();
    let st = s.wait();
    assert!(st.success(), "redis exited with {st}: {}", s.stderr());
}
