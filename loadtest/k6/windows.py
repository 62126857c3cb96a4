#!/usr/bin/env python3
"""Prints a k6 run's samples (k6 run --out csv=FILE[.gz]) as a table of time
windows: VUs, REST requests/s, REST p95, publish->ack p95, error rate. This
is how the stress run's knee and the soak's drift are read.

    python3 loadtest/k6/windows.py target/k6/stress-.../samples.csv.gz [WINDOW_S]
    python3 loadtest/k6/windows.py --by-vus target/k6/stress-.../samples.csv.gz

--by-vus groups the samples by the VU count of their second instead, and
prints only levels held for at least 10 s: one line per step of a stepped
(stress) run, ramps left out. Only REST requests tagged phase=run count (set-up
and logins are apart).
"""
import csv
import gzip
import sys
from collections import defaultdict


def p95(values):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]


def main():
    args = sys.argv[1:]
    by_vus = "--by-vus" in args
    args = [a for a in args if a != "--by-vus"]
    path = args[0]
    window = 1 if by_vus else (int(args[1]) if len(args) > 1 else 30)
    opener = gzip.open if path.endswith(".gz") else open
    win = defaultdict(lambda: {"vus": 0, "reqs": 0, "dur": [], "ack": [], "err": 0, "ok": 0, "failed": 0})
    start = None
    with opener(path, "rt", newline="") as f:
        for row in csv.DictReader(f):
            ts = int(row["timestamp"])
            start = ts if start is None else min(start, ts)
            w = win[ts // window]
            name = row["metric_name"]
            run = "phase=run" in (row.get("extra_tags") or "")
            v = float(row["metric_value"])
            if name == "vus":
                w["vus"] = max(w["vus"], int(v))
            elif name == "http_req_duration" and run:
                w["dur"].append(v)
                w["reqs"] += 1
            elif name == "http_req_failed" and run:
                w["failed"] += int(v)
            elif name == "ws_ack_ms":
                w["ack"].append(v)
            elif name == "parley_errors":
                if v:
                    w["err"] += 1
                else:
                    w["ok"] += 1
    if by_vus:
        print_by_vus(win)
        return
    print(f"{'t_s':>6} {'VUs':>6} {'REST req/s':>10} {'REST p95 ms':>11} {'acks/s':>7} {'ack p95 ms':>10} {'errors %':>8}")
    first = start // window
    for key in sorted(win):
        w = win[key]
        checks = w["err"] + w["ok"]
        err = 100.0 * w["err"] / checks if checks else 0.0
        print(f"{(key - first) * window:>6} {w['vus']:>6} {w['reqs'] / window:>10.0f} {p95(w['dur']):>11.1f} "
              f"{len(w['ack']) / window:>7.0f} {p95(w['ack']):>10.1f} {err:>8.3f}")


def print_by_vus(win):
    levels = defaultdict(list)
    for key in sorted(win):
        levels[win[key]["vus"]].append(win[key])
    print(f"{'VUs':>6} {'held_s':>6} {'REST req/s':>10} {'REST p95 ms':>11} {'acks/s':>7} {'ack p95 ms':>10} {'errors %':>8}")
    for vus in sorted(levels):
        secs = levels[vus]
        if vus == 0 or len(secs) < 10:
            continue
        dur = [d for w in secs for d in w["dur"]]
        ack = [a for w in secs for a in w["ack"]]
        err = sum(w["err"] for w in secs)
        checks = err + sum(w["ok"] for w in secs)
        print(f"{vus:>6} {len(secs):>6} {len(dur) / len(secs):>10.0f} {p95(dur):>11.1f} {len(ack) / len(secs):>7.0f} "
              f"{p95(ack):>10.1f} {100.0 * err / checks if checks else 0.0:>8.3f}")


if __name__ == "__main__":
    main()
