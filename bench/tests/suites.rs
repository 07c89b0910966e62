//! Every micro and echo configuration runs and gives sane records. On a
//! kernel without offload the rings run on the crate's emulated backend;
//! where io_uring is unavailable (disabled by sysctl, seccomp, an old
//! kernel) its runs must say "skipped" and exit with 77.

use std::process::Command;

fn bench(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_offload-bench")).args(args).output().expect("run offload-bench");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn check(args: &[&str], uring: bool, want: &[&str]) {
    let (rc, out, err) = bench(args);
    if uring && rc == 77 {
        assert!(out.contains("\"skipped\""), "{args:?}: exit 77 without a skip record: {out}");
        eprintln!("SKIPPED: {args:?}: {}", err.trim());
        return;
    }
    assert_eq!(rc, 0, "{args:?}: {err}");
    for w in want {
        assert!(out.contains(w), "{args:?}: no {w} in {out}");
    }
}

#[test]
fn micro_every_mode_runs() {
    for op in ["write", "read", "getppid"] {
        for mode in ["direct", "inline", "worker", "uring", "uring-sqpoll"] {
            check(&["micro", "--op", op, "--mode", mode, "--batch", "8", "--calls", "256"], mode.starts_with("uring"), &["\"wall_ns_per_call\"", "\"app_cpu_ns_per_call\""]);
        }
    }
}

#[test]
fn echo_every_server_runs() {
    for mode in ["epoll", "inline", "inline-all", "worker", "uring"] {
        check(&["echo", "--mode", mode, "--conns", "8", "--requests", "200"], mode == "uring", &["\"rps\"", "\"p99_us\"", "\"cpu_s_per_mreq\""]);
    }
}

#[test]
fn bad_arguments_are_refused() {
    assert_eq!(bench(&["micro", "--mode", "nonsense"]).0, 2);
    assert_eq!(bench(&["echo", "--mode", "nonsense"]).0, 2);
    assert_eq!(bench(&[]).0, 2);
}
