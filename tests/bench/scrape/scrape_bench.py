#!/usr/bin/env python3
"""The daemon at scale, measured from outside: scrape latency, exposition
size, memory and CPU of a real `goroscope daemon` following many processes
with many goroutine creation sites each (issue 5: 50 processes x 200 sites,
a scrape under 50 ms).

Order of events, each step measured where it is cheapest to see:
  1. the daemon starts with --exe matching the fixture and nothing running,
     so its memory before any target is the baseline;
  2. the fixtures start; the daemon discovers and attaches to each (its log
     says "attached"); one interval later every snapshot holds every site;
  3. memory with every target attached, before any scrape; then scrapes
     until every target is exposed with every site, lifetimes included (the
     exposition's steady size);
  4. per run: an idle window (the monitoring cost alone), then scrapes, plain
     and gzip alternately, each timed from request to last byte over a fresh
     connection, with a pause between so that scrapes do not queue.
Everything started is stopped on the way out, Ctrl-C included; how long
the daemon takes to detach from every target is reported too.

Only the Python standard library; run by tests/bench/scrape_bench.sh.
"""

import argparse
import ctypes
import gzip
import http.client
import json
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
# The map types a goroscope daemon holds (enum bpf_map_type in linux/bpf.h).
MAP_TYPES = {1: "hash", 2: "array", 5: "percpu hash", 6: "percpu array", 9: "LRU hash", 27: "ring buffer"}
PR_SET_PDEATHSIG = 1


def die_with_parent():
    # A killed benchmark must not leave a daemon behind with probes attached.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


# --- /proc ---------------------------------------------------------------

def proc_status(pid):
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
            out[key] = int(value.split()[0]) * 1024
        elif key == "Threads":
            out[key] = int(value)
    out["Pss"] = proc_pss(pid)
    return out


def proc_pss(pid):
    """Proportional set size: each page once, however many times it is
    mapped. A BPF ring buffer maps its data pages twice (so that a record
    can wrap around), and VmRSS counts them twice."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def proc_cpu_seconds(pid):
    # Fields after the parenthesised command: utime and stime are 14 and 15.
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def bpf_memlock(pid):
    """Kernel memory of the daemon's BPF maps and programs, by map type:
    the `memlock` each fd's fdinfo reports (ring buffers, hash maps, ...)."""
    by_type = {}
    fd_dir = Path(f"/proc/{pid}/fdinfo")
    for fd in fd_dir.iterdir():
        try:
            info = dict(line.split(":\t", 1) for line in fd.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue  # closed meanwhile
        if "memlock" not in info:
            continue
        if "map_type" in info:
            n = int(info["map_type"])
            kind = MAP_TYPES.get(n, f"map type {n}") + " maps"
        else:
            kind = "programs"
        entry = by_type.setdefault(kind, [0, 0])
        entry[0] += 1
        entry[1] += int(info["memlock"])
    return by_type


# --- processes -----------------------------------------------------------

def start_fixtures(path, count, parked):
    procs = []
    for _ in range(count):
        procs.append(subprocess.Popen([path, "-parked", str(parked)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      preexec_fn=die_with_parent))
    deadline = time.monotonic() + 60
    for p in procs:
        ready, _, _ = select.select([p.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready or p.stdout.readline().strip() != b"ready":
            raise SystemExit(f"fixture pid {p.pid} did not get ready")
    return procs


def stop_fixtures(procs):
    for p in procs:
        if p.poll() is None and p.stdin:
            p.stdin.close()  # the fixture exits when stdin closes
    deadline = time.monotonic() + 10
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def start_daemon(goroscope, args, log_path):
    log = open(log_path, "wb")
    proc = subprocess.Popen([goroscope, "daemon", *args], stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = re.search(r'msg="serving metrics".* port=(\d+)', Path(log_path).read_text())
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            raise SystemExit(f"goroscope daemon exited ({proc.returncode}):\n{Path(log_path).read_text()}")
        time.sleep(0.05)
    raise SystemExit("goroscope daemon did not start serving within 30 s")


def stop_daemon(proc):
    """Seconds the daemon took to detach from every target and exit."""
    if proc.poll() is not None:
        return 0.0
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)  # detaches from every target
    try:
        # Generous: each uprobe's removal waits for the kernel (an RCU grace
        # period), and 50 targets hold hundreds of them.
        proc.wait(timeout=600)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return time.monotonic() - t0


# --- scrapes -------------------------------------------------------------

def scrape(port, path, compressed):
    """(seconds to the response headers, seconds to the last byte, body)."""
    headers = {"Accept-Encoding": "gzip"} if compressed else {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0 = time.perf_counter()
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    t1 = time.perf_counter()
    body = resp.read()
    t2 = time.perf_counter()
    conn.close()
    if resp.status != 200:
        raise SystemExit(f"GET {path}: HTTP {resp.status}")
    if compressed and resp.getheader("Content-Encoding") != "gzip":
        raise SystemExit("the daemon ignored Accept-Encoding: gzip")
    return t1 - t0, t2 - t0, body


SERIES = re.compile(rb'^(goroscope_\w+)\{(?:[^"]|"(?:[^"\\]|\\.)*")*\}', re.M)
PID = re.compile(rb'pid="(\d+)"')
SITE = re.compile(rb'function="(main\.site\d+)"')


def exposition_facts(text):
    """Series per family, attached pids, and per pid the distinct site
    functions with creations and with a lifetime histogram (a site has one
    once a goroutine of it exited while attached)."""
    families, pids, created, lifetimes = {}, set(), {}, {}
    for line in text.splitlines():
        if not line or line.startswith(b"#"):
            continue
        name = line.split(b"{", 1)[0].split(b" ", 1)[0].decode()
        families[name] = families.get(name, 0) + 1
        if name == "goroscope_target_info":
            pids.add(int(PID.search(line).group(1)))
        elif name in ("goroscope_goroutines_created_total", "goroscope_goroutine_lifetime_seconds_count"):
            site, pid = SITE.search(line), PID.search(line)
            if site and pid:
                into = created if name == "goroscope_goroutines_created_total" else lifetimes
                into.setdefault(int(pid.group(1)), set()).add(site.group(1))
    count = lambda by_pid: {pid: len(s) for pid, s in by_pid.items()}  # noqa: E731
    return families, pids, count(created), count(lifetimes)


def wait_complete(port, fixture_pids, sites, timeout):
    """Scrapes until every fixture is exposed with every site, lifetimes
    included (the exposition's steady size); returns that exposition."""
    deadline = time.monotonic() + timeout
    want = set(fixture_pids)
    while True:
        _, _, body = scrape(port, "/metrics", False)
        families, pids, created, lifetimes = exposition_facts(body)
        complete = [p for p in want if created.get(p, 0) >= sites and lifetimes.get(p, 0) >= sites]
        if pids == want and len(complete) == len(want):
            return body, families
        if time.monotonic() > deadline:
            raise SystemExit(f"exposition incomplete after {timeout} s: {len(pids & want)} of {len(want)} targets, "
                             f"{len(complete)} with {sites} sites and their lifetimes")
        time.sleep(1)


def summary(values):
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
    return {"median": statistics.median(values), "p90": p90, "max": values[-1], "min": values[0], "n": len(values)}


def ms(s):
    return f"{s * 1e3:7.1f}"


def mib(b):
    return f"{b / 2**20:7.1f} MiB"


# --- the run -------------------------------------------------------------

def wait_attached(log_path, fixture_pids, timeout):
    deadline = time.monotonic() + timeout
    want = {str(p) for p in fixture_pids}
    while time.monotonic() < deadline:
        log = Path(log_path).read_text()
        attached = set(re.findall(r'msg=attached pid=(\d+)', log)) & want
        if attached == want:
            return
        failed = re.findall(r'msg="cannot attach".*', log)
        if failed:
            raise SystemExit("the daemon could not attach:\n" + "\n".join(failed[:5]))
        time.sleep(0.2)
    raise SystemExit(f"only {len(attached)} of {len(want)} fixtures attached within {timeout} s")


def measure(args):
    work = Path(tempfile.mkdtemp(prefix="gscrape-"))
    log_path = work / "daemon.log"
    # Run a copy from the work folder: its path, an exe label on every
    # series, is then as long as a typical service's (/tmp/gscrape-XXXXXXXX/
    # manysites, 31 bytes) rather than the cache's (84 bytes), and a daemon
    # left over from another run cannot match it.
    fixture = str(work / "manysites")
    shutil.copy2(args.fixture, fixture)
    daemon, fixtures = None, []
    result = {"targets": args.targets, "parked_per_site": args.parked, "interval": args.interval,
              "max_sites": args.max_sites, "runs": []}
    try:
        daemon, port = start_daemon(args.goroscope, [
            "--exe", fixture, "--max-sites", str(args.max_sites), "--interval", args.interval,
            "--web.listen-address", "127.0.0.1:0", *args.daemon_arg], log_path)
        time.sleep(2)  # start-up (uprobe cost calibration) settles
        result["baseline"] = proc_status(daemon.pid)

        t0 = time.monotonic()
        fixtures = start_fixtures(fixture, args.targets, args.parked)
        wait_attached(log_path, [p.pid for p in fixtures], timeout=300)
        result["attach_seconds"] = time.monotonic() - t0
        # Two intervals: every target has published a snapshot taken after
        # its attach-time census, and the churn has visited every site.
        time.sleep(2 * parse_seconds(args.interval) + 1)
        result["attached"] = proc_status(daemon.pid)
        result["bpf_memlock"] = bpf_memlock(daemon.pid)

        body, families = wait_complete(port, [p.pid for p in fixtures], args.sites, timeout=120)
        result["exposition"] = {"bytes": len(body), "series": sum(families.values()),
                                "series_by_family": families}
        _, _, zbody = scrape(port, "/metrics", True)
        result["exposition"]["gzip_bytes"] = len(zbody)
        if len(gzip.decompress(zbody)) < 0.9 * len(body):
            raise SystemExit("the gzip exposition is not the plain one")

        for run in range(args.runs):
            idle_cpu = proc_cpu_seconds(daemon.pid)
            time.sleep(args.idle)
            idle_cpu = proc_cpu_seconds(daemon.pid) - idle_cpu
            timings = {"plain": [], "gzip": []}
            cpu0, wall0 = proc_cpu_seconds(daemon.pid), time.monotonic()
            for i in range(args.scrapes):
                for kind in (("plain", "gzip") if i % 2 == 0 else ("gzip", "plain")):
                    headers_s, total_s, _ = scrape(port, "/metrics", kind == "gzip")
                    timings[kind].append((headers_s, total_s))
                    time.sleep(args.pause)
            cpu, wall = proc_cpu_seconds(daemon.pid) - cpu0, time.monotonic() - wall0
            idle_rate = idle_cpu / args.idle
            per_scrape = max(0.0, cpu - idle_rate * wall) / (2 * args.scrapes)
            result["runs"].append({
                "idle_cpu_fraction": idle_rate,
                "scrape_phase_cpu_fraction": cpu / wall,
                "cpu_seconds_per_scrape": per_scrape,
                "plain": {"total": summary([t for _, t in timings["plain"]]),
                          "to_headers": summary([h for h, _ in timings["plain"]])},
                "gzip": {"total": summary([t for _, t in timings["gzip"]]),
                         "to_headers": summary([h for h, _ in timings["gzip"]])},
            })
        result["after"] = proc_status(daemon.pid)
    finally:
        if daemon:
            result["stop_seconds"] = stop_daemon(daemon)
        stop_fixtures(fixtures)
        if daemon and daemon.returncode not in (0, None) and not args.keep_log:
            print(log_path.read_text()[-4000:], file=sys.stderr)
        Path(fixture).unlink(missing_ok=True)
        if not args.keep_log:
            log_path.unlink(missing_ok=True)
            work.rmdir()
        else:
            print(f"daemon log: {log_path}", file=sys.stderr)
    return result


def parse_seconds(text):
    m = re.fullmatch(r"([\d.]+)(ms|s|m)?", text)
    if not m:
        raise SystemExit(f"--interval {text}: use e.g. 2s or 500ms")
    return float(m.group(1)) * {"ms": 1e-3, "s": 1, None: 1, "m": 60}[m.group(2)]


def report(r):
    e = r["exposition"]
    print(f"{r['targets']} targets x {r['max_sites']} max sites, {r['parked_per_site']} parked goroutines per site, "
          f"interval {r['interval']}; all attached in {r['attach_seconds']:.1f} s")
    print(f"exposition: {e['bytes']:,} bytes ({e['gzip_bytes']:,} gzipped), {e['series']:,} series "
          f"({e['series'] / r['targets']:.0f} per target)")
    top = sorted(e["series_by_family"].items(), key=lambda kv: -kv[1])[:4]
    print("  largest families: " + ", ".join(f"{name} {n:,}" for name, n in top))
    print("scrape latency, ms (request to last byte; to headers = the daemon's build time):")
    print("  run  kind    median     p90     max   to-headers median  daemon CPU per scrape (ms, both kinds)")
    for i, run in enumerate(r["runs"]):
        for kind in ("plain", "gzip"):
            t, h = run[kind]["total"], run[kind]["to_headers"]
            cpu = f"            {ms(run['cpu_seconds_per_scrape'])}" if kind == "plain" else ""
            print(f"  {i + 1:3d}  {kind:5s} {ms(t['median'])} {ms(t['p90'])} {ms(t['max'])}   {ms(h['median'])}{cpu}")
    for kind in ("plain", "gzip"):
        medians = [run[kind]["total"]["median"] for run in r["runs"]]
        maxima = [run[kind]["total"]["max"] for run in r["runs"]]
        print(f"  all runs, {kind}: median of medians {ms(statistics.median(medians)).strip()} ms, "
              f"max {ms(max(maxima)).strip()} ms")
    b, a, z = r["baseline"], r["attached"], r["after"]
    print("daemon memory:")
    print(f"  no targets:            VmRSS {mib(b['VmRSS'])}  Pss {mib(b['Pss'])}  threads {b['Threads']}")
    print(f"  {r['targets']} attached, unscraped: VmRSS {mib(a['VmRSS'])}  VmHWM {mib(a['VmHWM'])}  "
          f"threads {a['Threads']}  -> {(a['VmRSS'] - b['VmRSS']) / r['targets'] / 2**20:.2f} MiB per target")
    print(f"    Pss {mib(a['Pss'])} -> {(a['Pss'] - b['Pss']) / r['targets'] / 2**20:.2f} MiB per target "
          "(VmRSS counts each ring buffer's pages twice)")
    print("    of which anonymous {}, file {}, shared {} (per target: {:.2f}, {:.2f}, {:.2f} MiB)".format(
        mib(a["RssAnon"]).strip(), mib(a["RssFile"]).strip(), mib(a["RssShmem"]).strip(),
        *((a[k] - b[k]) / r["targets"] / 2**20 for k in ("RssAnon", "RssFile", "RssShmem"))))
    print(f"  after the scrapes:     VmRSS {mib(z['VmRSS'])}  VmHWM {mib(z['VmHWM'])}  Pss {mib(z['Pss'])}")
    total = sum(v[1] for v in r["bpf_memlock"].values())
    print(f"  kernel (BPF memlock):  {mib(total)} -> {total / r['targets'] / 2**20:.2f} MiB per target")
    for kind, (n, b_) in sorted(r["bpf_memlock"].items(), key=lambda kv: -kv[1][1])[:4]:
        print(f"    {kind}: {n} objects, {mib(b_)}")
    print(f"daemon stop (detach from {r['targets']} targets): {r['stop_seconds']:.1f} s")
    idle = [run["idle_cpu_fraction"] for run in r["runs"]]
    print(f"daemon CPU: idle (monitoring only) {statistics.median(idle) * 100:.1f} % of a core (median of runs); "
          f"per scrape (both kinds, idle subtracted) "
          f"{statistics.median(run['cpu_seconds_per_scrape'] for run in r['runs']) * 1e3:.1f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--goroscope", required=True, help="the goroscope binary")
    ap.add_argument("--fixture", required=True, help="the manysites binary (tests/bench/scrape/build-manysites.sh)")
    ap.add_argument("--targets", type=int, default=50, help="processes to start (default 50)")
    ap.add_argument("--sites", type=int, default=200, help="sites each must expose before measuring (default 200)")
    ap.add_argument("--max-sites", type=int, default=200, help="the daemon's --max-sites (default 200)")
    ap.add_argument("--parked", type=int, default=3, help="goroutines parked at each site (default 3)")
    ap.add_argument("--interval", default="2s", help="the daemon's --interval (default 2s)")
    ap.add_argument("--runs", type=int, default=3, help="idle window + scrapes, repeated (default 3)")
    ap.add_argument("--scrapes", type=int, default=50, help="scrapes of each kind per run (default 50)")
    ap.add_argument("--idle", type=float, default=5, help="seconds without scrapes before each run (default 5)")
    ap.add_argument("--pause", type=float, default=0.1, help="seconds between scrapes (default 0.1)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--keep-log", action="store_true", help="keep the daemon's log and print its path")
    ap.add_argument("--daemon-arg", action="append", default=[], help="one more daemon argument (repeatable)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("scrape_bench: needs root (the daemon attaches uprobes)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup
    r = measure(args)
    report(r)
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2) + "\n")


if __name__ == "__main__":
    main()
