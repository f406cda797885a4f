"""The workload programs: what each one measures and how they are built.

Sources live in workloads/ (one Go module, no external modules). Builds are
cached in ~/.cache/goroscope/bench (or $GOROSCOPE_CACHE/bench) under a key
made of the sources and the toolchain, so a rerun does not rebuild and a
changed source or toolchain never reuses a stale binary.
"""

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent / "workloads"


@dataclass(frozen=True)
class Workload:
    name: str  # what --workloads takes
    package: str  # folder under workloads/
    op: str  # one unit of its work, for the table ("ns/round trip")
    http: bool = False  # driven by a load generator for a fixed time


WORKLOADS = (
    Workload("pingpong", "pingpong", "round trip"),
    Workload("spawn", "spawn", "goroutine"),
    Workload("alloc", "alloc", "record"),
    Workload("timers", "timers", "iteration"),
    Workload("mutex", "mutex", "lock"),
    Workload("http", "httpserver", "request", http=True),
)


def by_names(names):
    known = {w.name: w for w in WORKLOADS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n] for n in names]


def go_command():
    """The toolchain: $GOROSCOPE_BENCH_GO (a go binary or a name on PATH), else `go`."""
    return os.environ.get("GOROSCOPE_BENCH_GO") or "go"


def go_env():
    # Never let a go line switch toolchains behind our back (GOTOOLCHAIN=auto
    # would download one): the chosen toolchain is the one measured.
    return dict(os.environ, GOTOOLCHAIN="local")


def go_version(go):
    out = subprocess.run([go, "env", "GOVERSION", "GOARCH"], env=go_env(), check=True,
                         capture_output=True, text=True).stdout.split()
    return out[0], out[1]


def _minor(version):
    m = re.match(r"go1\.(\d+)", version)
    return int(m.group(1)) if m else 0


def cache_root():
    base = os.environ.get("GOROSCOPE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "goroscope")
    return Path(base) / "bench"


def source_key(version, arch):
    h = hashlib.sha256(f"{version} {arch}\n".encode())
    for path in sorted(p for p in SOURCE_DIR.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(SOURCE_DIR)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def build(workloads, log):
    """Builds (or finds cached) binaries; returns ({name: path}, go version)."""
    go = go_command()
    version, arch = go_version(go)
    out_dir = cache_root() / f"{version}-{source_key(version, arch)}"
    binaries = {w.name: out_dir / w.package for w in workloads}
    if all(b.exists() for b in binaries.values()):
        return binaries, version
    log(f"building workloads with {version} into {out_dir}")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Build into a scratch folder and rename it into place, so a concurrent
    # or interrupted run never sees a half-written binary.
    scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=out_dir.parent))
    try:
        cmd = [go, "build", "-o", str(scratch) + "/"]
        if _minor(version) < 23:
            # The module says go 1.23; older toolchains refuse it. They get a
            # go 1.19 copy (their runtime has only the old timers anyway).
            modfile = scratch / "go119.mod"
            modfile.write_text("module goroscope.bench/overhead\n\ngo 1.19\n")
            cmd.append(f"-modfile={modfile}")
        cmd += [f"./{w.package}" for w in WORKLOADS]
        subprocess.run(cmd, cwd=SOURCE_DIR, env=go_env(), check=True)
        for extra in scratch.glob("go119.*"):
            extra.unlink()
        if out_dir.exists():
            shutil.rmtree(out_dir)
        scratch.rename(out_dir)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch)
    return binaries, version


def symbols(binary):
    """Function names in the binary's symbol table (for the naive script)."""
    out = subprocess.run([go_command(), "tool", "nm", str(binary)], env=go_env(), check=True,
                         capture_output=True, text=True).stdout
    return {parts[2] for parts in (line.split(maxsplit=2) for line in out.splitlines())
            if len(parts) == 3 and parts[1] in ("T", "t")}
