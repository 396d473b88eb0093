#!/usr/bin/env python3
"""The episodes of a latency trace: `abcast bench --latency-trace DIR` writes, for
every member, what it delivered in each millisecond of the load; this prints, for
abcast and for the raw-TCP baseline, how many deliveries were over the threshold and
the episodes they came in (runs of milliseconds in which some member delivered a
message later than the threshold, joined across gaps of up to --join-ms), the worst
first, each with its length, its worst latency, and the worst latency per sender
(which stage was held up: at the relayer's own messages, or every sender's).

    python3 tools/host-investigation/latency-episodes.py DIR [--over-ms 2] [--join-ms 3] [--top 10]
"""

import argparse
import csv
import glob
import os
import sys


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], [list(map(int, r)) for r in rows[1:]]
    senders = [h[len("max_latency_us_from_"):] for h in header if h.startswith("max_latency_us_from_")]
    return senders, body


def episodes(members, over_us, join_ms):
    """members: {id: (senders, rows)} -> list of episodes (dicts)."""
    length = max(len(rows) for _, rows in members.values())
    hot = []
    for ms in range(length):
        worst = 0
        for _, rows in members.values():
            if ms < len(rows):
                worst = max(worst, rows[ms][2])
        hot.append(worst > over_us)
    runs, start, last = [], None, None
    for ms, h in enumerate(hot):
        if not h:
            continue
        if start is not None and ms - last <= join_ms:
            last = ms
            continue
        if start is not None:
            runs.append((start, last))
        start = last = ms
    if start is not None:
        runs.append((start, last))
    out = []
    for a, b in runs:
        worst, over, by_sender = 0, 0, {}
        for _, (senders, rows) in members.items():
            for ms in range(a, min(b + 1, len(rows))):
                r = rows[ms]
                worst = max(worst, r[2])
                over += r[3]
                for i, s in enumerate(senders):
                    by_sender[s] = max(by_sender.get(s, 0), r[4 + 2 * i])
        out.append({"start": a, "ms": b - a + 1, "worst_us": worst, "over": over, "by_sender": by_sender})
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir")
    p.add_argument("--over-ms", type=float, default=2.0)
    p.add_argument("--join-ms", type=int, default=3)
    p.add_argument("--top", type=int, default=10)
    a = p.parse_args()
    found = False
    for what in ("abcast", "raw-tcp"):
        files = sorted(glob.glob(os.path.join(a.dir, f"{what}-member-*.csv")))
        if not files:
            continue
        found = True
        members = {}
        for f in files:
            mid = os.path.basename(f)[len(what) + len("-member-"):-len(".csv")]
            members[mid] = load(f)
        delivered = sum(r[1] for _, rows in members.values() for r in rows)
        over = sum(r[3] for _, rows in members.values() for r in rows)
        eps = episodes(members, a.over_ms * 1000, a.join_ms)
        share = 100.0 * over / delivered if delivered else 0.0
        print(f"{what}: {len(members)} members, {delivered:,} deliveries, "
              f"{over:,} over 2 ms ({share:.2f}%), {len(eps)} episodes over {a.over_ms} ms, "
              f"{sum(e['ms'] for e in eps)} ms in all")
        for e in sorted(eps, key=lambda e: -e["over"])[: a.top]:
            senders = " ".join(f"{s}:{v / 1000:.1f}" for s, v in sorted(e["by_sender"].items()))
            print(f"  at {e['start']:6d} ms: {e['ms']:4d} ms long, worst {e['worst_us'] / 1000:5.1f} ms, "
                  f"{e['over']:7,} deliveries over 2 ms; worst by sender (ms) {senders}")
    if not found:
        print(f"no *-member-*.csv in {a.dir}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
