"""Benchmark reports: results.json, results.parquet, summary.md and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.slo import Verdict

COLUMNS = (
    "target", "scenario", "operation", "size", "connections", "ops_per_s", "mb_per_s",
    "p50_ms", "p90_ms", "p99_ms", "p999_ms", "errors", "gateway_cpu", "loadgen_cpu",
    "commit", "time",
)


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


def rows_table(rows: list[dict]) -> str:
    head = ("| target | scenario | op | size | conns | ops/s | MB/s | p50 ms | p99 ms | "
            "p99.9 ms | errors | target CPU | wrk CPU |")
    lines = [head, "|" + " --- |" * 13]
    for r in rows:
        lines.append(
            f"| {r['target']} | {r['scenario']} | {r['operation']} | {_size(r.get('size'))} | "
            f"{_fmt(r.get('connections'))} | {_fmt(r.get('ops_per_s'))} | "
            f"{_fmt(r.get('mb_per_s'))} | {_fmt(r.get('p50_ms'), 2)} | {_fmt(r.get('p99_ms'), 2)}"
            f" | {_fmt(r.get('p999_ms'), 2)} | {_fmt(r.get('errors'))} | "
            f"{_fmt(r.get('gateway_cpu'), 2)} | {_fmt(r.get('loadgen_cpu'), 2)} |"
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


def write_markdown(rows, verdicts, meta: dict, out: Path) -> Path:
    text = [
        "# Benchmark results",
        "",
        f"Commit `{meta['commit']}`, {meta['time']}, mode `{meta['mode']}`, "
        f"{meta['cpus']} CPUs. All targets measured in this run, same machine, same "
        "workload, same load generator (wrk replaying presigned URLs).",
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
        "![throughput](throughput.png)",
        "",
        "![latency](latency.png)",
        "",
    ]
    path = out / "summary.md"
    path.write_text("\n".join(text))
    return path


def write_plots(rows: list[dict], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    http = [r for r in rows if r.get("p50_ms") is not None and r.get("ops_per_s")]
    if not http:
        return []
    labels = [f"{r['scenario']}\n{r['operation']}" for r in http]
    groups = sorted(set(labels), key=labels.index)
    targets = sorted({r["target"] for r in http})
    fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(groups)), 4.5))
    width = 0.8 / max(len(targets), 1)
    for i, t in enumerate(targets):
        vals = [next((r["ops_per_s"] for r, lab in zip(http, labels, strict=True)
                      if lab == g and r["target"] == t), 0) for g in groups]
        ax.bar([x + i * width for x in range(len(groups))], vals, width, label=t)
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
                        marker="o", label=r["target"])
        ax.set_title(g.replace("\n", " "))
        ax.set_xlabel("percentile")
        ax.set_ylabel("latency ms")
        ax.set_yscale("log")
        ax.set_xticks(pcts, ["p50", "p90", "p99", "p99.9"])
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    lat = out / "latency.png"
    fig.savefig(lat, dpi=110)
    plt.close(fig)
    return [tp, lat]
