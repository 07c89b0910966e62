#!/usr/bin/python3
"""In the bench VM: run the suites and append one JSON record per run to
OUT/runs.jsonl, each labelled with accelerator, vCPUs, kernel and boot.

  run.py --out DIR --bin OFFLOAD_BENCH --so LIBOFFLOAD_PRELOAD.SO
         [--suites micro,echo,redis,nginx] [--quick] [--smoke]
         [--accel kvm|tcg] [--boot LABEL] [--reps N]

Suites:
  micro  offload-bench micro: write/read/getppid, direct, inline batches,
         worker ring, io_uring with and without SQPOLL
  echo   offload-bench echo: epoll, epoll+inline writes, every call inline, worker
         ring, io_uring
  redis  Debian's redis-server under redis-benchmark (100 clients, -P 16 and
         no pipelining, GET and SET): plain, shim inline, shim worker,
         io-threads 2
  nginx  Debian's nginx (1 worker) under wrk (keep-alive, small static
         files): plain, shim inline, shim worker

Mode switches are the kernel's count (raw_syscalls:sys_enter minus
offload:offload_submit, hist triggers keyed on the thread id, summed over
the server's threads) in a separate, shorter pass with the triggers on;
CPU is the server process's CPU clock (every thread, workers included).
--smoke: a few hundred requests each, nothing asserted but that every run
works (exit status 1 otherwise).
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

EV = "/sys/kernel/tracing/events"
SPEC = "hist:keys=common_pid:vals=hitcount:size=4096"
FAILURES = []


def log(*a):
    print(*a, flush=True)


# --- what the kernel counts ---------------------------------------------------

class Counter:
    """Hist triggers on sys_enter and offload_submit while in a with block."""

    def __enter__(self):
        self.events = ["raw_syscalls/sys_enter"]
        if os.path.exists(f"{EV}/offload/offload_submit"):
            self.events.append("offload/offload_submit")
        for e in self.events:
            self._w(e, "!" + SPEC)
            self._w(e, SPEC)
        return self

    def _w(self, e, s):
        try:
            with open(f"{EV}/{e}/trigger", "w") as f:
                f.write(s)
        except OSError:
            if not s.startswith("!"):
                raise

    def __exit__(self, *a):
        for e in self.events:
            self._w(e, "!" + SPEC)

    def snapshot(self):
        """Mode switches so far by thread id."""
        out = {}
        for i, e in enumerate(self.events):
            with open(f"{EV}/{e}/hist") as f:
                for m in re.finditer(r"common_pid:\s*(\d+)\s*\}\s*hitcount:\s*(\d+)", f.read()):
                    t, n = int(m.group(1)), int(m.group(2))
                    out[t] = out.get(t, 0) + (n if i == 0 else -n)
        return out


def tids(pids):
    out = []
    for p in pids:
        try:
            out += [int(t) for t in os.listdir(f"/proc/{p}/task")]
        except OSError:
            pass
    return out


def delta(a, b, ts):
    return sum(b.get(t, 0) - a.get(t, 0) for t in ts)


def cpu_secs(pids):
    """CPU seconds of the processes, every thread (their process CPU clocks)."""
    s = 0.0
    for p in pids:
        try:
            s += time.clock_gettime(((~p) << 3) | 2)
        except OSError:
            pass
    return s


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
                if int(st.rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def wait_children(pid, secs=30):
    """The children of @pid once it has some: nginx's master listens
    before it forks its worker, so an open port does not mean a worker."""
    t = time.time()
    while time.time() - t < secs:
        kids = children(pid)
        if kids:
            return kids
        time.sleep(0.05)
    raise RuntimeError(f"no child of {pid} after {secs} s")


# --- records --------------------------------------------------------------------

def labels(args):
    with open("/proc/cmdline") as f:
        cmdline = f.read().strip()
    try:
        with open("/sys/devices/system/cpu/vulnerabilities/meltdown") as f:
            meltdown = f.read().strip()
    except OSError:
        meltdown = "?"
    return {
        "accel": args.accel,
        "vcpus": os.cpu_count(),
        "kernel": os.uname().release,
        "boot": args.boot,
        "boot_options": " ".join(w for w in cmdline.split() if w in ("pti=on", "pti=off", "mitigations=off", "nopti")) or "(default)",
        "meltdown": meltdown,
        "quick": bool(args.quick),
        "smoke": bool(args.smoke),
        "length_scale": round(getattr(args, "scale", 1.0), 3),
    }


def record(args, rec, rep):
    rec = dict(rec)
    rec.update(labels(args))
    rec["rep"] = rep
    with open(os.path.join(args.out, "runs.jsonl"), "a") as f:
        f.write(json.dumps(rec) + "\n")
    short = {k: v for k, v in rec.items() if k not in labels(args)}
    log("  " + json.dumps(short))


def run_bin(args, argv, rep, what):
    try:
        p = subprocess.run([args.bin] + argv, capture_output=True, text=True, timeout=args.run_timeout)
    except subprocess.TimeoutExpired:
        FAILURES.append(f"{what}: timed out")
        log(f"  FAIL {what}: timed out after {args.run_timeout}s")
        return
    if p.returncode in (0, 77) and p.stdout.strip():
        rec = json.loads(p.stdout.strip().splitlines()[-1])
        record(args, rec, rep)
        if p.returncode == 77 and args.smoke and "uring" not in what:
            FAILURES.append(f"{what}: skipped: {rec.get('skipped')}")
        return
    FAILURES.append(f"{what}: exit {p.returncode}")
    log(f"  FAIL {what}: exit {p.returncode}: {p.stderr.strip()[-600:]}")


# --- suites -------------------------------------------------------------------

def scaled(args, n, floor=100):
    return max(int(n * args.scale), floor)


def calibrate(args):
    """The cost of a getppid() here, against about 300 ns (TCG, default
    boot, the development machine): runs are shortened where calls are
    slower (pti=on under TCG), to keep a quick run near 20 minutes."""
    args.scale = 1.0
    if args.smoke:
        return
    p = subprocess.run([args.bin, "micro", "--op", "getppid", "--mode", "direct", "--calls", "20000"],
                       capture_output=True, text=True, timeout=300)
    try:
        ns = json.loads(p.stdout.strip().splitlines()[-1])["wall_ns_per_call"]
        args.scale = min(1.0, max(0.15, 300.0 / ns))
        log(f"bench: getppid() takes {ns:.0f} ns here: run lengths scaled by {args.scale:.2f}")
    except (ValueError, KeyError, IndexError):
        log(f"bench: calibration failed ({p.stderr.strip()[-200:]}): run lengths unscaled")


def suite_micro(args):
    calls = 400 if args.smoke else scaled(args, 20000 if args.quick else 100000, 2000)
    count = 256 if args.smoke else 4096
    batches = [1, 8, 32, 128]
    ops = ["write", "getppid"] if args.smoke else ["write", "read", "getppid"]
    for op in ops:
        configs = [("direct", 1)] + [("inline", b) for b in batches] + [("worker", b) for b in (batches if not args.quick else [32, 128])]
        configs += [("uring", b) for b in batches] + [("uring-sqpoll", b) for b in batches]
        if args.smoke:
            configs = [("direct", 1), ("inline", 32), ("worker", 32), ("uring", 32), ("uring-sqpoll", 32)]
        for rep in range(args.reps):
            for mode, b in configs:
                argv = ["micro", "--op", op, "--mode", mode, "--batch", str(b), "--calls", str(calls)]
                if rep == 0:
                    argv += ["--count", str(count)]
                run_bin(args, argv, rep, f"micro {op} {mode} {b}")


def suite_echo(args):
    req = 300 if args.smoke else scaled(args, 20000 if args.quick else 100000, 2000)
    count = 200 if args.smoke else 2000 if args.quick else 5000
    conns = 16 if args.smoke else 128
    for rep in range(args.reps):
        for mode in ["epoll", "inline", "inline-all", "worker", "uring"]:
            argv = ["echo", "--mode", mode, "--conns", str(conns), "--size", "64", "--requests", str(req), "--count", str(count)]
            run_bin(args, argv, rep, f"echo {mode}")


def start(cmd, env, cwd):
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=open(os.path.join(cwd, "stdout"), "w"),
                            stderr=open(os.path.join(cwd, "stderr"), "w"), start_new_session=True)


def wait_port(port, secs=60):
    t = time.time()
    while time.time() - t < secs:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def shim_env(args, mode, d):
    env = dict(os.environ)
    if mode in ("inline", "worker"):
        env.update(LD_PRELOAD=args.so, OFFLOAD_PRELOAD=mode, OFFLOAD_PRELOAD_STATS_FILE=os.path.join(d, "stats"))
    return env


def shim_fallback(d):
    try:
        with open(os.path.join(d, "stderr")) as f:
            return [l for l in f.read().splitlines() if "offload-preload:" in l]
    except OSError:
        return []


def redis_bench(port, test, n, pipeline):
    p = subprocess.run(["redis-benchmark", "-p", str(port), "-c", "100", "-P", str(pipeline), "-n", str(n),
                        "-t", test, "--csv"], capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL)
    for line in p.stdout.splitlines():
        f = [x.strip('"') for x in line.split(",")]
        if f and f[0].lower() == test:
            return {"rps": float(f[1]), "p50_ms": float(f[4]), "p99_ms": float(f[6])}
    raise RuntimeError(f"redis-benchmark {test}: {p.stdout[-300:]} {p.stderr[-300:]}")


def redis_processed(port):
    for _ in range(5):
        p = subprocess.run(["redis-cli", "-p", str(port), "info", "stats"], capture_output=True, text=True, timeout=60)
        m = re.search(r"total_commands_processed:(\d+)", p.stdout)
        if m:
            return int(m.group(1))
        time.sleep(0.2)
    raise RuntimeError(f"redis-cli info stats: {p.stdout[-200:]} {p.stderr[-200:]}")


def redis_count(port, test, rps, pipeline, pid):
    """Mode switches per request in steady state: a second run of the same
    benchmark with the hist triggers on, read over the middle of the run
    (after the clients connected, before they leave); the requests in that
    window from the server's own INFO counter (one INFO before and after,
    the few calls of which are counted too). The window is one second from
    the moment requests flow, in a run sized for 6 s at the rate of the
    timed run, which is stopped then."""
    n = max(int(rps * 6), 1000)
    base = redis_processed(port)
    bench = subprocess.Popen(["redis-benchmark", "-p", str(port), "-c", "100", "-P", str(pipeline), "-n", str(n),
                              "-t", test, "-q"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with Counter() as c:
            # Steady state: the clients are connected and requests flow
            # (these INFO calls come before the window).
            t = time.time()
            while redis_processed(port) < base + max(rps * 0.3, 200):
                if time.time() - t > 60 or bench.poll() is not None:
                    raise RuntimeError("redis-benchmark did not get going")
                time.sleep(0.1)
            s0 = c.snapshot()
            r0 = redis_processed(port)
            for _ in range(10):
                time.sleep(1.0)
                r1 = redis_processed(port)
                if r1 > r0 + 1 or bench.poll() is not None:
                    break
            s1 = c.snapshot()
    finally:
        # The rest of the run would only take time.
        bench.kill()
        bench.wait()
    # INFO itself is a command
    req = r1 - r0 - 1
    if req <= 0:
        raise RuntimeError(f"no requests in the counting window (INFO: {r0} then {r1}; benchmark exit {bench.returncode})")
    return delta(s0, s1, tids([pid])), req


def suite_redis(args):
    n16 = 400 if args.smoke else scaled(args, 100000 if args.quick else 500000, 5000)
    n1 = 100 if args.smoke else scaled(args, 20000 if args.quick else 100000, 2000)
    configs = [("plain", "off", []), ("shim-inline", "inline", []), ("shim-worker", "worker", []),
               ("io-threads-2", "off", ["--io-threads", "2", "--io-threads-do-reads", "yes"])]
    tests = [("get", 16, n16), ("set", 16, n16), ("get", 1, n1), ("set", 1, n1)]
    if args.smoke:
        tests = [("get", 16, n16), ("set", 1, n1)]
    port = 7400
    for rep in range(args.reps):
        for name, mode, extra in configs:
            d = tempfile.mkdtemp(prefix="bench-redis.")
            port += 1
            srv = start(["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                         "--appendonly", "no", "--protected-mode", "no", "--dir", d, "--logfile", os.path.join(d, "log")] + extra,
                        shim_env(args, mode, d), d)
            try:
                if not wait_port(port):
                    raise RuntimeError("redis-server did not start")
                for test, pl, n in tests:
                    what = f"redis {name} {test} -P {pl}"
                    try:
                        c0 = cpu_secs([srv.pid])
                        t0 = time.time()
                        r = redis_bench(port, test, n, pl)
                        cpu = cpu_secs([srv.pid]) - c0
                        try:
                            sys_, nc = redis_count(port, test, r["rps"], pl, srv.pid)
                        except RuntimeError as e:
                            # A smoke run's few hundred requests may be over
                            # before a counting window opens; it asserts no
                            # figure, only that the suite runs and is answered.
                            if not args.smoke:
                                raise
                            log(f"  smoke: {what}: no syscall count ({e})")
                            sys_, nc = 0, 0
                        rec = {"suite": "redis", "config": name, "test": test.upper(), "pipeline": pl, "clients": 100,
                               "requests": n, "rps": r["rps"], "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"],
                               "cpu_s_per_mreq": cpu * 1e6 / n, "syscalls_per_req": sys_ / nc if nc else None, "counted_requests": nc,
                               "server_threads": len(tids([srv.pid])), "wall_s": time.time() - t0}
                        fb = shim_fallback(d)
                        if fb:
                            rec["shim_message"] = fb[0]
                        record(args, rec, rep)
                    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                        FAILURES.append(f"{what}: {e}")
                        log(f"  FAIL {what}: {e}")
            except RuntimeError as e:
                FAILURES.append(f"redis {name}: {e}")
                log(f"  FAIL redis {name}: {e}")
            finally:
                subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True, timeout=60)
                try:
                    srv.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    srv.kill()
                    srv.wait()
                shutil.rmtree(d, ignore_errors=True)


def wrk(port, path, secs, conns):
    p = subprocess.run(["wrk", "-t", "1", "-c", str(conns), "-d", f"{secs}s", "--timeout", "30s", "--latency",
                        f"http://127.0.0.1:{port}/{path}"], capture_output=True, text=True, timeout=secs + 120)
    out = p.stdout
    m = re.search(r"(\d+) requests in", out)
    if not m or int(m.group(1)) == 0 or "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk: {out[-400:]} {p.stderr[-200:]}")

    def lat(pct):
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    return {"requests": int(m.group(1)), "p50_ms": lat(50), "p99_ms": lat(99)}


def suite_nginx(args):
    secs = 3 if args.smoke else 4 if args.quick else 10
    conns = 10 if args.smoke else 50
    files = {"f256": 256} if args.quick or args.smoke else {"f256": 256, "f4k": 4096}
    port = 7500
    for rep in range(args.reps):
        for name, mode in [("plain", "off"), ("shim-inline", "inline"), ("shim-worker", "worker")]:
            d = tempfile.mkdtemp(prefix="bench-nginx.")
            port += 1
            os.makedirs(os.path.join(d, "www"))
            for f, n in files.items():
                with open(os.path.join(d, "www", f), "wb") as fh:
                    fh.write(os.urandom(n))
            with open(os.path.join(d, "nginx.conf"), "w") as fh:
                fh.write(f"""daemon off; master_process on; worker_processes 1; user root;
pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off; open_file_cache max=1000; sendfile on; tcp_nopush on; keepalive_requests 1000000;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{ listen 127.0.0.1:{port}; root {d}/www; }}
}}
""")
            srv = start(["/usr/sbin/nginx", "-c", f"{d}/nginx.conf", "-p", d], shim_env(args, mode, d), d)
            try:
                if not wait_port(port):
                    raise RuntimeError("nginx did not start")
                # Regression: counted before the worker existed, a run got
                # 0 CPU-s and 0 syscalls (the master's alone).
                pids = [srv.pid] + wait_children(srv.pid)
                for f in files:
                    what = f"nginx {name} {f}"
                    try:
                        c0 = cpu_secs(pids)
                        r = wrk(port, f, secs, conns)
                        cpu = cpu_secs(pids) - c0
                        with Counter() as c:
                            s0 = c.snapshot()
                            rc = wrk(port, f, max(2, secs // 2), conns)
                            s1 = c.snapshot()
                        sys_ = delta(s0, s1, tids(pids))
                        if cpu <= 0 or sys_ <= 0:
                            raise RuntimeError(f"nothing counted for the server: {cpu} CPU-s, {sys_} syscalls")
                        rec = {"suite": "nginx", "config": name, "file": f, "bytes": files[f], "connections": conns,
                               "requests": r["requests"], "rps": r["requests"] / secs, "p50_ms": r["p50_ms"],
                               "p99_ms": r["p99_ms"], "cpu_s_per_mreq": cpu * 1e6 / max(r["requests"], 1),
                               "syscalls_per_req": sys_ / max(rc["requests"], 1)}
                        fb = shim_fallback(d)
                        if fb:
                            rec["shim_message"] = fb[0]
                        record(args, rec, rep)
                    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                        FAILURES.append(f"{what}: {e}")
                        log(f"  FAIL {what}: {e}")
            except RuntimeError as e:
                FAILURES.append(f"nginx {name}: {e}")
                log(f"  FAIL nginx {name}: {e}")
            finally:
                try:
                    os.kill(srv.pid, signal.SIGQUIT)
                    srv.wait(timeout=30)
                except (OSError, subprocess.TimeoutExpired):
                    os.killpg(srv.pid, signal.SIGKILL)
                    srv.wait()
                shutil.rmtree(d, ignore_errors=True)


SUITES = {"micro": suite_micro, "echo": suite_echo, "redis": suite_redis, "nginx": suite_nginx}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--so", required=True)
    ap.add_argument("--suites", default="micro,echo,redis,nginx")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--accel", default="unknown")
    ap.add_argument("--boot", default="default")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--run-timeout", type=int, default=600)
    args = ap.parse_args()
    if args.reps is None:
        args.reps = 1 if args.smoke else 3 if args.quick else 5
    os.makedirs(args.out, exist_ok=True)
    calibrate(args)
    log(f"bench: {json.dumps(labels(args))}")
    for s in args.suites.replace(",", " ").split():
        if s not in SUITES:
            sys.exit(f"bench: unknown suite {s} (have {', '.join(SUITES)})")
        t = time.time()
        log(f"bench: suite {s} ({args.boot})")
        SUITES[s](args)
        log(f"bench: suite {s} took {time.time() - t:.0f} s")
    if FAILURES:
        log("bench: FAILED runs:\n  " + "\n  ".join(FAILURES))
        sys.exit(1)
    log("bench: all runs completed")


if __name__ == "__main__":
    main()
