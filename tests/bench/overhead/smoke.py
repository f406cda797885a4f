#!/usr/bin/env python3
"""The overhead suite's smoke test (ctest label `bench`): every workload in
every mode once, scaled down to a fraction of a second each, then checks
that the suite ran them all and that its numbers are sane — positive
timings and ratios, goroscope attached and counted probe hits. It asserts no
slowdown target: one short run on a shared machine cannot support one.

  tests/bench/overhead/smoke.py [--goroscope build/goroscope]

Exit 77 (ctest: skipped) without root, bpftrace or wrk, unless CI=true,
where a missing prerequisite fails the test as the integration tests do.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import workloads as wl

HERE = Path(__file__).resolve().parent
QUICK = ["--runs", "1", "--scale", "0.03", "--max-seconds", "1", "--http-seconds", "1"]
SKIP = 77


def missing_prerequisites():
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    missing += [tool for tool in ("bpftrace", "wrk") if not shutil.which(tool)]
    return missing


def problems_in(doc):
    """Everything wrong with a finished suite's JSON, as sentences."""
    bad = [f"{e['workload']}/{e['mode']}: {e['error']}" for e in doc["errors"]]
    for name in doc["workloads"]:
        row = next((r for r in doc["summary"] if r["workload"] == name), None)
        if row is None:
            bad.append(f"{name}: no summary row")
            continue
        for mode in doc["modes"]:
            runs = doc["raw"][name][mode]
            where = f"{name}/{mode}"
            if len(runs) != doc["runs"]:
                bad.append(f"{where}: {len(runs)} runs, expected {doc['runs']}")
                continue
            for run in runs:
                if not (run["ops"] > 0 and run["elapsed_s"] > 0 and run["cpu_s"] > 0):
                    bad.append(f"{where}: ops {run['ops']}, elapsed {run['elapsed_s']}, cpu {run['cpu_s']}")
                mon = run.get("monitor")
                if mode == "bare":
                    continue
                if mon is None:
                    bad.append(f"{where}: no monitor result")
                    continue
                if mon["probe_hits_total"] <= 0:
                    bad.append(f"{where}: no probe hits")
                if mon["exit_code"] != 0:
                    bad.append(f"{where}: monitor exited {mon['exit_code']}")
                if mon["peak_rss_kib"] <= 0:
                    bad.append(f"{where}: no peak RSS")
                if mode == "goroscope" and mon.get("stopped_by") != "signal":
                    bad.append(f"{where}: goroscope stopped by {mon.get('stopped_by')}, not by the suite")
            m = row.get(mode, {})
            if not (m.get("median") or 0) > 0 or not (m.get("cpu_per_op_median") or 0) > 0:
                bad.append(f"{where}: median {m.get('median')}, CPU per op {m.get('cpu_per_op_median')}")
            if mode != "bare" and not ((m.get("ratio") or 0) > 0 and (m.get("cpu_ratio") or 0) > 0):
                bad.append(f"{where}: ratio {m.get('ratio')}, CPU ratio {m.get('cpu_ratio')}")
    return bad


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--goroscope", default=None, help="the goroscope binary (default: run.py's)")
    args = p.parse_args()
    missing = missing_prerequisites()
    if missing:
        msg = f"overhead smoke: needs {', '.join(missing)}"
        print(msg, file=sys.stderr)
        return 1 if os.environ.get("CI") == "true" else SKIP

    with tempfile.TemporaryDirectory(prefix="goroscope-overhead-smoke-") as tmp:
        out = Path(tmp) / "overhead.json"
        cmd = [sys.executable, str(HERE / "run.py"), *QUICK, "--json", str(out)]
        if args.goroscope:
            cmd += ["--goroscope", args.goroscope]
        subprocess.run(cmd)  # its exit code is judged below, from the JSON
        if not out.exists():
            print("overhead smoke: the suite wrote no JSON", file=sys.stderr)
            return 1
        doc = json.loads(out.read_text())

    expected = {"bare", "goroscope", "bpftrace"}
    bad = problems_in(doc)
    if set(doc["modes"]) != expected:
        bad.append(f"modes {doc['modes']}, expected all of {sorted(expected)}")
    if doc["workloads"] != [w.name for w in wl.WORKLOADS]:
        bad.append(f"workloads {doc['workloads']}, expected every one")
    for line in bad:
        print(f"overhead smoke: {line}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
