#!/usr/bin/env python3
"""Reruns the table of headline figures and the targets they are held to, and writes
it into docs/performance.md (between the `bench-table` markers).

    cargo build --release -p abcast-cli
    python3 benches/table.py                 # 5 runs per row, 4 s each (about 12 min)
    python3 benches/table.py --runs 3 --duration 2
    python3 benches/table.py --quick         # 1 short run per row; prints, writes nothing

Every row is `abcast bench` with `--json`; a row's figure is the median over its runs
(with the range), its raw-TCP limit is measured in the same runs. Rows with a key, safe
delivery or distributed buffering are compared with the plain replicated row of the
same size. Latency is measured open loop at half the median peak of the first row.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "performance.md")
BEGIN = "<!-- bench-table:begin -->"
END = "<!-- bench-table:end -->"


def bench(binary, args, duration):
    """One `abcast bench` run: its JSON report (exits on a failed run)."""
    with tempfile.TemporaryDirectory(prefix="abcast-table-") as tmp:
        out = os.path.join(tmp, "run.json")
        cmd = [binary, "bench", "--duration", str(duration), "--json", out] + args
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0 or not os.path.exists(out):
            sys.exit(f"failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
        with open(out) as f:
            report = json.load(f)
    if not report.get("all_checks_passed"):
        sys.exit(f"checks failed: {' '.join(cmd)}")
    return report


def med(values):
    return statistics.median(values) if values else None


def span(values, fmt):
    """`median (min–max)` of `values`, each shown with `fmt`."""
    if not values:
        return "–"
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(med(values))} ({fmt(min(values))}–{fmt(max(values))})"


def rate(v):
    if v >= 1e6:
        return f"{v / 1e6:.2f} M"
    if v >= 1e3:
        return f"{v / 1e3:.0f} k"
    return f"{v:.0f}"


def mb(v):
    return f"{v:.0f} MB/s"


def pct(v):
    return f"{100 * v:.1f}%"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="runs per row (default 5)")
    p.add_argument("--duration", type=float, default=4, help="seconds of load per run (default 4)")
    p.add_argument("--quick", action="store_true", help="1 run of 0.5 s per row; print only")
    p.add_argument("--no-write", action="store_true", help="print the table, do not write the doc")
    p.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "abcast"))
    a = p.parse_args()
    if a.quick:
        a.runs, a.duration, a.no_write = 1, 0.5, True
    if a.runs < 1 or a.duration <= 0:
        sys.exit("--runs must be at least 1 and --duration positive")
    if not os.access(a.binary, os.X_OK):
        sys.exit(f"{a.binary} not found: cargo build --release -p abcast-cli")
    # The commit the figures are of: the checkout as the runs start (the binary is
    # expected to be built from it).
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip() or "unknown"
    key = os.path.join(tempfile.mkdtemp(prefix="abcast-table-"), "group.key")
    subprocess.run([a.binary, "keygen", key], check=True, stdout=subprocess.DEVNULL)

    def runs(args):
        out = []
        for i in range(a.runs):
            r = bench(a.binary, args, a.duration)
            print(f"  {' '.join(args) or '(defaults)'}: run {i + 1}: "
                  f"{rate(r['throughput_msgs_per_sec'])} msgs/s", file=sys.stderr)
            out.append(r)
        return out

    def col(reports, field):
        return [r[field] for r in reports if r.get(field) is not None]

    rows = []

    def row(name, reports, goal, met, against=None):
        tput = col(reports, "throughput_msgs_per_sec")
        mbs = col(reports, "throughput_mb_per_sec")
        raw = col(reports, "ratio_to_baseline")
        cpu = col(reports, "cpu_ns_per_msg")
        rss = max(col(reports, "peak_rss_bytes") or [0]) / 2**20
        if against is not None:
            raw_cell = f"{pct(med(tput) / med(col(against, 'throughput_msgs_per_sec')))} of plain"
        else:
            raw_cell = span(raw, pct)
        rows.append([name, span(tput, rate), span(mbs, mb), raw_cell,
                     span(cpu, lambda v: f"{v / 1e3:.1f} µs" if v >= 1e4 else f"{v:.0f} ns"), f"{rss:.0f} MiB", goal,
                     "met" if met else "not met"])

    plain = {}
    for n, size in [(3, 64), (3, 1024), (3, 65536), (5, 64), (7, 64)]:
        plain[(n, size)] = runs(["--nodes", str(n), "--size", str(size)])
    p64 = plain[(3, 64)]
    t64 = med(col(p64, "throughput_msgs_per_sec"))
    row("3 members, 64 B", p64, "≥ 4 M msgs/s and ≥ 30% of raw TCP",
        t64 >= 4e6 and med(col(p64, "ratio_to_baseline")) >= 0.30)
    p1k = plain[(3, 1024)]
    row("3 members, 1 KiB", p1k, "≥ 700 k msgs/s",
        med(col(p1k, "throughput_msgs_per_sec")) >= 7e5)
    p64k = plain[(3, 65536)]
    row("3 members, 64 KiB", p64k, "≥ 85% of raw TCP MB/s",
        med(col(p64k, "ratio_to_baseline")) >= 0.85)
    for n in (5, 7):
        row(f"{n} members, 64 B", plain[(n, 64)], "reported", True)
    nb = ["--no-baseline"]
    dist = runs(["--buffering", "distributed"] + nb)
    row("3 members, 64 B, distributed buffering", dist, "≥ 1.25× replicated",
        med(col(dist, "throughput_msgs_per_sec")) >= 1.25 * t64, against=p64)
    key64 = runs(["--key-file", key] + nb)
    row("3 members, 64 B, group key", key64, "≥ 85% of plain",
        med(col(key64, "throughput_msgs_per_sec")) >= 0.85 * t64, against=p64)
    key64k = runs(["--size", "65536", "--key-file", key] + nb)
    row("3 members, 64 KiB, group key", key64k, "≥ 85% of plain",
        med(col(key64k, "throughput_msgs_per_sec"))
        >= 0.85 * med(col(p64k, "throughput_msgs_per_sec")), against=p64k)
    safe = runs(["--delivery", "safe"] + nb)
    row("3 members, 64 B, safe delivery", safe, "reported", True, against=p64)

    half = int(t64 / 2)
    lat = runs(["--rate", str(half)] + nb)
    q = {k: [r["latency_us"][k] / 1e3 for r in lat] for k in ("p50", "p99", "p999")}
    ms = lambda v: f"{v:.2f} ms"
    kill = runs(["--kill-relayer-after", str(a.duration / 2)] + nb)
    gaps = col(kill, "failover_gap_ms")

    lines = [
        BEGIN,
        f"Commit `{head}`, default scheduling, replicated buffering unless said; "
        f"{a.runs} run{'s' if a.runs > 1 else ''} of {a.duration:g} s per row, median (range). "
        f"Regenerate: `python3 benches/table.py`.",
        "",
        "| run | msgs/s per member | MB/s | share of raw TCP | CPU per delivered message | "
        "peak RSS | goal | |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    p99 = med(q["p99"])
    lines += [
        "",
        "| run | p50 | p99 | p99.9 | goal | |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| 3 members, 64 B, open loop at {rate(half)} msgs/s (half the peak) | "
        f"{span(q['p50'], ms)} | {span(q['p99'], ms)} | {span(q['p999'], ms)} | "
        f"p99 ≤ 2 ms | {'met' if p99 <= 2 else 'not met'} |",
        f"| 3 members, 64 B, relayer SIGKILLed mid-load: fail-over gap | "
        f"{span(gaps, ms)} | | | < 50 ms | "
        f"{'met' if gaps and med(gaps) < 50 else 'not met'} |",
        END,
    ]
    table = "\n".join(lines)
    print(table)
    if a.no_write:
        return
    with open(DOC) as f:
        doc = f.read()
    if BEGIN in doc and END in doc:
        doc = doc[: doc.index(BEGIN)] + table + doc[doc.index(END) + len(END):]
    else:
        sys.exit(f"{DOC} has no {BEGIN} ... {END} section")
    with open(DOC, "w") as f:
        f.write(doc)
    print(f"wrote {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
