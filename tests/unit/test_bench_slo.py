"""Benchmark targets and reports on synthetic rows (pure: nothing is measured here)."""

from __future__ import annotations

import json

import pytest

from benchmarks import report, slo

MiB = 1024 * 1024
FULL = 64 * MiB


def dedupe_row(operation: str, value: float, size: int = FULL, target: str = "atonix-local"):
    return {"target": target, "scenario": "dedupe", "operation": operation, "size": size,
            "value": value, "unit": "x", "ops_per_s": 1.0, "p50_ms": None, "p99_ms": None}


def list_row(target: str, size: int, p50: float, operation: str = "first-page"):
    return {"target": target, "scenario": "list", "operation": operation, "size": size,
            "p50_ms": p50, "p90_ms": p50 * 1.2, "p99_ms": None, "p999_ms": None,
            "ops_per_s": 1000 / p50, "value": p50, "unit": "ms/page", "connections": 1}


def verdicts(rows) -> dict[str, slo.Verdict]:
    return {v.slo: v for v in slo.evaluate(rows)}


def test_dedupe_targets_pass_and_fail_on_the_full_datasets():
    rows = [dedupe_row("versions-ratio", 1.2), dedupe_row("insert-reuse", 99.6),
            dedupe_row("logs-vs-zstd3", 94.0)]
    got = verdicts(rows)
    assert (got["dedupe-versions"].passed, got["dedupe-versions"].measured) == (True, 1.2)
    assert got["dedupe-versions"].threshold == "<= 1.25"
    assert got["dedupe-insert"].passed is True
    assert got["dedupe-logs"].passed is False
    assert got["dedupe-logs"].threshold == ">= 95"


def test_at_most_is_inclusive_and_upper_bounds_judge_the_worst_backend():
    rows = [dedupe_row("versions-ratio", 1.25),
            dedupe_row("versions-ratio", 1.1, target="atonix-rados")]
    assert verdicts(rows)["dedupe-versions"].passed is True
    rows.append(dedupe_row("versions-ratio", 1.3, target="atonix-rados"))
    assert verdicts(rows)["dedupe-versions"].measured == 1.3


def test_lower_bounds_judge_the_worst_backend():
    rows = [dedupe_row("insert-reuse", 99.0),
            dedupe_row("insert-reuse", 90.0, target="atonix-rados")]
    got = verdicts(rows)["dedupe-insert"]
    assert (got.measured, got.passed) == (90.0, False)


def test_quick_datasets_leave_the_dedupe_targets_unmeasured():
    rows = [dedupe_row(op, 1.0, size=8 * MiB)
            for op in ("versions-ratio", "insert-reuse", "logs-vs-zstd3")]
    got = verdicts(rows)
    assert [got[k].passed for k in ("dedupe-versions", "dedupe-insert", "dedupe-logs")] == [
        None, None, None]
    assert got["dedupe-versions"].label == "n/a"


def test_flat_listing_compares_largest_with_smallest_size_per_target():
    rows = [list_row("atonix-local", 10**3, 10.0), list_row("atonix-local", 10**6, 12.0),
            list_row("atonix-local", 10**4, 50.0),  # a middle size does not count
            list_row("atonix-rados", 10**3, 8.0), list_row("atonix-rados", 10**6, 20.0),
            list_row("atonix-local", 10**6, 500.0, operation="first-page-delim")]
    got = verdicts(rows)["list-flat"]
    assert got.measured == pytest.approx(2.5)  # rados is the worse of the two
    assert got.passed is True
    rows.append(list_row("atonix-rados", 10**7, 40.0))
    got = verdicts(rows)["list-flat"]
    assert (got.measured, got.passed) == (pytest.approx(5.0), False)


def test_flat_listing_needs_two_sizes():
    assert verdicts([list_row("atonix-local", 10**3, 10.0)])["list-flat"].passed is None


def test_ratio_and_strict_max_targets_still_work():
    def http(target, ops, p99=50.0):
        return {"target": target, "scenario": "s3-small", "operation": "GET", "size": 4096,
                "ops_per_s": ops, "p99_ms": p99}

    got = verdicts([http("atonix-rados", 300.0, p99=100.0), http("rgw", 100.0)])
    assert (got["small-get-vs-rgw"].measured, got["small-get-vs-rgw"].passed) == (3.0, True)
    assert got["small-get-vs-rgw"].threshold == ">= 3x rgw"
    assert got["api-p99"].passed is False  # < 100 is strict


def test_rows_table_and_reports_take_rows_without_latencies(tmp_path):
    rows = [list_row("atonix-local", 10**3, 7.5), list_row("atonix-local", 10**4, 7.9),
            {"target": "atonix-local", "scenario": "list", "operation": "scan", "size": 10**4,
             "ops_per_s": 80.0, "value": 81048.0, "unit": "keys/s"},
            dedupe_row("insert-reuse", 99.6),
            {"target": "rados-raw", "scenario": "rados-bench", "operation": "GET", "size": 4096,
             "ops_per_s": 5000.0, "p50_ms": None},
            {"target": "atonix-rados", "scenario": "list", "operation": "run", "size": 10**6,
             "errors": 1}]
    table = report.rows_table(rows).splitlines()
    assert len(table) == 2 + len(rows)
    assert "| 10,000 keys |" in table[4] and table[4].endswith("| 81,048 keys/s |")
    assert "| 64 MiB |" in table[5] and table[5].endswith("| 99.6 x |")
    assert all(line.count("|") == table[0].count("|") for line in table)
    verdict_list = slo.evaluate(rows)
    report.write_json(rows, tmp_path)
    assert json.loads((tmp_path / "results.json").read_text()) == rows
    pytest.importorskip("pyarrow")
    report.write_parquet(rows, tmp_path)
    pytest.importorskip("matplotlib")
    plots = report.write_plots(rows, tmp_path)
    assert [p.name for p in plots] == ["listing.png"]  # no HTTP rows: no HTTP plots
    summary = report.write_markdown(rows, verdict_list, {"commit": "abc", "time": "now",
                                                         "cpus": 2, "mode": "quick"},
                                    tmp_path, plots=plots).read_text()
    assert "![listing](listing.png)" in summary and "throughput.png" not in summary


def test_plugin_rows_carry_the_common_columns():
    pytest.importorskip("tqdm")
    from benchmarks import plugins

    options = {"commit": "abc", "time": "t", "targets": ["atonix-local"]}
    page = {"median_ms": 7.0, "p90_ms": 8.0, "p99_ms": None, "p999_ms": None,
            "pages_per_s": 140.0, "cpu": 0.9, "items": 1000, "backend_ops": 2}
    result = {"keys": 1000, "shards": 1, "fill_s": 0.1, "first": page, "first_delim": page,
              "scan": {"keys": 1000, "pages": 1, "seconds": 0.01, "keys_per_s": 100000,
                       "cpu": 1.0, "backend_ops_per_page": 2.0}}
    rows = plugins.list_rows(options, "atonix-local", result)
    assert [r["operation"] for r in rows] == ["first-page", "first-page-delim", "scan"]
    for r in rows:
        assert set(report.COLUMNS) <= set(r)
        assert (r["scenario"], r["size"], r["errors"], r["commit"]) == ("list", 1000, 0, "abc")
    assert (rows[2]["value"], rows[2]["unit"]) == (100000.0, "keys/s")
    assert plugins.backends({"targets": ["atonix-rados"]}) == []  # no cluster: not measured
    assert [b[0] for b in plugins.backends({"targets": ["atonix-local", "atonix-rados"],
                                            "ceph_conf": "c"})] == ["atonix-local",
                                                                    "atonix-rados"]


def test_cpu_per_operation_is_derived_and_budgeted():
    row = {"target": "atonix-rados", "scenario": "s3-small", "operation": "GET",
           "ops_per_s": 4000.0, "gateway_cpu": 1.2, "p99_ms": 5.0}
    derived = report.with_cpu_per_op(row)
    assert derived["cpu_us_per_op"] == 300.0
    assert report.with_cpu_per_op({"ops_per_s": 0, "gateway_cpu": 1.0}).get("cpu_us_per_op") \
        is None
    got = verdicts([derived])
    assert got["cpu-per-get"].passed is False and got["cpu-per-get"].measured == 300.0
    assert verdicts([row])["cpu-per-get"].passed is None  # not derived: n/a
    assert "300.0" in report.rows_table([derived])
