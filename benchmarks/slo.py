"""Service-level targets (benchmarks/slo.yaml) checked against measured rows (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

SLO_FILE = Path(__file__).with_name("slo.yaml")


@dataclass
class Verdict:
    slo: str
    description: str
    measured: float | None
    threshold: str
    passed: bool | None  # None: not measured in this run

    @property
    def label(self) -> str:
        return {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]


def _select(rows: list[dict], where: dict) -> list[dict]:
    return [r for r in rows if all(r.get(k) == v for k, v in where.items())]


def _value(rows: list[dict], where: dict, metric: str, how: str = "max") -> float | None:
    picked = [r[metric] for r in _select(rows, where) if r.get(metric) is not None]
    if not picked:
        return None
    return max(picked) if how == "max" else min(picked)


def evaluate(rows: list[dict], slo_file: Path = SLO_FILE) -> list[Verdict]:
    spec = yaml.safe_load(slo_file.read_text())
    verdicts = []
    for slo in spec["slos"]:
        metric = slo["metric"]
        if "ratio_to" in slo:
            mine = _value(rows, slo["where"], metric)
            peer = _value(rows, {**slo["where"], **slo["ratio_to"]}, metric)
            measured = mine / peer if mine is not None and peer else None
            threshold = f">= {slo['min']}x {slo['ratio_to']['target']}"
            passed = None if measured is None else measured >= slo["min"]
        else:
            measured = _value(rows, slo["where"], metric, how="max")
            threshold = f"< {slo['max']}"
            passed = None if measured is None else measured < slo["max"]
        verdicts.append(Verdict(slo["id"], slo["description"], measured, threshold, passed))
    return verdicts
