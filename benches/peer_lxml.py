#!/usr/bin/env python3
"""Runs the DUIS XML job in the tuned lxml peer and in fleetwatch in the same run, checks that
fleetwatch's counts equal the generator's, and prints MB/s, peak memory and the ratio.

The job (see docs/perf.md and ../shared/bench/xml/README.md): 1,000,000 signed DUIS device
alerts back to back (1.49 GB, a base64 GBCS payload in each); alerts per (day, alert code).
fleetwatch also decodes every GBCS payload and checks it against its envelope.

Usage:
  python3 benches/peer_lxml.py [--data DIR] [--fleetwatch PATH] [--runs K] [--gz]

DIR (default target/bench-xml) receives the data from ../shared/bench/xml/gen_duis.py (the
job's own generator, deterministic) unless it already holds alerts.xml and expected-counts.csv.
The peer is `bench_xml.py lxml-split-xpath` from the same folder; it needs lxml
(`pip install -r ../shared/bench/xml/requirements.txt`). With --gz the gzip variant is timed
against `zcat | wc -l` instead of lxml.
"""
import argparse
import csv
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BENCH = os.path.normpath(os.path.join(ROOT, "..", "shared", "bench", "xml"))


def measure(cmd, stdout_path=None, shell=False):
    """Runs cmd in a fresh Python child, so the peak RSS reported is that command's alone."""
    wrapper = (
        "import resource, subprocess, sys, time, json\n"
        "out = open(sys.argv[1], 'wb') if sys.argv[1] != '-' else subprocess.DEVNULL\n"
        "shell = sys.argv[2] == 'shell'\n"
        "cmd = sys.argv[3] if shell else sys.argv[3:]\n"
        "t0 = time.perf_counter()\n"
        "p = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, shell=shell)\n"
        "t = time.perf_counter() - t0\n"
        "if p.returncode != 0:\n"
        "    sys.stderr.write(p.stderr.decode()); sys.exit(p.returncode)\n"
        "print(json.dumps({'secs': t, 'rss': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))\n"
    )
    args = [sys.executable, "-c", wrapper, stdout_path or "-", "shell" if shell else "argv"]
    args += [cmd] if shell else cmd
    r = subprocess.run(args, check=True, capture_output=True, text=True)
    return json.loads(r.stdout)


def load_counts(path, alerts_col):
    """(day, code) -> alerts, from the generator's expected-counts.csv or fleetwatch's CSV."""
    with open(path, newline="") as f:
        r = csv.DictReader(f)
        return {(row["day"], row["alert_code"]): int(row[alerts_col]) for row in r}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(ROOT, "target", "bench-xml"))
    ap.add_argument("--fleetwatch", default=os.path.join(ROOT, "target", "release", "fleetwatch"))
    ap.add_argument("--runs", type=int, default=3, help="runs of each tool, interleaved; the best time counts")
    ap.add_argument("--gz", action="store_true", help="time alerts.xml.gz against `zcat | wc -l` instead")
    a = ap.parse_args()

    os.makedirs(a.data, exist_ok=True)
    xml = os.path.join(a.data, "alerts.xml")
    expected = os.path.join(a.data, "expected-counts.csv")
    gz = xml + ".gz"
    if not (os.path.exists(xml) and os.path.exists(expected) and (os.path.exists(gz) or not a.gz)):
        print(f"generating the DUIS XML job's data in {a.data} (a few minutes) ...", file=sys.stderr)
        gen = [sys.executable, os.path.join(BENCH, "gen_duis.py"), "--out", a.data, "--no-wrapped"]
        if not a.gz:
            gen.append("--no-gzip")
        subprocess.run(gen, check=True)
    src = gz if a.gz else xml
    size = os.path.getsize(xml)  # the job's bytes, decompressed
    # Warm the page cache so every tool reads from memory.
    with open(src, "rb") as f:
        while f.read(1 << 24):
            pass

    fw_out = os.path.join(a.data, "fleetwatch.csv")
    fw = [a.fleetwatch, "alerts", src, "--by", "day,code", "--no-distinct", "--format", "csv"]
    if a.gz:
        peer = ("zcat | wc -l", f"zcat {src} | wc -l", None, True)
    else:
        peer_out = os.path.join(a.data, "lxml.csv")
        peer = ("lxml", [sys.executable, os.path.join(BENCH, "bench_xml.py"), "lxml-split-xpath", xml, peer_out],
                None, False)
    tools = [peer, ("fleetwatch", fw, fw_out, False)]
    # Runs are interleaved so that a slow spell of the machine hits both tools alike.
    runs = {name: [] for name, _, _, _ in tools}
    for _ in range(a.runs):
        for name, cmd, out, shell in tools:
            runs[name].append(measure(cmd, out, shell))

    want = load_counts(expected, "alerts")
    got = load_counts(fw_out, "alerts")
    if got != want:
        missing = len(want.keys() - got.keys())
        differ = sum(1 for k in want if k in got and got[k] != want[k])
        print(f"MISMATCH: fleetwatch's counts differ from expected-counts.csv "
              f"({missing} groups missing, {differ} differ, {len(got.keys() - want.keys())} extra)")
        sys.exit(1)
    if not a.gz:
        peer_got = load_counts(peer_out, "alerts")
        if peer_got != want:
            print("MISMATCH: the lxml peer's counts differ from expected-counts.csv")
            sys.exit(1)
    print(f"same answer: {len(got):,} (day, code) groups, {sum(got.values()):,} alerts, equal to expected-counts.csv")
    results = {n: {"secs": min(r["secs"] for r in rs), "rss": max(r["rss"] for r in rs)} for n, rs in runs.items()}
    print(f"{'tool':<14}{'seconds':>9}{'MB/s':>9}{'peak MB':>9}")
    for name, r in results.items():
        print(f"{name:<14}{r['secs']:>9.2f}{size / r['secs'] / 1e6:>9.0f}{r['rss'] / 1e6:>9.0f}")
    p, f = results[peer[0]], results["fleetwatch"]
    if a.gz:
        print(f"ratio: fleetwatch takes {f['secs'] / p['secs']:.2f}x the time of `zcat | wc -l` (at most 1.0 wanted)")
    else:
        print(f"ratio: fleetwatch = {p['secs'] / f['secs']:.1f}x lxml-split-xpath "
              f"(best of {a.runs} interleaved runs each)")


if __name__ == "__main__":
    main()
