"""The recovery benchmark's numbers and rows on synthetic results (pure: nothing is measured)."""

from __future__ import annotations

import pytest

pytest.importorskip("tqdm")

from benchmarks import plugins, recovery, report, slo


def test_measurement_scales_the_seconds_to_ten_thousand_objects():
    m = recovery.measurement("pitr-restore", 500, 2.0, 0.93, bytes=1 << 20)
    assert (m["objects_per_s"], m["rto_s_per_10k"], m["cpu"]) == (250.0, 40.0, 0.93)
    assert m["bytes"] == 1 << 20
    assert recovery.measurement("backup-run", 10**4, 90.0, 0.5)["rto_s_per_10k"] == 90.0
    assert recovery.measurement("backup-run", 0, 0.0, 0.0)["objects_per_s"] is None


def test_every_twentieth_object_is_chunked_and_payloads_are_reproducible():
    sizes = [recovery.object_size(i) for i in range(40)]
    assert sizes.count(recovery.LARGE) == 2 and sizes[19] == sizes[39] == recovery.LARGE
    assert recovery.payload(19) == recovery.payload(19) != recovery.payload(39)
    assert len(recovery.payload(0)) == recovery.SMALL


def test_recovery_rows_feed_the_report_and_the_rto_targets():
    options = {"commit": "abc", "time": "t"}
    results = [recovery.measurement("pitr-restore", 500, 1.0, 0.9, bytes=500 * 4096),
               recovery.measurement("backup-restore", 500, 4000 * 500 / 10**4, 0.6,
                                    bytes=500 * 4096, concurrency=16)]
    rows = plugins.recovery_rows(options, "atonix-local", results)
    for r in rows:
        assert set(report.COLUMNS) <= set(r)
        assert (r["scenario"], r["size"], r["objects"], r["commit"]) == ("recovery", 500, 500,
                                                                         "abc")
        assert r["value"] == r["rto_s_per_10k"] and r["ops_per_s"] == r["objects_per_s"]
    assert [r["connections"] for r in rows] == [None, 16]
    table = report.rows_table(rows).splitlines()
    assert "| 500 objects |" in table[2] and table[2].endswith("| 20 s per 10^4 objects |")
    got = {v.slo: v for v in slo.evaluate(rows)}
    assert (got["rto-pitr"].measured, got["rto-pitr"].passed) == (20.0, True)
    assert (got["rto-backup-restore"].measured, got["rto-backup-restore"].passed) == (4000.0,
                                                                                      False)
