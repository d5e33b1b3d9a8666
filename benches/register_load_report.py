#!/usr/bin/env python3
"""Turns the sipp output of benches/register_load.sh into a table.

  register_load_report.py --header
  register_load_report.py --row STEP_DIR       one line for one sipp run
  register_load_report.py --summary SCRATCH    all steps of all targets, grouped

A STEP_DIR holds: meta ("label offered_rate cpu_ticks clk_tck loadavg step
peak_rss_kb", the last the largest VmHWM of the server's processes at the
end of the step),
stat.csv (sipp -trace_stat, ';'-separated, last line = final cumulative
counters) and <scenario>_<pid>_rtt.csv (sipp -trace_rtt: Date_ms;
response_time_ms;rtd_no). sipp 3.6 times responses with a millisecond clock,
so latencies are whole milliseconds and "<1" means under a millisecond.
"""
import glob
import os
import sys

COLS = [
    ("target", 12), ("offered/s", 9), ("ok", 7), ("failed", 6), ("retrans", 7),
    ("reg/s", 7), ("p50", 4), ("p90", 4), ("p99", 4), ("max", 5),
    ("401 p50/p99", 11), ("cpu ms/reg", 10), ("load", 5), ("peak MB", 7),
]


def fmt_row(values):
    return "  ".join(str(v).rjust(w) for v, (_, w) in zip(values, COLS))


def header():
    return fmt_row([c for c, _ in COLS]) + "\n" + fmt_row(["-" * w for _, w in COLS])


def epoch(field):
    # "2026-11-21\t03:21:13.094268\t1795231273.094268" -> the epoch part
    return float(field.split("\t")[-1])


def percentile(sorted_vals, p):
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def ms(v):
    if v is None:
        return "-"
    return "<1" if v == 0 else str(v)


def step(d):
    meta = open(os.path.join(d, "meta")).read().split()
    label, rate, ticks, hz, load = meta[0], int(meta[1]), int(meta[2]), int(meta[3]), meta[4]
    index = int(meta[5]) if len(meta) > 5 else rate
    peak_kb = int(meta[6]) if len(meta) > 6 else None
    lines = [l.rstrip("\n") for l in open(os.path.join(d, "stat.csv")) if l.strip()]
    names = lines[0].split(";")
    last = dict(zip(names, lines[-1].split(";")))
    ok = int(last["SuccessfulCall(C)"])
    failed = int(last["FailedCall(C)"])
    retrans = int(last["Retransmissions(C)"])
    secs = epoch(last["CurrentTime"]) - epoch(last["StartTime"])
    rtd = {"1": [], "2": []}
    for f in glob.glob(os.path.join(d, "*_rtt.csv")):
        for l in open(f):
            parts = l.strip().split(";")
            if len(parts) == 3 and parts[2] in rtd:
                try:
                    rtd[parts[2]].append(int(float(parts[1])))
                except ValueError:
                    pass
    for v in rtd.values():
        v.sort()
    a = rtd["2"]
    cpu_ms = ticks * 1000.0 / hz
    return {
        "label": label, "rate": rate, "index": index, "ok": ok, "failed": failed, "retrans": retrans,
        "secs": secs, "regs": ok / secs if secs > 0 else 0.0,
        "p50": percentile(a, 50), "p90": percentile(a, 90), "p99": percentile(a, 99),
        "max": a[-1] if a else None,
        "c50": percentile(rtd["1"], 50), "c99": percentile(rtd["1"], 99),
        "cpu_per_reg": cpu_ms / ok if ok else None, "load": load,
        "peak_mb": None if peak_kb is None else peak_kb / 1024.0,
    }


def row(s):
    return fmt_row([
        s["label"], s["rate"], s["ok"], s["failed"], s["retrans"], f"{s['regs']:.0f}",
        ms(s["p50"]), ms(s["p90"]), ms(s["p99"]), ms(s["max"]),
        f"{ms(s['c50'])}/{ms(s['c99'])}",
        "-" if s["cpu_per_reg"] is None else f"{s['cpu_per_reg']:.3f}", s["load"],
        "-" if s["peak_mb"] is None else f"{s['peak_mb']:.0f}",
    ])


def summary(w):
    steps = []
    for meta in glob.glob(os.path.join(w, "*", "meta")):
        try:
            steps.append(step(os.path.dirname(meta)))
        except (OSError, KeyError, ValueError, IndexError) as e:
            print(f"(skipping {os.path.dirname(meta)}: {e})")
    order = {"homeline": 0}
    steps.sort(key=lambda s: (order.get(s["label"], 1), s["label"], s["index"]))
    print("REGISTER with digest (401 -> 200), per offered rate; latency = 401->200 round trip in ms")
    print(header())
    for s in steps:
        print(row(s))
    print()
    for label in dict.fromkeys(s["label"] for s in steps):
        mine = [s for s in steps if s["label"] == label]
        best = max(mine, key=lambda s: s["regs"])
        clean = [s for s in mine if s["failed"] == 0 and s["regs"] >= 0.95 * s["rate"]]
        kept = max(clean, key=lambda s: s["rate"])["rate"] if clean else None
        print(f"{label}: peak {best['regs']:.0f} reg/s (offered {best['rate']}/s, {best['failed']} failed); "
              f"highest offered rate fully kept up with: {kept if kept else 'none'}")


def main():
    if sys.argv[1:] == ["--header"]:
        print(header())
    elif len(sys.argv) == 3 and sys.argv[1] == "--row":
        print(row(step(sys.argv[2])))
    elif len(sys.argv) == 3 and sys.argv[1] == "--summary":
        summary(sys.argv[2])
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
