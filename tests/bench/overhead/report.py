"""Medians, ratios and the printed tables.

Fixed-work workloads are compared per unit of work (ns per round trip, per
goroutine, ...), not by total time: a run capped by --max-seconds did less
work, and its time per unit is still comparable. The HTTP workload is
compared by requests per second. Every ratio reads "times slower (or
costlier) than bare": > 1 is worse.
"""

from statistics import median


def _per_op(run, seconds_key, scale):
    return run[seconds_key] / run["ops"] * scale if run["ops"] else None


def _med(values):
    values = [v for v in values if v is not None]
    return median(values) if values else None


def _ratio(a, b):
    return a / b if a is not None and b else None


def summarize(workload, runs_by_mode):
    """One summary row from the raw runs of one workload in each mode."""
    row = {"workload": workload.name}
    if workload.http:
        row["unit"] = "req/s"
        row["cpu_unit"] = "CPU µs/request"
    else:
        row["unit"] = f"ns/{workload.op}"
        row["cpu_unit"] = f"CPU ns/{workload.op}"
    for mode, runs in runs_by_mode.items():
        if workload.http:
            value = _med(r["ops"] / r["elapsed_s"] for r in runs if r["elapsed_s"] > 0)
            cpu = _med(_per_op(r, "cpu_s", 1e6) for r in runs)
        else:
            value = _med(_per_op(r, "elapsed_s", 1e9) for r in runs)
            cpu = _med(_per_op(r, "cpu_s", 1e9) for r in runs)
        m = {"median": value, "cpu_per_op_median": cpu, "runs": len(runs),
             "capped_runs": sum(1 for r in runs if not r["complete"])}
        monitors = [r["monitor"] for r in runs if "monitor" in r]
        if monitors:
            m["monitor_cpu_s_median"] = _med(x["cpu_s"] for x in monitors)
            m["monitor_phase_cpu_s_median"] = _med(x["phase_cpu_s"] for x in monitors)
            m["monitor_peak_rss_mib_max"] = max(x["peak_rss_kib"] for x in monitors) / 1024
            m["probe_hits_median"] = _med(x["probe_hits_total"] for x in monitors)
            m["attach_seconds_median"] = _med(x["attach_seconds"] for x in monitors)
            est = [x.get("estimated_overhead_s") for x in monitors]
            if any(e is not None for e in est):
                m["estimated_overhead_s_median"] = _med(est)
        row[mode] = m
    bare = row.get("bare", {})
    for mode in runs_by_mode:
        if mode == "bare" or not bare:
            continue
        m = row[mode]
        if workload.http:
            m["ratio"] = _ratio(bare["median"], m["median"])
        else:
            m["ratio"] = _ratio(m["median"], bare["median"])
        m["cpu_ratio"] = _ratio(m["cpu_per_op_median"], bare["cpu_per_op_median"])
    return row


def _num(v, digits=3):
    if v is None:
        return "–"
    if v >= 10 ** digits:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def _x(v):
    return "–" if v is None else f"{v:.2f}×" if v < 10 else f"{v:.0f}×"


def _capped(m):
    return "*" if m.get("capped_runs") else ""


def table(rows, modes):
    """Markdown tables: wall clock with the engine's cost, then CPU per unit."""
    g = "goroscope" in modes
    b = "bpftrace" in modes
    head = ["workload", "unit", "bare"]
    if g:
        head += ["goroscope", "×"]
    if b:
        head += ["bpftrace", "×"]
    if g:
        head += ["goroscope CPU s", "goroscope peak RSS MiB", "goroscope probe hits", "goroscope est. overhead s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["workload"], row["unit"], _num(row.get("bare", {}).get("median"))]
        for mode, on in (("goroscope", g), ("bpftrace", b)):
            if on:
                m = row.get(mode, {})
                cells += [_num(m.get("median")) + _capped(m), _x(m.get("ratio"))]
        if g:
            m = row.get("goroscope", {})
            cells += [_num(m.get("monitor_cpu_s_median"), 2), _num(m.get("monitor_peak_rss_mib_max"), 3),
                      _num(m.get("probe_hits_median")), _num(m.get("estimated_overhead_s_median"), 2)]
        lines.append("| " + " | ".join(cells) + " |")

    lines += ["", "Workload CPU (user + system) per unit of work:", ""]
    head = ["workload", "unit", "bare"]
    if g:
        head += ["goroscope", "×"]
    if b:
        head += ["bpftrace", "×", "bpftrace probe hits"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["workload"], row["cpu_unit"], _num(row.get("bare", {}).get("cpu_per_op_median"))]
        for mode, on in (("goroscope", g), ("bpftrace", b)):
            if on:
                m = row.get(mode, {})
                cells += [_num(m.get("cpu_per_op_median")), _x(m.get("cpu_ratio"))]
        if b:
            cells.append(_num(row.get("bpftrace", {}).get("probe_hits_median")))
        lines.append("| " + " | ".join(cells) + " |")
    if any(row.get(m, {}).get("capped_runs") for row in rows for m in modes):
        lines += ["", "`*` some runs hit --max-seconds before finishing their fixed work; "
                      "their time per unit is still comparable."]
    return "\n".join(lines)
