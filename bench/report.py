#!/usr/bin/env python3
"""Tables, plots and the files with every run, from the bench VMs' records.

  report.py RESULTS

Reads RESULTS/raw/*/runs.jsonl (one JSON record per run, written by
vm/run.py) and writes into RESULTS:
  runs.csv, runs.json   every run, with its labels
  summary.md            a markdown table per suite and boot: the median of
                        the repetitions with their spread [min-max]
  *.png, *.svg          plots (matplotlib)
"""
import csv
import glob
import json
import os
import statistics
import sys

TCG_CAVEAT = (
    "> **TCG caveat.** Under TCG (QEMU's emulator) a mode switch is 1.6-3x slower than on "
    "hardware, while user code and memory traffic are 10-100x slower. Time ratios under TCG "
    "therefore *understate* offload without PTI and *overstate* it with `pti=on` (each "
    "page-table switch also flushes the emulator's TLB). Read the machine-independent "
    "columns first: syscalls (mode switches, counted by the kernel) and CPU per call or "
    "request. Under KVM the times are close to hardware."
)
BOOT_ORDER = ["default", "pti=on", "mitigations=off"]


def load(results):
    runs = []
    for path in sorted(glob.glob(os.path.join(results, "raw", "*", "runs.jsonl"))):
        with open(path) as f:
            runs += [json.loads(l) for l in f if l.strip()]
    return runs


def write_all(results, runs):
    keys = []
    for r in runs:
        keys += [k for k in r if k not in keys]
    with open(os.path.join(results, "runs.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(runs)
    with open(os.path.join(results, "runs.json"), "w") as f:
        json.dump(runs, f, indent=1)


def boots(runs):
    seen = {r["boot"] for r in runs}
    return [b for b in BOOT_ORDER if b in seen] + sorted(seen - set(BOOT_ORDER))


def group(runs, keys):
    out = {}
    for r in runs:
        if "skipped" in r:
            continue
        out.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    return out


def med(rs, k):
    v = [r[k] for r in rs if r.get(k) is not None]
    return statistics.median(v) if v else None


def spread(rs, k, fmt):
    v = [r[k] for r in rs if r.get(k) is not None]
    if not v:
        return "n/a"
    m = statistics.median(v)
    if len(v) == 1:
        return fmt.format(m)
    return f"{fmt.format(m)} [{fmt.format(min(v))}-{fmt.format(max(v))}]"


def one(rs, k, fmt):
    m = med(rs, k)
    # + 0.0: no "-0.000" for a count that is zero after subtracting the
    # counters' own reading
    return "n/a" if m is None else fmt.format(float(fmt.format(m)) + 0.0)


def ratio(a, b):
    return "n/a" if a is None or b in (None, 0) else f"{a / b:.2f}x"


def label(runs, boot):
    r = next(r for r in runs if r["boot"] == boot)
    reps = max(x.get("rep", 0) for x in runs if x["boot"] == boot) + 1
    return (f"accelerator **{r['accel'].upper()}**, {r['vcpus']} vCPUs, kernel {r['kernel']}, "
            f"boot options: `{r['boot_options']}` (meltdown: {r.get('meltdown', '?')}), "
            f"{'quick mode, ' if r.get('quick') else ''}median of {reps} runs [min-max]")


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def micro_md(runs, boot):
    rs = [r for r in runs if r["suite"] == "micro" and r["boot"] == boot]
    if not rs:
        return None
    g = group(rs, ["op", "mode", "batch"])
    rows = []
    for op in ["write", "read", "getppid"]:
        d = g.get((op, "direct", 1))
        base = med(d, "app_cpu_ns_per_call") if d else None
        for (o, mode, b), x in g.items():
            if o != op:
                continue
            app = med(x, "app_cpu_ns_per_call")
            rows.append([op + (" (NOP)" if "note" in x[0] else ""), mode, b, one(x, "app_syscalls_per_call", "{:.3f}"),
                         spread(x, "app_cpu_ns_per_call", "{:.0f}"), spread(x, "total_cpu_ns_per_call", "{:.0f}"),
                         spread(x, "wall_ns_per_call", "{:.0f}"), ratio(app, base), x[0].get("backend", "")])
    return table(["op", "mode", "batch", "mode switches / call (app thread)", "app-thread CPU ns / call",
                  "process CPU ns / call (workers incl.)", "wall ns / call", "app CPU vs direct", "backend"], rows)


def echo_md(runs, boot):
    rs = [r for r in runs if r["suite"] == "echo" and r["boot"] == boot]
    if not rs:
        return None
    g = group(rs, ["mode"])
    base = med(g.get(("epoll",), []), "rps")
    rows = []
    for (mode,), x in g.items():
        rows.append([mode, one(x, "syscalls_per_req", "{:.3f}"), spread(x, "cpu_s_per_mreq", "{:.1f}"),
                     spread(x, "rps", "{:.0f}"), ratio(med(x, "rps"), base), spread(x, "p50_us", "{:.0f}"),
                     spread(x, "p99_us", "{:.0f}"), x[0].get("server_threads"), x[0].get("backend", "")])
    c = rs[0]
    return (f"One server thread, {c['conns']} connections, {c['size']}-byte messages, one outstanding "
            f"per connection, {c['requests']} requests a run.\n\n" +
            table(["server", "syscalls / request (server, all threads)", "CPU-s / M requests (server, all threads)",
                   "requests/s", "vs epoll", "p50 µs", "p99 µs", "server threads", "backend"], rows))


def server_md(runs, boot, suite, keys, base_config="plain"):
    rs = [r for r in runs if r["suite"] == suite and r["boot"] == boot]
    if not rs:
        return None
    g = group(rs, ["config"] + keys)
    rows = []
    for k, x in g.items():
        base = g.get(("plain",) + k[1:]) or g.get((base_config,) + k[1:])
        rows.append(list(k) + [one(x, "syscalls_per_req", "{:.4f}"), spread(x, "cpu_s_per_mreq", "{:.1f}"),
                               spread(x, "rps", "{:.0f}"), ratio(med(x, "rps"), med(base, "rps") if base else None),
                               spread(x, "p50_ms", "{:.2f}"), spread(x, "p99_ms", "{:.2f}")]
                    + ([x[0].get("shim_message", "")] if any("shim_message" in y for y in x) else []))
    rows.sort(key=lambda r: [str(c) for c in r[1:len(keys) + 1]])
    return table(["server"] + keys + ["syscalls / request", "CPU-s / M requests", "requests/s", "vs plain",
                                      "p50 ms", "p99 ms"], rows)


def plots(results, runs):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report: matplotlib missing: no plots", file=sys.stderr)
        return []
    made = []
    bl = boots(runs)

    def save(fig, name):
        fig.tight_layout()
        for ext in ("png", "svg"):
            fig.savefig(os.path.join(results, f"{name}.{ext}"), dpi=110)
        plt.close(fig)
        made.append(f"{name}.png")

    def lab(boot):
        r = next(r for r in runs if r["boot"] == boot)
        return f"{boot} ({r['accel'].upper()}, {r['vcpus']} vCPUs)"

    # micro: app-thread CPU per call by way of calling, per op, one panel per boot
    mic = [r for r in runs if r["suite"] == "micro" and "skipped" not in r]
    if mic:
        ops = [o for o in ["write", "read", "getppid"] if any(r["op"] == o for r in mic)]
        fig, axes = plt.subplots(len(ops), 1, figsize=(12, 3.6 * len(ops)), squeeze=False)
        for ax, op in zip(axes[:, 0], ops):
            g = group([r for r in mic if r["op"] == op], ["mode", "batch", "boot"])
            cfgs = sorted({(m, b) for m, b, _ in g}, key=lambda c: (["direct", "inline", "worker", "uring", "uring-sqpoll"].index(c[0]), c[1]))
            w = 0.8 / len(bl)
            for i, boot in enumerate(bl):
                ys = [med(g.get((m, b, boot), []), "app_cpu_ns_per_call") or 0 for m, b in cfgs]
                ax.bar([j + i * w for j in range(len(cfgs))], ys, w, label=lab(boot))
            ax.set_xticks([j + w * (len(bl) - 1) / 2 for j in range(len(cfgs))])
            ax.set_xticklabels([m if m == "direct" else f"{m}\n{b}" for m, b in cfgs], fontsize=7)
            ax.set_ylabel("app-thread CPU ns / call")
            ax.set_yscale("log")
            ax.set_title(f"micro: {op}" + (" (io_uring: NOP)" if op == "getppid" else ""))
            ax.legend(fontsize=7)
        save(fig, "micro")

    def servers(suite, groupf, barkey, name, title):
        """A row per boot, a column per metric; groups of bars (one bar per
        server variant) per test."""
        rs = [r for r in runs if r["suite"] == suite and "skipped" not in r]
        if not rs:
            return
        sb = [b for b in bl if any(r["boot"] == b for r in rs)]
        groups = list(dict.fromkeys(groupf(r) for r in rs))
        bars = list(dict.fromkeys(r[barkey] for r in rs))
        metrics = [("rps", "requests/s"), ("syscalls_per_req", "syscalls / request"), ("cpu_s_per_mreq", "CPU-s / M requests")]
        fig, axes = plt.subplots(len(sb), 3, figsize=(15, 3.6 * len(sb)), squeeze=False)
        w = 0.8 / len(bars)
        for row, boot in zip(axes, sb):
            g = {}
            for r in rs:
                if r["boot"] == boot:
                    g.setdefault((groupf(r), r[barkey]), []).append(r)
            for ax, (m, t) in zip(row, metrics):
                for i, b in enumerate(bars):
                    ax.bar([j + i * w for j in range(len(groups))], [med(g.get((k, b), []), m) or 0 for k in groups], w, label=b)
                ax.set_xticks([j + w * (len(bars) - 1) / 2 for j in range(len(groups))])
                ax.set_xticklabels(groups, fontsize=8)
                ax.set_title(f"{t}: {lab(boot)}", fontsize=9)
            # Head room above the tallest bar, so the legend hides none
            row[0].set_ylim(top=row[0].get_ylim()[1] * 1.35)
            row[0].legend(fontsize=7, ncol=min(len(bars), 3), loc="upper left")
        fig.suptitle(title + " (medians)")
        save(fig, name)

    servers("echo", lambda r: f"{r['size']} B, {r['conns']} conns", "mode", "echo", "echo server (one server thread)")
    servers("redis", lambda r: f"{r['test']} -P {r['pipeline']}", "config", "redis", "redis-server under redis-benchmark, 100 clients")
    servers("nginx", lambda r: r["file"], "config", "nginx", "nginx (1 worker) under wrk, keep-alive")
    return made


def main():
    results = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "results")
    runs = load(results)
    if not runs:
        sys.exit(f"report: no runs under {results}/raw")
    write_all(results, runs)
    made = plots(results, runs)
    out = ["# make bench: results", "",
           "Written by `bench/report.py` from the runs in `runs.csv` / `runs.json` "
           "(every run, with its labels). Each cell: median of the runs [min-max].", "", TCG_CAVEAT, ""]
    if made:
        out += ["Plots: " + ", ".join(f"[{m}]({m})" for m in made), ""]
    suites = [("micro", "Micro: per-call cost", micro_md),
              ("echo", "Echo server", echo_md),
              ("redis", "Redis (Debian redis-server, redis-benchmark -c 100)", lambda r, b: server_md(r, b, "redis", ["test", "pipeline"])),
              ("nginx", "nginx (Debian nginx-light, 1 worker; wrk -c 50 keep-alive)", lambda r, b: server_md(r, b, "nginx", ["file"]))]
    for suite, title, fn in suites:
        if not any(r["suite"] == suite for r in runs):
            continue
        out += [f"## {title}", ""]
        for boot in boots(runs):
            t = fn(runs, boot)
            if t:
                out += [f"### {boot}", "", label([r for r in runs if r["suite"] == suite], boot) if any(r["suite"] == suite and r["boot"] == boot for r in runs) else "", "", t, "", TCG_CAVEAT, ""]
        skipped = [r for r in runs if r["suite"] == suite and "skipped" in r]
        if skipped:
            out += ["Skipped: " + "; ".join(sorted({f"{r['what']} ({r['boot']}): {r['skipped']}" for r in skipped})), ""]
    with open(os.path.join(results, "summary.md"), "w") as f:
        f.write("\n".join(out))
    print(f"report: {len(runs)} runs -> {results}/summary.md, runs.csv, runs.json" + (", " + ", ".join(made) if made else ""))


if __name__ == "__main__":
    main()
