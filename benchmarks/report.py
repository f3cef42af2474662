"""Benchmark reports: results.json, results.parquet, summary.md and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.slo import Verdict

COLUMNS = (
    "target", "scenario", "operation", "size", "connections", "ops_per_s", "mb_per_s",
    "p50_ms", "p90_ms", "p99_ms", "p999_ms", "errors", "gateway_cpu", "loadgen_cpu",
    "cpu_us_per_op", "value", "unit", "commit", "time",
)


def with_cpu_per_op(row: dict) -> dict:
    """The row with ``cpu_us_per_op``: the target's CPU time per operation, in microseconds
    (its cores busy / operations per second): what a request costs, whatever the load."""
    cpu, ops = row.get("gateway_cpu"), row.get("ops_per_s")
    if row.get("cpu_us_per_op") is None and cpu and ops:
        return {**row, "cpu_us_per_op": round(cpu / ops * 1e6, 1)}
    return row


def write_json(rows: list[dict], out: Path) -> Path:
    path = out / "results.json"
    path.write_text(json.dumps(rows, indent=2) + "\n")
    return path


def write_parquet(rows: list[dict], out: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {c: [r.get(c) for r in rows] for c in COLUMNS}
    path = out / "results.parquet"
    pq.write_table(pa.table(columns), path)
    return path


def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _value(r: dict) -> str:
    """The headline number of a row that is not an ops/s measurement (ratios, keys/s)."""
    value = r.get("value")
    if value is None:
        return "-"
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return f"{text} {r.get('unit') or ''}".strip()


# Scenarios whose ``size`` is a count, not bytes: what it counts.
COUNTED = {"list": "keys", "recovery": "objects"}


def rows_table(rows: list[dict]) -> str:
    head = ("| target | scenario | op | size | conns | ops/s | MB/s | p50 ms | p99 ms | "
            "p99.9 ms | errors | target CPU | CPU µs/op | wrk CPU | value |")
    lines = [head, "|" + " --- |" * 15]
    for r in rows:
        size = r.get("size")
        size_text = _size(size)
        if size and r.get("scenario") in COUNTED:
            size_text = f"{size:,} {COUNTED[r['scenario']]}"
        lines.append(
            f"| {r.get('target')} | {r.get('scenario')} | {r.get('operation')} | {size_text} | "
            f"{_fmt(r.get('connections'))} | {_fmt(r.get('ops_per_s'))} | "
            f"{_fmt(r.get('mb_per_s'))} | {_fmt(r.get('p50_ms'), 2)} | {_fmt(r.get('p99_ms'), 2)}"
            f" | {_fmt(r.get('p999_ms'), 2)} | {_fmt(r.get('errors'))} | "
            f"{_fmt(r.get('gateway_cpu'), 2)} | {_fmt(r.get('cpu_us_per_op'))} | "
            f"{_fmt(r.get('loadgen_cpu'), 2)} | {_value(r)} |"
        )
    return "\n".join(lines)


def verdict_table(verdicts: list[Verdict]) -> str:
    lines = ["| target | measured | threshold | verdict |", "| --- | --- | --- | --- |"]
    for v in verdicts:
        lines.append(f"| {v.description} | {_fmt(v.measured, 2)} | {v.threshold} | {v.label} |")
    return "\n".join(lines)


def _size(size) -> str:
    if not size:
        return "-"
    for unit, n in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= n and size % n == 0:
            return f"{size // n} {unit}"
    return f"{size} B"


IN_PROCESS_NOTE = (
    " The `list` and `dedupe` rows are measured in the benchmark process, through the engine "
    "and the dedupe library on each backend (one op: one page of 1000 keys, or one object "
    "written); `value` is their headline number and `target CPU` that process's CPU. "
    "The `recovery` rows time a point-in-time restore, a backup run to another S3 endpoint "
    "(moto_server) and the restore of that backup, of one bucket (size: its objects); "
    "ops/s is objects/s and `value` the recovery time scaled to 10^4 objects, to set "
    "beside the 1 hour RTO target."
)


def write_markdown(rows, verdicts, meta: dict, out: Path, plots: list[Path] | None = None) -> Path:
    """summary.md; ``plots``: the images to show (default: throughput and latency)."""
    if plots is None:
        plots = [out / "throughput.png", out / "latency.png"]
    text = [
        "# Benchmark results",
        "",
        f"Commit `{meta['commit']}`, {meta['time']}, mode `{meta['mode']}`, "
        f"{meta['cpus']} CPUs. All targets measured in this run, same machine, same "
        "workload, same load generator (wrk replaying presigned URLs)."
        + (IN_PROCESS_NOTE if any(r.get("unit") for r in rows) else ""),
        "",
        "## Targets",
        "",
        verdict_table(verdicts),
        "",
        "## Measurements",
        "",
        rows_table(rows),
        "",
        "`target CPU` and `wrk CPU` are cores busy (1.0 = one core) during the measurement; "
        "the `calibration` rows show the load generator's ceiling against a trivial server.",
        "",
        *[line for plot in plots for line in (f"![{Path(plot).stem}]({Path(plot).name})", "")],
    ]
    path = out / "summary.md"
    path.write_text("\n".join(text))
    return path


def write_plots(rows: list[dict], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    listing = write_listing_plot(rows, out, plt)
    # HTTP load rows: a full latency distribution, one row per (scenario, operation, target).
    http = [r for r in rows if r.get("ops_per_s") and r.get("unit") is None
            and all(r.get(p) is not None for p in ("p50_ms", "p90_ms", "p99_ms", "p999_ms"))]
    if not http:
        return [listing] if listing else []
    labels = [f"{r['scenario']}\n{r['operation']}" for r in http]
    groups = sorted(set(labels), key=labels.index)
    targets = sorted({r["target"] for r in http})
    color = {t: f"C{i}" for i, t in enumerate(targets)}  # one colour per target in every plot
    fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(groups)), 4.5))
    width = 0.8 / max(len(targets), 1)
    for i, t in enumerate(targets):
        vals = [next((r["ops_per_s"] for r, lab in zip(http, labels, strict=True)
                      if lab == g and r["target"] == t), 0) for g in groups]
        ax.bar([x + i * width for x in range(len(groups))], vals, width, label=t, color=color[t])
    ax.set_xticks([x + width * (len(targets) - 1) / 2 for x in range(len(groups))], groups)
    ax.set_ylabel("operations / s")
    ax.set_yscale("log")
    ax.set_title("Throughput by target")
    ax.legend()
    fig.tight_layout()
    tp = out / "throughput.png"
    fig.savefig(tp, dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(groups), figsize=(3.2 * len(groups), 3.8), squeeze=False)
    pcts = [50, 90, 99, 99.9]
    for ax, g in zip(axes[0], groups, strict=True):
        for r, lab in zip(http, labels, strict=True):
            if lab == g:
                ax.plot(pcts, [r["p50_ms"], r["p90_ms"], r["p99_ms"], r["p999_ms"]],
                        marker="o", label=r["target"], color=color[r["target"]])
        ax.set_title(g.replace("\n", " "))
        ax.set_xlabel("percentile")
        ax.set_ylabel("latency ms")
        ax.set_yscale("log")
        ax.set_xticks(pcts, ["p50", "p90", "p99", "p99.9"])
    handles = [plt.Line2D([], [], color=color[t], marker="o", label=t) for t in targets]
    axes[0][0].legend(handles=handles, fontsize=7)
    fig.tight_layout()
    lat = out / "latency.png"
    fig.savefig(lat, dpi=110)
    plt.close(fig)
    return [tp, lat, listing] if listing else [tp, lat]


def write_listing_plot(rows: list[dict], out: Path, plt) -> Path | None:
    """Median page latency against bucket size (list scenario): the line should stay flat."""
    pages = [r for r in rows if r.get("scenario") == "list" and r.get("p50_ms") is not None
             and r.get("size") and r.get("operation", "").startswith("first-page")]
    if not pages:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for target, op in sorted({(r["target"], r["operation"]) for r in pages}):
        line = sorted((r["size"], r["p50_ms"]) for r in pages
                      if r["target"] == target and r["operation"] == op)
        ax.plot([x for x, _ in line], [y for _, y in line], marker="o", label=f"{target} {op}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("keys in bucket")
    ax.set_ylabel("median ms per 1000-key page")
    ax.set_title("Listing: first page against bucket size")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "listing.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
