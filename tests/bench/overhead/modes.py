"""One run of one workload in one mode: bare, under goroscope, under naive bpftrace.

The workload prints "ready", the monitor (if any) attaches, and only then is
the workload told to go, so attach latency is never measured. After the
workload's result line the monitor is stopped while the workload is still
alive (it waits for its stdin to close), then the workload is reaped.
"""

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import workloads as wl

# goroscope's default mode, exactly as a user would attach it. This is the
# one place to change when the default changes (e.g. flags the overhead
# governor needs); --goroscope-flags overrides it for one invocation.
GOROSCOPE_ATTACH_FLAGS = []

MODES = ("bare", "goroscope", "bpftrace")

NAIVE_TEMPLATE = Path(__file__).resolve().parent / "naive.bt"

# Time for a monitor to get ready: bpftrace compiles its script with LLVM,
# which takes seconds on a busy machine.
ATTACH_TIMEOUT = 120


class RunError(Exception):
    pass


class Lines:
    """A child's output, collected line by line on a thread, so waiting for
    one line never stalls the child on a full pipe."""

    def __init__(self, stream):
        self._lines = []
        self._closed = False
        self._cond = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        for raw in stream:
            with self._cond:
                self._lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def wait_for(self, predicate, timeout):
        """The first line matching predicate, or None at EOF or timeout."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self._lines[seen:]:
                    if predicate(line):
                        return line
                seen = len(self._lines)
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    return None
                self._cond.wait(left)

    def wait_closed(self, timeout):
        with self._cond:
            self._cond.wait_for(lambda: self._closed, timeout)

    def all(self):
        with self._cond:
            return list(self._lines)


def fields(line):
    """'result a=1 b=x' -> {'a': '1', 'b': 'x'}"""
    return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)


def cpu_seconds(pid):
    """User + system time of a live process so far, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    after_comm = stat[stat.rindex(")") + 2:].split()  # starts at field 3 (state)
    return (int(after_comm[11]) + int(after_comm[12])) / os.sysconf("SC_CLK_TCK")


def reap(proc, timeout):
    """Waits for a child with wait4, which also gives its own rusage (CPU
    time, peak RSS) that Popen.wait throws away. Kills it after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return usage
        if time.monotonic() > deadline:
            proc.kill()
            deadline = float("inf")
        time.sleep(0.02)


def kill_quietly(proc):
    if proc is not None and proc.returncode is None:
        try:
            proc.kill()
            reap(proc, 10)
        except (ProcessLookupError, ChildProcessError):
            pass


class Bare:
    name = "bare"

    def start(self, pid, binary):
        pass

    def mark_phase_start(self):
        pass

    def mark_phase_end(self):
        pass

    def stop(self):
        return None

    def kill(self):
        pass


class _Monitor:
    """A monitoring process: CPU during the measured phase from /proc, CPU
    over its whole life and peak RSS from wait4."""

    proc = None

    def mark_phase_start(self):
        self._cpu0 = cpu_seconds(self.proc.pid)

    def mark_phase_end(self):
        self._phase_cpu = cpu_seconds(self.proc.pid) - self._cpu0

    def _finish(self, timeout):
        self.proc.send_signal(signal.SIGINT)
        usage = reap(self.proc, timeout)
        return {
            "exit_code": self.proc.returncode,
            "attach_seconds": self._attach_seconds,
            "phase_cpu_s": self._phase_cpu,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_kib": usage.ru_maxrss,
        }

    def kill(self):
        kill_quietly(self.proc)


class Goroscope(_Monitor):
    name = "goroscope"

    def __init__(self, goroscope, flags, scratch, longest_run):
        self.goroscope = goroscope
        self.flags = flags
        self.scratch = scratch
        # --duration only as a safety net: the run stops it with SIGINT.
        self.duration = int(longest_run) + 600

    def start(self, pid, binary):
        self.out_path = self.scratch / "goroscope.json"
        t0 = time.monotonic()
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(
                [self.goroscope, "attach", "--pid", str(pid), "--format", "json",
                 "--duration", f"{self.duration}s", *self.flags],
                stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.err = Lines(self.proc.stderr)
        if not self.err.wait_for(lambda l: "attached to PID" in l, ATTACH_TIMEOUT):
            kill_quietly(self.proc)
            raise RunError("goroscope did not attach: " + " | ".join(self.err.all()))
        self._attach_seconds = time.monotonic() - t0

    def stop(self):
        result = self._finish(60)
        self.err.wait_closed(10)
        try:
            doc = json.loads(self.out_path.read_text())
        except (OSError, ValueError) as e:
            raise RunError(f"goroscope exited {result['exit_code']} without a JSON report ({e}): "
                           + " | ".join(self.err.all()))
        overhead = doc.get("overhead", {})
        hits = overhead.get("probe_hits", {})
        result.update({
            "probe_hits": hits,
            "probe_hits_total": sum(hits.values()),
            "estimated_overhead_s": overhead.get("estimated_seconds"),
            "overhead": overhead,
            "lost_events": doc.get("events", {}).get("lost"),
            "stopped_by": doc.get("stopped_by"),
            "warnings": doc.get("warnings", []),
        })
        return result


def naive_script(binary):
    """naive.bt with BINARY filled in and only the functions this binary has."""
    have = wl.symbols(binary)
    lines = []
    for line in NAIVE_TEMPLATE.read_text().splitlines():
        if not line.startswith("uprobe:BINARY:"):
            lines.append(line)
            continue
        target, body = line[len("uprobe:BINARY:"):].split(" ", 1)
        present = [f for f in target.split("|") if f in have]
        if present:
            f = present[0]
            quoted = f if all(c.isalnum() or c in "._" for c in f) else f'"{f}"'
            lines.append(f"uprobe:{binary}:{quoted} {body}")
    return "\n".join(lines) + "\n"


class Bpftrace(_Monitor):
    name = "bpftrace"

    def __init__(self, scratch):
        self.scratch = scratch

    def start(self, pid, binary):
        script = self.scratch / f"naive-{Path(binary).name}.bt"
        script.write_text(naive_script(binary))
        self.script = script
        t0 = time.monotonic()
        with open(self.scratch / "bpftrace.err", "wb") as err:
            self.proc = subprocess.Popen(["bpftrace", "-f", "json", "-p", str(pid), str(script)],
                                         stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        self.out = Lines(self.proc.stdout)
        # bpftrace runs BEGIN once every probe is attached.
        if not self.out.wait_for(lambda l: '"printf"' in l and "ready" in l, ATTACH_TIMEOUT):
            kill_quietly(self.proc)
            raise RunError("bpftrace did not start: " + (self.scratch / "bpftrace.err").read_text()[-2000:])
        self._attach_seconds = time.monotonic() - t0

    def stop(self):
        result = self._finish(60)
        self.out.wait_closed(10)
        hits = {}
        for line in self.out.all():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if doc.get("type") == "map" and "@hits" in doc.get("data", {}):
                # keys are "uprobe:/path/bin:function"
                hits = {k.rsplit(":", 1)[-1]: v for k, v in doc["data"]["@hits"].items()}
        result.update({"probe_hits": hits, "probe_hits_total": sum(hits.values())})
        return result


def run_wrk(port, seconds):
    """Loopback load on the HTTP workload: one wrk thread, 16 connections.
    wrk takes whole seconds only."""
    cmd = ["wrk", "-t1", "-c16", f"-d{seconds}s", "--timeout", "10s", f"http://127.0.0.1:{port}/"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    out = done.stdout
    if done.returncode != 0 or "Requests/sec:" not in out:
        raise RunError(f"wrk failed ({done.returncode}): {(out + done.stderr)[-500:]}")
    load = {"command": " ".join(cmd)}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Requests/sec:"):
            load["requests_per_s"] = float(line.split()[1])
        elif "requests in" in line:
            load["requests"] = int(line.split()[0])
        elif line.startswith("Socket errors:") or line.startswith("Non-2xx"):
            load.setdefault("errors", []).append(line)
    return load


def run_once(workload, binary, monitor, scale, max_seconds, http_seconds, scratch):
    """One measured run; returns the workload's result and the monitor's."""
    args = [str(binary), "-max", f"{max_seconds:g}s"]
    if not workload.http:
        args += ["-scale", f"{scale:g}"]
    proc = None
    try:
        with open(scratch / "workload.err", "wb") as err:
            proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        out = Lines(proc.stdout)
        ready = out.wait_for(lambda l: l.startswith("ready "), 60)
        if not ready:
            raise RunError(f"{workload.name} did not start: " + (scratch / "workload.err").read_text()[-2000:])
        info = fields(ready)
        monitor.start(int(info["pid"]), binary)

        monitor.mark_phase_start()
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        load = None
        if workload.http:
            load = run_wrk(int(info["port"]), http_seconds)
            proc.stdin.write(b"stop\n")
            proc.stdin.flush()
        line = out.wait_for(lambda l: l.startswith("result "), max_seconds + 300)
        if not line:
            raise RunError(f"{workload.name} gave no result line: "
                           + (scratch / "workload.err").read_text()[-2000:])
        monitor.mark_phase_end()
        monitor_result = monitor.stop()

        proc.stdin.close()
        usage = reap(proc, 60)
        r = fields(line)
        if int(r["ops"]) <= 0:
            raise RunError(f"{workload.name} did no work: {line}")
        result = {
            "ops": int(r["ops"]),
            "elapsed_s": float(r["elapsed_s"]),
            "cpu_s": float(r["cpu_s"]),
            "complete": r["complete"] == "1",
            "process_cpu_s": usage.ru_utime + usage.ru_stime,
            "process_peak_rss_kib": usage.ru_maxrss,
        }
        if load is not None:
            result["load"] = load
        if monitor_result is not None:
            result["monitor"] = monitor_result
        return result
    finally:
        monitor.kill()
        kill_quietly(proc)
