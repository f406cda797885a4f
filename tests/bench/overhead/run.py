#!/usr/bin/env python3
"""goroscope's overhead suite (issue 6): how much slower Go workloads run
with goroscope attached in its default mode, next to the naive bpftrace
probes a user would write, both against the bare workload.

Each workload runs --runs times in each mode (runs interleaved, so drifting
machine load hits every mode alike); medians are reported. Needs root
(goroscope attach and bpftrace), bpftrace and wrk (scripts/install-deps.sh),
and a built goroscope (cmake --build build --target goroscope).

EXAMPLES
  tests/bench/overhead/run.py                                  the full suite, 5 runs
  tests/bench/overhead/run.py --runs 3 --workloads spawn,timers --modes bare,goroscope
  tests/bench/overhead/run.py --json /tmp/overhead.json
  GOROSCOPE_BENCH_GO=/usr/lib/go-1.19/bin/go tests/bench/overhead/run.py
  tests/bench/overhead/run.py --runs 1 --scale 0.03 --max-seconds 1 --http-seconds 1   (quick)
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import modes
import report
import workloads as wl

REPO = Path(__file__).resolve().parents[3]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5, help="runs per workload and mode (default 5)")
    p.add_argument("--workloads", default=",".join(w.name for w in wl.WORKLOADS),
                   help="comma-separated subset (default: all)")
    p.add_argument("--modes", default=",".join(modes.MODES), help="comma-separated subset of bare,goroscope,bpftrace")
    p.add_argument("--json", type=Path, help="also write the results (summary and every run) here")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply each fixed-work workload's amount of work (default 1: ~2-5 s bare)")
    p.add_argument("--max-seconds", type=float, default=30.0,
                   help="cap on one run's measured phase; a slowed run stops early and is compared per unit of work (default 30)")
    p.add_argument("--http-seconds", type=int, default=3, help="load duration of the HTTP workload, whole seconds (default 3)")
    p.add_argument("--goroscope", type=Path, default=REPO / "build" / "goroscope", help="the goroscope binary")
    p.add_argument("--goroscope-flags", default=None,
                   help=f"attach flags for the goroscope mode (default: {shlex.join(modes.GOROSCOPE_ATTACH_FLAGS) or 'none'})")
    a = p.parse_args(argv)
    a.workloads = wl.by_names([n for n in a.workloads.split(",") if n])
    a.modes = [m for m in a.modes.split(",") if m]
    if not a.modes or any(m not in modes.MODES for m in a.modes):
        p.error(f"--modes takes a subset of {','.join(modes.MODES)}")
    a.modes = [m for m in modes.MODES if m in a.modes]  # bare first: the others are relative to it
    if a.runs < 1:
        p.error("--runs must be at least 1")
    if a.http_seconds < 1:
        p.error("--http-seconds must be at least 1 (wrk takes whole seconds)")
    a.goroscope_flags = (modes.GOROSCOPE_ATTACH_FLAGS if a.goroscope_flags is None
                         else shlex.split(a.goroscope_flags))
    return a


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def preflight(args):
    problems = []
    if os.geteuid() != 0 and set(args.modes) & {"goroscope", "bpftrace"}:
        problems.append("goroscope attach and bpftrace need root")
    if "goroscope" in args.modes and not os.access(args.goroscope, os.X_OK):
        problems.append(f"no goroscope at {args.goroscope} (cmake --build build --target goroscope)")
    if "bpftrace" in args.modes and not shutil.which("bpftrace"):
        problems.append("no bpftrace (scripts/install-deps.sh)")
    if any(w.http for w in args.workloads) and not shutil.which("wrk"):
        problems.append("no wrk (scripts/install-deps.sh)")
    if problems:
        raise SystemExit("overhead: " + "; ".join(problems))


def monitor_for(mode, args, scratch):
    if mode == "goroscope":
        return modes.Goroscope(str(args.goroscope), args.goroscope_flags, scratch,
                               max(args.max_seconds, args.http_seconds))
    if mode == "bpftrace":
        return modes.Bpftrace(scratch)
    return modes.Bare()


def describe(workload, result):
    if workload.http:
        return f"{result['ops'] / result['elapsed_s']:,.0f} req/s"
    per = result["elapsed_s"] / result["ops"] * 1e9 if result["ops"] else 0
    capped = "" if result["complete"] else ", capped"
    return f"{per:,.0f} ns/{workload.op} ({result['elapsed_s']:.2f} s{capped})"


def git_revision():
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, check=True).stdout.strip()
        return rev or None
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv):
    args = parse_args(argv)
    preflight(args)
    binaries, go_version = wl.build(args.workloads, log)
    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = os.getloadavg()
    raw = {w.name: {m: [] for m in args.modes} for w in args.workloads}
    errors = []
    with tempfile.TemporaryDirectory(prefix="goroscope-overhead-") as tmp:
        scratch = Path(tmp)
        for r in range(args.runs):
            for w in args.workloads:
                for mode in args.modes:
                    label = f"[{r + 1}/{args.runs}] {w.name:8} {mode:9}"
                    try:
                        result = modes.run_once(w, binaries[w.name], monitor_for(mode, args, scratch),
                                                args.scale, args.max_seconds, args.http_seconds, scratch)
                    except (modes.RunError, OSError, subprocess.SubprocessError) as e:
                        errors.append({"workload": w.name, "mode": mode, "run": r + 1, "error": str(e)})
                        log(f"{label} FAILED: {e}")
                        continue
                    raw[w.name][mode].append(result)
                    hits = result.get("monitor", {}).get("probe_hits_total")
                    log(f"{label} {describe(w, result)}" + (f", {hits:,} probe hits" if hits is not None else ""))

    rows = [report.summarize(w, raw[w.name]) for w in args.workloads]
    print(report.table(rows, args.modes))
    if args.json:
        doc = {
            "suite": "goroscope overhead (tests/bench/overhead)",
            "command": shlex.join([sys.argv[0], *argv]),
            "started": started.isoformat(timespec="seconds"),
            "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "host": {"cpus": os.cpu_count(), "kernel": platform.release(),
                     "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
            "go_version": go_version,
            "goroscope": str(args.goroscope),
            "goroscope_revision": git_revision(),
            "goroscope_flags": args.goroscope_flags,
            "runs": args.runs, "scale": args.scale, "max_seconds": args.max_seconds,
            "http_seconds": args.http_seconds,
            "modes": args.modes,
            "workloads": [w.name for w in args.workloads],
            "summary": rows,
            "bpftrace_scripts": ({w.name: modes.naive_script(binaries[w.name]) for w in args.workloads}
                                 if "bpftrace" in args.modes else {}),
            "raw": raw,
            "errors": errors,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    if errors:
        log(f"overhead: {len(errors)} run(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
