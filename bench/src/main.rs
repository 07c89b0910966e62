//! `offload-bench`: the micro and echo-server suites of `make bench`.
//!
//! ```text
//! offload-bench micro --op write|read|getppid --mode direct|inline|worker|uring|uring-sqpoll
//!                     [--batch N] [--calls N] [--count N]
//! offload-bench echo --mode epoll|inline|inline-all|worker|uring [--conns N] [--size BYTES]
//!                    [--requests N] [--count N] [--worker-idle-ms MS]
//! offload-bench echo-server MODE [WORKER_IDLE_MS]   (the server process of `echo`)
//! ```
//!
//! Each run prints one JSON object on stdout. `--count N` makes N more
//! calls (requests) with the kernel's tracepoints counting mode switches
//! (root and tracefs needed; the bench VM has both). A run that cannot
//! happen here (no io_uring, no offload worker) prints an object with a
//! `skipped` reason and exits with 77.

mod count;
mod echo;
mod json;
mod micro;

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: offload-bench micro|echo|echo-server ... (see the crate docs)");
    ExitCode::from(2)
}

struct Args(Vec<String>);

impl Args {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().position(|a| a == name).and_then(|i| self.0.get(i + 1)).map(|s| s.as_str())
    }

    fn num(&self, name: &str, default: u64) -> Result<u64, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("{name}: not a number: {v}")),
        }
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first().cloned() else { return usage() };
    let a = Args(argv[1..].to_vec());
    let (suite, label, res) = match cmd.as_str() {
        "echo-server" => {
            let Some(mode) = a.0.first() else { return usage() };
            let idle = a.0.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
            if let Err(e) = echo::server(mode, idle) {
                eprintln!("Error: {e}");
                return ExitCode::from(if e.starts_with("skip:") { 77 } else { 1 });
            }
            return ExitCode::SUCCESS;
        }
        "micro" => {
            let p = (|| -> Result<micro::Params, String> {
                let op = a.get("--op").unwrap_or("getppid");
                let mode = a.get("--mode").unwrap_or("direct");
                Ok(micro::Params {
                    op: micro::Op::parse(op).ok_or(format!("unknown op {op}"))?,
                    mode: micro::Mode::parse(mode).ok_or(format!("unknown mode {mode}"))?,
                    batch: a.num("--batch", 32)? as usize,
                    calls: a.num("--calls", 100_000)?,
                    count_calls: a.num("--count", 0)?,
                })
            })();
            match p {
                Err(e) => {
                    eprintln!("offload-bench: {e}");
                    return usage();
                }
                Ok(p) => ("micro", format!("{} {} {}", p.op.name(), p.mode.name(), p.batch), micro::run(&p)),
            }
        }
        "echo" => {
            let p = (|| -> Result<echo::Params, String> {
                let mode = a.get("--mode").unwrap_or("epoll").to_string();
                if !echo::MODES.contains(&mode.as_str()) {
                    return Err(format!("unknown server mode {mode}"));
                }
                Ok(echo::Params {
                    mode,
                    conns: a.num("--conns", 64)? as usize,
                    size: a.num("--size", 64)? as usize,
                    requests: a.num("--requests", 100_000)?,
                    count_requests: a.num("--count", 0)?,
                    worker_idle_ms: a.num("--worker-idle-ms", 1000)?,
                })
            })();
            match p {
                Err(e) => {
                    eprintln!("offload-bench: {e}");
                    return usage();
                }
                Ok(p) => ("echo", p.mode.clone(), echo::run(&p)),
            }
        }
        _ => return usage(),
    };
    match res {
        Ok(o) => {
            println!("{}", o.line());
            ExitCode::SUCCESS
        }
        Err(e) if e.starts_with("skip:") => {
            let mut o = json::Obj::new();
            o.str("suite", suite).str("what", &label).str("skipped", e.trim_start_matches("skip:").trim());
            println!("{}", o.line());
            eprintln!("offload-bench {suite} {label}: {e}");
            ExitCode::from(77)
        }
        Err(e) => {
            eprintln!("offload-bench {suite} {label}: {e}");
            ExitCode::FAILURE
        }
    }
}
